package tribestest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// Transport is a node's [tribes.Transport] on the in-memory network. It
// follows the real transport's rules:
//
//   - Every destination gets its own copy of the message (Data copied at
//     Send, so the caller may reuse it when Send returns), with Source the
//     record given to SetLocalMember. Timestamp and UniqueID are filled in
//     when zero.
//   - The messages from one node to another are processed in order, one at
//     a time, on a goroutine of the receiving node ("one connection");
//     those from different nodes concurrently.
//   - Without [tribes.OptUseAck], Send returns once the message is queued
//     at the receiver (or lost). With OptUseAck alone, likewise (the real
//     receiver ACKs on receipt). With OptUseAck|[tribes.OptSynchronizedAck],
//     Send waits until the ReceiveFunc returned: an error or a panic there
//     is a FAIL_ACK, the message is resent MaxRetryAttempts times (the
//     receiver sees it again, same UniqueID), and the send then fails with
//     an error wrapping tribes.ErrFailAck.
//   - Failures come back as a *tribes.SendError naming the members: a node
//     that does not listen (crashed, closed, unknown address) gives
//     [ErrUnreachable] at once; over a partitioned or dropping link the
//     message is lost, and an acknowledged send fails with
//     tribes.ErrAckTimeout after Config.SendTimeout or the context's
//     deadline.
//   - After the ReceiveFunc returns, the bytes of the Data it was given are
//     overwritten, so that code keeping them past the call fails loudly
//     in tests instead of in production.
//
// It also implements tribes.Prober: a probe succeeds when the node
// listens and the link is up.
type Transport struct {
	node *Node

	mu      sync.Mutex
	recv    tribes.ReceiveFunc
	local   *tribes.Member
	started bool
	inboxes map[*Transport]*inbox // by sending transport

	sent, delivered, lost, handlerErrs atomic.Int64
}

var (
	_ tribes.Transport = (*Transport)(nil)
	_ tribes.Prober    = (*Transport)(nil)
)

// TransportStats are a transport's counters.
type TransportStats struct {
	Sent          int64 // messages handed to the network, one per destination (resends included)
	Delivered     int64 // messages passed to this node's ReceiveFunc
	Lost          int64 // messages from this node lost on a cut link, or queued at a node that stopped
	HandlerErrors int64 // errors and panics of this node's ReceiveFunc
}

// Stats returns the transport's counters.
func (t *Transport) Stats() TransportStats {
	return TransportStats{t.sent.Load(), t.delivered.Load(), t.lost.Load(), t.handlerErrs.Load()}
}

// poison is written over the Data of a delivered message once its
// ReceiveFunc returned.
const poison = 0xDB

type inbox struct {
	q       []*job
	running bool
}

type job struct {
	from *Transport
	msg  tribes.Message
	done chan error // for synchronized ACKs: the ReceiveFunc's result
}

// Start makes the node listen: messages sent to its address are passed to
// recv. It returns the node's address, [ErrCrashed] for a crashed node,
// and an error if already started.
func (t *Transport) Start(ctx context.Context, recv tribes.ReceiveFunc) (netip.AddrPort, error) {
	if recv == nil {
		return netip.AddrPort{}, errors.New("tribestest: nil ReceiveFunc")
	}
	n := t.node.net
	n.mu.Lock()
	crashed := t.node.crashed
	n.mu.Unlock()
	if crashed {
		return netip.AddrPort{}, ErrCrashed
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started {
		return netip.AddrPort{}, fmt.Errorf("tribestest: transport of %v already started", t.node)
	}
	t.started, t.recv = true, recv
	return t.node.addr, nil
}

// SetLocalMember sets the record sent as the Source of messages.
func (t *Transport) SetLocalMember(m *tribes.Member) error {
	if m == nil {
		return errors.New("tribestest: nil local member")
	}
	t.mu.Lock()
	t.local = m.Clone()
	t.mu.Unlock()
	return nil
}

// Disconnect does nothing: there are no connections to drop.
func (t *Transport) Disconnect(m *tribes.Member) {}

// Close stops receiving (queued messages are lost, synchronous senders
// waiting for them fail) and sending. Start may be called again.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.local = nil
	t.mu.Unlock()
	t.closeQueues(ErrUnreachable)
	return nil
}

// listening reports whether the transport accepts messages.
func (t *Transport) listening() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.started
}

// closeQueues stops receiving and fails the queued messages with err.
func (t *Transport) closeQueues(err error) {
	t.mu.Lock()
	t.started, t.recv = false, nil
	var failed []*job
	for _, ib := range t.inboxes {
		failed = append(failed, ib.q...)
		ib.q = nil
	}
	t.mu.Unlock()
	for _, j := range failed {
		j.from.lost.Add(1)
		t.finish(j, err)
	}
}

// Send sends msg to the members to (see [Transport] for the rules).
func (t *Transport) Send(ctx context.Context, to []*tribes.Member, msg *tribes.Message) error {
	if len(to) == 0 {
		return tribes.ErrNoMember
	}
	n := t.node.net
	n.mu.Lock()
	crashed := t.node.crashed
	n.mu.Unlock()
	if crashed {
		return fmt.Errorf("%w: %w", tribes.ErrSenderClosed, ErrCrashed)
	}
	t.mu.Lock()
	local := t.local
	t.mu.Unlock()
	if local == nil {
		return tribes.ErrNotStarted
	}
	if len(msg.Data) > n.cfg.MaxMessageSize {
		return &tribes.SizeError{Size: int64(len(msg.Data)), Limit: int64(n.cfg.MaxMessageSize)}
	}
	if msg.Timestamp == 0 {
		msg.Timestamp = time.Now().UnixMilli()
	}
	if msg.UniqueID == (tribes.UniqueID{}) {
		msg.UniqueID = tribes.NewUniqueID()
	}
	deadline := time.Now().Add(n.cfg.SendTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	ack := msg.Options.Has(tribes.OptUseAck)
	syncAck := ack && msg.Options.Has(tribes.OptSynchronizedAck)

	errs := make([]error, len(to))
	var wg sync.WaitGroup
	for i, m := range to {
		// Queue in the order of to, on this goroutine, so that successive
		// Sends keep their order; wait for ACKs in parallel.
		done, lost, err := t.post(m, msg, local, syncAck)
		switch {
		case err != nil:
			errs[i] = err
		case lost && ack:
			wg.Go(func() { errs[i] = waitLost(ctx, deadline) })
		case done != nil:
			wg.Go(func() { errs[i] = t.awaitAck(ctx, deadline, m, msg, local, done) })
		}
	}
	wg.Wait()
	var failed []tribes.MemberError
	for i, err := range errs {
		if err != nil {
			failed = append(failed, tribes.MemberError{Member: to[i], Err: err})
		}
	}
	if failed != nil {
		return &tribes.SendError{Failed: failed}
	}
	return nil
}

// post hands a copy of msg for member m to its node. It returns the
// channel the ReceiveFunc's result will arrive on (syncAck only), whether
// the message was lost on a cut link, or an error when the node does not
// listen.
func (t *Transport) post(m *tribes.Member, msg *tribes.Message, local *tribes.Member, syncAck bool) (done chan error, lost bool, err error) {
	n := t.node.net
	n.mu.Lock()
	dst := n.byAddr[m.AddrPort()]
	up := dst != nil && !dst.crashed
	if up {
		lost = n.linkDown(t.node, dst)
	}
	n.mu.Unlock()
	if !up || !dst.tr.listening() {
		return nil, false, fmt.Errorf("%w: nothing listens on %v", ErrUnreachable, m.AddrPort())
	}
	t.sent.Add(1)
	if lost {
		t.lost.Add(1)
		return nil, true, nil
	}
	j := &job{from: t, msg: tribes.Message{
		Options:   msg.Options,
		Timestamp: msg.Timestamp,
		UniqueID:  msg.UniqueID,
		Source:    local.Clone(),
		Data:      bytes.Clone(msg.Data),
	}}
	if j.msg.Data == nil {
		j.msg.Data = []byte{}
	}
	if syncAck {
		j.done = make(chan error, 1)
	}
	if !dst.tr.enqueue(j) {
		return nil, false, fmt.Errorf("%w: nothing listens on %v", ErrUnreachable, m.AddrPort())
	}
	return j.done, false, nil
}

// waitLost waits out the ACK of a lost message.
func waitLost(ctx context.Context, deadline time.Time) error {
	tm := time.NewTimer(time.Until(deadline))
	defer tm.Stop()
	select {
	case <-tm.C:
		return tribes.ErrAckTimeout
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return tribes.ErrAckTimeout
		}
		return ctx.Err()
	}
}

// awaitAck waits for the synchronized ACK of a queued message, resending
// after FAIL_ACK as the real sender does.
func (t *Transport) awaitAck(ctx context.Context, deadline time.Time, m *tribes.Member, msg *tribes.Message, local *tribes.Member, done chan error) error {
	tm := time.NewTimer(time.Until(deadline))
	defer tm.Stop()
	for attempt := 0; ; attempt++ {
		var err error
		select {
		case err = <-done:
		case <-tm.C:
			return tribes.ErrAckTimeout
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return tribes.ErrAckTimeout
			}
			return ctx.Err()
		}
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrUnreachable) {
			return err
		}
		if attempt >= t.node.net.cfg.MaxRetryAttempts {
			return fmt.Errorf("%w (receiver: %v)", tribes.ErrFailAck, err)
		}
		var lost bool
		if done, lost, err = t.post(m, msg, local, true); err != nil {
			return err
		}
		if lost {
			return waitLost(ctx, deadline)
		}
	}
}

// enqueue queues j for processing and starts the worker for its sender if
// needed. It reports false when the transport does not listen.
func (t *Transport) enqueue(j *job) bool {
	t.mu.Lock()
	if !t.started {
		t.mu.Unlock()
		return false
	}
	if t.inboxes == nil {
		t.inboxes = map[*Transport]*inbox{}
	}
	ib := t.inboxes[j.from]
	if ib == nil {
		ib = &inbox{}
		t.inboxes[j.from] = ib
	}
	ib.q = append(ib.q, j)
	start := !ib.running
	ib.running = true
	t.mu.Unlock()
	t.node.net.addPending(1)
	if start {
		go t.work(ib)
	}
	return true
}

// work processes the queue of one sender until it is empty.
func (t *Transport) work(ib *inbox) {
	for {
		t.mu.Lock()
		if len(ib.q) == 0 {
			ib.running = false
			t.mu.Unlock()
			return
		}
		j := ib.q[0]
		ib.q[0] = nil
		ib.q = ib.q[1:]
		recv := t.recv
		t.mu.Unlock()
		if recv == nil { // closed meanwhile
			j.from.lost.Add(1)
			t.finish(j, ErrUnreachable)
			continue
		}
		data := j.msg.Data
		err := callRecv(recv, &j.msg)
		for i := range data {
			data[i] = poison
		}
		t.delivered.Add(1)
		if err != nil {
			t.handlerErrs.Add(1)
		}
		t.finish(j, err)
	}
}

func (t *Transport) finish(j *job, err error) {
	if j.done != nil {
		j.done <- err
	}
	t.node.net.addPending(-1)
}

// callRecv calls recv, turning a panic into an error as the real receiver
// does.
func callRecv(recv tribes.ReceiveFunc, msg *tribes.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("tribestest: ReceiveFunc panicked: %v", r)
		}
	}()
	return recv(msg)
}

// Probe checks that m's node listens and the link to it is up
// (tribes.Prober). Over a cut link it fails after cfg.ConnectTimeout, as
// a TCP connect would; a node that does not listen fails at once.
func (t *Transport) Probe(ctx context.Context, m *tribes.Member, cfg tribes.ProbeConfig) error {
	n := t.node.net
	n.mu.Lock()
	dst := n.byAddr[m.AddrPort()]
	lost := dst != nil && n.linkDown(t.node, dst)
	ok := dst != nil && !dst.crashed
	n.mu.Unlock()
	if !ok || !dst.tr.listening() {
		return fmt.Errorf("tribestest: probe %v: %w", m.AddrPort(), ErrUnreachable)
	}
	if !lost {
		return nil
	}
	timeout := cfg.ConnectTimeout
	if timeout <= 0 {
		timeout = tribes.DefaultConnectTimeout
	}
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	select {
	case <-tm.C:
		return fmt.Errorf("tribestest: probe %v: connect timeout after %v: %w", m.AddrPort(), timeout, context.DeadlineExceeded)
	case <-ctx.Done():
		return fmt.Errorf("tribestest: probe %v: %w", m.AddrPort(), ctx.Err())
	}
}
