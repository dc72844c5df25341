//go:build !linux || nio_portable

package nio

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/bufpool"
)

// Server is a listening socket and its connections (portable build: the net
// package, a reader and a writer goroutine per connection).
type Server struct {
	cfg Config
	h   Handler
	log *slog.Logger
	ln  net.Listener

	mu     sync.Mutex
	conns  map[*Conn]struct{}
	closed bool

	wg        sync.WaitGroup
	closeOnce sync.Once
	stats     counters
}

// Listen binds and listens on network ("tcp", "tcp4" or "tcp6") and address
// (e.g. "127.0.0.1:4000"; port 0 picks a free port), and accepts connections
// in the background, handing their events to h.
//
// A port already in use gives an error matching syscall.EADDRINUSE with
// errors.Is. Listen copies cfg; see Config for the defaults.
func Listen(network, address string, cfg Config, h Handler) (*Server, error) {
	if h == nil {
		return nil, errors.New("nio: nil Handler")
	}
	if err := checkNetwork(network); err != nil {
		return nil, err
	}
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), network, address)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, h: h, log: cfg.Logger, ln: ln, conns: make(map[*Conn]struct{})}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	var delay time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return
			}
			s.stats.acceptErrs.Add(1)
			s.log.Warn("nio: accept failed", "err", err)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return
		}
		delay = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		s.stats.accepted.Add(1)
		c := &Conn{
			s:      s,
			nc:     nc,
			resume: make(chan struct{}, 1),
			wsig:   make(chan struct{}, 1),
			done:   make(chan struct{}),
			wdone:  make(chan struct{}),
		}
		c.local, c.remote = nc.LocalAddr(), nc.RemoteAddr()
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			s.stats.closed.Add(1)
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(2)
		s.mu.Unlock()
		go c.readLoop()
		go c.writeLoop()
	}
}

// isTemporary reports errors worth retrying accept for (EMFILE and friends
// report Temporary on the platforms that have it).
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Addr returns the address the server listens on (with the port chosen when
// Listen was given port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops accepting, closes every connection (OnClose runs for each
// with ErrServerClosed) and returns when all of the server's goroutines have
// exited. It is idempotent; later calls wait for the first to finish. Close
// must not be called from a Handler callback.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.ln.Close()
		for c := range s.conns {
			c.requestClose(ErrServerClosed)
		}
		s.mu.Unlock()
	})
	s.wg.Wait()
	return nil
}

// Stats returns the server's counters. Fields are read atomically but not as
// one snapshot.
func (s *Server) Stats() Stats {
	var st Stats
	s.stats.addTo(&st)
	st.Open = st.Accepted - st.Closed
	return st
}

// gracefulWrite bounds how long Conn.Close lets the writer goroutine flush
// the queue before the socket closes.
const gracefulWrite = time.Second

// Conn is one accepted connection. Write, Close, Resume, the address
// getters and SetContext/Context may be called from any goroutine; Pause is
// for OnData.
type Conn struct {
	connBase
	s  *Server
	nc net.Conn

	// Read state, owned by the reader goroutine (which runs the callbacks).
	in           inbuf
	pausedInCall bool          // Pause was called during the current OnData
	paused       atomic.Bool   // set by Pause, cleared by Resume
	resume       chan struct{} // a token per Resume of a paused connection
	done         chan struct{} // closed when the connection is to end
	wdone        chan struct{} // closed when the writer goroutine exits
	closeNetOnce sync.Once

	// closing is set (under wmu) by the first party that decides the
	// connection ends; closeErr (under wmu) is its cause.
	closing       atomic.Bool
	wmu           sync.Mutex
	closeErr      error
	wq            wqueue
	wclosed       bool
	writerPending int // bytes taken by the writer and not yet written, under wmu
	wsig          chan struct{}
	writerBatch   []*bufpool.Buffer // owned by the writer goroutine
}

// Write queues b for the connection's writer goroutine (copied into pooled
// buffers) and returns len(b), nil without blocking on the peer. Write is
// safe from any goroutine; the bytes of one call are never interleaved with
// another's.
//
// Errors: ErrClosed once the connection is closed; ErrWriteLimit when the
// bytes not yet written would exceed Config.MaxPendingWrite, which also
// closes the connection. In this build every byte passes through the queue,
// so a single Write larger than MaxPendingWrite always fails.
func (c *Conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	if c.wclosed || c.closing.Load() {
		c.wmu.Unlock()
		return 0, ErrClosed
	}
	if len(b) == 0 {
		c.wmu.Unlock()
		return 0, nil
	}
	if c.wq.n+c.writerPending+len(b) > c.s.cfg.MaxPendingWrite {
		c.requestCloseLocked(ErrWriteLimit)
		c.wmu.Unlock()
		return 0, ErrWriteLimit
	}
	c.wq.push(c.s.cfg.Pool, b)
	c.wmu.Unlock()
	select {
	case c.wsig <- struct{}{}:
	default:
	}
	return len(b), nil
}

// writeLoop writes the queue to the socket (blocking). When the connection
// ends by Close it flushes what is queued (for at most gracefulWrite) and
// closes the socket.
func (c *Conn) writeLoop() {
	defer close(c.wdone)
	defer c.s.wg.Done()
	for {
		select {
		case <-c.wsig:
			if err := c.drain(); err != nil {
				// Close the socket whatever ended the write: if Close came
				// first, requestClose is a no-op and this error is its
				// deadline, and the reader, maybe blocked in Read on an
				// idle peer, waits for the socket to close.
				c.requestClose(err)
				c.closeNet()
				return
			}
		case <-c.done:
			c.wmu.Lock()
			graceful := c.closeErr == nil && !c.wclosed
			c.wmu.Unlock()
			if graceful {
				_ = c.drain() // under the deadline set by requestCloseLocked
			}
			c.closeNet()
			return
		}
	}
}

// drain writes batches until the queue is empty or the connection is done
// for; it returns the socket's error.
func (c *Conn) drain() error {
	pool := c.s.cfg.Pool
	for {
		c.wmu.Lock()
		if c.wclosed || c.wq.n == 0 {
			c.wmu.Unlock()
			return nil
		}
		c.writerPending = c.wq.n
		batch := c.wq.take(c.writerBatch[:0])
		c.wmu.Unlock()
		var err error
		for _, b := range batch {
			if err == nil {
				var n int
				n, err = c.nc.Write(b.B)
				c.s.stats.bytesWritten.Add(int64(n))
			}
			pool.Put(b)
		}
		clear(batch)
		c.writerBatch = batch[:0]
		c.wmu.Lock()
		c.writerPending = 0
		c.wmu.Unlock()
		if err != nil {
			if !c.closing.Load() {
				c.s.stats.writeErrors.Add(1)
			}
			return err
		}
	}
}

// requestCloseLocked records that the connection ends with err (if nothing
// was recorded yet) and wakes the reader and writer. A nil err (Close) lets
// the writer flush before it closes the socket; any other closes it now,
// which also ends a blocked Read or Write. c.wmu is held.
func (c *Conn) requestCloseLocked(err error) {
	if c.closing.Load() {
		return
	}
	c.closeErr = err
	c.closing.Store(true)
	close(c.done)
	if err != nil {
		c.closeNet()
		return
	}
	// Bound the flush, including a Write the writer is blocked in now.
	_ = c.nc.SetWriteDeadline(time.Now().Add(gracefulWrite))
}

func (c *Conn) requestClose(err error) {
	c.wmu.Lock()
	c.requestCloseLocked(err)
	c.wmu.Unlock()
}

func (c *Conn) closeNet() { c.closeNetOnce.Do(func() { c.nc.Close() }) }

// Close closes the connection: Write fails with ErrClosed from now on, the
// writer goroutine flushes what is queued (for up to a second), the socket
// closes and OnClose runs with a nil error. Close is safe from any goroutine
// and idempotent; it does not wait for OnClose.
func (c *Conn) Close() error {
	c.requestClose(nil)
	return nil
}

// Pause stops reading the connection until Resume. Call it from OnData (or
// OnOpen): no OnData follows until Resume. Writes and Close keep working.
func (c *Conn) Pause() {
	c.paused.Store(true)
	c.pausedInCall = true
}

// Resume resumes reading a paused connection; it is safe from any goroutine.
// The buffered leftovers are presented again via OnData, then reading goes
// on. Resume on a connection that is not paused does nothing.
func (c *Conn) Resume() {
	if c.paused.CompareAndSwap(true, false) {
		select {
		case c.resume <- struct{}{}:
		default:
		}
	}
}

// readLoop reads the socket and runs every callback of the connection.
func (c *Conn) readLoop() {
	defer c.s.wg.Done()
	s := c.s
	pool := s.cfg.Pool
	s.h.OnOpen(c)
	var err error
	for err == nil && !c.closing.Load() {
		if c.paused.Load() { // paused in OnOpen, or a Resume raced a Pause
			c.waitResume()
			err = c.deliver()
			continue
		}
		want := max(s.cfg.ReadBufferSize, c.expect-c.in.len()) // Expect: grow once, read large
		space := c.in.space(pool, want)
		n, rerr := c.nc.Read(space[:min(len(space), want)])
		if n > 0 {
			c.in.commit(n)
			s.stats.bytesRead.Add(int64(n))
			if c.in.len() >= c.expect {
				err = c.deliver()
			}
		}
		if err == nil && rerr != nil {
			if c.closing.Load() {
				break // closed by us: the recorded cause is reported
			}
			if errors.Is(rerr, io.EOF) {
				err = io.EOF
			} else {
				s.stats.readErrors.Add(1)
				err = rerr
			}
		}
	}

	c.requestClose(err) // no-op if a cause was recorded already
	c.wmu.Lock()
	err = c.closeErr
	c.wmu.Unlock()
	<-c.wdone // the writer has flushed (Close) or given up
	c.closeNet()
	c.wmu.Lock()
	c.wclosed = true
	c.wq.release(pool)
	c.wmu.Unlock()
	c.in.release(pool)
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.stats.countClose(err)
	s.h.OnClose(c, err)
}

// deliver presents the held input to OnData, again after each Pause and
// Resume while leftovers remain (as the epoll build's resume does).
func (c *Conn) deliver() error {
	s := c.s
	for {
		input := c.in.bytes()
		if len(input) == 0 || c.closing.Load() {
			return nil
		}
		c.pausedInCall = false
		c.expect = 0
		k, err := s.h.OnData(c, input)
		if err == nil && (k < 0 || k > len(input)) {
			err = ErrBadConsume
		}
		if err == nil && c.expect > s.cfg.MaxBuffered {
			err = ErrBufferLimit
		}
		if err != nil {
			return err
		}
		c.in.consume(s.cfg.Pool, k, true)
		if c.in.len() > s.cfg.MaxBuffered {
			return ErrBufferLimit
		}
		if !c.pausedInCall && !c.paused.Load() {
			return nil
		}
		c.waitResume()
	}
}

// waitResume blocks while the connection is paused and open.
func (c *Conn) waitResume() {
	for c.paused.Load() {
		select {
		case <-c.resume:
		case <-c.done:
			return
		}
	}
}
