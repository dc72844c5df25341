package interceptors

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/bufpool"
	"github.com/wasmfarm/wasmfarm/tribes"
)

// Order defaults (Tribes' OrderInterceptor).
const (
	DefaultOrderExpire         = 3000 * time.Millisecond
	DefaultOrderMaxQueue       = math.MaxInt32
	DefaultOrderMaxQueuedBytes = 16 << 20
)

// orderSeqLen is the size of the sequence number Order appends.
const orderSeqLen = 4

// heldCost is charged to a sender's queued bytes per held-back message
// besides the capacity of the pooled buffer holding its copy: the heldMsg,
// its queue and arrival slots, the bufpool.Buffer and the copy of the
// sender's record (whose variable fields are charged too).
const heldCost = 448

// holdCost is what holding a copy in buf of a message from src charges.
func holdCost(src *tribes.Member, buf *bufpool.Buffer) int {
	return heldCost + cap(buf.B) + len(src.Command) + len(src.Domain) + len(src.Payload)
}

// OrderConfig configures an [Order] interceptor. The zero value of every
// field means its default.
type OrderConfig struct {
	// OptionFlag gates the interceptor (optionFlag, default 0: every
	// message). It must be the same on every node.
	OptionFlag tribes.Options
	// Expire is how long a message that arrived out of order waits for the
	// ones before it (expire, default 3000 ms); then the gap is given up.
	Expire time.Duration
	// DropExpired drops the messages released from the queue by Expire or
	// MaxQueue instead of passing them up out of order (Tribes'
	// forwardExpired=false; the default, false, forwards them).
	DropExpired bool
	// MaxQueue bounds the messages waiting for a gap, per sender
	// (maxQueue, default 2^31-1); when it is reached the whole queue is
	// released.
	MaxQueue int
	// MaxQueuedBytes bounds their memory, per sender, in the same way
	// (default 16 MiB; Tribes has no such limit): each held message
	// counts the capacity of the pooled buffer holding its copy plus 384
	// bytes plus its sender's variable record fields, so that many tiny
	// or empty messages cannot hold more than this.
	MaxQueuedBytes int
	// Pool supplies the buffers; nil gives the interceptor a pool of its own.
	Pool *bufpool.Pool
	// Logger receives the logs; nil means the channel's logger.
	Logger *slog.Logger
}

// OrderStats are an [Order] interceptor's counters.
type OrderStats struct {
	Sent     int64 // messages numbered, one per destination
	Received int64 // numbered messages received
	Queued   int64 // received out of order and held back
	Released int64 // held back, then released by Expire or MaxQueue
	Dropped  int64 // released but dropped (DropExpired)
	Flushed  int64 // held back, delivered when the sender disappeared
	Invalid  int64 // too short to carry a sequence number (dropped)
	Waiting  int64 // held back now
}

// Order is Tribes' OrderInterceptor: the messages of one sender reach the
// listeners in the order they were sent, even when the sender's pooled
// connections or dispatcher threads deliver them out of order.
//
// On the wire, a gated message gets a 4-byte big-endian sequence number
// appended, counted per destination from 1; since the bytes differ per
// destination, a message to several members is passed down once per
// destination (in parallel). The receiver strips the number and passes the
// message up when it is the next expected one from its sender; a message
// ahead of a gap is copied and held back until the gap fills, or until it
// has waited Expire (checked on every message and every heartbeat), or
// until the sender's queue exceeds MaxQueue or MaxQueuedBytes; then the
// queue is released in order up to it and the gap is given up. A message
// numbered below the expected one (late after a released gap, or resent
// after a FAIL_ACK) is passed up at once, as Tribes does. When a member
// disappears its counters are reset and its held-back messages delivered.
//
// Multicast messages ([tribes.OptMulticast]) are passed through unnumbered
// both ways: one datagram reaches every member, so it cannot carry a
// per-destination number, and the option travels with it, so the receiver
// knows not to look for one. (Tribes' OrderInterceptor numbers a multicast
// message per destination like any other, broadcasting one copy per
// destination, and strips four bytes from every one it receives: with Order
// configured, multicast messages do not interoperate with Tomcat.)
//
// Held-back messages are acknowledged on receipt: a synchronous sender is
// not told about a listener failure for them. The listeners process one
// sender's messages one at a time (Tribes holds a lock there too), so a
// listener that waits for a synchronous answer from the same sender holds
// up that sender's later messages until the send times out.
//
// Place it above a [tribes.MessageDispatcher]: the numbers are taken in
// the order messages reach Order, so below the dispatcher they would
// follow the dispatcher's threads rather than the application.
type Order struct {
	tribes.BaseInterceptor
	cfg  OrderConfig
	pool *bufpool.Pool
	now  func() time.Time

	outMu sync.RWMutex
	out   map[tribes.MemberKey]*atomic.Int32

	inMu sync.Mutex
	in   map[tribes.MemberKey]*orderIn

	sent, received, queued, released, dropped, flushed, invalid, waiting atomic.Int64
}

// orderIn is the receive state of one sender.
type orderIn struct {
	mu    sync.Mutex
	next  int32 // the sequence number expected next
	queue []*heldMsg
	bytes int  // charged for the queue: see OrderConfig.MaxQueuedBytes
	dead  bool // the sender disappeared: this state is no longer in the map
	// arrivals lists the held messages' numbers in arrival order, so that
	// the expired ones are found without scanning the queue. It may still
	// list messages since delivered; compact drops those.
	arrivals []arrival
	arrived  uint64 // messages held so far: the last one's arrival number
}

// arrival is when a message numbered seq was held back.
type arrival struct {
	at  time.Time
	seq int32
	n   uint64
}

// heldMsg is a message received ahead of a gap.
type heldMsg struct {
	seq  int32
	n    uint64 // arrival number, see orderIn.arrived
	cost int    // charged to orderIn.bytes
	msg  tribes.Message
	buf  *bufpool.Buffer
}

var _ tribes.Interceptor = (*Order)(nil)

// NewOrder returns an order interceptor.
func NewOrder(cfg OrderConfig) *Order {
	if cfg.Expire <= 0 {
		cfg.Expire = DefaultOrderExpire
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = DefaultOrderMaxQueue
	}
	if cfg.MaxQueuedBytes <= 0 {
		cfg.MaxQueuedBytes = DefaultOrderMaxQueuedBytes
	}
	return &Order{cfg: cfg, pool: newPool(cfg.Pool), now: time.Now,
		out: map[tribes.MemberKey]*atomic.Int32{}, in: map[tribes.MemberKey]*orderIn{}}
}

// Stats returns the counters.
func (o *Order) Stats() OrderStats {
	return OrderStats{Sent: o.sent.Load(), Received: o.received.Load(), Queued: o.queued.Load(),
		Released: o.released.Load(), Dropped: o.dropped.Load(), Flushed: o.flushed.Load(),
		Invalid: o.invalid.Load(), Waiting: o.waiting.Load()}
}

// AppendSeq appends the 4-byte sequence number Order adds to a message.
func AppendSeq(b []byte, seq int32) []byte { return binary.BigEndian.AppendUint32(b, uint32(seq)) }

// ParseSeq splits a received message into its body and the sequence
// number Order appended. It fails with an error wrapping [ErrMalformed]
// when b is shorter than 4 bytes. body aliases b.
func ParseSeq(b []byte) (body []byte, seq int32, err error) {
	if len(b) < orderSeqLen {
		return nil, 0, fmt.Errorf("%w: %d bytes, too short for a sequence number", ErrMalformed, len(b))
	}
	n := len(b) - orderSeqLen
	return b[:n], int32(binary.BigEndian.Uint32(b[n:])), nil
}

// SendMessage numbers msg for each destination and passes it down, once
// per destination.
func (o *Order) SendMessage(ctx context.Context, to []*tribes.Member, msg *tribes.Message) error {
	if !o.applies(msg.Options) {
		return o.Next().SendMessage(ctx, to, msg)
	}
	if len(to) <= 1 {
		return o.sendOne(ctx, to, msg)
	}
	// Fill in what the transport would, so every copy carries the same.
	if msg.Timestamp == 0 {
		msg.Timestamp = o.now().UnixMilli()
	}
	if msg.UniqueID == (tribes.UniqueID{}) {
		msg.UniqueID = tribes.NewUniqueID()
	}
	errs := make([]error, len(to))
	base := *msg // each goroutine numbers its own copy
	var wg sync.WaitGroup
	for i := range to[:len(to)-1] {
		wg.Go(func() {
			m := base
			errs[i] = o.sendOne(ctx, to[i:i+1], &m)
		})
	}
	errs[len(to)-1] = o.sendOne(ctx, to[len(to)-1:], msg)
	wg.Wait()
	return joinSendErrors(errs)
}

// applies reports whether messages with options opts are numbered: those
// the option flag lets in, except multicast ones.
func (o *Order) applies(opts tribes.Options) bool {
	return tribes.Gated(o.cfg.OptionFlag, opts) && !opts.Has(tribes.OptMulticast)
}

// sendOne sends msg to the single member of to with its next number.
func (o *Order) sendOne(ctx context.Context, to []*tribes.Member, msg *tribes.Message) error {
	if len(to) == 0 {
		return o.Next().SendMessage(ctx, to, msg)
	}
	seq := o.nextSeq(to[0].Key())
	buf := o.pool.Get(len(msg.Data) + orderSeqLen)
	copy(buf.B, msg.Data)
	binary.BigEndian.PutUint32(buf.B[len(msg.Data):], uint32(seq))
	o.sent.Add(1)
	data := msg.Data
	msg.Data = buf.B
	err := o.Next().SendMessage(ctx, to, msg)
	msg.Data = data
	o.pool.Put(buf)
	return err
}

func (o *Order) nextSeq(k tribes.MemberKey) int32 {
	o.outMu.RLock()
	c := o.out[k]
	o.outMu.RUnlock()
	if c == nil {
		o.outMu.Lock()
		if c = o.out[k]; c == nil {
			c = new(atomic.Int32)
			o.out[k] = c
		}
		o.outMu.Unlock()
	}
	return c.Add(1)
}

func (o *Order) inState(k tribes.MemberKey) *orderIn {
	o.inMu.Lock()
	defer o.inMu.Unlock()
	st := o.in[k]
	if st == nil {
		st = &orderIn{next: 1}
		o.in[k] = st
	}
	return st
}

// MessageReceived strips the sequence number and passes msg up in order:
// at once when it is the next expected (or an older) one, else later.
func (o *Order) MessageReceived(msg *tribes.Message) error {
	if !o.applies(msg.Options) {
		return o.Previous().MessageReceived(msg)
	}
	body, seq, err := ParseSeq(msg.Data)
	if err != nil || msg.Source == nil {
		o.invalid.Add(1)
		return nil
	}
	o.received.Add(1)
	st := o.inState(msg.Source.Key())
	st.mu.Lock()
	for st.dead { // the sender disappeared meanwhile: start afresh
		st.mu.Unlock()
		st = o.inState(msg.Source.Key())
		st.mu.Lock()
	}
	defer st.mu.Unlock()
	now := o.now()
	if seq <= st.next {
		if seq == st.next {
			st.next++
		}
		data := msg.Data
		msg.Data = body
		err = o.Previous().MessageReceived(msg)
		msg.Data = data
		if len(st.queue) > 0 {
			o.drainLocked(st)
			o.expireLocked(st, now, false)
		}
		return err
	}
	o.holdLocked(st, seq, now, msg, body)
	overflow := len(st.queue) >= o.cfg.MaxQueue || st.bytes > o.cfg.MaxQueuedBytes
	o.expireLocked(st, now, overflow)
	return nil
}

// holdLocked inserts a copy of msg (with data body) into st's queue, in
// sequence order.
func (o *Order) holdLocked(st *orderIn, seq int32, now time.Time, msg *tribes.Message, body []byte) {
	st.arrived++
	h := &heldMsg{seq: seq, n: st.arrived, msg: *msg, buf: o.pool.Get(len(body))}
	copy(h.buf.B, body)
	h.msg.Data = h.buf.B
	h.msg.Source = msg.Source.Clone()
	h.cost = holdCost(h.msg.Source, h.buf)
	i, _ := slices.BinarySearchFunc(st.queue, seq, func(e *heldMsg, s int32) int {
		if e.seq <= s { // equal numbers (a resend) keep their arrival order
			return -1
		}
		return 1
	})
	st.queue = slices.Insert(st.queue, i, h)
	st.arrivals = append(st.arrivals, arrival{at: now, seq: seq, n: h.n})
	st.bytes += h.cost
	o.queued.Add(1)
	o.waiting.Add(1)
}

// drainLocked delivers the held messages that are next in line.
func (o *Order) drainLocked(st *orderIn) {
	for len(st.queue) > 0 && st.queue[0].seq <= st.next {
		h := st.pop()
		if h.seq == st.next {
			st.next++
		}
		o.deliver(h, true)
	}
}

// expireLocked gives up the gaps before the last held message that has
// waited Expire (all of them when force), then delivers what is in line.
// The expired messages are the first arrivals, so this costs O(1) per
// message held, amortised, whatever the length of the queue.
func (o *Order) expireLocked(st *orderIn, now time.Time, force bool) {
	// The queue is in (number, arrival) order: release it up to the last
	// expired message in that order.
	var last arrival
	release := force
	if force && len(st.queue) > 0 {
		h := st.queue[len(st.queue)-1]
		last = arrival{seq: h.seq, n: h.n}
	}
	for !force && len(st.arrivals) > 0 && now.Sub(st.arrivals[0].at) >= o.cfg.Expire {
		if a := st.arrivals[0]; !release || a.seq > last.seq || a.seq == last.seq && a.n > last.n {
			last, release = a, true
		}
		st.arrivals = st.arrivals[1:]
	}
	for release && len(st.queue) > 0 && (st.queue[0].seq < last.seq || st.queue[0].seq == last.seq && st.queue[0].n <= last.n) {
		h := st.pop()
		st.next = max(st.next, h.seq+1)
		o.released.Add(1)
		o.deliver(h, !o.cfg.DropExpired)
	}
	o.drainLocked(st)
	st.compact()
}

// compact drops from st.arrivals the messages no longer held, once they
// outnumber the held ones: every held message is numbered after st.next.
func (st *orderIn) compact() {
	switch {
	case len(st.queue) == 0:
		st.arrivals = st.arrivals[:0]
	case len(st.arrivals) > 2*len(st.queue)+16:
		kept := st.arrivals[:0]
		for _, a := range st.arrivals {
			if a.seq >= st.next {
				kept = append(kept, a)
			}
		}
		clear(st.arrivals[len(kept):])
		st.arrivals = kept
	}
}

func (st *orderIn) pop() *heldMsg {
	h := st.queue[0]
	st.queue[0] = nil
	st.queue = st.queue[1:]
	st.bytes -= h.cost
	return h
}

// deliver passes a held message up (or drops it) and frees it.
func (o *Order) deliver(h *heldMsg, pass bool) {
	o.waiting.Add(-1)
	if pass {
		if err := o.Previous().MessageReceived(&h.msg); err != nil {
			o.log().Debug("tribes order: listener failed on a held-back message", "source", memberString(h.msg.Source), "err", err)
		}
	} else {
		o.dropped.Add(1)
	}
	o.pool.Put(h.buf)
	h.buf, h.msg.Data = nil, nil
}

// Heartbeat releases the gaps that have expired, then passes the heartbeat
// down.
func (o *Order) Heartbeat() {
	now := o.now()
	o.inMu.Lock()
	states := make([]*orderIn, 0, len(o.in))
	for _, st := range o.in {
		states = append(states, st)
	}
	o.inMu.Unlock()
	for _, st := range states {
		st.mu.Lock()
		if len(st.queue) > 0 {
			o.expireLocked(st, now, false)
		}
		st.mu.Unlock()
	}
	o.Next().Heartbeat()
}

// MemberDisappeared resets the member's counters and delivers what it held
// back, in order, before passing the event up.
func (o *Order) MemberDisappeared(m *tribes.Member) {
	k := m.Key()
	o.outMu.Lock()
	delete(o.out, k)
	o.outMu.Unlock()
	o.inMu.Lock()
	st := o.in[k]
	delete(o.in, k)
	o.inMu.Unlock()
	if st != nil {
		st.mu.Lock()
		st.dead = true
		for len(st.queue) > 0 {
			o.flushed.Add(1)
			o.deliver(st.pop(), true)
		}
		st.arrivals = nil
		st.mu.Unlock()
	}
	o.Previous().MemberDisappeared(m)
}

func (o *Order) log() *slog.Logger { return logger(o.cfg.Logger, &o.BaseInterceptor) }
