package interceptors_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// This file is a small in-memory network for the interceptor tests: a
// tribes.Transport that hands each message, synchronously, to the
// destination's receive function (so a Send has been processed by the
// receiver's stack when it returns), and a tribes.Membership whose events
// the test injects. Everything above the transport is the real tribes
// Channel.

var errUnreachable = errors.New("memnet: member unreachable")

// memNet connects memTransports by address.
type memNet struct {
	mu    sync.Mutex
	nodes map[netip.AddrPort]*memTransport
	n     int
}

func newMemNet() *memNet { return &memNet{nodes: map[netip.AddrPort]*memTransport{}} }

// transport returns a transport with the next address, 10.0.0.k:4000.
func (n *memNet) transport() *memTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.n++
	t := &memTransport{net: n, addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(n.n)}), 4000)}
	n.nodes[t.addr] = t
	return t
}

func (n *memNet) lookup(a netip.AddrPort) *memTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nodes[a]
}

// memTransport is one node's transport.
type memTransport struct {
	net  *memNet
	addr netip.AddrPort

	mu      sync.RWMutex
	recv    tribes.ReceiveFunc
	local   *tribes.Member
	started bool
	closed  bool
	tap     func(to *tribes.Member, wire *tribes.Message) // sees every message put on the wire
	sink    func(msg *tribes.Message)                     // replaces delivery (benchmarks)
}

var (
	_ tribes.Transport = (*memTransport)(nil)
	_ tribes.Prober    = (*memTransport)(nil)
)

func (t *memTransport) Start(ctx context.Context, recv tribes.ReceiveFunc) (netip.AddrPort, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.recv, t.started = recv, true
	return t.addr, nil
}

func (t *memTransport) SetLocalMember(m *tribes.Member) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.local = m.Clone()
	return nil
}

func (t *memTransport) Local() *tribes.Member {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.local.Clone()
}

func (t *memTransport) listening() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.started && !t.closed
}

func (t *memTransport) setTap(fn func(to *tribes.Member, wire *tribes.Message)) {
	t.mu.Lock()
	t.tap = fn
	t.mu.Unlock()
}

func (t *memTransport) Send(ctx context.Context, to []*tribes.Member, msg *tribes.Message) error {
	if len(to) == 0 {
		return tribes.ErrNoMember
	}
	t.mu.RLock()
	local, tap, sink, closed := t.local, t.tap, t.sink, t.closed
	t.mu.RUnlock()
	if closed {
		return tribes.ErrSenderClosed
	}
	if msg.Timestamp == 0 {
		msg.Timestamp = time.Now().UnixMilli()
	}
	if msg.UniqueID == (tribes.UniqueID{}) {
		msg.UniqueID = tribes.NewUniqueID()
	}
	if sink != nil {
		sink(msg)
		return nil
	}
	var failed []tribes.MemberError
	for _, m := range to {
		dst := t.net.lookup(m.AddrPort())
		if dst == nil || !dst.listening() {
			failed = append(failed, tribes.MemberError{Member: m, Err: errUnreachable})
			continue
		}
		wire := &tribes.Message{Options: msg.Options, Timestamp: msg.Timestamp, UniqueID: msg.UniqueID,
			Source: local.Clone(), Data: bytes.Clone(msg.Data)}
		if tap != nil {
			tap(m, &tribes.Message{Options: wire.Options, Timestamp: wire.Timestamp, UniqueID: wire.UniqueID,
				Source: wire.Source.Clone(), Data: bytes.Clone(wire.Data)})
		}
		err := dst.deliver(wire)
		// The message was the receiver's only until it returned: scribble
		// over it to catch an interceptor that kept it.
		for i := range wire.Data {
			wire.Data[i] = 0xee
		}
		if err != nil && msg.Options.Has(tribes.OptUseAck|tribes.OptSynchronizedAck) {
			failed = append(failed, tribes.MemberError{Member: m, Err: fmt.Errorf("%w: %v", tribes.ErrFailAck, err)})
		}
	}
	if failed != nil {
		return &tribes.SendError{Failed: failed}
	}
	return nil
}

func (t *memTransport) deliver(msg *tribes.Message) error {
	t.mu.RLock()
	recv := t.recv
	t.mu.RUnlock()
	return recv(msg)
}

// inject hands msg to the node's stack as if it came from the network.
func (t *memTransport) inject(msg *tribes.Message) error {
	if msg.Source == nil {
		return fmt.Errorf("inject: no source")
	}
	return t.deliver(msg)
}

func (t *memTransport) Disconnect(m *tribes.Member) {}

// Probe makes the failure detector's check a lookup: a member is alive
// when a started, open transport has its address.
func (t *memTransport) Probe(ctx context.Context, m *tribes.Member, cfg tribes.ProbeConfig) error {
	if dst := t.net.lookup(m.AddrPort()); dst == nil || !dst.listening() {
		return errUnreachable
	}
	return nil
}

// reopen lets a closed transport receive again (a restarted process on the
// same address).
func (t *memTransport) reopen() {
	t.mu.Lock()
	t.closed = false
	t.mu.Unlock()
}

func (t *memTransport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	return nil
}

// fakeMembership is a Membership whose events the test injects.
type fakeMembership struct {
	mu      sync.Mutex
	events  func(tribes.MemberEvent)
	members map[tribes.MemberKey]*tribes.Member
}

func newFakeMembership() *fakeMembership {
	return &fakeMembership{members: map[tribes.MemberKey]*tribes.Member{}}
}

func (f *fakeMembership) Start(ctx context.Context, local *tribes.Member, events func(tribes.MemberEvent)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = events
	return nil
}

func (f *fakeMembership) Stop(ctx context.Context) error { return nil }

func (f *fakeMembership) Members() []*tribes.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*tribes.Member
	for _, m := range f.members {
		out = append(out, m.Clone())
	}
	return out
}

func (f *fakeMembership) emit(typ tribes.MemberEventType, m *tribes.Member) {
	f.mu.Lock()
	if typ == tribes.MemberDisappeared {
		delete(f.members, m.Key())
	} else {
		f.members[m.Key()] = m.Clone()
	}
	ev := f.events
	f.mu.Unlock()
	ev(tribes.MemberEvent{Type: typ, Member: m.Clone()})
}

// node is one started channel on a memNet, with a recording listener.
type node struct {
	ch *tribes.Channel
	tr *memTransport
	mb *fakeMembership

	mu     sync.Mutex
	msgs   []*tribes.Message // copies of what reached the listeners
	fail   error             // the listener's answer
	added  chan *tribes.Member
	gone   chan *tribes.Member
	notify chan struct{}
}

// newNode builds and starts a channel with the given stack. cfgFn may
// adjust the tribes configuration before New.
func newNode(t testing.TB, net *memNet, cfgFn func(*tribes.Config), ics ...tribes.Interceptor) *node {
	t.Helper()
	n := newStoppedNode(t, net, cfgFn, ics...)
	n.start(t)
	return n
}

// newStoppedNode builds the channel without starting it.
func newStoppedNode(t testing.TB, net *memNet, cfgFn func(*tribes.Config), ics ...tribes.Interceptor) *node {
	t.Helper()
	n := &node{tr: net.transport(), mb: newFakeMembership(),
		added: make(chan *tribes.Member, 64), gone: make(chan *tribes.Member, 64), notify: make(chan struct{}, 1024)}
	cfg := tribes.Config{Transport: n.tr, Membership: n.mb, Interceptors: append([]tribes.Interceptor{}, ics...),
		HeartbeatInterval: time.Hour} // tests call Heartbeat themselves
	if cfgFn != nil {
		cfgFn(&cfg)
	}
	ch, err := tribes.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.ch = ch
	ch.AddMessageListener(tribes.ListenerFunc(func(m *tribes.Message) error {
		n.mu.Lock()
		n.msgs = append(n.msgs, &tribes.Message{Options: m.Options, Timestamp: m.Timestamp, UniqueID: m.UniqueID,
			Source: m.Source.Clone(), Data: bytes.Clone(m.Data)})
		err := n.fail
		n.mu.Unlock()
		select {
		case n.notify <- struct{}{}:
		default:
		}
		return err
	}))
	ch.AddMembershipListener(tribes.MembershipFuncs{
		Added:       func(m *tribes.Member) { n.added <- m.Clone() },
		Disappeared: func(m *tribes.Member) { n.gone <- m.Clone() },
	})
	return n
}

func (n *node) start(t testing.TB) {
	t.Helper()
	if err := n.ch.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.ch.Stop(context.Background()) })
}

// local returns the member record the node's messages carry.
func (n *node) local() *tribes.Member { return n.tr.Local() }

// see makes the node's membership report m.
func (n *node) see(m *tribes.Member) { n.mb.emit(tribes.MemberAdded, m) }

// received returns the payloads that reached the listeners, as strings.
func (n *node) received() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, len(n.msgs))
	for i, m := range n.msgs {
		out[i] = string(m.Data)
	}
	return out
}

func (n *node) messages() []*tribes.Message {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.msgs)
}

func (n *node) reset() {
	n.mu.Lock()
	n.msgs = nil
	n.mu.Unlock()
}

// heartbeat sends one heartbeat down the node's stack.
func (n *node) heartbeat() { n.ch.Interceptors()[0].Heartbeat() }

// send sends data to the members with options opts.
func (n *node) send(t testing.TB, data []byte, opts tribes.Options, to ...*tribes.Member) error {
	t.Helper()
	return n.ch.Send(context.Background(), to, data, opts)
}

// mustSend sends and fails the test on error.
func (n *node) mustSend(t testing.TB, data []byte, opts tribes.Options, to ...*tribes.Member) {
	t.Helper()
	if err := n.send(t, data, opts, to...); err != nil {
		t.Fatalf("send %q: %v", data, err)
	}
}

// wireTap records the messages a transport puts on the wire.
type wireTap struct {
	mu   sync.Mutex
	msgs []*tribes.Message
	to   []*tribes.Member
}

func tapOf(t *memTransport) *wireTap {
	w := &wireTap{}
	t.setTap(func(to *tribes.Member, m *tribes.Message) {
		w.mu.Lock()
		w.msgs = append(w.msgs, m)
		w.to = append(w.to, to)
		w.mu.Unlock()
	})
	return w
}

func (w *wireTap) all() []*tribes.Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs)
}

// sent returns the messages with their destinations.
func (w *wireTap) sent() ([]*tribes.Message, []*tribes.Member) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs), slices.Clone(w.to)
}

func (w *wireTap) clear() {
	w.mu.Lock()
	w.msgs, w.to = nil, nil
	w.mu.Unlock()
}

// waitMember waits for an event about want on ch.
func waitMember(t testing.TB, ch chan *tribes.Member, want *tribes.Member, what string) *tribes.Member {
	t.Helper()
	select {
	case m := <-ch:
		if m.Key() != want.Key() {
			t.Fatalf("%s: event for %v, want %v", what, m, want)
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no event for %v", what, want)
	}
	return nil
}

func noMember(t testing.TB, ch chan *tribes.Member, within time.Duration, what string) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("%s: unexpected event for %v", what, m)
	case <-time.After(within):
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// msgFrom builds a message as the network would deliver it.
func msgFrom(src *tribes.Member, opts tribes.Options, data []byte) *tribes.Message {
	return &tribes.Message{Options: opts, Timestamp: time.Now().UnixMilli(), UniqueID: tribes.NewUniqueID(),
		Source: src.Clone(), Data: bytes.Clone(data)}
}

// netipAddr returns 10.0.9.i, an address no memNet transport has.
func netipAddr(i byte) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 9, i}) }

// hostOf returns 10.0.0.i, the address of the i-th transport of a memNet.
func hostOf(i byte) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, i}) }

// textLogger logs to w.
func textLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
