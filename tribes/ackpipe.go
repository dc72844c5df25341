package tribes

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"time"
)

// ackPipe carries a member's small acknowledged messages on one connection,
// pipelined. Senders queue their frames; whichever finds no write in
// progress writes everything queued with one system call, and keeps writing
// until the queue is empty (group commit, as the asynchronous stream). A
// reader goroutine per connection hands each ACK or FAIL_ACK to the oldest
// sender still waiting on that connection: a receiver answers the messages
// of a connection in order, as Tribes' NIO receiver and ours do.
//
// Compared with a pool of connections that carry one message each (Tribes'
// PooledParallelSender, still used here for large messages), concurrent
// synchronous sends share writes, and the receiver reads and answers them
// in batches: fewer system calls per message on both sides.
//
// A failed write or read, or a sender whose ACK does not come in time,
// breaks the connection: every sender waiting on it gets an error and
// retries on a fresh connection, as after any failure (MaxRetryAttempts).
// The receiver may then see a message twice; it keeps its UniqueID.
type ackPipe struct {
	d *destination

	mu      sync.Mutex
	conn    *pipeConn
	queue   []*ackWait // waiting to be written, in order
	qframes []byte     // their frames
	qspare  []*ackWait
	fspare  []byte
	writing bool // a sender is writing the queue
	closed  bool
}

// pipeConn is one connection of a pipe and the senders waiting on it.
type pipeConn struct {
	c        *net.TCPConn
	inflight []*ackWait // written, waiting for their answers, oldest at head
	head     int
	broken   bool
}

// ackWait is one send waiting for its answer. A wait that gave up (timeout,
// context) is not reused: its connection may still answer it.
type ackWait struct {
	done  chan error // buffered: the answer never blocks the reader
	timer *time.Timer
}

var ackWaitPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &ackWait{done: make(chan error, 1), timer: t}
}}

func newAckPipe(d *destination) *ackPipe { return &ackPipe{d: d} }

// send sends op's (small) frame and waits for the answer, retrying after a
// failure as the pooled connections do.
func (p *ackPipe) send(ctx context.Context, op *sendOp) error {
	err, final := p.roundTrip(ctx, op)
	return p.retry(ctx, op, err, final)
}

// roundTrip queues the frame and waits for its answer (submit, then
// await).
func (p *ackPipe) roundTrip(ctx context.Context, op *sendOp) (err error, final bool) {
	w, err, final := p.submit(op)
	if err != nil {
		return err, final
	}
	return p.await(ctx, op, w)
}

// retry goes on with a send whose last round trip ended with err (final:
// not worth a retry), up to MaxRetryAttempts more round trips.
func (p *ackPipe) retry(ctx context.Context, op *sendOp, err error, final bool) error {
	s := p.d.s
	for attempt := 0; ; attempt++ {
		if err == nil || final {
			return err
		}
		if attempt >= s.cfg.MaxRetryAttempts || time.Now().After(op.deadline) || ctx.Err() != nil {
			return err
		}
		s.stats.retries.Add(1)
		s.log.Debug("tribes sender: resending", "member", p.d.addr, "err", err)
		err, final = p.roundTrip(ctx, op)
	}
}

// submit queues op's frame, writing the queue if no write is in progress.
// final reports an error not worth a retry (the sender closed).
func (p *ackPipe) submit(op *sendOp) (w *ackWait, err error, final bool) {
	w = ackWaitPool.Get().(*ackWait)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		ackWaitPool.Put(w)
		return nil, ErrSenderClosed, true
	}
	p.queue = append(p.queue, w)
	p.qframes = append(p.qframes, op.frame.B...)
	lead := !p.writing
	p.writing = true
	p.mu.Unlock()
	if lead {
		runtime.Gosched() // let senders about to send queue their frames too
		p.writeQueued()
	}
	return w, nil, false
}

// await waits for the answer to a submitted frame. final reports an error
// not worth a retry (the deadline passed, the context ended, the sender
// closed).
func (p *ackPipe) await(ctx context.Context, op *sendOp, w *ackWait) (err error, final bool) {
	w.timer.Reset(time.Until(op.deadline))
	select {
	case err = <-w.done:
		w.timer.Stop()
		ackWaitPool.Put(w)
		return err, errors.Is(err, ErrSenderClosed)
	case <-w.timer.C:
		err, final = ErrAckTimeout, true
	case <-ctx.Done():
		w.timer.Stop()
		err, final = ctx.Err(), true
	}
	// Given up: the connection's answers no longer line up with its
	// senders. Break it, so that the others retry on a fresh one.
	p.abandon(w)
	return err, final
}

// writeQueued writes the queue until it is empty. Only one goroutine runs
// it at a time (writing), so batches leave in queue order.
func (p *ackPipe) writeQueued() {
	s := p.d.s
	for {
		p.mu.Lock()
		if len(p.queue) == 0 || p.closed {
			p.writing = false
			queue := p.queue
			p.queue = p.queue[:0]
			p.qframes = p.qframes[:0]
			p.mu.Unlock()
			for _, w := range queue { // closed meanwhile
				w.done <- ErrSenderClosed
			}
			return
		}
		batch, frames := p.queue, p.qframes
		p.queue, p.qframes = p.qspare[:0], p.fspare[:0]
		p.qspare, p.fspare = nil, nil
		c := p.conn
		p.mu.Unlock()

		var err error
		if c == nil {
			c, err = p.connect()
		}
		if err == nil {
			p.mu.Lock()
			if c.broken { // its reader failed meanwhile
				err = net.ErrClosed
			} else {
				c.inflight = append(c.inflight, batch...) // before the write: an answer may come first
			}
			p.mu.Unlock()
		}
		if err == nil {
			c.c.SetWriteDeadline(time.Now().Add(s.cfg.Timeout))
			if _, err = c.c.Write(frames); err != nil {
				p.breakConn(c, err) // answers every sender of batch
			} else {
				s.stats.ackBatches.Add(1)
				s.stats.ackFrames.Add(int64(len(batch)))
			}
		} else {
			for _, w := range batch {
				w.done <- err
			}
		}
		clear(batch)
		p.mu.Lock()
		p.qspare, p.fspare = batch[:0], frames[:0]
		p.mu.Unlock()
	}
}

// connect dials a connection and starts its reader.
func (p *ackPipe) connect() (*pipeConn, error) {
	s := p.d.s
	tc, err := p.d.dial(context.Background(), time.Now().Add(s.cfg.Timeout))
	if err != nil {
		return nil, err
	}
	c := &pipeConn{c: tc}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		tc.Close()
		return nil, ErrSenderClosed
	}
	p.conn = c
	p.mu.Unlock()
	s.wg.Add(1)
	go p.read(c)
	return c, nil
}

// read hands each answer on c to the oldest sender waiting on it, until c
// fails or closes.
func (p *ackPipe) read(c *pipeConn) {
	defer p.d.s.wg.Done()
	var acks ackReader
	for {
		answer, err := acks.next(c.c)
		if err != nil {
			p.breakConn(c, err)
			return
		}
		p.mu.Lock()
		if c.head == len(c.inflight) {
			p.mu.Unlock()
			p.breakConn(c, errors.New("tribes: an answer nobody waits for"))
			return
		}
		w := c.inflight[c.head]
		c.inflight[c.head] = nil
		if c.head++; c.head == len(c.inflight) {
			c.inflight, c.head = c.inflight[:0], 0
		}
		// Closed, and this was the last answer it waited for: no more
		// frames go on c (the writer checks broken under mu).
		last := p.closed && len(c.inflight) == 0
		if last {
			c.broken = true
			if p.conn == c {
				p.conn = nil
			}
		}
		p.mu.Unlock()
		w.done <- answer
		if last {
			c.c.Close()
			return
		}
	}
}

// breakConn closes c and answers every sender waiting on it with err.
func (p *ackPipe) breakConn(c *pipeConn, err error) {
	p.mu.Lock()
	if c.broken {
		p.mu.Unlock()
		return
	}
	c.broken = true
	if p.conn == c {
		p.conn = nil
	}
	waiting := c.inflight[c.head:]
	c.inflight, c.head = nil, 0
	p.mu.Unlock()
	c.c.Close()
	for _, w := range waiting {
		w.done <- err
	}
}

// abandon is called by a sender that stopped waiting for w. A wait still
// queued stays (its frame is written and its answer goes unread: the
// frames and the waits must stay aligned); one in flight breaks its
// connection, whose answers may no longer come.
func (p *ackPipe) abandon(w *ackWait) {
	p.mu.Lock()
	c := p.conn
	found := false
	if c != nil {
		for _, q := range c.inflight[c.head:] {
			if q == w {
				found = true
				break
			}
		}
	}
	p.mu.Unlock()
	if found {
		p.breakConn(c, ErrAckTimeout)
	}
}

// close takes no more sends and closes the connection once the sends
// written on it have their answers (Disconnect must not fail them: their
// messages may have been processed, and a resend would deliver them
// twice). Sends still queued get ErrSenderClosed unwritten.
func (p *ackPipe) close() {
	p.mu.Lock()
	p.closed = true
	c := p.conn
	idle := c != nil && !c.broken && len(c.inflight) == 0
	if idle { // marked under mu: a writer that took a batch does not write it on c
		c.broken = true
		p.conn = nil
	}
	p.mu.Unlock()
	if idle {
		c.c.Close()
	}
}
