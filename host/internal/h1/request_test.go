package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// read parses the requests in raw and returns each with its body.
func read(t testing.TB, raw string, max int) ([]*http.Request, []string, error) {
	t.Helper()
	rd := NewReader(bufio.NewReaderSize(strings.NewReader(raw), 64), max, nil)
	var reqs []*http.Request
	var bodies []string
	for {
		r := &http.Request{}
		if err := rd.ReadRequest(r); err != nil {
			if err == io.EOF {
				err = nil
			}
			return reqs, bodies, err
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return reqs, bodies, err
		}
		r.Body = nil
		reqs = append(reqs, r)
		bodies = append(bodies, string(b))
	}
}

func TestReadRequest(t *testing.T) {
	for _, tc := range []struct {
		name, raw                      string
		method, uri, path, query, host string
		header                         http.Header
		body                           string
		cl                             int64
		close                          bool
	}{
		{name: "get", raw: "GET /counter/json?a=1 HTTP/1.1\r\nHost: h:80\r\nCookie: JSESSIONID=x.a\r\n\r\n",
			method: "GET", uri: "/counter/json?a=1", path: "/counter/json", query: "a=1", host: "h:80",
			header: http.Header{"Cookie": {"JSESSIONID=x.a"}}},
		{name: "bare LF, spaces around a value, a repeated field", raw: "GET / HTTP/1.1\nHost: h\nx-a:  1 \t\nX-A: 2\n\n",
			method: "GET", uri: "/", path: "/", host: "h", header: http.Header{"X-A": {"1", "2"}}},
		{name: "empty line first", raw: "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", method: "GET", uri: "/", path: "/", host: "h", header: http.Header{}},
		{name: "escaped path", raw: "GET /a%20b;jsessionid=1 HTTP/1.1\r\nHost: h\r\n\r\n",
			method: "GET", uri: "/a%20b;jsessionid=1", path: "/a b;jsessionid=1", host: "h", header: http.Header{}},
		{name: "absolute form: its host wins", raw: "GET http://abs:1/p?q HTTP/1.1\r\nHost: h\r\n\r\n",
			method: "GET", uri: "http://abs:1/p?q", path: "/p", query: "q", host: "abs:1", header: http.Header{}},
		{name: "length", raw: "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
			method: "POST", uri: "/p", path: "/p", host: "h", header: http.Header{"Content-Length": {"5"}}, body: "hello", cl: 5},
		{name: "two equal lengths", raw: "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
			method: "POST", uri: "/p", path: "/p", host: "h", header: http.Header{"Content-Length": {"2", "2"}}, body: "hi", cl: 2},
		{name: "chunked, extension and trailer", raw: "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n" +
			"5;x=y\r\nhello\r\nA\r\n, chunked!\r\n0\r\nX-T: 1\r\n\r\n",
			method: "POST", uri: "/p", path: "/p", host: "h", header: http.Header{}, body: "hello, chunked!", cl: -1},
		{name: "close", raw: "GET / HTTP/1.1\r\nHost: h\r\nConnection: TE, Close\r\n\r\n",
			method: "GET", uri: "/", path: "/", host: "h", header: http.Header{"Connection": {"TE, Close"}}, close: true},
		{name: "1.0 closes", raw: "GET / HTTP/1.0\r\n\r\n", method: "GET", uri: "/", path: "/", header: http.Header{}, close: true},
		{name: "1.0 keep-alive", raw: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
			method: "GET", uri: "/", path: "/", header: http.Header{"Connection": {"keep-alive"}}},
		{name: "long line", raw: "GET /" + strings.Repeat("a", 300) + " HTTP/1.1\r\nHost: h\r\nX-Long: " + strings.Repeat("b", 200) + "\r\n\r\n",
			method: "GET", uri: "/" + strings.Repeat("a", 300), path: "/" + strings.Repeat("a", 300), host: "h",
			header: http.Header{"X-Long": {strings.Repeat("b", 200)}}},
		{name: "other method", raw: "PROPFIND / HTTP/1.1\r\nHost: h\r\n\r\n", method: "PROPFIND", uri: "/", path: "/", host: "h", header: http.Header{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reqs, bodies, err := read(t, tc.raw, 1024)
			if err != nil || len(reqs) != 1 {
				t.Fatalf("%d requests, err %v", len(reqs), err)
			}
			r := reqs[0]
			if r.Method != tc.method || r.RequestURI != tc.uri || r.URL.Path != tc.path || r.URL.RawQuery != tc.query || r.Host != tc.host {
				t.Errorf("got %s %q path %q query %q host %q", r.Method, r.RequestURI, r.URL.Path, r.URL.RawQuery, r.Host)
			}
			if !maps.EqualFunc(r.Header, tc.header, slices.Equal) {
				t.Errorf("header %v, want %v", r.Header, tc.header)
			}
			if bodies[0] != tc.body || r.ContentLength != tc.cl || r.Close != tc.close {
				t.Errorf("body %q length %d close %v", bodies[0], r.ContentLength, r.Close)
			}
		})
	}
}

// TestRefused: what could be read two ways, or not at all, is an *Error
// with the status to answer.
func TestRefused(t *testing.T) {
	const host = "Host: h\r\n"
	for _, tc := range []struct {
		name, raw string
		status    int
	}{
		{"length and chunked", "POST / HTTP/1.1\r\n" + host + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"two codings", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"chunked twice", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
		{"chunked in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"differing lengths", "POST / HTTP/1.1\r\n" + host + "Content-Length: 3\r\nContent-Length: 4\r\n\r\n", 400},
		{"signed length", "POST / HTTP/1.1\r\n" + host + "Content-Length: +3\r\n\r\n", 400},
		{"length list", "POST / HTTP/1.1\r\n" + host + "Content-Length: 3, 3\r\n\r\n", 400},
		{"huge length", "POST / HTTP/1.1\r\n" + host + "Content-Length: 9999999999999999999\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\n" + host + "X-A : 1\r\n\r\n", 400},
		{"folded", "GET / HTTP/1.1\r\n" + host + "X-A: 1\r\n 2\r\n\r\n", 400},
		{"bare CR in a value", "GET / HTTP/1.1\r\n" + host + "X-A: 1\r2\r\n\r\n", 400},
		{"NUL in a value", "GET / HTTP/1.1\r\n" + host + "X-A: 1\x002\r\n\r\n", 400},
		{"no colon", "GET / HTTP/1.1\r\n" + host + "X-A\r\n\r\n", 400},
		{"no host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two hosts", "GET / HTTP/1.1\r\n" + host + host + "\r\n", 400},
		{"bad host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
		{"version", "GET / HTTP/2.0\r\n" + host + "\r\n", 505},
		{"no version", "GET /\r\n" + host + "\r\n", 400},
		{"space in the target", "GET /a b HTTP/1.1\r\n" + host + "\r\n", 400},
		{"control byte in the target", "GET /a\x01 HTTP/1.1\r\n" + host + "\r\n", 400},
		{"relative target", "GET a HTTP/1.1\r\n" + host + "\r\n", 400},
		{"bad method", "G(T / HTTP/1.1\r\n" + host + "\r\n", 400},
		{"CONNECT", "CONNECT h:443 HTTP/1.1\r\n" + host + "\r\n", 405},
		{"CONNECT after a GET of the same target", "GET / HTTP/1.1\r\n" + host + "\r\nCONNECT / HTTP/1.1\r\n" + host + "\r\n", 405},
		{"expectation", "POST / HTTP/1.1\r\n" + host + "Expect: something\r\nContent-Length: 1\r\n\r\nx", 417},
		{"head too large", "GET / HTTP/1.1\r\n" + host + "X-A: " + strings.Repeat("a", 1024) + "\r\n\r\n", 431},
		{"many empty lines", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" + host + "\r\n", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := read(t, tc.raw, 1024)
			var e *Error
			if !errors.As(err, &e) || e.Status != tc.status {
				t.Fatalf("err %v, want status %d", err, tc.status)
			}
		})
	}
}

// TestBadChunks: a malformed chunked body fails the body's reads, not the
// head.
func TestBadChunks(t *testing.T) {
	for name, chunks := range map[string]string{
		"no size":             "\r\nabc\r\n0\r\n\r\n",
		"bad size":            "g\r\n",
		"size overflow":       "10000000000000000\r\nx",
		"short data":          "5\r\nabc\r\n0\r\n\r\n",
		"bad extension":       "3 x\r\nabc\r\n0\r\n\r\n",
		"cut short":           "5\r\nab",
		"no last chunk":       "3\r\nabc\r\n",
		"bad trailer":         "0\r\nno colon\r\n\r\n",
		"size line too long":  "3;" + strings.Repeat("x", 5000) + "\r\nabc\r\n0\r\n\r\n",
		"trailer too large":   "0\r\nX-A: " + strings.Repeat("a", 2000) + "\r\n\r\n",
		"NUL in an extension": "3;a\x00\r\nabc\r\n0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := read(t, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"+chunks, 1024)
			if err == nil || err == io.EOF {
				t.Fatalf("err %v, want an error", err)
			}
		})
	}
}

// TestCutShort: a connection that ends within a head is an unexpected
// EOF; one that ends between requests, io.EOF.
func TestCutShort(t *testing.T) {
	for _, raw := range []string{"GET / HTTP/1.1\r\nHost: h\r\n", "GET / HT", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nabc"} {
		if _, _, err := read(t, raw, 1024); err != io.ErrUnexpectedEOF {
			t.Errorf("%q: err %v, want unexpected EOF", raw, err)
		}
	}
	reqs, _, err := read(t, "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n", 1024)
	if err != nil || len(reqs) != 2 || reqs[1].URL.Path != "/2" {
		t.Fatalf("pipelined: %d requests, err %v", len(reqs), err)
	}
}

// TestRepeatedRequestAllocs: a keep-alive client's repeated request costs
// no allocation, and what a handler changed in the previous one (its URL,
// its header values) does not reach the next.
func TestRepeatedRequestAllocs(t *testing.T) {
	const req = "GET /counter/json?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: wrk\r\nCookie: JSESSIONID=ABC.jvm_a\r\n\r\n"
	src := strings.NewReader("")
	br := bufio.NewReader(src)
	rd := NewReader(br, 4096, nil)
	r := &http.Request{}
	next := func() {
		src.Reset(req)
		br.Reset(src)
		if err := rd.ReadRequest(r); err != nil {
			t.Fatal(err)
		}
	}
	next()
	r.URL.Path = "/changed"
	r.Header["Cookie"][0] = "changed"
	r.Header.Set("X-Added", "1")
	next()
	if r.URL.Path != "/counter/json" || r.Header.Get("Cookie") != "JSESSIONID=ABC.jvm_a" || r.Header.Get("X-Added") != "" {
		t.Fatalf("the previous request's changes carried over: %q %v", r.URL.Path, r.Header)
	}
	if n := testing.AllocsPerRun(100, next); n != 0 {
		t.Errorf("%.1f allocations per repeated request, want 0", n)
	}
}

// FuzzReadRequest: on any bytes the reader never panics, stays within its
// limit, and every request it accepts is read the same way by net/http's
// http.ReadRequest (method, target, host, header fields, body), so that
// no proxy built on net/http sees a different request than the app.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /p?q=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
		"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\n",
		"GET http://a:1/x HTTP/1.0\r\nConnection: keep-alive\r\nX:  y \r\n\r\n",
		"GET /%41;jsessionid=1 HTTP/1.1\nHost: h\nCookie: a=b\n\n",
		"OPTIONS * HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 2048
		rd := NewReader(bufio.NewReaderSize(bytes.NewReader(in), 128), max, nil)
		r := &http.Request{}
		err := rd.ReadRequest(r)
		if err != nil {
			var e *Error
			if errors.As(err, &e) && (e.Status < 400 || e.Status > 599) {
				t.Fatalf("refusal with status %d", e.Status)
			}
			return
		}
		if rd.n > max {
			t.Fatalf("read a head of %d bytes, limit %d", rd.n, max)
		}
		body, berr := io.ReadAll(io.LimitReader(r.Body, 1<<20))

		// net/http does not skip empty lines before the request line.
		trimmed := in
		for len(trimmed) > 0 && (trimmed[0] == '\r' || trimmed[0] == '\n') {
			trimmed = trimmed[1:]
		}
		want, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(trimmed)))
		if err != nil {
			t.Fatalf("accepted a request net/http refuses (%v): %q", err, in)
		}
		if r.Method != want.Method || r.RequestURI != want.RequestURI || r.URL.String() != want.URL.String() || r.Host != want.Host ||
			r.ProtoMinor != want.ProtoMinor {
			t.Fatalf("read %s %q %q host %q 1.%d; net/http %s %q %q host %q 1.%d", r.Method, r.RequestURI, r.URL, r.Host, r.ProtoMinor,
				want.Method, want.RequestURI, want.URL, want.Host, want.ProtoMinor)
		}
		if !maps.EqualFunc(r.Header, want.Header, slices.Equal) {
			t.Fatalf("header %q; net/http %q", r.Header, want.Header)
		}
		wbody, werr := io.ReadAll(io.LimitReader(want.Body, 1<<20))
		if (berr == nil) != (werr == nil) || !bytes.Equal(body, wbody) {
			t.Fatalf("body %q (%v); net/http %q (%v)", body, berr, wbody, werr)
		}
	})
}

// BenchmarkReadRequest: a keep-alive client's repeated request (the
// strings of the previous one reused) and a request whose cookie and
// target change each time (parsed anew).
func BenchmarkReadRequest(b *testing.B) {
	const same = "GET /counter/json HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\nCookie: JSESSIONID=5C1F3E0A9B8D7C6E5F4A3B2C1D0E9F8A.jvm_a\r\n\r\n"
	run := func(b *testing.B, next func(i int) string) {
		src := strings.NewReader("")
		br := bufio.NewReader(src)
		rd := NewReader(br, 1<<20, nil)
		r := &http.Request{}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			src.Reset(next(i))
			br.Reset(src)
			if err := rd.ReadRequest(r); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
	b.Run("repeated", func(b *testing.B) { run(b, func(int) string { return same }) })
	reqs := [2]string{same, strings.Replace(strings.Replace(same, "5C1F", "6D20", 1), "/json", "/json?x=1", 1)}
	b.Run("changing", func(b *testing.B) { run(b, func(i int) string { return reqs[i&1] }) })
}
