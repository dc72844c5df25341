package tribes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/bufpool"
)

// Sender defaults (Tribes' ReplicationTransmitter and PooledParallelSender).
const (
	DefaultPoolSize      = 25
	DefaultMaxWait       = 3000 * time.Millisecond
	DefaultSendTimeout   = 3000 * time.Millisecond
	DefaultMaxAsyncBytes = 8 << 20
	// smallFrame is the largest frame copied into one buffer; larger ones
	// are written with vectored I/O straight from the caller's bytes.
	smallFrame = 32 << 10
)

// Errors returned by [Sender.Send], inside a [*SendError] for the members
// they concern.
var (
	// ErrSenderClosed occurs when Send is called after Close.
	ErrSenderClosed = errors.New("tribes: sender closed")
	// ErrAckTimeout occurs when no ACK arrived within the send timeout.
	ErrAckTimeout = errors.New("tribes: no ACK within the send timeout")
	// ErrFailAck occurs when the receiver answered FAIL_ACK: it got the
	// message but processing it failed (twice, counting the resend).
	ErrFailAck = errors.New("tribes: receiver answered FAIL_ACK")
	// ErrPoolExhausted occurs when no pooled connection to a member was
	// free within MaxWait.
	ErrPoolExhausted = errors.New("tribes: no sender connection free within maxWait")
	// ErrNoMember occurs when Send is given no destination.
	ErrNoMember = errors.New("tribes: no destination member")
)

// SendError reports the members a send failed for. The others got the
// message.
type SendError struct {
	Failed []MemberError
}

// MemberError is the failure of a send to one member.
type MemberError struct {
	Member *Member
	Err    error
}

func (e *SendError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tribes: send failed for %d member(s):", len(e.Failed))
	for i, f := range e.Failed {
		if i > 0 {
			b.WriteByte(';')
		}
		fmt.Fprintf(&b, " %s: %v", f.Member.AddrPort(), f.Err)
	}
	return b.String()
}

// Unwrap returns the members' errors, so errors.Is(err, ErrAckTimeout)
// reports whether any member timed out.
func (e *SendError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f.Err
	}
	return errs
}

// SenderConfig configures a [Sender]. The zero value of every field means
// its default.
type SenderConfig struct {
	// PoolSize is the number of connections per member for large
	// acknowledged sends, each carrying one message at a time (default
	// 25). Small ones share one pipelined connection, unless PooledAcks.
	PoolSize int
	// PooledAcks sends small acknowledged messages on the pooled
	// connections too, one at a time on each, as Tribes does: lower
	// latency when a few senders do nothing but send, but a write, a read
	// and a wakeup per message on both sides, where the pipelined
	// connection shares them among concurrent sends (see ackPipe and the
	// README's benchmarks).
	PooledAcks bool
	// MaxWait is how long a send waits for a free pooled connection
	// (default 3000 ms).
	MaxWait time.Duration
	// Timeout bounds a whole send to all members, ACK included (default
	// 3000 ms). A context deadline that comes sooner wins.
	Timeout time.Duration
	// MaxRetryAttempts is how often a failed send to a member is retried on
	// a fresh connection (default 1, as Tribes; negative means never).
	MaxRetryAttempts int
	// MaxMessageSize limits the payload of one message (default 64 MiB).
	MaxMessageSize int
	// MaxAsyncBytes bounds the bytes of asynchronous messages queued for
	// one member; a send that would exceed it waits for the writer
	// (default 8 MiB).
	MaxAsyncBytes int
	// OnAsyncError is called, from the member's writer goroutine, when
	// queued asynchronous messages could not be written even after the
	// retry; n is how many frames were lost. Optional.
	OnAsyncError func(to *Member, n int, err error)
	// Pool supplies frame buffers; nil gives the sender a pool of its own.
	Pool *bufpool.Pool
	// Logger receives the sender's logs; nil discards them.
	Logger *slog.Logger
}

func (c *SenderConfig) setDefaults() {
	if c.PoolSize <= 0 {
		c.PoolSize = DefaultPoolSize
	}
	if c.MaxWait <= 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultSendTimeout
	}
	if c.MaxRetryAttempts == 0 {
		c.MaxRetryAttempts = 1
	} else if c.MaxRetryAttempts < 0 {
		c.MaxRetryAttempts = 0
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.MaxAsyncBytes <= 0 {
		c.MaxAsyncBytes = DefaultMaxAsyncBytes
	}
	if c.Pool == nil {
		c.Pool = bufpool.New(0)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// SenderStats are a sender's counters since it started.
type SenderStats struct {
	Messages     int64 // messages sent (counted once, whatever the number of members)
	Frames       int64 // frames written successfully, one per member
	Bytes        int64 // payload bytes of those frames
	Retries      int64 // resends on a fresh connection
	Failures     int64 // member sends that failed after the retries
	Dials        int64 // connections opened
	AsyncLost    int64 // asynchronous frames that could not be written
	AsyncBatches int64 // writes of queued asynchronous frames
	AsyncFrames  int64 // queued asynchronous frames those writes carried
	AckBatches   int64 // writes of pipelined acknowledged frames
	AckFrames    int64 // pipelined acknowledged frames those writes carried
}

type senderCounters struct {
	msgs, frames, bytes, retries, failures, dials, asyncLost, asyncBatches, asyncFrames atomic.Int64
	ackBatches, ackFrames                                                               atomic.Int64
}

// Sender sends messages to members over pooled TCP connections, to all
// destinations of a message in parallel: Tribes' ReplicationTransmitter
// with its PooledParallelSender.
//
// How a message travels depends on its options:
//
//   - With [OptUseAck] a small frame goes on the member's acknowledged
//     connection, pipelined: frames of concurrent sends share a write, and
//     the ACKs, which come back in order, are handed to their senders (see
//     ackPipe); a large frame borrows one of the member's pooled
//     connections, one message at a time on each, as Tribes does. Either
//     way Send waits for the ACK; [OptSynchronizedAck] makes the receiver
//     process the message before it answers. On an I/O error or FAIL_ACK
//     the frame is resent once on a fresh connection.
//   - With [OptAsynchronous] and no ACK it is appended to the member's
//     write queue and Send returns; a writer goroutine writes everything
//     queued with one system call (small frames) so many messages share a
//     write. Failures go to SenderConfig.OnAsyncError.
//   - With neither it is written on the member's stream connection, after
//     what is queued there, and Send returns once the bytes are written.
//
// Large frames are written with vectored I/O from the caller's bytes. A
// Sender is safe for concurrent use.
type Sender struct {
	cfg   SenderConfig
	local atomic.Pointer[[]byte] // encoded local member record
	ids   *idSource
	log   *slog.Logger

	sendMu  sync.RWMutex // read-held by Send, so Close waits for sends in flight
	stopped bool         // Close ran; guarded by sendMu
	mu      sync.RWMutex
	dests   map[MemberKey]*destination
	closed  bool

	jobs    chan job
	helpers atomic.Int32
	wg      sync.WaitGroup
	stats   senderCounters
}

// NewSender returns a sender that names local as the source of every
// message.
func NewSender(cfg SenderConfig, local *Member) (*Sender, error) {
	cfg.setDefaults()
	s := &Sender{
		cfg:   cfg,
		ids:   newIDSource(),
		log:   cfg.Logger,
		dests: make(map[MemberKey]*destination),
		jobs:  make(chan job),
	}
	if err := s.SetLocalMember(local); err != nil {
		return nil, err
	}
	return s, nil
}

// SetLocalMember changes the member record sent as the source of messages.
func (s *Sender) SetLocalMember(m *Member) error {
	if m == nil {
		return errors.New("tribes: sender: nil local member")
	}
	rec, err := m.AppendBinary(nil)
	if err != nil {
		return fmt.Errorf("tribes: sender: local member: %w", err)
	}
	s.local.Store(&rec)
	return nil
}

// Stats returns the sender's counters.
func (s *Sender) Stats() SenderStats {
	c := &s.stats
	return SenderStats{
		Messages: c.msgs.Load(), Frames: c.frames.Load(), Bytes: c.bytes.Load(),
		Retries: c.retries.Load(), Failures: c.failures.Load(), Dials: c.dials.Load(),
		AsyncLost: c.asyncLost.Load(), AsyncBatches: c.asyncBatches.Load(), AsyncFrames: c.asyncFrames.Load(),
		AckBatches: c.ackBatches.Load(), AckFrames: c.ackFrames.Load(),
	}
}

// Close closes every connection and stops the writers. Asynchronous
// messages still queued are written first, within the send timeout.
func (s *Sender) Close() error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.stopped = true
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	dests := s.dests
	s.dests = map[MemberKey]*destination{}
	close(s.jobs)
	s.mu.Unlock()
	for _, d := range dests {
		d.close()
	}
	s.wg.Wait()
	return nil
}

// Disconnect closes the connections to m, for example when it left the
// group. A later send to m opens new ones.
func (s *Sender) Disconnect(m *Member) {
	s.mu.Lock()
	d := s.dests[m.Key()]
	delete(s.dests, m.Key())
	s.mu.Unlock()
	if d != nil {
		d.close()
	}
}

// destination returns the per-member state, creating it on first use.
func (s *Sender) destination(m *Member) (*destination, error) {
	k := m.Key()
	s.mu.RLock()
	d, closed := s.dests[k], s.closed
	s.mu.RUnlock()
	if closed {
		return nil, ErrSenderClosed
	}
	if d != nil {
		return d, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrSenderClosed
	}
	if d = s.dests[k]; d == nil {
		d = newDestination(s, m.Clone())
		s.dests[k] = d
	}
	return d, nil
}

// Send sends msg to every member of to, in parallel, and returns when the
// options are satisfied (see [Sender]). msg.Timestamp and msg.UniqueID are
// filled in when zero. msg.Data may be reused when Send returns.
//
// The send ends by the sender's Timeout or the context's deadline, whichever
// comes first; cancellation without a deadline is checked before a resend.
//
// A failure for some members is a [*SendError] naming them; the others got
// the message. Send with a message larger than MaxMessageSize returns an
// error wrapping [ErrMessageTooLarge] and sends nothing.
func (s *Sender) Send(ctx context.Context, to []*Member, msg *Message) error {
	if len(to) == 0 {
		return ErrNoMember
	}
	s.sendMu.RLock()
	defer s.sendMu.RUnlock()
	if s.stopped { // set by Close under sendMu
		return ErrSenderClosed
	}
	if len(msg.Data) > s.cfg.MaxMessageSize {
		return &SizeError{Size: int64(len(msg.Data)), Limit: int64(s.cfg.MaxMessageSize)}
	}
	now := time.Now() // one clock read for the timestamp and the deadline
	if msg.Timestamp == 0 {
		msg.Timestamp = now.UnixMilli()
	}
	if msg.UniqueID == (UniqueID{}) {
		msg.UniqueID = s.ids.next()
	}
	s.stats.msgs.Add(1)

	op := getSendOp()
	defer putSendOp(op, s.cfg.Pool)
	op.s, op.msg = s, msg
	op.deadline = now.Add(s.cfg.Timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(op.deadline) {
		op.deadline = dl
	}
	op.build(*s.local.Load())
	if cap(op.errs) < len(to) {
		op.errs = make([]error, len(to))
	}
	op.errs = op.errs[:len(to)]

	// Small acknowledged frames are queued on every member's pipelined
	// connection before their answers are awaited. Otherwise every member
	// but the last goes to a helper goroutine when the write can take a
	// while (an ACK to wait for, or a large frame); the last one is sent on
	// this goroutine.
	rest := to
	if len(to) > 1 && op.pipelined() {
		op.sendPipelined(ctx, to)
		rest = nil
	}
	parallel := msg.Options.Has(OptUseAck) || len(msg.Data) > smallFrame ||
		!msg.Options.Has(OptAsynchronous)
	for i, m := range rest {
		if parallel && i < len(rest)-1 {
			op.wg.Add(1)
			select {
			case s.jobs <- job{op, m, i}:
				continue
			default:
				if s.startWorker() {
					s.jobs <- job{op, m, i}
					continue
				}
			}
			op.wg.Done()
		}
		op.errs[i] = op.sendTo(ctx, m)
	}
	op.wg.Wait()

	var failed []MemberError
	for i, err := range op.errs {
		if err != nil {
			failed = append(failed, MemberError{Member: to[i], Err: err})
		}
	}
	if failed != nil {
		s.stats.failures.Add(int64(len(failed)))
		return &SendError{Failed: failed}
	}
	return nil
}

// job is one member's share of a send, run by a helper goroutine.
type job struct {
	op *sendOp
	m  *Member
	i  int
}

// maxHelpers bounds the helper goroutines that send to members in parallel.
const maxHelpers = 64

// startWorker starts a helper goroutine if fewer than maxHelpers run.
func (s *Sender) startWorker() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed || s.helpers.Add(1) > maxHelpers {
		s.helpers.Add(-1)
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.helpers.Add(-1)
		for j := range s.jobs {
			j.op.errs[j.i] = j.op.sendTo(context.Background(), j.m)
			j.op.wg.Done()
		}
	}()
	return true
}

// sendOp is one Send call: the encoded frame shared by every member.
type sendOp struct {
	s        *Sender
	msg      *Message
	deadline time.Time
	frame    *bufpool.Buffer // the whole frame (small) or its header (large)
	vectored bool
	errs     []error
	waits    []pipeWait
	wg       sync.WaitGroup
}

var sendOpPool = sync.Pool{New: func() any { return new(sendOp) }}

func getSendOp() *sendOp { return sendOpPool.Get().(*sendOp) }

func putSendOp(op *sendOp, p *bufpool.Pool) {
	if op.frame != nil {
		p.Put(op.frame)
	}
	errs, waits := op.errs[:0], op.waits[:0]
	*op = sendOp{errs: errs, waits: waits}
	sendOpPool.Put(op)
}

// build encodes the frame: all of it when small, else the header only.
func (op *sendOp) build(member []byte) {
	m := op.msg
	hdrLen := frameOverhead - len(frameEnd) + 24 + len(m.UniqueID) + len(member)
	op.vectored = len(m.Data) > smallFrame
	n := hdrLen
	if !op.vectored {
		n += len(m.Data) + len(frameEnd)
	}
	op.frame = op.s.cfg.Pool.Get(n)
	b := appendMessageHeader(op.frame.B[:0], m.Options, m.Timestamp, m.UniqueID[:], member, len(m.Data))
	if !op.vectored {
		b = append(b, m.Data...)
		b = append(b, frameEnd[:]...)
	}
	op.frame.B = b
}

// sendTo sends the frame to one member as the options say.
func (op *sendOp) sendTo(ctx context.Context, m *Member) error {
	s := op.s
	d, err := s.destination(m)
	if err != nil {
		return err
	}
	err = op.resend(ctx, m, d, op.sendOn(ctx, d))
	op.count(err)
	return err
}

// sendOn sends the frame on d's connections as the options say.
func (op *sendOp) sendOn(ctx context.Context, d *destination) error {
	opts := op.msg.Options
	switch {
	case op.pipelined():
		return d.pipe.send(ctx, op)
	case opts.Has(OptUseAck):
		return d.sendAcked(ctx, op)
	case opts.Has(OptAsynchronous) && !op.vectored:
		return d.stream.enqueue(op.frame.B)
	default:
		return d.stream.write(op)
	}
}

// count counts a frame sent to one member.
func (op *sendOp) count(err error) {
	if err == nil {
		op.s.stats.frames.Add(1)
		op.s.stats.bytes.Add(int64(len(op.msg.Data)))
	}
}

// pipelined reports whether op goes on the members' pipelined acknowledged
// connections.
func (op *sendOp) pipelined() bool {
	return op.msg.Options.Has(OptUseAck) && !op.vectored && !op.s.cfg.PooledAcks
}

// resend goes on with a send to m that ended with err on d: while
// Disconnect closed the destination during the send (the sender itself is
// open while destination succeeds), it goes again on a fresh one, as a
// pooled send would have gone on, until the deadline. A closed pipe or
// stream refuses a frame before writing or queueing it, so the member
// does not get it twice.
func (op *sendOp) resend(ctx context.Context, m *Member, d *destination, err error) error {
	for errors.Is(err, ErrSenderClosed) && time.Now().Before(op.deadline) && ctx.Err() == nil {
		var d2 *destination
		if d2, err = op.s.destination(m); err != nil {
			break
		}
		if d2 == d {
			err = ErrSenderClosed
			break
		}
		d = d2
		err = op.sendOn(ctx, d)
	}
	return err
}

// sendPipelined sends op to several members on their pipelined connections
// from this goroutine: it queues the frame on every member's connection
// first, then collects the answers, so that the members process it in
// parallel without a helper goroutine per member. The price: when a
// member's socket buffer is full (a stalled member), the write that queues
// the frame blocks, up to the timeout, before the next member gets it;
// the send as a whole waits for that member's answer as long anyway.
func (op *sendOp) sendPipelined(ctx context.Context, to []*Member) {
	if cap(op.waits) < len(to) {
		op.waits = make([]pipeWait, len(to))
	}
	op.waits = op.waits[:len(to)]
	for i, m := range to {
		d, err := op.s.destination(m)
		if err != nil {
			op.errs[i] = err
			continue
		}
		w, err, final := d.pipe.submit(op)
		op.waits[i] = pipeWait{d: d, w: w, err: err, final: final}
	}
	for i, m := range to {
		pw := op.waits[i]
		if pw.d == nil {
			continue
		}
		err, final := pw.err, pw.final
		if err == nil {
			err, final = pw.d.pipe.await(ctx, op, pw.w)
		}
		err = op.resend(ctx, m, pw.d, pw.d.pipe.retry(ctx, op, err, final))
		op.count(err)
		op.errs[i] = err
	}
	clear(op.waits)
}

// pipeWait is one member's share of [sendOp.sendPipelined].
type pipeWait struct {
	d     *destination
	w     *ackWait
	err   error
	final bool
}

// destination is a sender's state for one member.
type destination struct {
	s      *Sender
	member *Member
	addr   string

	tokens chan struct{} // one per pooled connection that may exist
	mu     sync.Mutex
	idle   []*sconn // most recently used last
	closed bool

	stream *stream
	pipe   *ackPipe // small acknowledged messages
}

func newDestination(s *Sender, m *Member) *destination {
	d := &destination{
		s:      s,
		member: m,
		addr:   m.AddrPort().String(),
		tokens: make(chan struct{}, s.cfg.PoolSize),
	}
	for range s.cfg.PoolSize {
		d.tokens <- struct{}{}
	}
	d.stream = newStream(d)
	d.pipe = newAckPipe(d)
	return d
}

func (d *destination) close() {
	d.mu.Lock()
	d.closed = true
	idle := d.idle
	d.idle = nil
	d.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
	d.pipe.close()
	d.stream.close()
}

// dial opens a connection to the member before the deadline.
func (d *destination) dial(ctx context.Context, deadline time.Time) (*net.TCPConn, error) {
	dl := net.Dialer{Deadline: deadline}
	c, err := dl.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, err
	}
	d.s.stats.dials.Add(1)
	tc := c.(*net.TCPConn)
	tc.SetNoDelay(true)
	return tc, nil
}

// borrow takes a pooled connection (nil: the caller dials one).
func (d *destination) borrow(deadline time.Time) (*sconn, error) {
	select {
	case <-d.tokens:
	default:
		wait := min(time.Until(deadline), d.s.cfg.MaxWait)
		t := time.NewTimer(wait)
		select {
		case <-d.tokens:
			t.Stop()
		case <-t.C:
			return nil, ErrPoolExhausted
		}
	}
	d.mu.Lock()
	var c *sconn
	if n := len(d.idle); n > 0 {
		c = d.idle[n-1]
		d.idle = d.idle[:n-1]
	}
	d.mu.Unlock()
	return c, nil
}

// giveBack returns a borrowed connection (nil if it was closed).
func (d *destination) giveBack(c *sconn) {
	if c != nil {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			c.close()
		} else {
			d.idle = append(d.idle, c)
			d.mu.Unlock()
		}
	}
	d.tokens <- struct{}{}
}

// sendAcked writes the frame on a pooled connection and waits for the ACK,
// retrying on a fresh connection after an I/O error or FAIL_ACK.
func (d *destination) sendAcked(ctx context.Context, op *sendOp) error {
	c, err := d.borrow(op.deadline)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		if c == nil {
			conn, derr := d.dial(ctx, op.deadline)
			if derr != nil {
				err = derr
				break
			}
			c = &sconn{conn: conn}
		}
		err = c.roundTrip(op)
		if err == nil {
			break
		}
		c.close()
		c = nil
		if attempt >= d.s.cfg.MaxRetryAttempts || time.Now().After(op.deadline) || ctx.Err() != nil {
			break
		}
		d.s.stats.retries.Add(1)
		d.s.log.Debug("tribes sender: resending", "member", d.addr, "err", err)
	}
	d.giveBack(c)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// sconn is a pooled connection for acknowledged sends.
type sconn struct {
	conn *net.TCPConn
	vec  [3][]byte
	bufs net.Buffers // consumed by each vectored write; a field so it does not escape per call
	acks ackReader
}

func (c *sconn) close() { c.conn.Close() }

// roundTrip writes the frame and reads frames until an ACK or FAIL_ACK.
func (c *sconn) roundTrip(op *sendOp) error {
	c.conn.SetDeadline(op.deadline)
	if err := writeFrame(c.conn, &c.vec, &c.bufs, op); err != nil {
		return err
	}
	answer, err := c.acks.next(c.conn)
	if err != nil && isTimeout(err) {
		return ErrAckTimeout
	}
	if err != nil {
		return err
	}
	return answer
}

// writeFrame writes op's frame to w: one write when small, vectored when
// large.
func writeFrame(w *net.TCPConn, vec *[3][]byte, bufs *net.Buffers, op *sendOp) error {
	if !op.vectored {
		_, err := w.Write(op.frame.B)
		return err
	}
	vec[0], vec[1], vec[2] = op.frame.B, op.msg.Data, frameEnd[:]
	*bufs = vec[:]
	_, err := bufs.WriteTo(w)
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
