package tribes

import (
	"context"
	"net"
	"runtime"
	"sync"
	"time"
)

// stream is a member's connection for messages sent without an ACK. Small
// asynchronous frames are appended to a queue that one writer goroutine
// writes with a single system call per batch (group commit); synchronous
// and large frames are written by the caller after whatever is queued, so
// frames leave in the order they were sent.
type stream struct {
	d *destination

	mu      sync.Mutex
	space   sync.Cond // signalled when the queue was taken by a writer
	pend    []byte    // queued frames
	frames  int       // how many frames pend holds
	spare   []byte    // the other queue buffer, reused
	kick    chan struct{}
	started bool
	closed  bool
	done    chan struct{} // closed when the writer goroutine exits

	wmu   sync.Mutex // held while writing to conn
	conn  *net.TCPConn
	vec   [4][]byte   // what to write
	wvec  [4][]byte   // a copy consumed by one write attempt
	wbufs net.Buffers // wvec as consumed by WriteTo; a field so it does not escape per call
}

func newStream(d *destination) *stream {
	st := &stream{d: d, kick: make(chan struct{}, 1), done: make(chan struct{})}
	st.space.L = &st.mu
	return st
}

// enqueue queues a copy of an asynchronous frame, waiting while the queue
// is over its byte limit.
func (st *stream) enqueue(frame []byte) error {
	limit := st.d.s.cfg.MaxAsyncBytes
	st.mu.Lock()
	for !st.closed && len(st.pend) > 0 && len(st.pend)+len(frame) > limit {
		st.space.Wait()
	}
	if st.closed {
		st.mu.Unlock()
		return ErrSenderClosed
	}
	wasEmpty := len(st.pend) == 0
	st.pend = append(st.pend, frame...)
	st.frames++
	if !st.started {
		st.started = true
		st.d.s.wg.Add(1)
		go st.writer()
	}
	if wasEmpty {
		// Kick under mu: close (Disconnect, unlike Sender.Close, runs
		// during sends) closes kick once it has set closed under mu, so
		// after Unlock kick may be closed already.
		select {
		case st.kick <- struct{}{}:
		default:
		}
	}
	st.mu.Unlock()
	return nil
}

// writer writes queued frames until the stream closes.
func (st *stream) writer() {
	defer st.d.s.wg.Done()
	defer close(st.done)
	for range st.kick {
		// Let the goroutines that are about to send run first, so that
		// one write carries their frames too (a batch per write, not a
		// write per frame, when many senders are busy).
		runtime.Gosched()
		st.wmu.Lock()
		st.flushLocked(nil)
		st.wmu.Unlock()
	}
	// Closed: write what is left, then close the connection.
	st.wmu.Lock()
	st.flushLocked(nil)
	if st.conn != nil {
		st.conn.Close()
		st.conn = nil
	}
	st.wmu.Unlock()
}

// write writes a synchronous or large frame after the queued ones and
// returns when it is written.
func (st *stream) write(op *sendOp) error {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	st.mu.Lock()
	closed := st.closed
	st.mu.Unlock()
	if closed {
		return ErrSenderClosed
	}
	return st.flushLocked(op)
}

// flushLocked writes the queued frames, followed by op's frame when op is
// not nil, retrying on a fresh connection. It holds wmu. The error is op's:
// lost queued frames are reported to OnAsyncError.
func (st *stream) flushLocked(op *sendOp) error {
	for {
		st.mu.Lock()
		batch, n := st.pend, st.frames
		if len(batch) == 0 && op == nil {
			st.mu.Unlock()
			return nil
		}
		st.pend, st.spare, st.frames = st.spare[:0], nil, 0
		st.mu.Unlock()
		st.space.Broadcast()

		bufs := st.vec[:0]
		if len(batch) > 0 {
			bufs = append(bufs, batch)
		}
		if op != nil {
			bufs = append(bufs, op.frame.B)
			if op.vectored {
				bufs = append(bufs, op.msg.Data, frameEnd[:])
			}
		}
		err := st.writeRetry(bufs)
		if n > 0 {
			st.d.s.stats.asyncBatches.Add(1)
			st.d.s.stats.asyncFrames.Add(int64(n))
			if err != nil {
				st.d.s.stats.asyncLost.Add(int64(n))
				st.d.s.log.Warn("tribes sender: asynchronous messages lost", "member", st.d.addr, "frames", n, "err", err)
				if f := st.d.s.cfg.OnAsyncError; f != nil {
					f(st.d.member, n, err)
				}
			}
		}
		st.mu.Lock()
		st.spare = batch[:0]
		st.mu.Unlock()
		if op != nil {
			return err
		}
	}
}

// writeRetry writes bufs on the stream connection, dialing it when needed,
// and once more on a fresh connection after an error. The receiver may see
// frames of a failed write twice; they keep their UniqueID.
func (st *stream) writeRetry(bufs [][]byte) error {
	s := st.d.s
	var err error
	for attempt := 0; attempt <= s.cfg.MaxRetryAttempts; attempt++ {
		deadline := time.Now().Add(s.cfg.Timeout)
		if st.conn == nil {
			st.conn, err = st.d.dial(context.Background(), deadline)
			if err != nil {
				continue
			}
		}
		st.conn.SetWriteDeadline(deadline)
		st.wbufs = st.wvec[:copy(st.wvec[:], bufs)]
		if _, err = st.wbufs.WriteTo(st.conn); err == nil {
			return nil
		}
		st.conn.Close()
		st.conn = nil
		if attempt < s.cfg.MaxRetryAttempts {
			s.stats.retries.Add(1)
		}
	}
	return err
}

// close stops the writer after it wrote what is queued. It closes kick
// after setting closed under mu, so enqueue kicks only under mu.
func (st *stream) close() {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return
	}
	st.closed = true
	started := st.started
	st.mu.Unlock()
	st.space.Broadcast()
	close(st.kick)
	if !started {
		st.wmu.Lock()
		if st.conn != nil {
			st.conn.Close()
			st.conn = nil
		}
		st.wmu.Unlock()
	}
}
