package h1

import (
	"net/http"
	"strconv"
)

// AppendHead appends an HTTP/1.1 response head: the status line, h's
// fields and, if conn is not empty, a Connection field with that value
// ("close", or "keep-alive" for an HTTP/1.0 client that asked for it)
// instead of h's, if any. As net/http does, it drops fields whose names
// are not tokens and writes CR and LF in values as spaces, so that no
// value can end the head early. It does not add Content-Length or Date.
func AppendHead(b []byte, status int, h http.Header, conn string) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	if text := http.StatusText(status); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(status), 10)
	}
	b = append(b, "\r\n"...)
	for k, vs := range h {
		if !validTokenString(k) || (conn != "" && k == "Connection") {
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			start := len(b)
			b = append(b, v...)
			for i := start; i < len(b); i++ {
				if b[i] == '\r' || b[i] == '\n' {
					b[i] = ' '
				}
			}
			b = append(b, "\r\n"...)
		}
	}
	if conn != "" {
		b = append(b, "Connection: "...)
		b = append(b, conn...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

func validTokenString(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChars[s[i]] {
			return false
		}
	}
	return true
}
