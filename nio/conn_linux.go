//go:build linux && !nio_portable

package nio

import (
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Conn is one accepted connection. Write, Close, Resume, the address
// getters and SetContext/Context may be called from any goroutine; Pause is
// for OnData.
type Conn struct {
	connBase
	fd   int
	loop *loop

	// Read state, owned by the loop goroutine.
	in        inbuf
	readable  bool // the socket may have unread data (edge seen, not yet drained)
	eofSeen   bool // RDHUP/HUP/ERR seen: read until EOF or EAGAIN
	closed    bool // closed on the loop and OnClose has run
	inPending bool // in the loop's pending list

	paused atomic.Bool

	// closing is set (under wmu) by the first party that decides the
	// connection ends; closeErr (under wmu) is its cause.
	closing  atomic.Bool
	wmu      sync.Mutex
	closeErr error
	wq       wqueue
	wclosed  bool         // under wmu: the socket is about to close, no more writes
	wpending atomic.Int64 // wq.n, readable without wmu
}

// Write writes b to the connection without blocking on the peer: what the
// socket takes now is written at once, the rest is copied into pooled
// buffers and flushed by the loop when the socket becomes writable. It
// returns len(b) and nil when all of b was written or queued. Write is safe
// from any goroutine, concurrently with the loop and other writers; the
// bytes of one call are never interleaved with another's.
//
// Errors: ErrClosed once the connection is closed (a socket error closes
// it and is returned wrapped together with ErrClosed); ErrWriteLimit when
// the queue would exceed Config.MaxPendingWrite, which also closes the
// connection. n is then the number of bytes that reached the socket.
func (c *Conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	if c.wclosed || c.closing.Load() {
		c.wmu.Unlock()
		return 0, ErrClosed
	}
	st := &c.loop.stats
	n := 0
	direct := c.wq.n == 0
	if direct {
		for n < len(b) {
			m, err := unix.Write(c.fd, b[n:])
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				break
			}
			if err != nil {
				err = os.NewSyscallError("write", err)
				st.writeErrors.Add(1)
				st.bytesWritten.Add(int64(n))
				c.requestCloseLocked(err)
				c.wmu.Unlock()
				return n, closeCause(err)
			}
			n += m
		}
		st.bytesWritten.Add(int64(n))
	}
	if rest := b[n:]; len(rest) > 0 {
		if c.wq.n+len(rest) > c.loop.s.cfg.MaxPendingWrite {
			c.requestCloseLocked(ErrWriteLimit)
			c.wmu.Unlock()
			return n, ErrWriteLimit
		}
		c.wq.push(c.loop.s.cfg.Pool, rest)
		c.wpending.Store(int64(c.wq.n))
		if direct {
			// The write above ended in EAGAIN with nothing queued before.
			// The peer may have made room since, and the socket's one
			// edge-triggered EPOLLOUT may have reached handle before the
			// store above: it read wpending == 0 and dropped the edge. So
			// offer the queue to the socket once more, after the store.
			// Go's atomics are sequentially consistent and this write
			// system call follows the store, so either handle's load
			// comes after the store (it sees the queue and flushes it,
			// taking wmu once we release it) or before it, and then the
			// room that raised the edge existed before this write, which
			// uses it. If this write ends in EAGAIN too, wpending > 0 is
			// already published for the edge that follows. Nothing was
			// queued ahead of b, so what flushLocked writes is b's. A
			// queue that was not empty at entry needs no retry: the Write
			// or flush that left it there published wpending first.
			queued := c.wq.n
			c.flushLocked()
			n += queued - c.wq.n
			if c.closing.Load() { // flushLocked failed; we hold wmu, so it was ours
				err := c.closeErr
				c.wmu.Unlock()
				return n, closeCause(err)
			}
		}
	}
	c.wmu.Unlock()
	return len(b), nil
}

// flushLocked writes the queue until it is empty or the socket is full; a
// socket error records the close. c.wmu is held.
func (c *Conn) flushLocked() {
	st := &c.loop.stats
	pool := c.loop.s.cfg.Pool
	for c.wq.n > 0 && !c.wclosed {
		m, err := unix.Write(c.fd, c.wq.front())
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			st.writeErrors.Add(1)
			c.requestCloseLocked(os.NewSyscallError("write", err))
			break
		}
		st.bytesWritten.Add(int64(m))
		c.wq.advance(pool, m)
	}
	c.wpending.Store(int64(c.wq.n))
}

// requestCloseLocked records that the connection ends with err (if nothing
// was recorded yet) and asks the loop to close it. c.wmu is held.
func (c *Conn) requestCloseLocked(err error) {
	if c.closing.Load() {
		return
	}
	c.closeErr = err
	c.closing.Store(true)
	c.loop.trigger(task{kind: taskClose, c: c})
}

// Close closes the connection: Write fails with ErrClosed from now on, and
// the loop closes the socket (offering queued bytes to it once first) and
// runs OnClose with a nil error. Bytes still queued after that are dropped.
// Close is safe from any goroutine and idempotent; it does not wait for
// OnClose.
func (c *Conn) Close() error {
	c.wmu.Lock()
	c.requestCloseLocked(nil)
	c.wmu.Unlock()
	return nil
}

// Pause stops reading the connection until Resume. Call it from OnData or
// OnOpen (the loop goroutine): no OnData follows until Resume, unread bytes wait in the
// socket (and the peer is slowed down by TCP flow control). Writes and Close
// keep working.
func (c *Conn) Pause() { c.paused.Store(true) }

// Resume resumes reading a paused connection; it is safe from any goroutine.
// The loop presents the buffered leftovers again via OnData and then reads
// what arrived in the meantime. Resume on a connection that is not paused
// does nothing.
func (c *Conn) Resume() {
	if c.paused.CompareAndSwap(true, false) {
		c.loop.trigger(task{kind: taskResume, c: c})
	}
}
