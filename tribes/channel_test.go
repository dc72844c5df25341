package tribes

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeMembership is a Membership whose events the test injects.
type fakeMembership struct {
	mu      sync.Mutex
	events  func(MemberEvent)
	members map[MemberKey]*Member
	local   *Member
}

func newFakeMembership() *fakeMembership {
	return &fakeMembership{members: map[MemberKey]*Member{}}
}

func (f *fakeMembership) Start(ctx context.Context, local *Member, events func(MemberEvent)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events, f.local = events, local.Clone()
	return nil
}

func (f *fakeMembership) Stop(ctx context.Context) error { return nil }

func (f *fakeMembership) Members() []*Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*Member
	for _, m := range f.members {
		out = append(out, m.Clone())
	}
	return out
}

func (f *fakeMembership) emit(t MemberEventType, m *Member) {
	f.mu.Lock()
	if t == MemberDisappeared {
		delete(f.members, m.Key())
	} else {
		f.members[m.Key()] = m
	}
	ev := f.events
	f.mu.Unlock()
	ev(MemberEvent{Type: t, Member: m.Clone()})
}

// events records membership events that reach a channel's listeners.
type events struct {
	added, gone chan *Member
}

func newEvents(c *Channel) *events {
	e := &events{added: make(chan *Member, 16), gone: make(chan *Member, 16)}
	c.AddMembershipListener(MembershipFuncs{
		Added:       func(m *Member) { e.added <- m },
		Disappeared: func(m *Member) { e.gone <- m },
	})
	return e
}

func waitMember(t *testing.T, ch chan *Member, want *Member, what string) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case m := <-ch:
		if m.Key() != want.Key() {
			t.Fatalf("%s: got %v, want %v", what, m, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no event for %v", what, want)
	}
	return time.Since(start)
}

func noEvent(t *testing.T, ch chan *Member, within time.Duration, what string) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("%s: unexpected event for %v", what, m)
	case <-time.After(within):
	}
}

// testChannel starts a channel on loopback with a fake membership.
func testChannel(t *testing.T, ics []Interceptor) (*Channel, *fakeMembership) {
	t.Helper()
	fm := newFakeMembership()
	cfg := LocalConfig()
	cfg.Membership = fm
	cfg.Interceptors = ics
	cfg.HeartbeatInterval = 50 * time.Millisecond
	cfg.Sender.Timeout = time.Second
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	return c, fm
}

func TestChannelSendAndFailAck(t *testing.T) {
	a, am := testChannel(t, nil)
	b, _ := testChannel(t, nil)
	ea := newEvents(a)
	got := make(chan []byte, 4)
	fail := false
	var mu sync.Mutex
	b.AddMessageListener(ListenerFunc(func(m *Message) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return errors.New("refused")
		}
		got <- bytes.Clone(m.Data)
		return nil
	}))
	am.emit(MemberAdded, b.LocalMember())
	waitMember(t, ea.added, b.LocalMember(), "A sees B")
	if ms := a.Members(); len(ms) != 1 || ms[0].Key() != b.LocalMember().Key() {
		t.Fatalf("A.Members() = %v", ms)
	}
	for _, opts := range []Options{OptUseAck | OptSynchronizedAck, OptUseAck, OptAsynchronous, OptAsynchronous | OptUseAck, 0} {
		if err := a.Send(context.Background(), nil, []byte("hello "+opts.String()), opts); err != nil {
			t.Fatalf("options %v: %v", opts, err)
		}
		select {
		case d := <-got:
			if string(d) != "hello "+opts.String() {
				t.Fatalf("got %q", d)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("options %v: message not delivered", opts)
		}
	}
	mu.Lock()
	fail = true
	mu.Unlock()
	err := a.Send(context.Background(), nil, []byte("x"), OptUseAck|OptSynchronizedAck)
	if !errors.Is(err, ErrFailAck) {
		t.Fatalf("err = %v, want ErrFailAck", err)
	}
	// A FAIL_ACK means the member answered: it stays.
	noEvent(t, ea.gone, 200*time.Millisecond, "after FAIL_ACK")
}

func TestFailureDetectorRemovesCrashedMemberOnSend(t *testing.T) {
	a, am := testChannel(t, nil)
	b, _ := testChannel(t, nil)
	ea := newEvents(a)
	am.emit(MemberAdded, b.LocalMember())
	waitMember(t, ea.added, b.LocalMember(), "A sees B")
	if err := a.Send(context.Background(), nil, []byte("x"), OptUseAck); err != nil {
		t.Fatal(err)
	}
	// B crashes: its port closes, no leave message, the membership still
	// holds it.
	b.Transport().Close()
	start := time.Now()
	if err := a.Send(context.Background(), nil, []byte("y"), OptUseAck); err == nil {
		t.Fatal("send to a crashed member succeeded")
	}
	waitMember(t, ea.gone, b.LocalMember(), "A drops B")
	t.Logf("crash noticed %v after the failed send began", time.Since(start))
	if ms := a.Members(); len(ms) != 0 {
		t.Fatalf("A.Members() = %v after the crash", ms)
	}
}

func TestFailureDetectorKeepsSuspectWhosePortAnswers(t *testing.T) {
	a, am := testChannel(t, nil)
	b, _ := testChannel(t, nil)
	ea := newEvents(a)
	am.emit(MemberAdded, b.LocalMember())
	waitMember(t, ea.added, b.LocalMember(), "A sees B")
	// B's heartbeats stop (membership expiry) but it still listens.
	am.emit(MemberDisappeared, b.LocalMember())
	noEvent(t, ea.gone, 300*time.Millisecond, "suspect")
	if ms := a.Members(); len(ms) != 1 {
		t.Fatalf("A.Members() = %v, want B kept as a suspect", ms)
	}
	fd := a.Interceptors()[1].(*FailureDetector)
	if fd.Stats().Suspects != 1 {
		t.Fatalf("stats %+v, want one suspect", fd.Stats())
	}
	// Once its port closes, the heartbeat re-probe removes it.
	b.Transport().Close()
	waitMember(t, ea.gone, b.LocalMember(), "suspect removed")
}

func TestFailureDetectorWaitsForListener(t *testing.T) {
	a, am := testChannel(t, nil)
	ea := newEvents(a)
	// A member announced by the membership whose port does not listen yet.
	r, err := NewReceiver(ReceiverConfig{Address: "127.0.0.1", Port: AnyPort}, func(*Message) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	port := int(r.Addr().Port())
	r.Close()
	ghost := testMember(port)
	am.emit(MemberAdded, ghost)
	noEvent(t, ea.added, 200*time.Millisecond, "member without a listener")
	// It starts listening: the next heartbeat's probe admits it.
	r, err = NewReceiver(ReceiverConfig{Address: "127.0.0.1", Port: port, AutoBind: 1}, func(*Message) error { return nil })
	if err != nil {
		t.Skipf("port %d was taken meanwhile: %v", port, err)
	}
	defer r.Close()
	waitMember(t, ea.added, ghost, "admitted once listening")
}

func TestLeaveRemovesAtOnce(t *testing.T) {
	a, am := testChannel(t, nil)
	b, _ := testChannel(t, nil)
	ea := newEvents(a)
	am.emit(MemberAdded, b.LocalMember())
	waitMember(t, ea.added, b.LocalMember(), "A sees B")
	leaving := b.LocalMember().Clone()
	leaving.Command = []byte(ShutdownCommand)
	am.emit(MemberDisappeared, leaving)
	waitMember(t, ea.gone, b.LocalMember(), "B left")
}

func TestChannelLifecycleErrors(t *testing.T) {
	cfg := LocalConfig()
	cfg.Membership = newFakeMembership()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(context.Background(), nil, []byte("x"), 0); !errors.Is(err, ErrChannelNotStarted) {
		t.Fatalf("before Start: %v", err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(context.Background(), nil, []byte("x"), 0); !errors.Is(err, ErrNoMembers) {
		t.Fatalf("no members: %v", err)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(context.Background(), nil, []byte("x"), 0); !errors.Is(err, ErrChannelClosed) {
		t.Fatalf("after Stop: %v", err)
	}
	fd := NewFailureDetector(FailureDetectorConfig{})
	cfg.Interceptors = []Interceptor{fd}
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg); err == nil {
		t.Fatal("an interceptor was accepted into a second channel")
	}
}

func TestDispatcherQueueFull(t *testing.T) {
	block := make(chan struct{})
	stall := &stallInterceptor{block: block, entered: make(chan struct{})}
	d := NewMessageDispatcher(DispatcherConfig{MaxQueueSize: 10, MaxThreads: 1, FailWhenFull: true})
	a, am := testChannel(t, []Interceptor{d, stall})
	b, _ := testChannel(t, nil)
	am.emit(MemberAdded, b.LocalMember())
	defer close(block)
	opts := OptAsynchronous | OptUseAck
	if err := a.Send(context.Background(), []*Member{b.LocalMember()}, make([]byte, 8), opts); err != nil {
		t.Fatal(err)
	}
	<-stall.entered // the one worker holds the first message
	if err := a.Send(context.Background(), []*Member{b.LocalMember()}, make([]byte, 8), opts); err != nil {
		t.Fatal(err) // queued (8 of 10 bytes)
	}
	err := a.Send(context.Background(), []*Member{b.LocalMember()}, make([]byte, 8), opts)
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("err = %v, want ErrQueueFull", err)
	}
	if st := d.Stats(); st.Rejected != 1 || st.Queued != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// stallInterceptor blocks sends until block is closed.
type stallInterceptor struct {
	BaseInterceptor
	block   chan struct{}
	once    sync.Once
	entered chan struct{}
}

func (s *stallInterceptor) SendMessage(ctx context.Context, to []*Member, msg *Message) error {
	s.once.Do(func() { close(s.entered) })
	<-s.block
	return s.Next().SendMessage(ctx, to, msg)
}

// failingMembership cannot join.
type failingMembership struct{ fakeMembership }

var errCannotJoin = errors.New("cannot join")

func (*failingMembership) Start(context.Context, *Member, func(MemberEvent)) error {
	return errCannotJoin
}

// starterLog is an interceptor that records its Start and Stop calls in a
// shared log, and fails Start with fail.
type starterLog struct {
	BaseInterceptor
	name string
	log  *[]string
	fail error
}

func (s *starterLog) Start(ctx context.Context) error {
	*s.log = append(*s.log, "start "+s.name)
	return s.fail
}

func (s *starterLog) Stop(ctx context.Context) error {
	*s.log = append(*s.log, "stop "+s.name)
	return nil
}

// TestChannelStartFailureStopsWhatStarted: when the membership or an
// interceptor fails to start, Start returns the error (it used to panic
// on the head and coordinator, which are no Starters), stops the
// interceptors it started, bottom first, and closes the transport.
func TestChannelStartFailureStopsWhatStarted(t *testing.T) {
	errBroken := errors.New("broken interceptor")
	for _, tc := range []struct {
		name       string
		membership Membership
		failing    string // the interceptor whose Start fails
		want       error
		log        []string
	}{
		{name: "membership fails", membership: &failingMembership{}, want: errCannotJoin,
			log: []string{"start top", "start middle", "start bottom", "stop bottom", "stop middle", "stop top"}},
		{name: "interceptor fails", membership: newFakeMembership(), failing: "middle", want: errBroken,
			log: []string{"start top", "start middle", "stop top"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log []string
			var ics []Interceptor
			for _, name := range []string{"top", "middle", "bottom"} {
				s := &starterLog{name: name, log: &log}
				if name == tc.failing {
					s.fail = errBroken
				}
				ics = append(ics, s, &BaseInterceptor{}) // a plain interceptor between them
			}
			tr := newProbeTransport()
			c, err := New(Config{Transport: tr, Membership: tc.membership, Interceptors: ics})
			if err != nil {
				t.Fatal(err)
			}
			err = c.Start(context.Background())
			if !errors.Is(err, tc.want) {
				t.Fatalf("Start: %v, want %v", err, tc.want)
			}
			if !slices.Equal(log, tc.log) {
				t.Errorf("calls %q, want %q", log, tc.log)
			}
			if tr.closed != 1 {
				t.Errorf("transport closed %d times, want once", tr.closed)
			}
			if err := c.Send(context.Background(), nil, []byte("x"), 0); !errors.Is(err, ErrChannelClosed) {
				t.Errorf("Send after the failed Start: %v, want %v", err, ErrChannelClosed)
			}
			// Its transport is closed and its interceptors stopped: a
			// second Start must refuse clearly, not start them again.
			log = nil
			if err := c.Start(context.Background()); !errors.Is(err, ErrChannelClosed) {
				t.Errorf("second Start: %v, want %v", err, ErrChannelClosed)
			}
			if len(log) != 0 || tr.closed != 1 {
				t.Errorf("second Start: interceptor calls %q, transport closed %d times", log, tr.closed)
			}
		})
	}
}
