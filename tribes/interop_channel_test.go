package tribes

// Channel-level wire interop with a real Apache Tribes 10.1 node (spec
// section 14, scenarios 1-5, 11-14): a Go Channel (multicast membership,
// MessageDispatcher, FailureDetector, NioTransport) and a Java GroupChannel
// (McastService, MessageDispatchInterceptor, TcpFailureDetector) find each
// other through heartbeats, probe each other, exchange messages, leave and
// crash. The Java node is the TribesPeer harness of package interop, run by
// interop/javapeer.
//
// Both sides use a multicast group and port of the test's own
// (239.255.x.y, port 45000..54999) on the loopback interface: the Go side
// binds 127.0.0.1 with TTL 0, the Java side bind=127.0.0.1 and ttl=0 under
// -Djava.net.preferIPv4Stack=true. Nothing is multicast on a real
// interface. Both sides run Tomcat's membership timing: a heartbeat every
// 500 ms, members dropped after 3 s of silence.
//
// The tests skip under -short, when java, javac or the Tribes jars are
// missing, and when multicast on lo does not work here. They assert
// behaviour; the latencies they observe are logged, not asserted.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/interop/javapeer"
)

// Tomcat's membership timing, used on both sides.
const (
	chanFrequency = 500 * time.Millisecond
	chanDropTime  = 3 * time.Second
	// chanJoinWait bounds a join: one heartbeat, a probe, and when the
	// first probe fails one TcpFailureDetector retry (channel heartbeat,
	// 5 s) with room to spare.
	chanJoinWait = 20 * time.Second
)

// chanEnv is one test's multicast group and Java toolchain.
type chanEnv struct {
	t  *testing.T
	tc *javapeer.Toolchain
	mc McastConfig // the Go side's membership configuration
}

// newChanEnv skips the test unless it can start a JVM running Tribes and
// multicast works on lo, and picks a group and port for the test.
func newChanEnv(t *testing.T) *chanEnv {
	t.Helper()
	tc := interopToolchain(t)
	mc := LocalMcastConfig()
	mc.Address = fmt.Sprintf("239.255.%d.%d", 1+rand.IntN(254), 1+rand.IntN(254))
	mc.Port = 45000 + rand.IntN(10000)
	mc.Frequency = chanFrequency
	mc.DropTime = chanDropTime
	mcProbeOnce.Do(func() { mcProbeErr = mcProbeLoopback(mc) })
	if mcProbeErr != nil {
		t.Skipf("interop: multicast on lo does not work here: %v", mcProbeErr)
	}
	if mc.Bind != "127.0.0.1" || mc.TTL != 0 {
		t.Fatal("interop tests must multicast on lo only (bind 127.0.0.1, TTL 0)")
	}
	t.Logf("multicast group %s:%d on lo", mc.Address, mc.Port)
	return &chanEnv{t: t, tc: tc, mc: mc}
}

// startJava starts a Java node in the test's group. A nil
// cfg.Interceptors means the default stack (dispatch, TcpFailureDetector).
func (e *chanEnv) startJava(cfg javapeer.Config) *javapeer.Peer {
	e.t.Helper()
	cfg.Toolchain = e.tc
	cfg.Membership = &javapeer.Membership{
		Address: e.mc.Address, Port: e.mc.Port, Bind: "127.0.0.1",
		Frequency: chanFrequency, DropTime: chanDropTime,
	}
	cfg.Properties = append([]javapeer.Property{{Target: "mcast", Name: "ttl", Value: "0"}}, cfg.Properties...)
	if cfg.Interceptors == nil {
		cfg.Interceptors = javapeer.DefaultStack()
	}
	t0 := time.Now()
	p := javapeer.StartT(e.t, cfg)
	e.t.Logf("Java node %v started in %v (Tribes %s, Java %s)", p.Local(), chanSince(t0), p.TribesVersion(), p.JavaVersion())
	return p
}

// chanEvent is a membership event seen by a Go channel's listener.
type chanEvent struct {
	added bool
	m     *Member
	at    time.Time
	taken bool
}

// chanNode is a Go channel with listeners that keep what they get.
type chanNode struct {
	ch   *Channel
	msgs chan Message

	mu     sync.Mutex
	events []*chanEvent
	notify chan struct{}
}

// startGo starts a Go channel in the test's group; mutate may change its
// configuration first. The channel is stopped when the test ends.
func (e *chanEnv) startGo(mutate func(*Config)) *chanNode {
	e.t.Helper()
	cfg := LocalConfig()
	cfg.Mcast = e.mc
	if mutate != nil {
		mutate(&cfg)
	}
	ch, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	n := &chanNode{ch: ch, msgs: make(chan Message, 1024), notify: make(chan struct{}, 1)}
	ch.AddMessageListener(ListenerFunc(func(m *Message) error {
		n.msgs <- Message{Options: m.Options, Timestamp: m.Timestamp, UniqueID: m.UniqueID,
			Source: m.Source.Clone(), Data: bytes.Clone(m.Data)}
		return nil
	}))
	ch.AddMembershipListener(MembershipFuncs{
		Added:       func(m *Member) { n.event(true, m) },
		Disappeared: func(m *Member) { n.event(false, m) },
	})
	if err := ch.Start(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ch.Stop(ctx)
	})
	return n
}

func (n *chanNode) event(added bool, m *Member) {
	n.mu.Lock()
	n.events = append(n.events, &chanEvent{added: added, m: m.Clone(), at: time.Now()})
	n.mu.Unlock()
	select {
	case n.notify <- struct{}{}:
	default:
	}
}

// waitEvent takes the first untaken event of the kind for the member k,
// waiting up to timeout. It fails the test on timeout.
func (n *chanNode) waitEvent(t *testing.T, added bool, k MemberKey, timeout time.Duration) *chanEvent {
	t.Helper()
	if ev := n.tryEvent(added, k, timeout); ev != nil {
		return ev
	}
	what := "MemberDisappeared"
	if added {
		what = "MemberAdded"
	}
	t.Fatalf("Go node %v: no %s for %v within %v; events: %s", n.ch.LocalMember(), what, k, timeout, n.eventLog())
	return nil
}

// tryEvent is waitEvent without failing: nil on timeout.
func (n *chanNode) tryEvent(added bool, k MemberKey, timeout time.Duration) *chanEvent {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		n.mu.Lock()
		for _, ev := range n.events {
			if !ev.taken && ev.added == added && ev.m.Key() == k {
				ev.taken = true
				n.mu.Unlock()
				return ev
			}
		}
		n.mu.Unlock()
		select {
		case <-n.notify:
		case <-deadline.C:
			return nil
		}
	}
}

func (n *chanNode) eventLog() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var b strings.Builder
	for _, ev := range n.events {
		kind := "disappeared"
		if ev.added {
			kind = "added"
		}
		fmt.Fprintf(&b, "[%s %v] ", kind, ev.m)
	}
	return b.String()
}

// waitMessage returns the next message the Go listener got.
func (n *chanNode) waitMessage(t *testing.T) Message {
	t.Helper()
	select {
	case m := <-n.msgs:
		return m
	case <-time.After(interopWait):
		t.Fatalf("the Go listener got no message within %v", interopWait)
		return Message{}
	}
}

func (n *chanNode) expectNoMessage(t *testing.T) {
	t.Helper()
	select {
	case m := <-n.msgs:
		t.Errorf("unexpected message at the Go listener: options %v, %d bytes %.40x from %v", m.Options, len(m.Data), m.Data, m.Source)
	default:
	}
}

func (n *chanNode) mcast() *McastService { return n.ch.Membership().(*McastService) }
func (n *chanNode) receiver() *Receiver  { return n.ch.Transport().(*NioTransport).Receiver() }
func (n *chanNode) detector() *FailureDetector {
	for _, ic := range n.ch.Interceptors() {
		if fd, ok := ic.(*FailureDetector); ok {
			return fd
		}
	}
	return nil
}

// member returns the Go channel's current member with key k, or nil.
func (n *chanNode) member(k MemberKey) *Member {
	for _, m := range n.ch.Members() {
		if m.Key() == k {
			return m
		}
	}
	return nil
}

// crash stops the node as a killed process would stop: no BABY-ALEX, the
// heartbeats stop and the listener closes.
func (n *chanNode) crash(t *testing.T) {
	t.Helper()
	n.stopHeartbeats(t)
	if err := n.ch.Transport().Close(); err != nil {
		t.Fatal(err)
	}
}

// stopHeartbeats stops the multicast membership without the leave
// heartbeat; the listener stays up.
func (n *chanNode) stopHeartbeats(t *testing.T) {
	t.Helper()
	if err := n.mcast().abort(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// javaKey is the identity of a member the Java harness reported.
func javaKey(m javapeer.Member) MemberKey {
	return MemberKey{Host: m.Host, Port: m.Port, ID: UniqueID(m.UniqueID)}
}

// javaWaitAdded waits for Java's memberAdded for want; a memberAdded for
// another member fails the test.
func javaWaitAdded(t *testing.T, p *javapeer.Peer, want *Member, timeout time.Duration) javapeer.Member {
	t.Helper()
	m, err := p.WaitMemberAdded(timeout)
	if err != nil {
		t.Fatalf("Java never added the Go node %v: %v", want, err)
	}
	if !m.Same(peerMember(want)) {
		t.Fatalf("Java added %v, want the Go node %v", m, want)
	}
	return m
}

// javaWatchAdded starts waiting for Java's next memberAdded at once, so
// its time is taken when it happens; the function returned takes the
// result, which must be the member want.
func javaWatchAdded(p *javapeer.Peer) func(t *testing.T, want *Member) (javapeer.Member, time.Time) {
	type added struct {
		m   javapeer.Member
		at  time.Time
		err error
	}
	ch := make(chan added, 1)
	go func() {
		m, err := p.WaitMemberAdded(chanJoinWait)
		ch <- added{m, time.Now(), err}
	}()
	return func(t *testing.T, want *Member) (javapeer.Member, time.Time) {
		t.Helper()
		a := <-ch
		if a.err != nil {
			t.Fatalf("Java never added the Go node %v: %v", want, a.err)
		}
		if !a.m.Same(peerMember(want)) {
			t.Fatalf("Java added %v, want the Go node %v", a.m, want)
		}
		return a.m, a.at
	}
}

// javaWaitGone waits for Java's memberDisappeared for want.
func javaWaitGone(t *testing.T, p *javapeer.Peer, want *Member, timeout time.Duration) javapeer.Member {
	t.Helper()
	m, err := p.WaitMemberDisappeared(timeout)
	if err != nil {
		t.Fatalf("Java never removed the Go node %v: %v", want, err)
	}
	if !m.Same(peerMember(want)) {
		t.Fatalf("Java removed %v, want the Go node %v", m, want)
	}
	return m
}

// javaHas reports whether the Java channel lists m as a member.
func javaHas(t *testing.T, p *javapeer.Peer, m *Member) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), interopWait)
	defer cancel()
	ms, err := p.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(ms, func(x javapeer.Member) bool { return x.Same(peerMember(m)) })
}

// checkJavaRecord checks the fields of the Java node's member record as
// the Go side decoded them from its heartbeats.
func checkJavaRecord(t *testing.T, m *Member, p *javapeer.Peer, domain string) {
	t.Helper()
	if m.Key() != javaKey(p.Local()) {
		t.Errorf("member %v, want the Java node %v", m, p.Local())
	}
	if m.SecurePort != -1 || m.UDPPort != -1 || len(m.Command) != 0 || string(m.Domain) != domain || len(m.Payload) != 0 {
		t.Errorf("Java's record decoded as %+v: want securePort/udpPort -1, no command, domain %q, no payload", m, domain)
	}
}

// checkGoRecord checks the Go node's record as Java decoded it.
func checkGoRecord(t *testing.T, m javapeer.Member, domain string) {
	t.Helper()
	if m.SecurePort != -1 || m.UDPPort != -1 || m.Command != "" || m.Domain != domain || len(m.Payload) != 0 || m.Alive < 0 {
		t.Errorf("Java decoded the Go record as %+v: want securePort/udpPort -1, no command, domain %q, no payload, alive >= 0", m, domain)
	}
}

// javaDrainProbes takes the messages the Java channel dropped so far: each
// must be a TcpFailureDetector probe from the Go member from (options 1,
// the TCP_FAIL_DETECT payload). It returns how many there were.
func javaDrainProbes(t *testing.T, p *javapeer.Peer, from *Member) int {
	t.Helper()
	n := 0
	for {
		d, ok := p.TryDropped()
		if !ok {
			return n
		}
		if d.WireOptions != uint32(OptByteMessage) || !bytes.Equal(d.WirePayload, tcpFailDetect[:]) || !d.Source.Same(peerMember(from)) {
			t.Errorf("Java dropped a message that is not a probe from %v: options %d, %x from %v", from, d.WireOptions, d.WirePayload, d.Source)
			continue
		}
		n++
	}
}

// javaWaitDroppedMessage returns the next message the Java channel
// dropped that is not a failure-detector probe.
func javaWaitDroppedMessage(t *testing.T, p *javapeer.Peer) javapeer.Message {
	t.Helper()
	deadline := time.Now().Add(interopWait)
	for {
		d, err := p.WaitDropped(time.Until(deadline))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(d.WirePayload, tcpFailDetect[:]) {
			return d
		}
	}
}

func chanSince(t0 time.Time) time.Duration { return time.Since(t0).Round(time.Millisecond) }

// TestInteropChannelJava runs one Go channel against one Java channel in a
// multicast group: heartbeats and join both ways (§14.1-2), byte messages
// both ways with options 8, 2 and 6 (§14.4-5), multicast messages both
// ways (§14.14), a Go leave, a Go rejoin and a Java leave (§14.11).
func TestInteropChannelJava(t *testing.T) {
	e := newChanEnv(t)
	java := e.startJava(javapeer.Config{})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	jk := javaKey(java.Local())

	// Scenarios 1 and 2: the Go node starts after Java; each side adds the
	// other once it heard a heartbeat and its probe connected.
	t0 := time.Now()
	javaSaw := javaWatchAdded(java)
	goNode := e.startGo(nil)
	local := goNode.ch.LocalMember()
	ev := goNode.waitEvent(t, true, jk, chanJoinWait)
	t.Logf("join: Go saw Java %v after the Go channel's Start", ev.at.Sub(t0).Round(time.Millisecond))
	checkJavaRecord(t, ev.m, java, "")
	jm, at := javaSaw(t, local)
	t.Logf("join: Java saw Go %v after the Go channel's Start", at.Sub(t0).Round(time.Millisecond))
	checkGoRecord(t, jm, "")
	if !javaHas(t, java, local) {
		t.Errorf("Java's members do not list the Go node")
	}

	t.Run("heartbeats", func(t *testing.T) {
		// §14.1: Java's heartbeats decode (none malformed), come about
		// twice a second with a growing alive and a stable unique id;
		// Go ignores its own looped-back heartbeats.
		ms := goNode.mcast()
		first := goNode.mcast().Members()
		st0 := ms.Stats()
		// Meanwhile a plain group socket captures 2 s of datagrams: only
		// the two nodes' heartbeats, each one 77-byte record (IPv4, empty
		// command, domain and payload), alive growing.
		type beat struct {
			size  int
			alive int64
		}
		beats := map[MemberKey][]beat{}
		raw, err := listenMcast(t.Context(), &ms.cfg, ms.group)
		if err != nil {
			t.Fatal(err)
		}
		u := raw.(*udpMcast)
		buf := make([]byte, MaxDatagramSize+1)
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
			u.c.SetReadDeadline(end)
			k, err := u.c.Read(buf)
			if err != nil {
				break
			}
			var m Member
			n, err := decodeMember(buf[:k], &m)
			if err != nil || n != k {
				t.Errorf("a %d-byte datagram on the group is not exactly one member record (%d bytes decoded): %v", k, n, err)
				continue
			}
			beats[m.Key()] = append(beats[m.Key()], beat{k, m.Alive})
		}
		raw.close()
		st1 := ms.Stats()
		for key, bs := range beats {
			who := "Java"
			switch key {
			case jk:
			case local.Key():
				who = "Go"
			default:
				t.Errorf("heartbeats from an unknown member %v", key)
			}
			t.Logf("captured %d heartbeats from %s: %v", len(bs), who, bs)
			for i, b := range bs {
				if b.size != 77 {
					t.Errorf("%s heartbeat of %d bytes, want 77", who, b.size)
				}
				if i > 0 && b.alive <= bs[i-1].alive {
					t.Errorf("%s heartbeat alive went from %d to %d", who, bs[i-1].alive, b.alive)
				}
			}
		}
		if len(beats[jk]) < 2 || len(beats[local.Key()]) < 2 {
			t.Errorf("captured %d Java and %d Go heartbeats in 2 s, want at least 2 each", len(beats[jk]), len(beats[local.Key()]))
		}
		second := ms.Members()
		if len(first) != 1 || len(second) != 1 || first[0].Key() != jk || second[0].Key() != jk {
			t.Fatalf("membership %v then %v, want only the Java node %v", first, second, java.Local())
		}
		if second[0].Alive <= first[0].Alive {
			t.Errorf("Java's alive went from %d to %d ms", first[0].Alive, second[0].Alive)
		}
		javaBeats := (st1.HeartbeatsReceived - st1.OwnHeartbeats) - (st0.HeartbeatsReceived - st0.OwnHeartbeats)
		t.Logf("heartbeats: %d from Java in 2 s (alive %d -> %d ms), %d of our own came back, %d sent",
			javaBeats, first[0].Alive, second[0].Alive, st1.OwnHeartbeats-st0.OwnHeartbeats, st1.HeartbeatsSent-st0.HeartbeatsSent)
		if javaBeats == 0 || st1.OwnHeartbeats == st0.OwnHeartbeats {
			t.Errorf("stats %+v -> %+v: want heartbeats from Java and our own looped back", st0, st1)
		}
		if st1.Malformed != 0 || st1.MembersExpired != 0 || st1.MembersLeft != 0 {
			t.Errorf("membership stats %+v", st1)
		}
		for _, m := range goNode.ch.Members() {
			if m.Key() == local.Key() {
				t.Errorf("the Go channel lists itself")
			}
		}
		// Java's probe reached the Go receiver and went no further.
		if p := goNode.receiver().Stats().Probes; p == 0 {
			t.Errorf("the Go receiver saw no TcpFailureDetector probe from Java")
		}
		if fd := goNode.detector().Stats(); fd.Probes == 0 || fd.ProbeFailures != 0 {
			t.Errorf("Go failure detector %+v: want probes of Java, none failed", fd)
		}
		// Go's probe of Java reached Java's channel as spec §9 says (one
		// frame, options 1, TCP_FAIL_DETECT) and its detector dropped it.
		if n := javaDrainProbes(t, java, local); n == 0 {
			t.Errorf("Java saw no probe from the Go node")
		}
		goNode.expectNoMessage(t)
	})

	javaM := goNode.member(jk)
	if javaM == nil {
		t.Fatalf("the Go channel's members %v lack the Java node", goNode.ch.Members())
	}
	for _, tc := range []struct {
		name    string
		opts    Options
		wire    Options
		goAcks  int64 // ACKs the Go receiver writes for Java's message
		isAsync bool
	}{
		{"options 8 async", OptAsynchronous, OptByteMessage | OptAsynchronous, 0, true},
		{"options 2 use_ack", OptUseAck, OptByteMessage | OptUseAck, 1, false},
		{"options 6 sync ack", OptUseAck | OptSynchronizedAck, OptByteMessage | OptUseAck | OptSynchronizedAck, 1, false},
	} {
		t.Run("go to java "+tc.name, func(t *testing.T) {
			// §14.5 through the channels: Go's stack and Java's stack.
			payload := binaryPayload("go->java " + tc.name)
			t0 := time.Now()
			if err := goNode.ch.Send(ctx, []*Member{javaM}, payload, tc.opts); err != nil {
				t.Fatal(err)
			}
			sent := chanSince(t0)
			m, err := java.WaitMessage(interopWait)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("Send returned after %v, Java's listener had it after %v", sent, chanSince(t0))
			if m.Kind != "bytes" || !m.Is(payload) {
				t.Errorf("Java got %s %x, want the bytes %x", m.Kind, m.Payload, payload)
			}
			if m.Options != uint32(tc.wire) || m.WireOptions != uint32(tc.wire) {
				t.Errorf("Java saw options %d (wire %d), want %d", m.Options, m.WireOptions, tc.wire)
			}
			if !m.Source.Same(peerMember(local)) {
				t.Errorf("Java saw source %v, want the Go node %v", m.Source, local)
			}
		})
		t.Run("java to go "+tc.name, func(t *testing.T) {
			// §14.4 through the channels.
			payload := binaryPayload("java->go " + tc.name)
			before := goNode.receiver().Stats()
			t0 := time.Now()
			res, err := java.Send(ctx, peerMember(local), uint32(tc.opts), javapeer.Bytes(payload))
			if err != nil || !res.OK {
				t.Fatalf("Java's send: %+v, %v", res, err)
			}
			if tc.isAsync {
				if ar, err := java.WaitAsync(ctx, res.Cmd); err != nil || !ar.OK {
					t.Fatalf("Java's asynchronous send: %+v, %v", ar, err)
				}
			}
			m := goNode.waitMessage(t)
			t.Logf("Java's send and the Go listener done after %v", chanSince(t0))
			if !bytes.Equal(m.Data, payload) || m.Options != tc.wire {
				t.Errorf("Go got options %v %x, want %v %x", m.Options, m.Data, tc.wire, payload)
			}
			if !bytes.Equal(m.UniqueID[:], res.MsgID) {
				t.Errorf("message id %x, Java sent %x", m.UniqueID[:], res.MsgID)
			}
			checkSourceIsJava(t, &m, java)
			after := goNode.receiver().Stats()
			if got := after.Acks - before.Acks; got != tc.goAcks {
				t.Errorf("the Go receiver wrote %d ACKs, want %d", got, tc.goAcks)
			}
			if after.FailAcks != before.FailAcks || after.BadFrames != before.BadFrames {
				t.Errorf("receiver stats moved: %+v -> %+v", before, after)
			}
		})
	}

	t.Run("java multicast to go", func(t *testing.T) {
		// §14.14: option 0x40 goes as a datagram to the group; Go's
		// listener gets it from the group socket, and nothing is ACKed.
		payload := []byte("java multicast message")
		beforeR, beforeM := goNode.receiver().Stats(), goNode.mcast().Stats()
		res, err := java.Send(ctx, peerMember(local), uint32(OptMulticast), javapeer.Bytes(payload))
		if err != nil || !res.OK {
			t.Fatalf("Java's send: %+v, %v", res, err)
		}
		m := goNode.waitMessage(t)
		if !bytes.Equal(m.Data, payload) || m.Options != OptByteMessage|OptMulticast {
			t.Errorf("Go got options %v %q, want %v %q", m.Options, m.Data, OptByteMessage|OptMulticast, payload)
		}
		checkSourceIsJava(t, &m, java)
		if !bytes.Equal(m.UniqueID[:], res.MsgID) {
			t.Errorf("message id %x, Java sent %x", m.UniqueID[:], res.MsgID)
		}
		afterR, afterM := goNode.receiver().Stats(), goNode.mcast().Stats()
		if afterR.Messages != beforeR.Messages || afterR.Acks != beforeR.Acks {
			t.Errorf("the multicast message went through the TCP receiver: %+v -> %+v", beforeR, afterR)
		}
		if afterM.Messages != beforeM.Messages+1 || afterM.Malformed != 0 {
			t.Errorf("multicast stats %+v -> %+v, want one message", beforeM, afterM)
		}
	})

	t.Run("go multicast to java", func(t *testing.T) {
		payload := []byte("go multicast message")
		if err := goNode.ch.Send(ctx, nil, payload, OptMulticast); err != nil {
			t.Fatal(err)
		}
		m, err := java.WaitMessage(interopWait)
		if err != nil {
			t.Fatal(err)
		}
		want := uint32(OptByteMessage | OptMulticast)
		if m.Kind != "bytes" || !m.Is(payload) || m.Options != want || m.WireOptions != want {
			t.Errorf("Java got %s %q options %d (wire %d), want the bytes %q with %d", m.Kind, m.Payload, m.Options, m.WireOptions, payload, want)
		}
		if !m.Source.Same(peerMember(local)) {
			t.Errorf("Java saw source %v, want the Go node %v", m.Source, local)
		}
		if st := goNode.mcast().Stats(); st.OwnMessages == 0 {
			t.Logf("our own multicast message did not come back (loopback): stats %+v", st)
		}
		goNode.expectNoMessage(t)
	})

	if m, ok := java.TryMessage(); ok {
		t.Errorf("Java got an unexpected message %+v", m)
	}
	javaDrainProbes(t, java, local)
	if s := java.Stderr(); strings.Contains(s, "SEVERE") {
		t.Errorf("Java logged errors:\n%s", s)
	}

	// §14.11, Go leaves: Stop sends BABY-ALEX and closes the listener;
	// Java removes the member at once, without waiting for the drop time.
	t.Run("go leaves", func(t *testing.T) {
		t0 := time.Now()
		if err := goNode.ch.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		gone := javaWaitGone(t, java, local, chanJoinWait)
		lat := chanSince(t0)
		t.Logf("leave: Java's memberDisappeared %v after the Go channel's Stop (record command %q)", lat, gone.Command)
		if lat >= chanDropTime {
			t.Errorf("Java took %v to see the Go node leave: that is expiry (drop time %v), not BABY-ALEX", lat, chanDropTime)
		}
		if javaHas(t, java, local) {
			t.Errorf("Java still lists the Go node after it left")
		}
	})

	// A new Go node (fresh unique id) joins the same Java node, then
	// §14.11 the other way: Java stops, Go removes it on its BABY-ALEX.
	t.Run("java leaves", func(t *testing.T) {
		t0 := time.Now()
		javaSaw := javaWatchAdded(java)
		second := e.startGo(nil)
		ev := second.waitEvent(t, true, jk, chanJoinWait)
		_, at := javaSaw(t, second.ch.LocalMember())
		t.Logf("rejoin: a second Go node saw Java after %v, Java saw it after %v", ev.at.Sub(t0).Round(time.Millisecond), at.Sub(t0).Round(time.Millisecond))
		if second.ch.LocalMember().UniqueID == local.UniqueID {
			t.Fatal("the second Go node reuses the first one's unique id")
		}
		before := second.mcast().Stats()
		t0 = time.Now()
		if err := java.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		stopped := chanSince(t0)
		gone := second.waitEvent(t, false, jk, chanJoinWait)
		lat := gone.at.Sub(t0).Round(time.Millisecond)
		t.Logf("leave: Go's MemberDisappeared %v after Java's stop command (the JVM exited after %v)", lat, stopped)
		if !gone.m.IsShutdown() {
			t.Errorf("Go removed Java with command %q, want %q (its BABY-ALEX heartbeat)", gone.m.Command, ShutdownCommand)
		}
		after := second.mcast().Stats()
		if after.MembersLeft != before.MembersLeft+1 || after.MembersExpired != before.MembersExpired {
			t.Errorf("membership stats %+v -> %+v: want one leave, no expiry", before, after)
		}
		if len(second.ch.Members()) != 0 {
			t.Errorf("Go still lists %v", second.ch.Members())
		}
	})
}

// TestInteropChannelJoinWithoutListener: a Go member heartbeats but its
// port refuses connections, so Java's TcpFailureDetector does not add it;
// once a receiver listens there, Java adds it (§14.3).
func TestInteropChannelJoinWithoutListener(t *testing.T) {
	e := newChanEnv(t)
	java := e.startJava(javapeer.Config{})

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	local := &Member{Host: netip.MustParseAddr("127.0.0.1"), Port: port, SecurePort: -1, UDPPort: -1, UniqueID: NewUniqueID()}
	ms, err := NewMcast(e.mc)
	if err != nil {
		t.Fatal(err)
	}
	var sawJava atomic.Bool
	if err := ms.Start(t.Context(), local, func(ev MemberEvent) {
		if ev.Type == MemberAdded && ev.Member.Key() == javaKey(java.Local()) {
			sawJava.Store(true)
		}
	}); err != nil {
		t.Fatal(err)
	}
	defer ms.Stop(context.Background())

	// Java hears the heartbeats, probes, is refused, and does not add us.
	// Wait past Java's first probe and one retry (channel heartbeat 5 s
	// after its start).
	if m, err := java.WaitMemberAdded(6 * time.Second); err == nil {
		t.Fatalf("Java added %v although its port refuses connections", m)
	}
	if javaHas(t, java, local) {
		t.Fatalf("Java lists the Go node although its port refuses connections")
	}
	if !sawJava.Load() {
		t.Errorf("the Go membership never heard Java")
	}

	// Now listen: Java's next probe succeeds and it adds the member.
	t0 := time.Now()
	r, err := NewReceiver(ReceiverConfig{Address: "127.0.0.1", Port: port, AutoBind: 1}, func(*Message) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m := javaWaitAdded(t, java, local, chanJoinWait)
	t.Logf("Java added the Go member %v after its receiver started listening (alive %d ms)", chanSince(t0), m.Alive)
	// Java adds the member once its probe's connect and write succeeded;
	// our receiver may decode the frame a moment later.
	st := r.Stats()
	for deadline := time.Now().Add(3 * time.Second); st.Probes == 0 && time.Now().Before(deadline); st = r.Stats() {
		time.Sleep(10 * time.Millisecond)
	}
	if st.Probes == 0 || st.Connections == 0 || st.Messages != 0 || st.Acks != 0 || st.BadFrames != 0 {
		t.Errorf("receiver stats %+v: want Java's probe (one frame, options 1, no ACK) and nothing else", st)
	}
	t.Logf("Java opened %d connection(s) carrying %d probe(s)", st.Connections, st.Probes)
}

// TestInteropChannelProbeReadTest: with performReadTest the probe asks for
// an ACK and the prober waits for it (§9, §14.2 variant). A Java node
// with TcpFailureDetector performReadTest=true and a Go node whose
// FailureDetector has ReadTest still add each other.
func TestInteropChannelProbeReadTest(t *testing.T) {
	e := newChanEnv(t)
	java := e.startJava(javapeer.Config{Interceptors: []javapeer.Interceptor{
		{Name: javapeer.Dispatch},
		{Name: javapeer.FailureDetector, Props: map[string]string{"performReadTest": "true"}},
	}})
	t0 := time.Now()
	javaSaw := javaWatchAdded(java)
	n := e.startGo(func(c *Config) {
		c.Interceptors = []Interceptor{NewMessageDispatcher(DispatcherConfig{}), NewFailureDetector(FailureDetectorConfig{ReadTest: true})}
	})
	ev := n.waitEvent(t, true, javaKey(java.Local()), chanJoinWait)
	_, at := javaSaw(t, n.ch.LocalMember())
	t.Logf("join with read tests: Go saw Java after %v, Java saw Go after %v", ev.at.Sub(t0).Round(time.Millisecond), at.Sub(t0).Round(time.Millisecond))
	if st := n.receiver().Stats(); st.Probes == 0 || st.Acks < st.Probes || st.Messages != 0 {
		t.Errorf("Go receiver stats %+v: want Java's probes, each ACKed, and no message", st)
	}
	if fd := n.detector().Stats(); fd.Probes == 0 || fd.ProbeFailures != 0 {
		t.Errorf("Go failure detector %+v: want probes of Java (which ACKs them), none failed", fd)
	}
	// Java delivered Go's probe (options 3) to its detector, which dropped it.
	for i := 0; ; i++ {
		d, err := java.WaitDropped(time.Second)
		if err != nil {
			if i == 0 {
				t.Errorf("Java saw no probe from Go: %v", err)
			}
			break
		}
		if d.WireOptions != uint32(OptByteMessage|OptUseAck) || !bytes.Equal(d.WirePayload, tcpFailDetect[:]) {
			t.Errorf("Java dropped options %d %x, want Go's probe with options 3", d.WireOptions, d.WirePayload)
		}
	}
}

// TestInteropChannelCrash: a Java node killed (by its PID) is dropped by
// Go, idle and while Go sends to it; a Go node that crashes is dropped by
// Java, and one whose heartbeats stop while its port still answers is
// kept as a suspect until its port closes (§14.12).
func TestInteropChannelCrash(t *testing.T) {
	e := newChanEnv(t)
	goNode := e.startGo(nil)
	local := goNode.ch.LocalMember()

	t.Run("java killed while idle", func(t *testing.T) {
		java := e.startJava(javapeer.Config{})
		jk := javaKey(java.Local())
		goNode.waitEvent(t, true, jk, chanJoinWait)
		javaWaitAdded(t, java, local, chanJoinWait)
		before := goNode.mcast().Stats()
		t0 := time.Now()
		java.Kill()
		<-java.Done()
		gone := goNode.waitEvent(t, false, jk, chanJoinWait)
		lat := gone.at.Sub(t0).Round(time.Millisecond)
		t.Logf("crash: Go dropped the killed Java node %v after the kill (drop time %v)", lat, chanDropTime)
		if gone.m.IsShutdown() {
			t.Errorf("a killed JVM sent BABY-ALEX?")
		}
		if after := goNode.mcast().Stats(); after.MembersExpired != before.MembersExpired+1 {
			t.Errorf("membership stats %+v -> %+v: want one expiry", before, after)
		}
		if goNode.member(jk) != nil {
			t.Errorf("Go still lists the killed Java node")
		}
	})

	t.Run("java killed while go sends", func(t *testing.T) {
		java := e.startJava(javapeer.Config{})
		jk := javaKey(java.Local())
		goNode.waitEvent(t, true, jk, chanJoinWait)
		javaWaitAdded(t, java, local, chanJoinWait)
		javaM := goNode.member(jk)
		if javaM == nil {
			t.Fatal("Java is not among the Go members")
		}
		stop := make(chan struct{})
		var sent, failed atomic.Int64
		var firstFail atomic.Int64
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := goNode.ch.Send(ctx, []*Member{javaM}, []byte("are you there"), OptUseAck)
				cancel()
				if err != nil {
					failed.Add(1)
					firstFail.CompareAndSwap(0, time.Now().UnixNano())
				} else {
					sent.Add(1)
				}
			}
		})
		defer func() { close(stop); wg.Wait() }()
		time.Sleep(300 * time.Millisecond)
		fdBefore := goNode.detector().Stats()
		t0 := time.Now()
		java.Kill()
		<-java.Done()
		gone := goNode.waitEvent(t, false, jk, chanJoinWait)
		lat := gone.at.Sub(t0).Round(time.Millisecond)
		// The detector may remove the node before the sender's next try
		// (it sends every 20 ms): wait for a try after the removal, which
		// must fail too.
		tries := sent.Load() + failed.Load()
		for deadline := time.Now().Add(5 * time.Second); sent.Load()+failed.Load() == tries && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		var ff time.Duration
		if f := firstFail.Load(); f != 0 {
			ff = time.Unix(0, f).Sub(t0).Round(time.Millisecond)
		}
		fd := goNode.detector().Stats()
		t.Logf("crash: Go dropped the killed Java node %v after the kill while sending (first failed send after %v; %d sends ok, %d failed; detector %+v)",
			lat, ff, sent.Load(), failed.Load(), fd)
		if failed.Load() == 0 {
			t.Errorf("no send to the killed node failed")
		}
		if fd.Removed != fdBefore.Removed+1 {
			t.Errorf("failure detector %+v -> %+v: want the removal to come from the detector", fdBefore, fd)
		}
	})

	t.Run("go crashes", func(t *testing.T) {
		// Two more Go nodes: X crashes outright (heartbeats and listener
		// gone), Y only stops heartbeating (its port still answers).
		java := e.startJava(javapeer.Config{})
		jk := javaKey(java.Local())
		x, y := e.startGo(nil), e.startGo(nil)
		xm, ym := x.ch.LocalMember(), y.ch.LocalMember()
		for _, n := range []*chanNode{x, y} {
			n.waitEvent(t, true, jk, chanJoinWait)
		}
		// Java adds the first Go node (goNode) and both new ones, in any order.
		want := map[MemberKey]bool{local.Key(): true, xm.Key(): true, ym.Key(): true}
		for range want {
			m, err := java.WaitMemberAdded(chanJoinWait)
			if err != nil {
				t.Fatal(err)
			}
			if !want[javaKey(m)] {
				t.Fatalf("Java added %v, not one of the Go nodes or twice", m)
			}
			delete(want, javaKey(m))
		}

		t0 := time.Now()
		x.crash(t)
		y.stopHeartbeats(t)
		gone := javaWaitGone(t, java, xm, chanJoinWait)
		t.Logf("crash: Java dropped the crashed Go node %v after the crash (drop time %v); record command %q", chanSince(t0), chanDropTime, gone.Command)

		// Y's port still answers: Java keeps it as a suspect. Give Java
		// the drop time and a probe plus margin after X went.
		deadline := t0.Add(chanDropTime + 3*time.Second)
		if m, err := java.WaitMemberDisappeared(time.Until(deadline)); err == nil {
			t.Fatalf("Java dropped %v, whose port still answers (heartbeats stopped %v ago)", m, chanSince(t0))
		}
		if !javaHas(t, java, ym) {
			t.Fatalf("Java no longer lists the Go node whose port still answers")
		}
		if !javaHas(t, java, local) {
			t.Fatalf("Java no longer lists the healthy Go node")
		}
		t.Logf("suspect: Java still lists the Go node %v after its heartbeats stopped", chanSince(t0))
		if !strings.Contains(java.Stderr(), "still alive") {
			t.Logf("Java's log does not say the member is still alive")
		}

		// Its port closes: Java's next probe of the suspect fails.
		t1 := time.Now()
		if err := y.ch.Transport().Close(); err != nil {
			t.Fatal(err)
		}
		javaWaitGone(t, java, ym, 30*time.Second)
		t.Logf("suspect: Java dropped the Go node %v after its listener closed", chanSince(t1))
		if !javaHas(t, java, local) {
			t.Errorf("Java no longer lists the healthy Go node")
		}
	})
}

// TestInteropChannelDomain: a Java node with DomainFilterInterceptor
// domain="A" admits a Go node of domain A, and neither reports a Go node of
// domain B as a member nor delivers its messages (§14.13).
func TestInteropChannelDomain(t *testing.T) {
	e := newChanEnv(t)
	java := e.startJava(javapeer.Config{
		Domain: "A",
		Interceptors: []javapeer.Interceptor{
			{Name: javapeer.Dispatch},
			{Name: javapeer.DomainFilter, Props: map[string]string{"domain": "A"}},
			{Name: javapeer.FailureDetector},
		},
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	jk := javaKey(java.Local())
	a := e.startGo(func(c *Config) { c.Domain = []byte("A") })
	b := e.startGo(func(c *Config) { c.Domain = []byte("B") })
	am, bm := a.ch.LocalMember(), b.ch.LocalMember()

	// The Go nodes have no domain filter: both add Java, and its record
	// carries domain A.
	for _, n := range []*chanNode{a, b} {
		ev := n.waitEvent(t, true, jk, chanJoinWait)
		checkJavaRecord(t, ev.m, java, "A")
	}
	jm := javaWaitAdded(t, java, am, chanJoinWait)
	checkGoRecord(t, jm, "A")
	// B was heard (and probed) as long as A: Java must not add it. Wait
	// for one more TcpFailureDetector round.
	if m, err := java.WaitMemberAdded(6 * time.Second); err == nil {
		t.Fatalf("Java added %v (domain %q); only domain A may be admitted", m, m.Domain)
	}
	if !javaHas(t, java, am) || javaHas(t, java, bm) {
		t.Errorf("Java's members: want the domain A node %v and not the domain B node %v", am, bm)
	}

	javaFromA := a.member(jk)
	javaFromB := b.member(jk)
	if javaFromA == nil || javaFromB == nil {
		t.Fatal("a Go node lost the Java member")
	}
	if err := a.ch.Send(ctx, []*Member{javaFromA}, []byte("from A"), OptUseAck|OptSynchronizedAck); err != nil {
		t.Fatal(err)
	}
	m, err := java.WaitMessage(interopWait)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Is([]byte("from A")) || !m.Source.Same(peerMember(am)) {
		t.Errorf("Java got %q from %v, want \"from A\" from %v", m.Payload, m.Source, am)
	}

	// B's message is ACKed (USE_ACK acknowledges on receipt), then dropped
	// by the domain filter.
	if err := b.ch.Send(ctx, []*Member{javaFromB}, []byte("from B"), OptUseAck); err != nil {
		t.Fatalf("Send from the domain B node: %v (Java ACKs before filtering)", err)
	}
	d := javaWaitDroppedMessage(t, java)
	if string(d.WirePayload) != "from B" || !d.Source.Same(peerMember(bm)) || d.Source.Domain != "B" {
		t.Errorf("Java dropped %q from %v (domain %q), want \"from B\" from %v", d.WirePayload, d.Source, d.Source.Domain, bm)
	}
	if m, ok := java.TryMessage(); ok {
		t.Errorf("Java's listener got %q from %v", m.Payload, m.Source)
	}
	a.expectNoMessage(t)
	b.expectNoMessage(t)
}
