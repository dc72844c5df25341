package host

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/host/internal/h1"
)

// The connectors a server can serve HTTP with (Config.Connector).
const (
	// ConnectorH1 is the host's own HTTP/1.1 connector (the default): a
	// goroutine per connection, as net/http, that reuses one request, one
	// header map and one output buffer per connection, reads no request
	// line or header field twice when a keep-alive client repeats it,
	// and starts no goroutine per request. It serves HTTP/1.0 and 1.1
	// (keep-alive, pipelining, chunked request bodies, Expect:
	// 100-continue), not HTTP/2 or upgrades.
	ConnectorH1 = "h1"
	// ConnectorNetHTTP serves with net/http's server.
	ConnectorNetHTTP = "net/http"
)

const (
	// connReadBuffer is a connection's read buffer: requests whose head
	// fits are parsed in place.
	connReadBuffer = 4 << 10
	// maxDrainBytes is how much unread request body the connector reads
	// and drops to keep a connection (net/http: 256 KiB).
	maxDrainBytes = 256 << 10
	// directWrite is the body size above which a response body is
	// written from the exchange's buffer instead of being copied after
	// its head.
	directWrite = 32 << 10
	// maxDeadlineSlack is how stale an idle read deadline or a write
	// deadline may be before it is set again (setting it per request
	// costs a timer update); at most a sixteenth of IdleTimeout or
	// WriteTimeout. (The head and body deadlines are set only when a
	// read has to wait, see conn.Read.)
	maxDeadlineSlack = time.Second
	// writeChunk is the most written under one write deadline, so that
	// WriteTimeout bounds a client that stops reading, not the transfer
	// of a large response to a slow one.
	writeChunk = 256 << 10
)

// Connection states: a connection waiting for a request's first byte is
// idle, and Shutdown may close it.
const (
	connIdle int32 = iota
	connActive
	connClosed
)

// connector serves HTTP/1.1 with package h1.
type connector struct {
	s *Server

	ctx    context.Context // requests' context: canceled when Shutdown gives up
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	shutdown  atomic.Bool
	gone      chan struct{} // signaled when a connection ends
}

func newConnector(s *Server) *connector {
	ctx, cancel := context.WithCancel(context.Background())
	return &connector{s: s, ctx: ctx, cancel: cancel,
		listeners: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{}, gone: make(chan struct{}, 1)}
}

// serve accepts connections on l until Shutdown, retrying temporary
// accept errors (e.g. out of file descriptors) with a growing pause, as
// net/http does.
func (cn *connector) serve(l net.Listener) error {
	if !cn.track(func() { cn.listeners[l] = struct{}{} }) {
		l.Close()
		return http.ErrServerClosed
	}
	defer func() {
		cn.mu.Lock()
		delete(cn.listeners, l)
		cn.mu.Unlock()
	}()
	var pause time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if cn.shutdown.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				cn.s.log.Warn("accept failed; retrying", "err", err, "in", pause)
				time.Sleep(pause)
				continue
			}
			return err
		}
		pause = 0
		c := cn.newConn(nc)
		if !cn.track(func() { cn.conns[c] = struct{}{} }) {
			nc.Close()
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

// track runs add (which records a listener or a connection) under mu
// unless Shutdown has begun, so that Shutdown, which sets shutdown under
// mu, closes everything recorded; it reports whether add ran.
func (cn *connector) track(add func()) bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.shutdown.Load() {
		return false
	}
	add()
	return true
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Shutdown closes the listeners and idle connections, then waits for the
// others to finish their request. If ctx ends first, it closes them too
// (their requests run on until their guest returns or its deadline
// passes; their context is canceled) and returns ctx's error.
func (cn *connector) Shutdown(ctx context.Context) error {
	cn.mu.Lock()
	cn.shutdown.Store(true)
	for l := range cn.listeners {
		l.Close()
	}
	cn.mu.Unlock()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if cn.closeIdle() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			cn.cancel()
			cn.mu.Lock()
			for c := range cn.conns {
				c.state.Store(connClosed)
				c.nc.Close()
			}
			cn.mu.Unlock()
			return ctx.Err()
		case <-cn.gone:
		case <-tick.C:
		}
	}
}

// closeIdle closes the idle connections and returns how many are open.
func (cn *connector) closeIdle() int {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	for c := range cn.conns {
		if c.state.CompareAndSwap(connIdle, connClosed) {
			c.nc.Close()
		}
	}
	return len(cn.conns)
}

// conn is one client connection and everything its requests reuse.
type conn struct {
	cn    *connector
	nc    net.Conn
	br    *bufio.Reader
	rd    *h1.Reader
	base  http.Request // context, remote address, TLS: copied per request
	req   http.Request
	hdr   http.Header // the request's
	w     responseWriter
	out   []byte
	state atomic.Int32

	deadline  time.Time // the read deadline set, zero if none
	wdeadline time.Time // the write deadline set, zero if none
	start     time.Time // when the connector first waited for the request's bytes; zero until then
	inHead    bool      // reading a request's head, no read of it waited yet
	inBody    bool      // reading a request's body, no read of it waited yet
	bodyDue   bool      // the read deadline set is the body's (start + ReadTimeout)
	broken    bool      // a write failed
}

func (cn *connector) newConn(nc net.Conn) *conn {
	c := &conn{cn: cn, nc: nc, hdr: make(http.Header, 8)}
	c.br = bufio.NewReaderSize(c, connReadBuffer)
	c.rd = h1.NewReader(c.br, cn.s.cfg.MaxHeaderBytes, c.sendContinue)
	c.w.c = c
	c.w.h = make(http.Header, 8)
	ctx := context.WithValue(cn.ctx, http.LocalAddrContextKey, nc.LocalAddr())
	c.base = *(&http.Request{RemoteAddr: nc.RemoteAddr().String()}).WithContext(ctx)
	return c
}

func (c *conn) serve() {
	cfg := &c.cn.s.cfg
	defer func() {
		if p := recover(); p != nil && p != http.ErrAbortHandler {
			c.cn.s.log.Error("panic serving a request", "remote", c.base.RemoteAddr, "panic", p, "stack", string(debug.Stack()))
		}
		c.close()
	}()
	if tc, ok := c.nc.(*tls.Conn); ok {
		tc.SetDeadline(time.Now().Add(min(cfg.ReadHeaderTimeout, cfg.ReadTimeout)))
		if err := tc.HandshakeContext(c.cn.ctx); err != nil {
			c.cn.s.log.Debug("TLS handshake failed", "remote", c.base.RemoteAddr, "err", err)
			return
		}
		tc.SetDeadline(time.Time{})
		st := tc.ConnectionState()
		c.base.TLS = &st
	}
	for {
		if c.br.Buffered() == 0 {
			// Idle until the next request's first byte.
			c.flush()
			if c.broken || c.cn.shutdown.Load() {
				return
			}
			if d := time.Now().Add(cfg.IdleTimeout); stale(c.deadline, d, cfg.IdleTimeout) {
				c.setReadDeadline(d)
			}
			c.state.Store(connIdle)
			_, err := c.br.Peek(1)
			if !c.state.CompareAndSwap(connIdle, connActive) || err != nil {
				return // closed by Shutdown, by the client, or idle too long
			}
		}
		c.req = c.base
		c.req.Header = c.hdr
		c.start = time.Time{}
		c.inHead = true // a read the head has to wait for sets its deadline (see Read)
		err := c.rd.ReadRequest(&c.req)
		c.inHead = false
		if err != nil {
			c.refuse(err)
			return
		}
		c.inBody = c.req.Body != http.NoBody // so does a read the body has to wait for
		c.w.reset(&c.req)
		c.cn.s.ServeHTTP(&c.w, &c.req)
		if !c.w.wroteHeader {
			c.w.WriteHeader(http.StatusOK)
		}
		drained := c.rd.Body().Drain(maxDrainBytes)
		c.inBody, c.bodyDue = false, false
		if !drained || c.w.close || c.broken {
			c.flush()
			if !drained && !c.broken {
				c.lingeringClose() // as net/http, only when body bytes may be left unread
			}
			return
		}
		if len(c.out) >= directWrite {
			c.flush()
		}
	}
}

// Read implements io.Reader for the connection's bufio.Reader. A request
// starts when the connector first waits for its bytes: its head must
// arrive within ReadHeaderTimeout (or ReadTimeout, if less) of that, its
// body within ReadTimeout. Each deadline is set by the first read of the
// head, or of the body, that has to wait, so a request that arrived whole
// costs no deadline update. A body that misses its deadline is counted
// in SlowClients; its reader's error is sticky, so the request is
// answered (408 if the host was reading the body for the app) and the
// connection closes.
func (c *conn) Read(p []byte) (int, error) {
	cfg := &c.cn.s.cfg
	switch {
	case c.inHead:
		c.inHead = false
		c.start = time.Now()
		c.setReadDeadline(c.start.Add(min(cfg.ReadHeaderTimeout, cfg.ReadTimeout)))
	case c.inBody:
		c.inBody = false
		if c.start.IsZero() { // the head came whole
			c.start = time.Now()
		}
		c.setReadDeadline(c.start.Add(cfg.ReadTimeout))
		c.bodyDue = true
	}
	n, err := c.nc.Read(p)
	if err != nil && c.bodyDue && errors.Is(err, os.ErrDeadlineExceeded) {
		c.bodyDue = false // counted once: the body's error is sticky
		c.cn.s.slowClients.Add(1)
		c.cn.s.log.Debug("request body not received within the read timeout; closing", "remote", c.base.RemoteAddr, "readTimeout", cfg.ReadTimeout)
	}
	return n, err
}

func (c *conn) setReadDeadline(t time.Time) {
	c.deadline = t
	c.nc.SetReadDeadline(t)
}

// flush writes the buffered responses.
func (c *conn) flush() {
	if len(c.out) == 0 || c.broken {
		c.out = c.out[:0]
		return
	}
	c.write(c.out)
	if cap(c.out) > 1<<20 {
		c.out = nil
	}
	c.out = c.out[:0]
}

// write writes b in chunks of at most writeChunk, each under WriteTimeout;
// a failed write breaks the connection.
func (c *conn) write(b []byte) error {
	for len(b) > 0 {
		n := min(len(b), writeChunk)
		c.armWrite()
		if _, err := c.nc.Write(b[:n]); err != nil {
			return c.writeFailed(err)
		}
		b = b[n:]
	}
	return nil
}

// armWrite moves the write deadline to WriteTimeout from now, unless the
// one set is recent enough (see stale).
func (c *conn) armWrite() {
	t := c.cn.s.cfg.WriteTimeout
	if d := time.Now().Add(t); stale(c.wdeadline, d, t) {
		c.wdeadline = d
		c.nc.SetWriteDeadline(d)
	}
}

// stale reports whether a deadline set (zero: none) should move to want,
// timeout from now: when it is more than min(maxDeadlineSlack, timeout/16)
// earlier, or later (a request's deadline may be). Setting a deadline
// costs a timer update, so the idle and write deadlines are moved about
// once a second, not per request.
func stale(set, want time.Time, timeout time.Duration) bool {
	return set.IsZero() || want.Sub(set) > min(maxDeadlineSlack, timeout/16) || set.After(want)
}

// writeFailed marks the connection broken and counts a client that read
// nothing for WriteTimeout.
func (c *conn) writeFailed(err error) error {
	c.broken = true
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.cn.s.slowClients.Add(1)
		c.cn.s.log.Debug("client read nothing within the write timeout; closing", "remote", c.base.RemoteAddr, "writeTimeout", c.cn.s.cfg.WriteTimeout)
	}
	return err
}

// sendContinue answers "Expect: 100-continue" when the handler reads the
// body.
func (c *conn) sendContinue() error {
	c.out = append(c.out, "HTTP/1.1 100 Continue\r\n\r\n"...)
	c.flush()
	if c.broken {
		return io.ErrClosedPipe
	}
	return nil
}

// refuse answers a request the reader refused, if it is one, before the
// connection closes.
func (c *conn) refuse(err error) {
	var he *h1.Error
	switch {
	case errors.As(err, &he):
		c.cn.s.badRequests.Add(1)
		c.cn.s.log.Debug("request refused", "remote", c.base.RemoteAddr, "status", he.Status, "err", err)
		msg := http.StatusText(he.Status) + ": " + he.Reason + "\n"
		h := http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "Content-Length": {fmt.Sprint(len(msg))}}
		c.out = h1.AppendHead(c.out, he.Status, h, "close")
		if c.req.Method != http.MethodHead { // known when the request line was read
			c.out = append(c.out, msg...)
		}
		c.flush()
		c.lingeringClose()
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.cn.s.log.Debug("request head not received in time", "remote", c.base.RemoteAddr)
		}
		c.flush() // the answers to earlier pipelined requests
	}
}

// lingeringClose closes the sending side and reads for a moment before
// closing, so that unread request bytes do not make the kernel reset the
// connection and destroy the answer before the client read it.
func (c *conn) lingeringClose() {
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok && c.br.Buffered() == 0 {
		if tc.CloseWrite() == nil {
			c.nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			io.CopyN(io.Discard, c.nc, maxDrainBytes)
		}
	}
}

func (c *conn) close() {
	c.state.Store(connClosed)
	c.nc.Close()
	cn := c.cn
	cn.mu.Lock()
	delete(cn.conns, c)
	cn.mu.Unlock()
	select {
	case cn.gone <- struct{}{}:
	default:
	}
}

// responseWriter is a connection's http.ResponseWriter: it writes the
// head and body after the previous responses, to be sent when the
// connection has no further request buffered (pipelined requests get
// their answers in one write).
type responseWriter struct {
	c           *conn
	h           http.Header
	wroteHeader bool
	noBody      bool // HEAD, 1xx, 204, 304
	close       bool
}

func (w *responseWriter) reset(r *http.Request) {
	clear(w.h)
	w.wroteHeader, w.noBody = false, r.Method == http.MethodHead
	w.close = r.Close || w.c.cn.shutdown.Load()
}

// Header implements http.ResponseWriter.
func (w *responseWriter) Header() http.Header { return w.h }

// WriteHeader implements http.ResponseWriter.
func (w *responseWriter) WriteHeader(status int) {
	if w.wroteHeader {
		return
	}
	if status < 100 || status > 999 {
		panic(fmt.Sprintf("host: invalid WriteHeader code %v", status))
	}
	if status < 200 {
		return // interim answers other than 100 Continue are not sent
	}
	w.wroteHeader = true
	if status == http.StatusNoContent || status == http.StatusNotModified {
		w.noBody = true
		delete(w.h, "Content-Length")
	}
	if !w.close && (w.c.cn.shutdown.Load() || !w.c.rd.Body().Reusable(maxDrainBytes)) {
		w.close = true
	}
	conn := ""
	switch {
	case w.close:
		conn = "close"
	case w.c.req.ProtoMinor == 0:
		conn = "keep-alive" // an HTTP/1.0 client that asked for it
	}
	w.c.out = h1.AppendHead(w.c.out, status, w.h, conn)
}

// Write implements http.ResponseWriter.
func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody {
		return 0, http.ErrBodyNotAllowed
	}
	c := w.c
	if c.broken {
		return 0, io.ErrClosedPipe
	}
	if len(p) < directWrite {
		c.out = append(c.out, p...)
		return len(p), nil
	}
	var err error
	if len(c.out)+len(p) <= writeChunk {
		c.armWrite()
		bufs := net.Buffers{c.out, p}
		if _, err = bufs.WriteTo(c.nc); err != nil {
			err = c.writeFailed(err)
		}
	} else if err = c.write(c.out); err == nil {
		err = c.write(p)
	}
	c.out = c.out[:0]
	if err != nil {
		return 0, err
	}
	return len(p), nil
}
