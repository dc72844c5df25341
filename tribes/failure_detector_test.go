package tribes

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The failure detector's tests run on synctest's clock over probeTransport,
// a Transport without sockets whose probes and sends the test controls:
// RemoveSuspectsTimeout and heartbeats pass in no real time, and
// synctest.Wait returns once every probe has finished.

var errProbeRefused = errors.New("probeTransport: connection refused")

// probeTransport is a [Transport] and [Prober]. A probe answers for the
// addresses that listen (by address only, as a TCP connect does); a send
// succeeds for every member except those told to fail, and is counted.
type probeTransport struct {
	mu        sync.Mutex
	listening map[netip.AddrPort]bool
	sendErr   map[MemberKey]error
	sent      map[MemberKey]int
	gate      chan struct{} // when non-nil, every probe takes a token first
	openGate  sync.Once
	closed    int
}

var (
	_ Transport = (*probeTransport)(nil)
	_ Prober    = (*probeTransport)(nil)
)

func newProbeTransport() *probeTransport {
	return &probeTransport{listening: map[netip.AddrPort]bool{}, sendErr: map[MemberKey]error{}, sent: map[MemberKey]int{}}
}

func (p *probeTransport) Start(ctx context.Context, recv ReceiveFunc) (netip.AddrPort, error) {
	return netip.AddrPortFrom(loopback, 4000), nil
}

func (p *probeTransport) SetLocalMember(m *Member) error { return nil }
func (p *probeTransport) Disconnect(m *Member)           {}

func (p *probeTransport) Close() error {
	p.mu.Lock()
	p.closed++
	p.mu.Unlock()
	return nil
}

func (p *probeTransport) Send(ctx context.Context, to []*Member, msg *Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var failed []MemberError
	for _, m := range to {
		if err := p.sendErr[m.Key()]; err != nil {
			failed = append(failed, MemberError{Member: m, Err: err})
			continue
		}
		p.sent[m.Key()]++
	}
	if failed != nil {
		return &SendError{Failed: failed}
	}
	return nil
}

func (p *probeTransport) Probe(ctx context.Context, m *Member, cfg ProbeConfig) error {
	if p.gate != nil {
		select {
		case <-p.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.listening[m.AddrPort()] {
		return fmt.Errorf("probe %v: %w", m.AddrPort(), errProbeRefused)
	}
	return nil
}

// open lets every probe through from now on.
func (p *probeTransport) open() {
	if p.gate != nil {
		p.openGate.Do(func() { close(p.gate) })
	}
}

func (p *probeTransport) listen(m *Member, on bool) {
	p.mu.Lock()
	p.listening[m.AddrPort()] = on
	p.mu.Unlock()
}

func (p *probeTransport) failSends(m *Member, err error) {
	p.mu.Lock()
	p.sendErr[m.Key()] = err
	p.mu.Unlock()
}

func (p *probeTransport) sentTo(m *Member) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent[m.Key()]
}

// fdNode is a channel whose only interceptor is a failure detector with
// the default timeouts, over a probeTransport and a fakeMembership. It must
// be created inside a synctest bubble.
type fdNode struct {
	ch *Channel
	fd *FailureDetector
	tr *probeTransport
	mb *fakeMembership
	ev *events
}

func newFDNode(t *testing.T, gated bool) *fdNode {
	t.Helper()
	n := &fdNode{fd: NewFailureDetector(FailureDetectorConfig{}), tr: newProbeTransport(), mb: newFakeMembership()}
	if gated {
		n.tr.gate = make(chan struct{})
	}
	ch, err := New(Config{Transport: n.tr, Membership: n.mb, Interceptors: []Interceptor{n.fd}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.tr.open() // release the probes still waiting
		ch.Stop(context.Background())
	})
	n.ch, n.ev = ch, newEvents(ch)
	return n
}

// admit reports m and lets its admission probe through.
func (n *fdNode) admit(t *testing.T, m *Member) {
	t.Helper()
	n.tr.listen(m, true)
	n.mb.emit(MemberAdded, m)
	if n.tr.gate != nil {
		n.tr.gate <- struct{}{}
	}
	synctest.Wait()
	select {
	case got := <-n.ev.added:
		if got.Key() != m.Key() {
			t.Fatalf("added %v, want %v", got, m)
		}
	default:
		t.Fatalf("%v not admitted", m)
	}
}

// outlastSuspects lets RemoveSuspectsTimeout and a few heartbeats pass.
func outlastSuspects() {
	time.Sleep(DefaultRemoveSuspectsTimeout + 3*DefaultHeartbeatInterval)
	synctest.Wait()
}

// members returns the keys of the members the channel sees.
func (n *fdNode) members() []MemberKey {
	var ks []MemberKey
	for _, m := range n.ch.Members() {
		ks = append(ks, m.Key())
	}
	return ks
}

func keys(ms ...*Member) []MemberKey {
	var ks []MemberKey
	for _, m := range ms {
		ks = append(ks, m.Key())
	}
	return ks
}

func (n *fdNode) noneGone(t *testing.T) {
	t.Helper()
	select {
	case m := <-n.ev.gone:
		t.Fatalf("%v reported gone", m)
	default:
	}
}

// TestFailureDetectorKeepsLiveMemberAfterFailedSend: a send that fails
// with something other than a FAIL_ACK (an ACK timeout from a slow peer)
// to a member whose port answers and that the membership still holds
// leaves it a plain member, as Tribes' memberAlive check does: not a
// suspect, so RemoveSuspectsTimeout does not drop it.
func TestFailureDetectorKeepsLiveMemberAfterFailedSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newFDNode(t, false)
		b := testMember(4001)
		a.admit(t, b)
		a.tr.failSends(b, ErrAckTimeout)
		if err := a.ch.Send(t.Context(), nil, []byte("slow"), OptUseAck|OptSynchronizedAck); !errors.Is(err, ErrAckTimeout) {
			t.Fatalf("send: %v, want ErrAckTimeout", err)
		}
		synctest.Wait()
		if st := a.fd.Stats(); st.Probes != 2 || st.Suspects != 0 {
			t.Errorf("stats after the failed send %+v, want 2 probes (admission, send failure) and no suspect", st)
		}
		a.tr.failSends(b, nil)
		outlastSuspects()
		a.noneGone(t)
		if got := a.members(); !slices.Equal(got, keys(b)) {
			t.Fatalf("members %v, want B", got)
		}
	})
}

// TestFailureDetectorSuspectsMemberExpiringDuringSendProbe: the
// membership drops a member while the probe of a failed send to it runs
// (the expiry starts no probe of its own): the probe's success makes it a
// suspect, removed after RemoveSuspectsTimeout.
func TestFailureDetectorSuspectsMemberExpiringDuringSendProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newFDNode(t, true)
		b := testMember(4001)
		a.admit(t, b)
		a.tr.failSends(b, ErrAckTimeout)
		a.ch.Send(t.Context(), nil, []byte("slow"), OptUseAck)
		a.mb.emit(MemberDisappeared, b) // heartbeats expired; the send's probe still waits
		a.tr.gate <- struct{}{}
		synctest.Wait()
		if st := a.fd.Stats(); st.Suspects != 1 {
			t.Fatalf("stats %+v, want one suspect", st)
		}
		a.noneGone(t)
		a.tr.open()
		outlastSuspects()
		select {
		case m := <-a.ev.gone:
			if m.Key() != b.Key() {
				t.Fatalf("gone: %v", m)
			}
		default:
			t.Fatal("suspect kept past RemoveSuspectsTimeout")
		}
	})
}

// TestFailureDetectorMemberHeardAgainDuringExpiryProbe: heartbeats expire,
// the probe starts, the member is heard again, then the probe succeeds:
// the newer membership event wins and the member is no suspect.
func TestFailureDetectorMemberHeardAgainDuringExpiryProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newFDNode(t, true)
		b := testMember(4001)
		a.admit(t, b)
		a.mb.emit(MemberDisappeared, b) // the expiry probe waits at the gate
		a.mb.emit(MemberAdded, b)       // heard again
		a.tr.gate <- struct{}{}
		synctest.Wait()
		if st := a.fd.Stats(); st.Suspects != 0 {
			t.Errorf("stats %+v, want no suspect", st)
		}
		a.tr.open()
		outlastSuspects()
		a.noneGone(t)
		if got := a.members(); !slices.Equal(got, keys(b)) {
			t.Fatalf("members %v, want B", got)
		}
	})
}

// TestFailureDetectorDropsIdentityReplacedOnSameAddress: a member restarts
// on the same host and port with a new unique id. When the old identity's
// heartbeats expire, its address answers the probe (the new process), but
// it must not stay as a suspect: every broadcast would reach the new
// process twice. It is dropped as soon as both its expiry and another live
// identity at its address are known, in either order. (Tribes keeps it as
// a suspect.)
func TestFailureDetectorDropsIdentityReplacedOnSameAddress(t *testing.T) {
	for _, tc := range []struct {
		name         string
		expiresFirst bool
	}{
		{"new identity admitted, then old one expires", false},
		{"old identity expires, then new one admitted", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a := newFDNode(t, false)
				old := testMember(4001)
				a.admit(t, old)
				restarted := testMember(4001) // same address, new id
				if tc.expiresFirst {
					a.mb.emit(MemberDisappeared, old)
					synctest.Wait()
					a.admit(t, restarted)
				} else {
					a.admit(t, restarted)
					a.mb.emit(MemberDisappeared, old)
					synctest.Wait()
				}
				select {
				case m := <-a.ev.gone:
					if m.Key() != old.Key() {
						t.Fatalf("gone: %v, want the old identity", m)
					}
				default:
					t.Errorf("old identity not dropped (stats %+v)", a.fd.Stats())
				}
				if got := a.members(); !slices.Equal(got, keys(restarted)) {
					t.Errorf("members %v, want only the restarted identity", got)
				}
				if err := a.ch.Send(t.Context(), nil, []byte("x"), OptUseAck); err != nil {
					t.Fatal(err)
				}
				if n := a.tr.sentTo(old); n != 0 {
					t.Errorf("one broadcast sent %d times to the old identity (the restarted process)", n)
				}
			})
		})
	}
}
