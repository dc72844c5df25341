package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// Error is a request the reader refuses: Status is the answer to send
// before closing the connection.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string { return "h1: " + strconv.Itoa(e.Status) + ": " + e.Reason }

func refuse(status int, reason string) error { return &Error{Status: status, Reason: reason} }

// Limits on what the cache keeps: lines beyond them are parsed each time.
const (
	maxCachedLines   = 32
	maxCachedLineLen = 512
)

// Reader reads the requests of one connection.
type Reader struct {
	br  *bufio.Reader
	max int // head bytes allowed

	// Head state of the request being read.
	n    int    // head bytes read so far
	long []byte // a line longer than br's buffer

	// The previous request's request line and header lines, reused when
	// they repeat.
	method string
	target []byte
	url    url.URL // parsed target (never handed out)
	reqURL url.URL // r.URL: a copy of url per request
	uri    string
	lines  []line
	vals   []string // the header map's value slices point in here
	te     [1]string

	body Body
}

type line struct {
	raw      []byte
	key, val string
}

// NewReader returns a reader of requests from br whose heads (request line
// and header lines with their line ends) may hold at most maxHeaderBytes.
// cont, if not nil, is called before the first read of the body of a
// request that sent "Expect: 100-continue", to send the interim response.
func NewReader(br *bufio.Reader, maxHeaderBytes int, cont func() error) *Reader {
	rd := &Reader{br: br, max: maxHeaderBytes}
	rd.body.br = br
	rd.body.cont = cont
	rd.body.max = maxHeaderBytes
	return rd
}

// Body returns the body of the last request read, to drain it.
func (rd *Reader) Body() *Body { return &rd.body }

// ReadRequest reads the next request's head into r, whose Header map is
// cleared and reused, and sets r.Body to read its body (valid until the
// next ReadRequest). r's other fields are overwritten; its context is
// kept. It returns io.EOF if the connection closed between requests,
// io.ErrUnexpectedEOF if it closed within a head, an [*Error] for a
// request to refuse, or the connection's read error.
func (rd *Reader) ReadRequest(r *http.Request) error {
	rd.n = 0
	if cap(rd.long) > 64<<10 {
		rd.long = nil // one long line does not pin its buffer to the connection
	}
	rd.body.reset()
	var ln []byte
	var err error
	// RFC 9112 2.2: ignore empty lines before the request line.
	for i := 0; ; i++ {
		ln, err = rd.readLine(i == 0)
		if err != nil {
			return err
		}
		if len(ln) > 0 {
			break
		}
		if i == 4 {
			return refuse(http.StatusBadRequest, "empty lines instead of a request line")
		}
	}
	if err := rd.requestLine(r, ln); err != nil {
		return err
	}

	h := r.Header
	if h == nil {
		h = make(http.Header)
		r.Header = h
	}
	clear(h)
	var (
		host, cl       string
		hosts, cls     int
		chunked, close bool
		keepAlive, exp bool
	)
	for i := 0; ; i++ {
		ln, err = rd.readLine(false)
		if err != nil {
			return err
		}
		if len(ln) == 0 {
			break
		}
		key, val, err := rd.field(i, ln)
		if err != nil {
			return err
		}
		switch key {
		case "Host":
			host, hosts = val, hosts+1
			continue // as net/http: r.Host, not a header
		case "Content-Length":
			if cls > 0 && val != cl {
				return refuse(http.StatusBadRequest, "differing Content-Length headers")
			}
			cl, cls = val, cls+1
		case "Transfer-Encoding":
			if chunked || !asciiEqualFold(val, "chunked") {
				return refuse(http.StatusNotImplemented, "unsupported transfer coding "+strconv.Quote(val))
			}
			chunked = true
			continue // as net/http: r.TransferEncoding, not a header
		case "Connection":
			close = close || hasToken(val, "close")
			keepAlive = keepAlive || hasToken(val, "keep-alive")
		case "Expect":
			if !asciiEqualFold(val, "100-continue") {
				return refuse(http.StatusExpectationFailed, "unsupported expectation "+strconv.Quote(val))
			}
			exp = true
		}
		if i < len(rd.vals) {
			if _, ok := h[key]; !ok {
				rd.vals[i] = val
				h[key] = rd.vals[i : i+1 : i+1]
				continue
			}
		}
		h[key] = append(h[key], val)
	}

	if hosts > 1 {
		return refuse(http.StatusBadRequest, "more than one Host header")
	}
	if hosts == 0 && r.ProtoMinor == 1 {
		return refuse(http.StatusBadRequest, "missing Host header")
	}
	if !validHost(host) {
		return refuse(http.StatusBadRequest, "malformed Host header")
	}
	r.Host = host
	if r.URL.Host != "" { // absolute form: its authority wins (RFC 9112 3.2.2)
		r.Host = r.URL.Host
	}
	if r.ProtoMinor == 1 {
		r.Close = close
	} else {
		r.Close = close || !keepAlive
	}

	r.TransferEncoding = nil
	switch {
	case chunked && cls > 0:
		return refuse(http.StatusBadRequest, "both Transfer-Encoding and Content-Length")
	case chunked && r.ProtoMinor == 0:
		return refuse(http.StatusBadRequest, "chunked body in an HTTP/1.0 request")
	case chunked:
		rd.te[0] = "chunked"
		r.TransferEncoding = rd.te[:]
		r.ContentLength = -1
		rd.body.chunk(exp)
		r.Body = &rd.body
	case cls > 0:
		n, ok := parseLength(cl)
		if !ok {
			return refuse(http.StatusBadRequest, "malformed Content-Length "+strconv.Quote(cl))
		}
		r.ContentLength = n
		if n == 0 {
			r.Body = http.NoBody
		} else {
			rd.body.length(n, exp)
			r.Body = &rd.body
		}
	default:
		r.ContentLength = 0
		r.Body = http.NoBody
	}
	return nil
}

// readLine returns the next line without its line end (CRLF or a bare
// LF, which RFC 9112 lets a server accept), valid until the next read.
// first reports that a clean end of the connection is io.EOF.
func (rd *Reader) readLine(first bool) ([]byte, error) {
	ln, err := rd.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		rd.long = append(rd.long[:0], ln...)
		for err == bufio.ErrBufferFull {
			if rd.n+len(rd.long) > rd.max {
				return nil, rd.tooLarge()
			}
			ln, err = rd.br.ReadSlice('\n')
			rd.long = append(rd.long, ln...)
		}
		ln = rd.long
	}
	rd.n += len(ln)
	if err != nil {
		if err == io.EOF && (!first || len(ln) > 0) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if rd.n > rd.max {
		return nil, rd.tooLarge()
	}
	ln = ln[:len(ln)-1]
	if len(ln) > 0 && ln[len(ln)-1] == '\r' {
		ln = ln[:len(ln)-1]
	}
	return ln, nil
}

func (rd *Reader) tooLarge() error {
	return refuse(http.StatusRequestHeaderFieldsTooLarge, "request head larger than "+strconv.Itoa(rd.max)+" bytes")
}

func (rd *Reader) requestLine(r *http.Request, ln []byte) error {
	sp1 := bytes.IndexByte(ln, ' ')
	sp2 := bytes.LastIndexByte(ln, ' ')
	if sp1 <= 0 || sp2 == sp1 {
		return refuse(http.StatusBadRequest, "malformed request line")
	}
	method, target, proto := ln[:sp1], ln[sp1+1:sp2], ln[sp2+1:]
	switch {
	case string(proto) == "HTTP/1.1":
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	case string(proto) == "HTTP/1.0":
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0
	case len(proto) == 8 && string(proto[:5]) == "HTTP/" && isDigit(proto[5]) && proto[6] == '.' && isDigit(proto[7]):
		return refuse(http.StatusHTTPVersionNotSupported, "unsupported version "+string(proto))
	default:
		return refuse(http.StatusBadRequest, "malformed request line")
	}
	if string(method) != rd.method {
		if !validToken(method) {
			return refuse(http.StatusBadRequest, "malformed method")
		}
		rd.method = methodString(method)
	}
	r.Method = rd.method
	if r.Method == http.MethodConnect {
		return refuse(http.StatusMethodNotAllowed, "CONNECT is not served")
	}
	if len(target) == 0 || !bytes.Equal(target, rd.target) || rd.uri == "" {
		if !validTarget(target) {
			return refuse(http.StatusBadRequest, "malformed request target")
		}
		uri := string(target)
		u, err := url.ParseRequestURI(uri)
		if err != nil {
			rd.uri, rd.target = "", rd.target[:0]
			return refuse(http.StatusBadRequest, "malformed request target")
		}
		rd.url, rd.uri = *u, uri
		rd.target = append(rd.target[:0], target...)
	}
	rd.reqURL = rd.url // a handler may have changed the previous request's
	r.URL, r.RequestURI = &rd.reqURL, rd.uri
	return nil
}

// field parses header line i, reusing the previous request's strings
// when the line repeats.
func (rd *Reader) field(i int, ln []byte) (key, val string, err error) {
	if i < len(rd.lines) && bytes.Equal(rd.lines[i].raw, ln) {
		return rd.lines[i].key, rd.lines[i].val, nil
	}
	if ln[0] == ' ' || ln[0] == '\t' {
		return "", "", refuse(http.StatusBadRequest, "folded header line")
	}
	colon := bytes.IndexByte(ln, ':')
	if colon <= 0 || !validToken(ln[:colon]) {
		return "", "", refuse(http.StatusBadRequest, "malformed header line")
	}
	v := trimOWS(ln[colon+1:])
	if !validValue(v) {
		return "", "", refuse(http.StatusBadRequest, "control byte in header "+strconv.Quote(string(ln[:colon])))
	}
	key = http.CanonicalHeaderKey(string(ln[:colon]))
	val = string(v)
	if i < maxCachedLines && len(ln) <= maxCachedLineLen {
		for len(rd.lines) <= i {
			rd.lines = append(rd.lines, line{})
			rd.vals = append(rd.vals, "")
		}
		rd.lines[i] = line{raw: append(rd.lines[i].raw[:0], ln...), key: key, val: val}
	}
	return key, val, nil
}

// methodString returns the method as a string, without allocating for
// the common ones.
func methodString(m []byte) string {
	for _, s := range [...]string{http.MethodGet, http.MethodPost, http.MethodHead, http.MethodPut,
		http.MethodDelete, http.MethodOptions, http.MethodPatch} {
		if string(m) == s {
			return s
		}
	}
	return string(m)
}

// parseLength parses a Content-Length: digits only, no sign, no list.
func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// tokenChars marks RFC 9110 tchar.
var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func validToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChars[c] {
			return false
		}
	}
	return true
}

// validTarget rejects control bytes, spaces and bytes above 0x7e, which
// a request target never holds unescaped.
func validTarget(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// validValue rejects control bytes other than HTAB (a bare CR or LF
// could end the line differently for another reader).
func validValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// hostChars marks the bytes a Host value may hold: RFC 3986 host and
// port (reg-name, IP literal brackets, percent escapes).
var hostChars = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = tokenChars[c]
	}
	for _, c := range "()[]:;=,@%" {
		t[c] = true
	}
	return t
}()

func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		if !hostChars[h[i]] {
			return false
		}
	}
	return true
}

func trimOWS[T ~string | ~[]byte](b T) T {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// asciiEqualFold reports whether s equals lower, an ASCII lower-case
// string, ignoring case.
func asciiEqualFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v holds token
// (lower case), ignoring case.
func hasToken(v, token string) bool {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		if asciiEqualFold(trimOWS(v[:i]), token) {
			return true
		}
		if i == len(v) {
			break
		}
		v = v[i+1:]
	}
	return false
}
