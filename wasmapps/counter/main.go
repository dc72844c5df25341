//go:build wasip1

// Command counter is the cluster test page of Tomcat's clustering guides
// as a wasmfarm app: it shows the session id, the node (jvmRoute) that
// served the request, the session's creation time and a counter
// incremented on each request.
//
//	/counter             the HTML page
//	/counter/json        {"session","node","created","counter"} (created in unix ms)
//	/counter/invalidate  invalidates the session
package main

import (
	"strconv"
	"time"

	"github.com/wasmfarm/wasmfarm/wasmapps/sdk"
)

func init() { sdk.HandleFunc(serve) }

func main() {}

// jsonBuf is reused across requests: an instance serves one at a time.
var jsonBuf = make([]byte, 0, 256)

func serve(w sdk.ResponseWriter, r *sdk.Request, s *sdk.Session) {
	switch r.AppPath() {
	case "/invalidate":
		id := ""
		if s.Exists() {
			id = s.ID()
			s.Invalidate()
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteString("<html><head><title>Cluster Test</title></head><body>\n")
		w.WriteString("<p>Session " + html(id) + " invalidated.</p>\n<p><a href=\"" + html(r.ContextPath) + "/\">start again</a></p>\n</body></html>\n")
		return
	case "/", "/json", "/index.html":
	default:
		w.WriteHeader(404)
		w.WriteString("not found\n")
		return
	}
	n, _ := s.GetInt("counter")
	n++
	if err := s.SetInt("counter", n); err != nil {
		w.WriteHeader(500)
		w.WriteString("session: " + err.Error() + "\n")
		return
	}
	id, node, created := s.ID(), sdk.Node(), s.CreationTime()
	if r.AppPath() == "/json" {
		w.Header().Set("Content-Type", "application/json")
		// Session ids and routes never need escaping (docs/abi.md: hex,
		// '.' and a route without quotes, backslashes or controls), so
		// they are copied as they are: a byte-by-byte escape loop is
		// costly in a guest compiled with deadline checks.
		b := jsonBuf[:0]
		b = append(b, `{"session":"`...)
		b = append(b, id...)
		b = append(b, `","node":"`...)
		b = append(b, node...)
		b = append(b, `","created":`...)
		b = strconv.AppendInt(b, created.UnixMilli(), 10)
		b = append(b, `,"counter":`...)
		b = strconv.AppendInt(b, n, 10)
		b = append(b, "}\n"...)
		jsonBuf = b
		w.Write(b)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteString("<html><head><title>Cluster Test</title></head><body>\n")
	w.WriteString("<br> SESSION ID:" + html(id) + "<br>\n")
	w.WriteString("Session serviced by " + html(node) + "<br>\n")
	w.WriteString("Session created time is :" + strconv.FormatInt(created.UnixMilli(), 10) +
		" (" + created.UTC().Format(time.RFC3339) + ")<br>\n")
	w.WriteString("Counter: " + strconv.FormatInt(n, 10) + "<br>\n")
	w.WriteString("<a href=\"" + html(r.ContextPath) + "/invalidate\">invalidate the session</a>\n</body></html>\n")
}

// html escapes s for HTML text and attribute values.
func html(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			out = append(out, "&lt;"...)
		case '>':
			out = append(out, "&gt;"...)
		case '&':
			out = append(out, "&amp;"...)
		case '"':
			out = append(out, "&#34;"...)
		case '\'':
			out = append(out, "&#39;"...)
		default:
			out = append(out, c)
		}
	}
	return string(out)
}
