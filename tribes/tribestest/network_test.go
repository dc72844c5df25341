package tribestest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// recorder records membership events as "+b", "-c!" (! = BABY-ALEX),
// "~a", naming members by their node letter.
type recorder struct {
	mu    sync.Mutex
	names map[string]string // address -> letter
	evs   []string
}

func (r *recorder) add(ev tribes.MemberEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := map[tribes.MemberEventType]string{tribes.MemberAdded: "+", tribes.MemberDisappeared: "-", tribes.MemberUpdated: "~"}[ev.Type]
	s += r.names[ev.Member.AddrPort().String()]
	if ev.Member.IsShutdown() {
		s += "!"
	}
	r.evs = append(r.evs, s)
}

func (r *recorder) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.Join(r.evs, " ")
	r.evs = nil
	return s
}

// cluster is a network of named nodes with running memberships.
type cluster struct {
	net   *Network
	nodes map[string]*Node
	recs  map[string]*recorder
	names map[string]string
}

func newCluster(t *testing.T, names ...string) *cluster {
	c := &cluster{net: NewNetwork(), nodes: map[string]*Node{}, recs: map[string]*recorder{}, names: map[string]string{}}
	for _, n := range names {
		nd := c.net.NewNode()
		c.nodes[n] = nd
		c.names[nd.Addr().String()] = n
		c.recs[n] = &recorder{names: c.names}
	}
	return c
}

func (c *cluster) start(t *testing.T, name string) {
	t.Helper()
	nd := c.nodes[name]
	if err := nd.Membership().Start(t.Context(), nd.Member(tribes.UniqueID{name[0]}), c.recs[name].add); err != nil {
		t.Fatal(err)
	}
}

// events returns every node's events since the last call, "a[+b +c] b[...]".
func (c *cluster) events() string {
	var names []string
	for n := range c.nodes {
		names = append(names, n)
	}
	slices.Sort(names)
	var s []string
	for _, n := range names {
		if e := c.recs[n].take(); e != "" {
			s = append(s, n+"["+e+"]")
		}
	}
	return strings.Join(s, " ")
}

func (c *cluster) members(name string) string {
	var s []string
	for _, m := range c.nodes[name].Membership().Members() {
		s = append(s, c.names[m.AddrPort().String()])
	}
	return strings.Join(s, ",")
}

func TestMembership(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	type step struct {
		name    string
		do      func()
		events  string
		members map[string]string
	}
	steps := []step{
		{"a joins", func() { c.start(t, "a") }, "", map[string]string{"a": ""}},
		{"b joins", func() { c.start(t, "b") }, "a[+b] b[+a]", map[string]string{"a": "b", "b": "a"}},
		{"c joins", func() { c.start(t, "c") }, "a[+c] b[+c] c[+a +b]", map[string]string{"a": "b,c", "c": "a,b"}},
		{"b leaves", func() { c.nodes["b"].Membership().Stop(t.Context()) }, "a[-b!] c[-b!]", map[string]string{"a": "c", "b": ""}},
		{"b leaves again", func() { c.nodes["b"].Membership().Stop(t.Context()) }, "", nil},
		{"c crashes", func() { c.nodes["c"].Crash() }, "a[-c]", map[string]string{"a": "", "c": ""}},
		{"b rejoins", func() { c.start(t, "b") }, "a[+b] b[+a]", map[string]string{"a": "b"}},
		{"c restarts", func() { c.nodes["c"].Restart(); c.start(t, "c") }, "a[+c] b[+c] c[+a +b]", map[string]string{"c": "a,b"}},
		{"a updates its payload", func() {
			m := c.nodes["a"].Member(tribes.UniqueID{'a'})
			m.Payload = []byte("new")
			if err := c.nodes["a"].Membership().Update(m); err != nil {
				t.Fatal(err)
			}
		}, "b[~a] c[~a]", nil},
		{"a and c are partitioned", func() { c.net.Partition(c.nodes["a"], c.nodes["c"]) }, "a[-c] c[-a]", map[string]string{"a": "b", "b": "a,c", "c": "b"}},
		{"partitioned again: no change", func() { c.net.Partition(c.nodes["c"], c.nodes["a"]) }, "", nil},
		{"b leaves during the partition", func() { c.nodes["b"].Membership().Stop(t.Context()) }, "a[-b!] c[-b!]", nil},
		{"heal", func() { c.net.HealAll() }, "a[+c] c[+a]", map[string]string{"a": "c", "c": "a"}},
	}
	for _, s := range steps {
		s.do()
		if got := c.events(); got != s.events {
			t.Fatalf("%s: events %q, want %q", s.name, got, s.events)
		}
		for n, want := range s.members {
			if got := c.members(n); got != want {
				t.Fatalf("%s: members of %s %q, want %q", s.name, n, got, want)
			}
		}
	}
	if got := c.nodes["a"].Membership().Members()[0].Payload; len(got) != 0 {
		// a's own payload is not listed by a; check c's view of a instead.
		t.Fatalf("a lists itself: %q", got)
	}
	if got := string(c.nodes["c"].Membership().Members()[0].Payload); got != "new" {
		t.Fatalf("c sees a's payload %q, want new", got)
	}
}

func TestMembershipErrors(t *testing.T) {
	c := newCluster(t, "a")
	mb := c.nodes["a"].Membership()
	if err := mb.Update(c.nodes["a"].Member(tribes.UniqueID{'a'})); !errors.Is(err, tribes.ErrMembershipNotStarted) {
		t.Fatalf("Update before Start: %v", err)
	}
	c.start(t, "a")
	if err := mb.Start(t.Context(), c.nodes["a"].Member(tribes.UniqueID{'a'}), nil); !errors.Is(err, tribes.ErrMembershipStarted) {
		t.Fatalf("second Start: %v", err)
	}
	if err := mb.Update(c.nodes["a"].Member(tribes.UniqueID{'x'})); err == nil {
		t.Fatal("Update with another identity succeeded")
	}
	c.nodes["a"].Crash()
	if err := mb.Start(t.Context(), c.nodes["a"].Member(tribes.UniqueID{'a'}), nil); !errors.Is(err, ErrCrashed) {
		t.Fatalf("Start of a crashed node: %v", err)
	}
	if _, err := c.nodes["a"].Transport().Start(t.Context(), func(*tribes.Message) error { return nil }); !errors.Is(err, ErrCrashed) {
		t.Fatalf("transport Start of a crashed node: %v", err)
	}
}

// pair is two nodes whose transports run, b's messages go to recv.
type pair struct {
	net  *Network
	a, b *Node
}

func newPair(t *testing.T, net *Network, recv tribes.ReceiveFunc) pair {
	t.Helper()
	p := pair{net: net, a: net.NewNode(), b: net.NewNode()}
	for _, nd := range []*Node{p.a, p.b} {
		r := recv
		if nd == p.a {
			r = func(*tribes.Message) error { return nil }
		}
		addr, err := nd.Transport().Start(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		if addr != nd.Addr() {
			t.Fatalf("Start returned %v, want %v", addr, nd.Addr())
		}
		if err := nd.Transport().SetLocalMember(nd.Member(tribes.NewUniqueID())); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func (p pair) send(ctx context.Context, opts tribes.Options, data string) error {
	return p.a.Transport().Send(ctx, []*tribes.Member{p.b.Member(tribes.UniqueID{})}, &tribes.Message{Options: opts, Data: []byte(data)})
}

func TestSendAcks(t *testing.T) {
	boom := errors.New("boom")
	const ackSync = tribes.OptUseAck | tribes.OptSynchronizedAck
	tests := []struct {
		name    string
		opts    tribes.Options
		handler func() error
		wantErr error
		calls   int
	}{
		{"no ACK, handler fails: nobody hears", 0, func() error { return boom }, nil, 1},
		{"ACK on receipt, handler fails: sender does not know", tribes.OptUseAck, func() error { return boom }, nil, 1},
		{"synchronized ACK", ackSync, func() error { return nil }, nil, 1},
		{"synchronized ACK, handler fails: FAIL_ACK after one resend", ackSync, func() error { return boom }, tribes.ErrFailAck, 2},
		{"synchronized ACK, handler panics", ackSync, func() error { panic("oops") }, tribes.ErrFailAck, 2},
		{"synchronized without USE_ACK does nothing", tribes.OptSynchronizedAck, func() error { return boom }, nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			var ids sync.Map
			p := newPair(t, NewNetwork(), func(m *tribes.Message) error {
				calls.Add(1)
				ids.Store(m.UniqueID, true)
				return tc.handler()
			})
			err := p.send(t.Context(), tc.opts, "hi")
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Send: %v, want %v", err, tc.wantErr)
			}
			var se *tribes.SendError
			if err != nil && (!errors.As(err, &se) || len(se.Failed) != 1 || se.Failed[0].Member.AddrPort() != p.b.Addr()) {
				t.Fatalf("error %v does not name the member", err)
			}
			p.net.Settle(t.Context())
			if got := calls.Load(); got != int64(tc.calls) {
				t.Fatalf("handler called %d times, want %d", got, tc.calls)
			}
			n := 0
			ids.Range(func(any, any) bool { n++; return true })
			if n != 1 {
				t.Fatalf("%d distinct message ids, want 1 (a resend keeps its id)", n)
			}
		})
	}
}

func TestSendNoRetry(t *testing.T) {
	var calls atomic.Int64
	p := newPair(t, New(Config{MaxRetryAttempts: -1}), func(*tribes.Message) error { calls.Add(1); return errors.New("no") })
	if err := p.send(t.Context(), tribes.OptUseAck|tribes.OptSynchronizedAck, "x"); !errors.Is(err, tribes.ErrFailAck) {
		t.Fatalf("Send: %v", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d calls, want 1", calls.Load())
	}
}

func TestSendMessageFields(t *testing.T) {
	var got tribes.Message
	var src *tribes.Member
	p := newPair(t, NewNetwork(), func(m *tribes.Message) error {
		got = *m
		got.Data = bytes.Clone(m.Data)
		src = m.Source.Clone()
		return nil
	})
	msg := &tribes.Message{Options: tribes.OptByteMessage | tribes.OptUseAck | tribes.OptSynchronizedAck, Data: []byte("hello")}
	if err := p.a.Transport().Send(t.Context(), []*tribes.Member{p.b.Member(tribes.UniqueID{})}, msg); err != nil {
		t.Fatal(err)
	}
	if msg.Timestamp == 0 || msg.UniqueID == (tribes.UniqueID{}) {
		t.Fatalf("Send did not fill in timestamp and id: %+v", msg)
	}
	if got.Options != msg.Options || got.Timestamp != msg.Timestamp || got.UniqueID != msg.UniqueID || string(got.Data) != "hello" {
		t.Fatalf("received %+v, sent %+v", got, msg)
	}
	if src.AddrPort() != p.a.Addr() {
		t.Fatalf("source %v, want %v", src, p.a.Addr())
	}
}

// TestDataOwnership checks that the sender may reuse its bytes after Send
// and that the receiver's bytes are poisoned after its ReceiveFunc.
func TestDataOwnership(t *testing.T) {
	var kept []byte
	var seen string
	p := newPair(t, NewNetwork(), func(m *tribes.Message) error {
		seen = string(m.Data)
		kept = m.Data // wrong: valid only during the call
		return nil
	})
	data := []byte("original")
	if err := p.a.Transport().Send(t.Context(), []*tribes.Member{p.b.Member(tribes.UniqueID{})}, &tribes.Message{Data: data}); err != nil {
		t.Fatal(err)
	}
	copy(data, "XXXXXXXX")
	p.net.Settle(t.Context())
	if seen != "original" {
		t.Fatalf("receiver saw %q", seen)
	}
	if !bytes.Equal(kept, bytes.Repeat([]byte{poison}, len("original"))) {
		t.Fatalf("retained bytes %q were not poisoned", kept)
	}
}

// TestOrder sends interleaved asynchronous streams: each sender's messages
// arrive in order.
func TestOrder(t *testing.T) {
	net := NewNetwork()
	const n = 500
	dst := net.NewNode()
	var mu sync.Mutex
	got := map[string][]int{}
	dst.Transport().Start(t.Context(), func(m *tribes.Message) error {
		var from string
		var i int
		fmt.Sscanf(string(m.Data), "%s %d", &from, &i)
		mu.Lock()
		got[from] = append(got[from], i)
		mu.Unlock()
		return nil
	})
	var wg sync.WaitGroup
	for _, name := range []string{"x", "y", "z"} {
		src := net.NewNode()
		src.Transport().Start(t.Context(), func(*tribes.Message) error { return nil })
		src.Transport().SetLocalMember(src.Member(tribes.NewUniqueID()))
		wg.Go(func() {
			for i := range n {
				opts := tribes.OptAsynchronous
				if i%50 == 0 {
					opts = tribes.OptUseAck | tribes.OptSynchronizedAck
				}
				if err := src.Transport().Send(t.Context(), []*tribes.Member{dst.Member(tribes.UniqueID{})},
					&tribes.Message{Options: opts, Data: fmt.Appendf(nil, "%s %d", name, i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := net.Settle(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"x", "y", "z"} {
		if len(got[name]) != n || !slices.IsSorted(got[name]) {
			t.Fatalf("%s: %d messages, in order: %v", name, len(got[name]), slices.IsSorted(got[name]))
		}
	}
}

func TestSendFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := NewNetwork()
		var calls atomic.Int64
		p := newPair(t, net, func(*tribes.Message) error { calls.Add(1); return nil })
		ghost := &tribes.Member{Host: p.b.Addr().Addr(), Port: 9999}

		// Unknown address: refused at once, the other destination still gets it.
		err := p.a.Transport().Send(t.Context(), []*tribes.Member{ghost, p.b.Member(tribes.UniqueID{})}, &tribes.Message{Data: []byte("x")})
		var se *tribes.SendError
		if !errors.As(err, &se) || len(se.Failed) != 1 || se.Failed[0].Member != ghost || !errors.Is(err, ErrUnreachable) {
			t.Fatalf("send to a ghost and b: %v", err)
		}
		synctest.Wait()
		if calls.Load() != 1 {
			t.Fatalf("b got %d messages, want 1", calls.Load())
		}

		// Partition: unacknowledged messages are lost silently, acknowledged
		// ones time out after SendTimeout.
		net.Partition(p.a, p.b)
		if err := p.send(t.Context(), tribes.OptAsynchronous, "lost"); err != nil {
			t.Fatalf("async send over a cut link: %v", err)
		}
		t0 := time.Now()
		if err := p.send(t.Context(), tribes.OptUseAck, "lost"); !errors.Is(err, tribes.ErrAckTimeout) {
			t.Fatalf("acked send over a cut link: %v", err)
		}
		if d := time.Since(t0); d != tribes.DefaultSendTimeout {
			t.Fatalf("timed out after %v, want %v", d, tribes.DefaultSendTimeout)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		if err := p.send(ctx, tribes.OptUseAck|tribes.OptSynchronizedAck, "lost"); !errors.Is(err, tribes.ErrAckTimeout) {
			t.Fatalf("sync send over a cut link with a 1 s deadline: %v", err)
		}
		cancel()
		synctest.Wait()
		if calls.Load() != 1 {
			t.Fatalf("messages crossed the partition: %d", calls.Load())
		}
		if st := p.a.Transport().Stats(); st.Lost != 3 {
			t.Fatalf("a's stats %+v, want 3 lost", st)
		}
		net.Heal(p.a, p.b)

		// One-way drop.
		net.DropMessages(p.a, p.b, true)
		p.send(t.Context(), 0, "dropped")
		if err := p.b.Transport().Send(t.Context(), []*tribes.Member{p.a.Member(tribes.UniqueID{})}, &tribes.Message{Options: tribes.OptUseAck | tribes.OptSynchronizedAck}); err != nil {
			t.Fatalf("b to a while a to b drops: %v", err)
		}
		net.DropMessages(p.a, p.b, false)
		p.send(t.Context(), 0, "delivered")
		synctest.Wait()
		if calls.Load() != 2 {
			t.Fatalf("b got %d messages, want 2", calls.Load())
		}

		// Crash of the receiver: refused; of the sender: closed.
		p.b.Crash()
		if err := p.send(t.Context(), 0, "x"); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("send to a crashed node: %v", err)
		}
		if err := p.b.Transport().Send(t.Context(), []*tribes.Member{p.a.Member(tribes.UniqueID{})}, &tribes.Message{}); !errors.Is(err, tribes.ErrSenderClosed) {
			t.Fatalf("send from a crashed node: %v", err)
		}
		if err := p.a.Transport().Send(t.Context(), nil, &tribes.Message{}); !errors.Is(err, tribes.ErrNoMember) {
			t.Fatalf("send to nobody: %v", err)
		}
		big := &tribes.Message{Data: make([]byte, 64<<20+1)}
		if err := p.a.Transport().Send(t.Context(), []*tribes.Member{ghost}, big); !errors.Is(err, tribes.ErrMessageTooLarge) {
			t.Fatalf("oversize send: %v", err)
		}
		p.a.Transport().Close()
		if err := p.send(t.Context(), 0, "x"); !errors.Is(err, tribes.ErrNotStarted) {
			t.Fatalf("send after Close: %v", err)
		}
	})
}

// TestCrashWhileWaiting crashes a node while a synchronous sender waits for
// its handler.
func TestCrashWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := newPair(t, NewNetwork(), func(m *tribes.Message) error {
			if string(m.Data) == "block" {
				<-release
			}
			return nil
		})
		errc := make(chan error, 2)
		go func() { errc <- p.send(t.Context(), tribes.OptUseAck|tribes.OptSynchronizedAck, "block") }()
		go func() {
			time.Sleep(time.Millisecond)
			errc <- p.send(t.Context(), tribes.OptUseAck|tribes.OptSynchronizedAck, "queued")
		}()
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		p.b.Crash()
		if err := <-errc; !errors.Is(err, ErrUnreachable) {
			t.Fatalf("queued message when its receiver crashed: %v", err)
		}
		close(release)
		if err := <-errc; err != nil {
			t.Fatalf("message being processed when its receiver crashed: %v", err)
		}
	})
}

func TestProbeAndDial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := NewNetwork()
		p := newPair(t, net, func(*tribes.Message) error { return nil })
		bm := p.b.Member(tribes.UniqueID{})
		cfg := tribes.ProbeConfig{ConnectTimeout: 500 * time.Millisecond}
		if err := p.a.Transport().Probe(t.Context(), bm, cfg); err != nil {
			t.Fatalf("probe: %v", err)
		}
		if c, err := net.Dial(t.Context(), "tcp", bm.AddrPort().String()); err != nil {
			t.Fatalf("dial: %v", err)
		} else {
			c.Close()
		}
		net.Partition(p.a, p.b)
		t0 := time.Now()
		if err := p.a.Transport().Probe(t.Context(), bm, cfg); !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) != cfg.ConnectTimeout {
			t.Fatalf("probe over a cut link: %v after %v", err, time.Since(t0))
		}
		net.Heal(p.a, p.b)
		p.b.Transport().Close()
		if err := p.a.Transport().Probe(t.Context(), bm, cfg); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("probe of a closed transport: %v", err)
		}
		if _, err := net.Dial(t.Context(), "tcp", bm.AddrPort().String()); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("dial of a closed transport: %v", err)
		}
	})
}

// TestStaticMembershipOverNetwork runs tribes.StaticMembership on the
// in-memory network through Network.Dial.
func TestStaticMembershipOverNetwork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := NewNetwork()
		a, b := net.NewNode(), net.NewNode()
		b.Transport().Start(t.Context(), func(*tribes.Message) error { return nil })
		s, err := tribes.NewStatic(tribes.StaticConfig{
			Members: []*tribes.Member{a.Member(tribes.UniqueID{1}), b.Member(tribes.UniqueID{2})},
			Dial:    net.Dial,
		})
		if err != nil {
			t.Fatal(err)
		}
		var (
			mu  sync.Mutex
			evs []string
		)
		if err := s.Start(t.Context(), a.Member(tribes.UniqueID{1}), func(ev tribes.MemberEvent) {
			mu.Lock()
			evs = append(evs, ev.Type.String()+" "+ev.Member.AddrPort().String())
			mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
		defer s.Stop(context.Background())
		b.Crash()
		time.Sleep(7 * time.Second)
		synctest.Wait()
		want := "added " + b.Addr().String() + ", disappeared " + b.Addr().String()
		mu.Lock()
		defer mu.Unlock()
		if got := strings.Join(evs, ", "); got != want {
			t.Fatalf("events %q, want %q", got, want)
		}
	})
}

func TestSettleHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		p := newPair(t, NewNetwork(), func(*tribes.Message) error { <-release; return nil })
		p.send(t.Context(), 0, "x")
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := p.net.Settle(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Settle with a busy handler: %v", err)
		}
		close(release)
		if err := p.net.Settle(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestMcastConfig(t *testing.T) {
	cfg := McastConfig(t)
	if cfg.Bind != "127.0.0.1" || cfg.TTL != 0 || !strings.HasPrefix(cfg.Address, "239.255.") || cfg.Port < 46000 || cfg.Port >= 55000 {
		t.Fatalf("unsafe test configuration %+v", cfg)
	}
	// Two services on it see each other.
	var svcs [2]*tribes.McastService
	seen := make(chan struct{}, 2)
	for i := range svcs {
		s, err := tribes.NewMcast(cfg)
		if err != nil {
			t.Fatal(err)
		}
		svcs[i] = s
		nd := NewNetwork().NewNode()
		m := nd.Member(tribes.NewUniqueID())
		m.Port += i
		if err := s.Start(t.Context(), m, func(tribes.MemberEvent) { seen <- struct{}{} }); err != nil {
			t.Fatal(err)
		}
		defer s.Stop(context.Background())
	}
	for range 2 {
		select {
		case <-seen:
		case <-time.After(2 * time.Second):
			t.Fatal("the two services did not see each other")
		}
	}
}
