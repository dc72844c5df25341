package interceptors_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
)

// staticPair builds two stopped nodes that list each other as static
// members, each with a failure detector above its StaticMembership (and a
// TCPPing on top, so that pings are consumed).
type staticPair struct {
	net    *memNet
	a, b   *node
	sa, sb *interceptors.StaticMembership
}

func newStaticPair(t *testing.T, mutateA func(*interceptors.StaticMembershipConfig)) *staticPair {
	t.Helper()
	net := newMemNet()
	idA, idB := tribes.UniqueID{0xa}, tribes.UniqueID{0xb}
	// memNet hands out 10.0.0.1 then 10.0.0.2.
	recA := &tribes.Member{Host: hostOf(1), Port: 4000, SecurePort: -1, UDPPort: -1, UniqueID: idA}
	recB := &tribes.Member{Host: hostOf(2), Port: 4000, SecurePort: -1, UDPPort: -1, UniqueID: idB}

	cfgA := interceptors.StaticMembershipConfig{Members: []*tribes.Member{recB, recA}} // the local entry is skipped
	if mutateA != nil {
		mutateA(&cfgA)
	}
	sa, err := interceptors.NewStaticMembership(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := interceptors.NewStaticMembership(interceptors.StaticMembershipConfig{Members: []*tribes.Member{recA}})
	if err != nil {
		t.Fatal(err)
	}
	stack := func(s *interceptors.StaticMembership) []tribes.Interceptor {
		return []tribes.Interceptor{interceptors.NewTCPPing(interceptors.TCPPingConfig{}),
			tribes.NewFailureDetector(tribes.FailureDetectorConfig{}), s}
	}
	p := &staticPair{net: net, sa: sa, sb: sb}
	p.a = newStoppedNode(t, net, func(c *tribes.Config) { c.UniqueID = idA }, stack(sa)...)
	p.b = newStoppedNode(t, net, func(c *tribes.Config) { c.UniqueID = idB }, stack(sb)...)
	if p.a.tr.addr.Addr() != recA.Host || p.b.tr.addr.Addr() != recB.Host {
		t.Fatal("memNet addresses changed")
	}
	return p
}

func TestStaticMembershipJoinAndLeave(t *testing.T) {
	p := newStaticPair(t, nil)
	tapB := tapOf(p.b.tr)
	p.a.start(t)
	recB := p.sa.StaticMembers()[0]
	if len(p.sa.StaticMembers()) != 1 {
		t.Fatalf("A's static members %v: the local entry was not skipped", p.sa.StaticMembers())
	}
	// B is down: A's failure detector holds it back.
	noMember(t, p.a.added, 50*time.Millisecond, "B before it listens")

	p.b.start(t)
	// B reports A at once (A answers its probe) and announces itself;
	// A's MEMBER_START handling or its heartbeat re-probe admits B.
	waitMember(t, p.b.added, p.a.local(), "B sees A")
	waitMember(t, p.a.added, recB, "A sees B")

	var start *tribes.Message
	for _, w := range tapB.all() {
		if string(w.Data) == interceptors.MemberStart {
			start = w
		}
	}
	if start == nil {
		t.Fatal("B sent no MEMBER_START")
	}
	if len(start.Data) != 36 || start.Options != 0 || start.Source.UniqueID != (tribes.UniqueID{0xb}) {
		t.Fatalf("MEMBER_START: %d bytes, options %v, source %v", len(start.Data), start.Options, start.Source)
	}
	if s := p.sa.Stats(); s.StartsReceived != 1 {
		t.Fatalf("A stats %+v", s)
	}
	if got := p.a.received(); len(got) != 0 {
		t.Fatalf("control messages reached A's listeners: %q", got)
	}

	// B stops: A drops it at once, without probing (BABY-ALEX).
	tapB.clear()
	if err := p.b.ch.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	gone := waitMember(t, p.a.gone, recB, "A drops B")
	if !gone.IsShutdown() {
		t.Fatalf("departure %v does not carry BABY-ALEX", gone)
	}
	var stop *tribes.Message
	for _, w := range tapB.all() {
		if string(w.Data) == interceptors.MemberStop {
			stop = w
		}
	}
	if stop == nil || len(stop.Data) != 32 {
		t.Fatalf("B sent no 32-byte MEMBER_STOP: %v", tapB.all())
	}
	if ms := p.sa.Members(); slices.ContainsFunc(ms, func(m *tribes.Member) bool { return m.Key() == recB.Key() }) {
		t.Fatalf("A's static view still holds B after MEMBER_STOP: %v", ms)
	}
}

func TestStaticMembershipFindsReturningMember(t *testing.T) {
	p := newStaticPair(t, nil)
	p.a.start(t)
	p.b.start(t)
	recB := p.sa.StaticMembers()[0]
	waitMember(t, p.a.added, recB, "A sees B")
	// B crashes: no MEMBER_STOP; A's next send fails and the failure
	// detector's probe removes B.
	p.b.tr.Close()
	if err := p.a.send(t, []byte("x"), tribes.OptUseAck, recB); err == nil {
		t.Fatal("send to a crashed member succeeded")
	}
	waitMember(t, p.a.gone, recB, "A drops the crashed B")
	// B comes back without announcing itself (it still counts A as a
	// member): A's heartbeat re-reports the static member, which is probed
	// and admitted.
	p.b.tr.reopen()
	p.a.heartbeat()
	waitMember(t, p.a.added, recB, "A finds B again")
}

func TestStaticMembershipLocalMember(t *testing.T) {
	var logs bytes.Buffer
	p := newStaticPair(t, func(c *interceptors.StaticMembershipConfig) {
		c.LocalMember = &tribes.Member{UniqueID: tribes.UniqueID{0xa}, Domain: []byte("dom")}
		c.Logger = textLogger(&logs)
	})
	p.a.start(t)
	if l := p.a.tr.Local(); string(l.Domain) != "dom" || l.UniqueID != (tribes.UniqueID{0xa}) {
		t.Fatalf("record sent with messages: %v", l)
	}
	if !bytes.Contains(logs.Bytes(), []byte("differs from the channel")) {
		t.Fatalf("no warning about the differing record: %s", logs.String())
	}
}

func TestStaticMembershipUnknownAndPassThrough(t *testing.T) {
	p := newStaticPair(t, nil)
	p.a.start(t)
	stranger := newNode(t, p.net, nil).local() // listens, but is not configured
	p.a.tr.inject(msgFrom(stranger, 0, []byte(interceptors.MemberStart)))
	noMember(t, p.a.added, 50*time.Millisecond, "stranger")
	if s := p.sa.Stats(); s.Unknown != 1 {
		t.Fatalf("stats %+v", s)
	}
	// A member the membership knows may announce itself too.
	p.a.see(stranger)
	waitMember(t, p.a.added, stranger, "membership member")
	p.a.tr.inject(msgFrom(stranger, 0, []byte(interceptors.MemberStop)))
	gone := waitMember(t, p.a.gone, stranger, "membership member stops")
	if !gone.IsShutdown() {
		t.Fatal("no BABY-ALEX")
	}
	// Anything else passes up.
	p.a.tr.inject(msgFrom(stranger, 0, []byte("Local StaticMember Notification Dat")))
	if got := p.a.received(); len(got) != 1 {
		t.Fatalf("received %q", got)
	}
}

func TestStaticMembershipConfigErrors(t *testing.T) {
	m := &tribes.Member{Host: hostOf(1), Port: 4000, SecurePort: -1, UDPPort: -1}
	tests := []struct {
		name    string
		members []*tribes.Member
	}{
		{"nil member", []*tribes.Member{nil}},
		{"no host", []*tribes.Member{{Port: 4000}}},
		{"bad port", []*tribes.Member{{Host: hostOf(1), Port: 70000, SecurePort: -1, UDPPort: -1}}},
		{"duplicate", []*tribes.Member{m, m.Clone()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := interceptors.NewStaticMembership(interceptors.StaticMembershipConfig{Members: tc.members}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
