package tribes

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// mbMember returns a member at 10.0.0.<n>:4000 with unique id n,n,...
func mbMember(n byte) *Member {
	var id UniqueID
	for i := range id {
		id[i] = n
	}
	return &Member{Host: netip.AddrFrom4([4]byte{10, 0, 0, n}), Port: 4000, SecurePort: -1, UDPPort: -1, UniqueID: id}
}

func TestMemberTable(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(d int) time.Time { return t0.Add(time.Duration(d) * time.Millisecond) }
	with := func(n byte, f func(*Member)) *Member {
		m := mbMember(n)
		f(m)
		return m
	}
	type step struct {
		at     int     // ms after t0
		heard  *Member // record heard at `at`, or nil for an expiry check
		want   heardResult
		expire []byte // for expiry checks: the members (by number) that expire
	}
	tests := []struct {
		name    string
		max     int
		steps   []step
		members []byte // at the end, by number, oldest first
	}{
		{
			name: "new member is added once",
			steps: []step{
				{at: 0, heard: mbMember(1), want: heardAdded},
				{at: 500, heard: with(1, func(m *Member) { m.Alive = 500 }), want: heardRefreshed},
			},
			members: []byte{1},
		},
		{
			name: "payload, command, domain and ports changes are updates",
			steps: []step{
				{at: 0, heard: mbMember(1), want: heardAdded},
				{at: 1, heard: with(1, func(m *Member) { m.Payload = []byte{1} }), want: heardUpdated},
				{at: 2, heard: with(1, func(m *Member) { m.Payload = []byte{1} }), want: heardRefreshed},
				{at: 3, heard: with(1, func(m *Member) { m.Payload = []byte{1}; m.Domain = []byte("d") }), want: heardUpdated},
				{at: 4, heard: with(1, func(m *Member) { m.Payload = []byte{1}; m.Domain = []byte("d"); m.Command = []byte("x") }), want: heardUpdated},
				{at: 5, heard: with(1, func(m *Member) { m.Payload = []byte{1}; m.Domain = []byte("d"); m.Command = []byte("x"); m.UDPPort = 9 }), want: heardUpdated},
				{at: 6, heard: with(1, func(m *Member) {
					m.Payload = []byte{1}
					m.Domain = []byte("d")
					m.Command = []byte("x")
					m.UDPPort = 9
					m.SecurePort = 8
				}), want: heardUpdated},
			},
			members: []byte{1},
		},
		{
			name: "a different port or id is a different member",
			steps: []step{
				{at: 0, heard: mbMember(1), want: heardAdded},
				{at: 0, heard: with(1, func(m *Member) { m.Port = 4001 }), want: heardAdded},
				{at: 0, heard: with(1, func(m *Member) { m.UniqueID[0] = 9 }), want: heardAdded},
			},
		},
		{
			name: "expiry is strictly after drop time",
			steps: []step{
				{at: 0, heard: mbMember(1), want: heardAdded},
				{at: 100, heard: mbMember(2), want: heardAdded},
				{at: 3000},
				{at: 3001, expire: []byte{1}},
				{at: 3101, expire: []byte{2}},
			},
		},
		{
			name: "a heartbeat postpones expiry",
			steps: []step{
				{at: 0, heard: mbMember(1), want: heardAdded},
				{at: 2900, heard: mbMember(1), want: heardRefreshed},
				{at: 5000},
				{at: 5901, expire: []byte{1}},
			},
		},
		{
			name: "expired together, reported in key order",
			steps: []step{
				{at: 0, heard: mbMember(3), want: heardAdded},
				{at: 0, heard: mbMember(1), want: heardAdded},
				{at: 0, heard: mbMember(2), want: heardAdded},
				{at: 4000, expire: []byte{1, 2, 3}},
			},
		},
		{
			name: "table full",
			max:  2,
			steps: []step{
				{at: 0, heard: mbMember(1), want: heardAdded},
				{at: 0, heard: mbMember(2), want: heardAdded},
				{at: 0, heard: mbMember(3), want: heardFull},
				{at: 1, heard: mbMember(2), want: heardRefreshed},
			},
			members: []byte{1, 2},
		},
		{
			name: "oldest first",
			steps: []step{
				{at: 0, heard: with(1, func(m *Member) { m.Alive = 10 }), want: heardAdded},
				{at: 0, heard: with(2, func(m *Member) { m.Alive = 99 }), want: heardAdded},
				{at: 0, heard: with(3, func(m *Member) { m.Alive = 50 }), want: heardAdded},
			},
			members: []byte{2, 3, 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab := newMemberTable(tc.max)
			for i, s := range tc.steps {
				if s.heard != nil {
					res, ev := tab.heard(s.heard, ms(s.at))
					if res != s.want {
						t.Fatalf("step %d: heard = %v, want %v", i, res, s.want)
					}
					if (ev != nil) != (res == heardAdded || res == heardUpdated) {
						t.Fatalf("step %d: event member %v for result %v", i, ev, res)
					}
					if ev != nil && ev == s.heard {
						t.Fatalf("step %d: the table returned the caller's member, not a copy", i)
					}
					continue
				}
				gone := tab.expire(ms(s.at), 3*time.Second)
				var got []byte
				for _, m := range gone {
					got = append(got, m.UniqueID[0])
				}
				if !slices.Equal(got, s.expire) {
					t.Fatalf("step %d: expired %v, want %v", i, got, s.expire)
				}
			}
			if tc.members != nil {
				var got []byte
				for _, m := range tab.snapshot() {
					got = append(got, m.UniqueID[0])
				}
				if !slices.Equal(got, tc.members) {
					t.Fatalf("members %v, want %v", got, tc.members)
				}
			}
		})
	}
}

func TestMemberTableDoesNotAlias(t *testing.T) {
	tab := newMemberTable(0)
	m := mbMember(1)
	m.Payload = []byte("abc")
	_, ev := tab.heard(m, time.Now())
	m.Payload[0] = 'X'
	ev.Payload[1] = 'Y'
	snap := tab.snapshot()
	if got := string(snap[0].Payload); got != "abc" {
		t.Fatalf("stored payload %q, want abc", got)
	}
	snap[0].Payload[2] = 'Z'
	if got := string(tab.snapshot()[0].Payload); got != "abc" {
		t.Fatalf("snapshot aliases the table: %q", got)
	}
}

func TestLogLimiter(t *testing.T) {
	l := logLimiter{every: time.Second}
	t0 := time.Now()
	var got []string
	for i := range 25 {
		at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		if ok, n := l.allow(at); ok {
			got = append(got, fmt.Sprintf("%d:%d", i, n))
		}
	}
	if want := "0:0 10:9 20:9"; strings.Join(got, " ") != want {
		t.Fatalf("allowed %q, want %q", strings.Join(got, " "), want)
	}
}

func TestMemberEventTypeString(t *testing.T) {
	for _, tc := range []struct {
		typ  MemberEventType
		want string
	}{
		{MemberAdded, "added"}, {MemberDisappeared, "disappeared"}, {MemberUpdated, "updated"}, {42, "MemberEventType(42)"},
	} {
		if got := tc.typ.String(); got != tc.want {
			t.Errorf("%d: %q, want %q", int(tc.typ), got, tc.want)
		}
	}
}

// mbFakeProvider is a Membership driven by the test through emit.
type mbFakeProvider struct {
	mu       sync.Mutex
	events   func(MemberEvent)
	members  map[MemberKey]*Member
	startErr error
	started  int
	stopped  int
}

func (p *mbFakeProvider) Start(ctx context.Context, local *Member, events func(MemberEvent)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.startErr != nil {
		return p.startErr
	}
	p.started++
	p.events = events
	p.members = map[MemberKey]*Member{}
	return nil
}

func (p *mbFakeProvider) Stop(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped++
	p.events = nil
	return nil
}

func (p *mbFakeProvider) Members() []*Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*Member
	for _, m := range p.members {
		out = append(out, m.Clone())
	}
	return out
}

func (p *mbFakeProvider) emit(typ MemberEventType, m *Member) {
	p.mu.Lock()
	if typ == MemberDisappeared {
		delete(p.members, m.Key())
	} else {
		p.members[m.Key()] = m.Clone()
	}
	ev := p.events
	p.mu.Unlock()
	ev(MemberEvent{Type: typ, Member: m.Clone()})
}

// mbEventLog records events as "added 1", "disappeared 2", ...
type mbEventLog struct {
	mu  sync.Mutex
	evs []MemberEvent
}

func (l *mbEventLog) add(ev MemberEvent) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *mbEventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s []string
	for _, ev := range l.evs {
		s = append(s, fmt.Sprintf("%v %d", ev.Type, ev.Member.UniqueID[0]))
	}
	return strings.Join(s, ", ")
}

func TestMerge(t *testing.T) {
	a, b := &mbFakeProvider{}, &mbFakeProvider{}
	g := Merge(a, b)
	var log mbEventLog
	if err := g.Start(t.Context(), mbMember(0), log.add); err != nil {
		t.Fatal(err)
	}
	if err := g.Start(t.Context(), mbMember(0), log.add); !errors.Is(err, ErrMembershipStarted) {
		t.Fatalf("second Start: %v, want ErrMembershipStarted", err)
	}
	m1, m2 := mbMember(1), mbMember(2)
	a.emit(MemberAdded, m1)
	b.emit(MemberAdded, m1) // duplicate: not reported
	b.emit(MemberAdded, m2)
	upd := m1.Clone()
	upd.Payload = []byte("p")
	b.emit(MemberUpdated, upd)
	a.emit(MemberDisappeared, m1) // b still has it
	if got := len(g.Members()); got != 2 {
		t.Fatalf("%d members, want 2", got)
	}
	b.emit(MemberDisappeared, m1) // last one: reported
	b.emit(MemberDisappeared, m1) // unknown: ignored
	a.emit(MemberDisappeared, m2) // a never reported it: ignored
	want := "added 1, added 2, updated 1, disappeared 1"
	if got := log.String(); got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
	ms := g.Members()
	if len(ms) != 1 || ms[0].Key() != m2.Key() {
		t.Fatalf("members %v, want [%v]", ms, m2)
	}
	if err := g.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if a.stopped != 1 || b.stopped != 1 {
		t.Fatalf("stopped %d, %d times, want 1, 1", a.stopped, b.stopped)
	}
	if got := len(g.Members()); got != 0 {
		t.Fatalf("%d members after Stop, want 0", got)
	}
}

func TestMergeStartFailureStopsStarted(t *testing.T) {
	boom := errors.New("boom")
	a, b, c := &mbFakeProvider{}, &mbFakeProvider{startErr: boom}, &mbFakeProvider{}
	g := Merge(a, b, c)
	if err := g.Start(t.Context(), mbMember(0), nil); !errors.Is(err, boom) {
		t.Fatalf("Start: %v, want boom", err)
	}
	if a.started != 1 || a.stopped != 1 || c.started != 0 {
		t.Fatalf("a started %d stopped %d, c started %d; want 1 1 0", a.started, a.stopped, c.started)
	}
	b.startErr = nil
	if err := g.Start(t.Context(), mbMember(0), nil); err != nil {
		t.Fatalf("Start after a failed Start: %v", err)
	}
}

// TestMergeEventsMayCallMembers checks that an event callback can call
// Members without deadlock.
func TestMergeEventsMayCallMembers(t *testing.T) {
	a := &mbFakeProvider{}
	g := Merge(a)
	var n int
	g.Start(t.Context(), mbMember(0), func(MemberEvent) { n = len(g.Members()) })
	a.emit(MemberAdded, mbMember(1))
	if n != 1 {
		t.Fatalf("Members in the callback: %d, want 1", n)
	}
}
