package host_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// panicCounter counts the connector's "panic serving a request" logs.
type panicCounter struct{ n atomic.Int64 }

func (p *panicCounter) Enabled(context.Context, slog.Level) bool { return true }
func (p *panicCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "panic") {
		p.n.Add(1)
	}
	return nil
}
func (p *panicCounter) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p *panicCounter) WithGroup(string) slog.Handler      { return p }

// FuzzConnector sends any bytes on a connection to a server with the
// counter app and closes its sending side: the connector never panics,
// what it answers parses as a sequence of HTTP/1.1 responses, and it
// serves the next client.
func FuzzConnector(f *testing.F) {
	for _, s := range []string{
		"GET /c/json HTTP/1.1\r\nHost: x\r\n\r\nGET /c/json HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /c/json HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /c/ HTTP/1.0\r\n\r\n",
		"POST /c/json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"HEAD /c/json;jsessionid=x HTTP/1.1\r\nHost: x\r\nCookie: JSESSIONID=y\r\n\r\n",
		"GET /c/json HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	pc := &panicCounter{}
	_, base := newServer(f, host.Config{Logger: slog.New(pc), RequestDeadline: time.Second, MaxHeaderBytes: 4096,
		MaxRequestBodyBytes: 4096, ReadHeaderTimeout: time.Second}, map[string][]byte{"/c": wasmapps.Counter()})
	addr := strings.TrimPrefix(base, "http://")
	f.Fuzz(func(t *testing.T, in []byte) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			nc.Write(in)
			nc.(*net.TCPConn).CloseWrite()
		}()
		out, _ := io.ReadAll(nc) // until the server closes (a reset after a refusal is fine)
		// The requests' methods, as net/http reads them (a HEAD answer
		// has a length but no body).
		var methods []string
		rr := bufio.NewReader(bytes.NewReader(in))
		for {
			req, err := http.ReadRequest(rr)
			if err != nil {
				break
			}
			methods = append(methods, req.Method)
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				break
			}
		}
		// Each head is read alone (as if for HEAD), its body by its
		// Content-Length unless the request was HEAD. The answer that
		// closes the connection may answer a request net/http does not
		// read (a refusal), so its method is unknown: its body is then
		// either absent (HEAD) or exactly Content-Length bytes.
		br := bufio.NewReader(bytes.NewReader(out))
		for i := 0; ; {
			if _, err := br.Peek(1); err == io.EOF {
				break
			}
			resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodHead})
			if err != nil {
				t.Fatalf("the server's answer does not parse (%v): %q", err, out)
			}
			if resp.Close {
				rest, _ := io.ReadAll(br)
				if len(rest) != 0 && int64(len(rest)) != resp.ContentLength {
					t.Fatalf("the last answer has %d bytes after its head, its Content-Length is %d: %q", len(rest), resp.ContentLength, out)
				}
				break
			}
			m := "GET"
			if i < len(methods) {
				m = methods[i]
			}
			if st := resp.StatusCode; m != http.MethodHead && st >= 200 && st != http.StatusNoContent && st != http.StatusNotModified {
				if resp.ContentLength < 0 {
					t.Fatalf("an answer without Content-Length: %q", out)
				}
				if _, err := io.CopyN(io.Discard, br, resp.ContentLength); err != nil {
					t.Fatalf("an answer's body (%v): %q", err, out)
				}
			}
			if resp.StatusCode != http.StatusContinue {
				i++
			}
		}
		if n := pc.n.Load(); n > 0 {
			t.Fatalf("%d panics serving %q", n, in)
		}
	})
	c := &client{t: f, base: base}
	if st, _, _ := c.get("/c/json"); st != 200 {
		f.Fatalf("after the fuzzing: status %d", st)
	}
}
