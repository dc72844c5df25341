package host_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// rawConn is a client connection that writes bytes as given and reads
// answers with net/http's response parser.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, base string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatal(err)
	}
}

// answer reads one response to a request of this method.
func (c *rawConn) answer(method string) (*http.Response, string) {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("reading a response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("reading a response body: %v", err)
	}
	return resp, string(b)
}

// tryAnswer is answer returning its error.
func (c *rawConn) tryAnswer(method string) (*http.Response, string, error) {
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// closed reports whether the server closed the connection (reads EOF).
func (c *rawConn) closed() bool {
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.br.ReadByte()
	return err == io.EOF || errors.Is(err, syscall.ECONNRESET)
}

// TestConnectorPipelining: requests sent in one write (GET, a
// Content-Length body, a chunked body, HEAD) are answered in order on the
// same connection, and the connection serves on.
func TestConnectorPipelining(t *testing.T) {
	_, base := newServer(t, host.Config{}, map[string][]byte{"/f": faulty(t)})
	c := dialRaw(t, base)
	c.send("GET /f/ok HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /f/echo HTTP/1.1\r\nHost: x\r\nX-Test: one\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /f/echo HTTP/1.1\r\nHost: x\r\nX-Test: two\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;e=1\r\ndefg\r\n0\r\nT: 1\r\n\r\n" +
		"HEAD /f/echo HTTP/1.1\r\nHost: x\r\n\r\n")
	if r, body := c.answer("GET"); r.StatusCode != 200 || body != "1" {
		t.Fatalf("GET: %d %q", r.StatusCode, body)
	}
	for _, want := range []struct{ test, body string }{{"one", "hello"}, {"two", "abcdefg"}} {
		if r, body := c.answer("POST"); r.StatusCode != 200 || body != want.body || r.Header.Get("X-Test") != want.test {
			t.Fatalf("echo %s: %d %q %v", want.test, r.StatusCode, body, r.Header)
		}
	}
	if r, body := c.answer("HEAD"); r.StatusCode != 200 || body != "" || r.Header.Get("X-Method") != "HEAD" || r.ContentLength != 0 {
		t.Fatalf("HEAD: %d %q %v", r.StatusCode, body, r.Header)
	}
	c.send("GET /f/ok HTTP/1.1\r\nHost: x\r\n\r\n")
	if r, _ := c.answer("GET"); r.StatusCode != 200 || r.Close {
		t.Fatalf("after the pipeline: %d close %v", r.StatusCode, r.Close)
	}
}

// TestConnectorExpectContinue: 100 Continue is sent when the app's host
// reads the body, not before; a body over the limit is refused without
// it, and the connection closes (the client may never send that body).
func TestConnectorExpectContinue(t *testing.T) {
	_, base := newServer(t, host.Config{MaxRequestBodyBytes: 1024}, map[string][]byte{"/f": faulty(t)})
	c := dialRaw(t, base)
	c.send("POST /f/echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	if r, _ := c.answer("POST"); r.StatusCode != 100 {
		t.Fatalf("status %d, want 100 first", r.StatusCode)
	}
	c.send("hello")
	if r, body := c.answer("POST"); r.StatusCode != 200 || body != "hello" {
		t.Fatalf("echo: %d %q", r.StatusCode, body)
	}
	c.send("POST /f/echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
	if r, _ := c.answer("POST"); r.StatusCode != 413 || !r.Close {
		t.Fatalf("too large: %d close %v, want 413 and close", r.StatusCode, r.Close)
	}
	if !c.closed() {
		t.Error("the connection stayed open after refusing a body never sent")
	}
}

// TestConnectorUnreadBody: a body the app's host did not read (over the
// limit) is read and dropped, so the next request on the connection is
// read from its own first byte.
func TestConnectorUnreadBody(t *testing.T) {
	_, base := newServer(t, host.Config{MaxRequestBodyBytes: 1024}, map[string][]byte{"/f": faulty(t)})
	c := dialRaw(t, base)
	c.send("POST /f/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + strings.Repeat("x", 5000) +
		"GET /f/echo HTTP/1.1\r\nHost: x\r\nX-Test: next\r\n\r\n")
	if r, _ := c.answer("POST"); r.StatusCode != 413 || r.Close {
		t.Fatalf("too large: %d close %v, want 413 on a kept connection", r.StatusCode, r.Close)
	}
	if r, _ := c.answer("GET"); r.StatusCode != 200 || r.Header.Get("X-Test") != "next" {
		t.Fatalf("next: %d %v", r.StatusCode, r.Header)
	}
}

// TestConnectorRefusals: a malformed or too large head gets its status
// with "Connection: close", the connection closes, and the server counts
// it.
func TestConnectorRefusals(t *testing.T) {
	srv, base := newServer(t, host.Config{MaxHeaderBytes: 2048}, map[string][]byte{"/f": faulty(t)})
	for i, tc := range []struct {
		raw    string
		status int
	}{
		{"POST /f/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"GET /f/ok HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 3000) + "\r\n\r\n", 431},
		{"GET /f/ok HTTP/3.0\r\nHost: x\r\n\r\n", 505},
		{"GET /f/ok HTTP/1.1\r\n\r\n", 400},
		{"POST /f/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"HEAD /f/ok HTTP/1.1\r\n\r\n", 400}, // no body: closed() below reads nothing more
	} {
		c := dialRaw(t, base)
		c.send(tc.raw)
		method, _, _ := strings.Cut(tc.raw, " ")
		r, body := c.answer(method)
		if r.StatusCode != tc.status || !r.Close || (method != "HEAD" && !strings.HasPrefix(body, http.StatusText(tc.status)+": ")) {
			t.Errorf("%.30q: %d close %v %q, want %d and close", tc.raw, r.StatusCode, r.Close, body, tc.status)
		}
		if !c.closed() {
			t.Errorf("%.30q: the connection stayed open", tc.raw)
		}
		if n := srv.BadRequests(); n != int64(i+1) {
			t.Errorf("BadRequests %d, want %d", n, i+1)
		}
	}
}

// TestConnectorHTTP10: an HTTP/1.0 request is answered and the connection
// closed, unless it asked for keep-alive.
func TestConnectorHTTP10(t *testing.T) {
	_, base := newServer(t, host.Config{}, map[string][]byte{"/f": faulty(t)})
	c := dialRaw(t, base)
	c.send("GET /f/ok HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	if r, _ := c.answer("GET"); r.StatusCode != 200 || r.Close || r.Header.Get("Connection") != "keep-alive" {
		t.Fatalf("keep-alive: %d close %v %v (an HTTP/1.0 client needs Connection: keep-alive)", r.StatusCode, r.Close, r.Header)
	}
	c.send("GET /f/ok HTTP/1.0\r\n\r\n")
	if r, _ := c.answer("GET"); r.StatusCode != 200 || !r.Close {
		t.Fatalf("1.0: %d close %v, want close", r.StatusCode, r.Close)
	}
	if !c.closed() {
		t.Error("the connection stayed open after an HTTP/1.0 answer")
	}
}

// TestConnectorShutdown: Shutdown closes idle connections at once, lets a
// running request finish (its answer says Connection: close), and when
// its context ends first, stops the guests still running (sleeping or
// looping, long before their deadline), closes their connections and
// returns the context's error.
func TestConnectorShutdown(t *testing.T) {
	// A valve tells when /f/sleep starts and when the app returned, so
	// that the test waits on events, not on time.
	started := make(chan struct{}, 1)
	var finished atomic.Bool
	watch := host.ValveFunc(func(x *host.Exchange, next host.Invoker) {
		if x.Path != "/f/sleep" && x.Path != "/f/loop" {
			next.Invoke(x)
			return
		}
		started <- struct{}{}
		next.Invoke(x)
		finished.Store(true)
	})
	cfg := host.Config{Valves: []host.Valve{watch}}

	srv, base := newServer(t, cfg, map[string][]byte{"/f": faulty(t)})
	idle := dialRaw(t, base)
	idle.send("GET /f/ok HTTP/1.1\r\nHost: x\r\n\r\n")
	idle.answer("GET")
	busy := dialRaw(t, base)
	busy.send("GET /f/sleep?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Error("Shutdown returned before the running request ended")
	}
	if r, body := busy.answer("GET"); r.StatusCode != 200 || body != "slept" || !r.Close {
		t.Errorf("running request: %d %q close %v", r.StatusCode, body, r.Close)
	}
	if !idle.closed() || !busy.closed() {
		t.Error("a connection stayed open after Shutdown")
	}

	// A guest sleeping for 50 s and one looping forever, both under a
	// 60 s deadline: Shutdown with 200 ms stops both. (The valve hears
	// that the app returned just after Shutdown does: it waits for that,
	// up to 20 s, far less than the guests would run.)
	for _, target := range []string{"/f/sleep?ms=50000", "/f/loop"} {
		finished.Store(false)
		cfg.RequestDeadline = time.Minute
		srv2, base2 := newServer(t, cfg, map[string][]byte{"/f": faulty(t)})
		stuck := dialRaw(t, base2)
		stuck.send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := srv2.Shutdown(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: Shutdown: %v, want the deadline", target, err)
		}
		for wait := time.Now().Add(20 * time.Second); !finished.Load() && time.Now().Before(wait); {
			time.Sleep(time.Millisecond)
		}
		if !finished.Load() {
			t.Errorf("%s: the guest still ran 20 s after Shutdown returned", target)
		}
		if !stuck.closed() {
			t.Errorf("%s: the running request's connection stayed open after Shutdown gave up", target)
		}
	}
}

// TestConnectorNetHTTP: the net/http connector serves the same app, with
// the same session cookie.
func TestConnectorNetHTTP(t *testing.T) {
	for _, conn := range []string{host.ConnectorH1, host.ConnectorNetHTTP} {
		_, base := newServer(t, host.Config{JvmRoute: "jvm_a", Connector: conn}, map[string][]byte{"/counter": wasmapps.Counter()})
		c := &client{t: t, base: base}
		for i := 1; i <= 2; i++ {
			st, body, h := c.get("/counter/json")
			if st != 200 || !strings.Contains(body, `"counter":`+strconv.Itoa(i)) || h.Get("Content-Type") != "application/json" {
				t.Fatalf("%s: request %d: %d %q %v", conn, i, st, body, h)
			}
		}
		if !strings.HasSuffix(c.cookie, ".jvm_a") {
			t.Errorf("%s: cookie %q", conn, c.cookie)
		}
	}
	if _, err := host.New(host.Config{Connector: "nio"}); err == nil || !strings.Contains(err.Error(), "connector") {
		t.Errorf("an unknown connector: err %v", err)
	}
}

// BenchmarkConnector: one counter request with its session cookie over a
// loopback keep-alive connection, client and server in this process (the
// client allocates nothing).
func BenchmarkConnector(b *testing.B) {
	_, base := newServer(b, host.Config{}, map[string][]byte{"/counter": wasmapps.Counter()})
	c := &client{t: b, base: base}
	c.get("/counter/json")
	nc, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	req := []byte("GET /counter/json HTTP/1.1\r\nHost: x\r\nCookie: JSESSIONID=" + c.cookie + "\r\n\r\n")
	buf := make([]byte, 4096)
	roundTrip := func() {
		if _, err := nc.Write(req); err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			m, err := nc.Read(buf[n:])
			if err != nil {
				b.Fatal(err)
			}
			n += m
			if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i > 0 && n >= i+4+contentLength(buf[:i]) {
				return
			}
		}
	}
	roundTrip()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		roundTrip()
	}
}

func contentLength(head []byte) int {
	_, v, ok := bytes.Cut(head, []byte("Content-Length: "))
	if !ok {
		return 0
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// TestConnectorTimeouts: a head that stops coming is dropped after
// ReadHeaderTimeout (on a server whose IdleTimeout is the default 2 min,
// so that only the header timeout can close it), and a keep-alive
// connection after IdleTimeout, while a client that keeps sending over
// more than that is served.
func TestConnectorTimeouts(t *testing.T) {
	_, slowBase := newServer(t, host.Config{ReadHeaderTimeout: 300 * time.Millisecond}, map[string][]byte{"/f": faulty(t)})
	slow := dialRaw(t, slowBase)
	slow.send("GET /f/ok HTTP/1.1\r\nHo")

	_, base := newServer(t, host.Config{IdleTimeout: time.Second}, map[string][]byte{"/f": faulty(t)})
	idle := dialRaw(t, base)
	for range 8 { // 1.2 s of requests 150 ms apart: past the idle timeout
		idle.send("GET /f/ok HTTP/1.1\r\nHost: x\r\n\r\n")
		if r, _ := idle.answer("GET"); r.StatusCode != 200 {
			t.Fatalf("status %d", r.StatusCode)
		}
		time.Sleep(150 * time.Millisecond)
	}
	// closed waits up to 5 s: beyond both timeouts, below the defaults
	// (10 s and 2 min), which would leave both open.
	if !slow.closed() {
		t.Error("a half-sent head kept its connection past ReadHeaderTimeout")
	}
	if !idle.closed() {
		t.Error("an idle connection stayed open past IdleTimeout")
	}
}

// TestConnectorPanic: a valve that panics costs its connection, not the
// server: it is logged, the connection closes, others are served.
func TestConnectorPanic(t *testing.T) {
	boom := host.ValveFunc(func(x *host.Exchange, next host.Invoker) {
		if x.Path == "/f/boom" {
			panic("a valve's bug")
		}
		next.Invoke(x)
	})
	_, base := newServer(t, host.Config{Valves: []host.Valve{boom}}, map[string][]byte{"/f": faulty(t)})
	c := dialRaw(t, base)
	c.send("GET /f/boom HTTP/1.1\r\nHost: x\r\n\r\n")
	if !c.closed() {
		t.Error("the panicking request's connection stayed open")
	}
	ok := dialRaw(t, base)
	ok.send("GET /f/ok HTTP/1.1\r\nHost: x\r\n\r\n")
	if r, _ := ok.answer("GET"); r.StatusCode != 200 {
		t.Fatalf("after the panic: %d", r.StatusCode)
	}
}

// TestConnectorWriteTimeout: a client that reads nothing while a response
// larger than the socket buffers waits loses its connection after
// WriteTimeout, counted in SlowClients; a client that reads slowly but
// steadily gets the whole of a response that takes several WriteTimeouts.
func TestConnectorWriteTimeout(t *testing.T) {
	srv, base := newServer(t, host.Config{WriteTimeout: time.Second}, map[string][]byte{"/f": faulty(t)})
	const n = 12 << 20 // beyond what loopback's socket buffers hold
	dial := func() net.Conn {
		// A small receive buffer, set before connecting, keeps the
		// window small.
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var err error
			rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10) })
			return err
		}}
		nc, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		if _, err := io.WriteString(nc, "GET /f/bigbody?n="+strconv.Itoa(n)+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		return nc
	}

	// A client that reads nothing.
	stalled := dial()
	for deadline := time.Now().Add(20 * time.Second); srv.SlowClients() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a client that read nothing kept its connection (SlowClients stayed 0)")
		}
	}
	stalled.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.Copy(io.Discard, stalled)
	if got >= n || err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the stalled client then read %d bytes, err %v; want less than the %d-byte body and the connection closed", got, err, n)
	}

	// A client that reads 64 KiB every 20 ms: about 4 s for the body.
	slow := dial()
	slow.SetReadDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReaderSize(slow, 64<<10)
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	var total int64
	for {
		k, err := io.ReadFull(resp.Body, buf)
		total += int64(k)
		if err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resp.StatusCode != 200 || total != n {
		t.Errorf("the slow client read status %d and %d of %d body bytes", resp.StatusCode, total, n)
	}
	if s := srv.SlowClients(); s != 1 {
		t.Errorf("SlowClients = %d, want 1 (the stalled client only)", s)
	}
}

// trickle writes s to nc one byte every 20 ms, until it is written, a
// write fails or the test ends.
func trickle(t *testing.T, nc net.Conn, s string) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := range len(s) {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if _, err := nc.Write([]byte{s[i]}); err != nil {
				return
			}
		}
	}()
}

// TestConnectorReadTimeout: on both connectors, a request must arrive
// whole within ReadTimeout, counted from its start: a body trickled
// slower than that gets 408 and the connection closes (h1 counts it in
// SlowClients), as does a body the host never reads (a 404); a head
// trickled slower is dropped (net/http answers 400 first) although
// ReadHeaderTimeout (10 s) is longer.
// Requests that each arrive in time are served on a connection that
// lives longer than ReadTimeout, as are requests whose app runs longer
// than it. The client trickles a byte every 20 ms,
// so each of its 1000-byte bodies would take 20 s; the client waits
// 5 s for the server to give up, far longer than the 200 ms ReadTimeout
// and far shorter than the body.
func TestConnectorReadTimeout(t *testing.T) {
	for _, conn := range []string{host.ConnectorH1, host.ConnectorNetHTTP} {
		t.Run(conn, func(t *testing.T) {
			srv, base := newServer(t, host.Config{Connector: conn, ReadTimeout: 200 * time.Millisecond}, map[string][]byte{"/f": faulty(t)})
			body := strings.Repeat("x", 1000)
			head := "POST /f/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"

			slowBody := dialRaw(t, base)
			slowBody.send(head)
			trickle(t, slowBody.nc, body)
			slowBody.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if r, msg, err := slowBody.tryAnswer("POST"); err != nil {
				t.Errorf("a trickled body: reading the answer: %v; want 408 and close", err)
			} else if r.StatusCode != http.StatusRequestTimeout || !r.Close {
				t.Errorf("a trickled body: %d %q close %v, want 408 and close", r.StatusCode, msg, r.Close)
			}
			if !slowBody.closed() {
				t.Error("a trickled body kept its connection past ReadTimeout")
			}
			if n := srv.SlowClients(); conn == host.ConnectorH1 && n != 1 {
				t.Errorf("SlowClients = %d, want 1", n)
			}

			unread := dialRaw(t, base)
			unread.send("POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
			trickle(t, unread.nc, body)
			unread.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if r, _, err := unread.tryAnswer("POST"); err != nil {
				t.Errorf("a trickled body to no app: reading the answer: %v; want 404", err)
			} else if r.StatusCode != http.StatusNotFound {
				t.Errorf("a trickled body to no app: %d, want 404", r.StatusCode)
			}
			if !unread.closed() {
				t.Error("a trickled body that no app read kept its connection past ReadTimeout")
			}

			// h1 closes the connection; net/http answers 400 first.
			slowHead := dialRaw(t, base)
			trickle(t, slowHead.nc, head+body)
			slowHead.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.Copy(io.Discard, slowHead.br); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("a trickled head kept its connection past ReadTimeout: %v", err)
			}

			// Five requests 100 ms apart on one connection, each sent
			// in two writes (the body, or the head's second half, 10 ms
			// after the first): 500 ms in all.
			steady := dialRaw(t, base)
			for i := range 5 {
				msg := strconv.Itoa(i)
				req := "POST /f/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n" + msg
				cut := len(req) - 1 // the body
				if i%2 == 1 {
					cut = 20 // within the head
				}
				steady.send(req[:cut])
				time.Sleep(10 * time.Millisecond)
				steady.send(req[cut:])
				if r, got := steady.answer("POST"); r.StatusCode != 200 || got != msg || r.Close {
					t.Fatalf("request %d: %d %q close %v, want 200 %q on a kept connection", i, r.StatusCode, got, r.Close, msg)
				}
				time.Sleep(100 * time.Millisecond)
			}
			// The app's run does not count: one longer than ReadTimeout
			// is answered, and the connection serves on.
			for i := range 2 {
				steady.send("POST /f/sleep?ms=300 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
				if r, got := steady.answer("POST"); r.StatusCode != 200 || got != "slept" || r.Close {
					t.Fatalf("a 300 ms app run (%d): %d %q close %v, want 200 \"slept\" on a kept connection", i, r.StatusCode, got, r.Close)
				}
			}
			if n := srv.SlowClients(); conn == host.ConnectorH1 && n != 2 {
				t.Errorf("SlowClients = %d, want 2 (the two trickled bodies)", n)
			}
		})
	}
}

// deadlineListener counts the read deadlines its connections set.
type deadlineListener struct {
	net.Listener
	sets *atomic.Int64
}

func (l deadlineListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return deadlineConn{nc, l.sets}, nil
}

type deadlineConn struct {
	net.Conn
	sets *atomic.Int64
}

func (c deadlineConn) SetReadDeadline(t time.Time) error {
	c.sets.Add(1)
	return c.Conn.SetReadDeadline(t)
}

// TestConnectorBodyDeadlineCost: on the h1 connector, keep-alive requests
// with a body that arrive whole (head and body in one write) set no read
// deadline of their own (only the idle deadline moves, about once a
// second), and allocate nothing; one whose body comes in a later write
// sets its ReadTimeout deadline, and allocates nothing either. (The
// client allocates nothing.)
func TestConnectorBodyDeadlineCost(t *testing.T) {
	srv, err := host.New(host.Config{CacheDir: cacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Deploy(context.Background(), "/f", faulty(t)); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var sets atomic.Int64
	go srv.Serve(deadlineListener{l, &sets})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(time.Minute))

	whole := []byte("POST /f/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	head, body := whole[:len(whole)-5], whole[len(whole)-5:]
	buf := make([]byte, 4096)
	roundTrip := func(parts ...[]byte) {
		for i, p := range parts {
			if i > 0 {
				time.Sleep(2 * time.Millisecond)
			}
			if _, err := nc.Write(p); err != nil {
				t.Fatal(err)
			}
		}
		n := 0
		for {
			m, err := nc.Read(buf[n:])
			if err != nil {
				t.Fatal(err)
			}
			n += m
			if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i > 0 && n >= i+4+contentLength(buf[:i]) {
				if !bytes.HasPrefix(buf, []byte("HTTP/1.1 200 ")) || !bytes.HasSuffix(buf[:n], body) {
					t.Fatalf("answer %q", buf[:n])
				}
				return
			}
		}
	}
	roundTrip(whole)
	before := sets.Load()
	start := time.Now()
	const n = 50
	for range n {
		roundTrip(whole)
	}
	if got, most := sets.Load()-before, int64(time.Since(start)/time.Second)+2; got > most {
		t.Errorf("%d requests arriving whole set %d read deadlines, want at most %d (the idle deadline, about once a second)", n, got, most)
	}
	before = sets.Load()
	roundTrip(head, body)
	if got := sets.Load() - before; got == 0 {
		t.Error("a body that came in a later write set no read deadline")
	}
	if raceEnabled {
		return // allocation counts differ under the race detector
	}
	if a := testing.AllocsPerRun(100, func() { roundTrip(whole) }); a != 0 {
		t.Errorf("a request arriving whole: %v allocations, want 0", a)
	}
	if a := testing.AllocsPerRun(100, func() { roundTrip(head, body) }); a != 0 {
		t.Errorf("a request whose body came later: %v allocations, want 0", a)
	}
}
