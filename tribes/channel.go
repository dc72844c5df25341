package tribes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultHeartbeatInterval is how often a channel sends a heartbeat down
// its stack (Tribes' heartbeatSleeptime).
const DefaultHeartbeatInterval = 5 * time.Second

// Errors of the channel.
var (
	// ErrChannelClosed occurs when a channel is used after Stop.
	ErrChannelClosed = errors.New("tribes: channel closed")
	// ErrChannelNotStarted occurs when a channel sends before Start.
	ErrChannelNotStarted = errors.New("tribes: channel not started")
	// ErrNoMembers occurs when Send to all members finds none.
	ErrNoMembers = errors.New("tribes: no members to send to")
)

// Config configures a [Channel]. The zero value of every field means its
// default; [DefaultConfig] and [LocalConfig] spell them out.
type Config struct {
	// Receiver and Sender configure the default [NioTransport].
	Receiver ReceiverConfig
	Sender   SenderConfig
	// Transport replaces the NioTransport, e.g. with an in-memory network
	// from package tribestest. Receiver and Sender are then ignored.
	Transport Transport

	// Membership provides the other members. nil means multicast
	// heartbeats configured by Mcast. Use [Merge] to run several.
	Membership Membership
	// Mcast configures the default multicast membership.
	Mcast McastConfig

	// Interceptors is the stack, top (nearest the application) first. nil
	// means [DefaultInterceptors]; an empty, non-nil slice means none.
	// An interceptor belongs to one channel only.
	Interceptors []Interceptor

	// Domain and Payload are announced in the local member record.
	Domain  []byte
	Payload []byte
	// UniqueID is the local member's id; zero means a fresh random one (as
	// Tribes does at every start). Set it when a static membership list
	// names this member.
	UniqueID UniqueID

	// HeartbeatInterval is how often Heartbeat travels down the stack
	// (default 5 s); the failure detector re-checks suspects on it.
	HeartbeatInterval time.Duration

	// Logger receives the channel's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration of a Tomcat cluster member:
// receiver on the first free port from 4000 (address auto), multicast on
// 228.0.0.4:45564 every 500 ms with a 3 s drop time, and the default stack.
func DefaultConfig() Config {
	return Config{
		Receiver:          ReceiverConfig{Address: "auto", Port: DefaultPort, AutoBind: DefaultAutoBind, MaxThreads: DefaultMaxThreads},
		Mcast:             DefaultMcastConfig(),
		HeartbeatInterval: DefaultHeartbeatInterval,
	}
}

// LocalConfig returns a configuration for tests and demos on one machine:
// everything on 127.0.0.1, any free receiver port, multicast bound to the
// loopback interface with TTL 0 and short intervals.
func LocalConfig() Config {
	c := DefaultConfig()
	c.Receiver.Address = "127.0.0.1"
	c.Receiver.Port = AnyPort
	c.Mcast = LocalMcastConfig()
	c.HeartbeatInterval = time.Second
	return c
}

// DefaultInterceptors returns the default stack: asynchronous dispatch,
// then the TCP failure detector (SimpleTcpCluster's defaults).
func DefaultInterceptors() []Interceptor {
	return []Interceptor{NewMessageDispatcher(DispatcherConfig{}), NewFailureDetector(FailureDetectorConfig{})}
}

// MessageListener receives the messages that reach the top of a channel's
// stack. MessageReceived runs on the receiver's workers (the messages of
// one connection in order); msg is valid only until it returns. An error
// answers FAIL_ACK to a synchronous sender.
type MessageListener interface {
	MessageReceived(msg *Message) error
}

// ListenerFunc adapts a function to a [MessageListener].
type ListenerFunc func(msg *Message) error

// MessageReceived calls f(msg).
func (f ListenerFunc) MessageReceived(msg *Message) error { return f(msg) }

// MembershipListener is told of members joining and leaving, after the
// interceptors (the failure detector, a domain filter) had their say. The
// methods run on the membership's goroutines and must not block for long.
type MembershipListener interface {
	MemberAdded(m *Member)
	MemberDisappeared(m *Member)
}

// MembershipFuncs adapts two functions (either may be nil) to a
// [MembershipListener].
type MembershipFuncs struct {
	Added       func(m *Member)
	Disappeared func(m *Member)
}

// MemberAdded calls f.Added.
func (f MembershipFuncs) MemberAdded(m *Member) {
	if f.Added != nil {
		f.Added(m)
	}
}

// MemberDisappeared calls f.Disappeared.
func (f MembershipFuncs) MemberDisappeared(m *Member) {
	if f.Disappeared != nil {
		f.Disappeared(m)
	}
}

// Channel is a member of a group (Tribes' GroupChannel): it sends byte
// messages to other members through its interceptor stack and transport,
// delivers theirs to its listeners, and tracks the membership.
type Channel struct {
	cfg        Config
	log        *slog.Logger
	transport  Transport
	membership Membership
	stack      []Interceptor // head, configured interceptors, coordinator
	head       *head
	coord      *coordinator

	msgListeners atomic.Pointer[[]MessageListener]
	mbrListeners atomic.Pointer[[]MembershipListener]
	lmu          sync.Mutex // serialises listener changes

	local   atomic.Pointer[Member]
	state   atomic.Int32 // 0 new, 1 started, 2 stopped
	hbStop  chan struct{}
	hbDone  chan struct{}
	startMu sync.Mutex
}

const (
	stateNew int32 = iota
	stateStarted
	stateStopped
)

// New builds a channel from cfg. Nothing is opened before Start.
func New(cfg Config) (*Channel, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	c := &Channel{cfg: cfg, log: cfg.Logger}
	c.msgListeners.Store(&[]MessageListener{})
	c.mbrListeners.Store(&[]MembershipListener{})

	c.transport = cfg.Transport
	if c.transport == nil {
		r, s := cfg.Receiver, cfg.Sender
		if r.Logger == nil {
			r.Logger = cfg.Logger
		}
		if s.Logger == nil {
			s.Logger = cfg.Logger
		}
		c.transport = NewNioTransport(r, s)
	}
	c.membership = cfg.Membership
	if c.membership == nil {
		mc := cfg.Mcast
		if mc.Logger == nil {
			mc.Logger = cfg.Logger
		}
		if mc.OnMessage == nil {
			mc.OnMessage = func(frame []byte) { c.coord.multicastReceived(frame) }
		}
		m, err := NewMcast(mc)
		if err != nil {
			return nil, err
		}
		c.membership = m
	}

	ics := cfg.Interceptors
	if ics == nil {
		ics = DefaultInterceptors()
	}
	c.head = &head{ch: c, members: map[MemberKey]*Member{}}
	c.coord = &coordinator{ch: c}
	c.stack = make([]Interceptor, 0, len(ics)+2)
	c.stack = append(c.stack, c.head)
	for i, ic := range ics {
		if ic == nil {
			return nil, fmt.Errorf("tribes: interceptor %d is nil", i)
		}
		if ic.base().ch != nil {
			return nil, fmt.Errorf("tribes: interceptor %d (%T) already belongs to a channel", i, ic)
		}
		c.stack = append(c.stack, ic)
	}
	c.stack = append(c.stack, c.coord)
	for i, ic := range c.stack {
		b := ic.base()
		b.ch = c
		if i > 0 {
			b.prev = c.stack[i-1]
		}
		if i < len(c.stack)-1 {
			b.next = c.stack[i+1]
		}
	}
	return c, nil
}

// Interceptors returns the configured interceptors, top first.
func (c *Channel) Interceptors() []Interceptor {
	return slices.Clone(c.stack[1 : len(c.stack)-1])
}

// Transport returns the channel's transport.
func (c *Channel) Transport() Transport { return c.transport }

// Membership returns the channel's membership provider.
func (c *Channel) Membership() Membership { return c.membership }

// Logger returns the channel's logger, for interceptors.
func (c *Channel) Logger() *slog.Logger { return c.log }

// Start opens the transport, starts the interceptors, joins the group and
// starts the heartbeat. It returns as soon as the receiver listens and the
// first membership announcement is out: members are reported to the
// listeners as they are found, not before Start returns.
//
// A channel starts once. When Start fails before the transport listens,
// it may be called again; when it fails later, what it started is stopped
// and the channel is closed, as after Stop: build a new one to retry.
func (c *Channel) Start(ctx context.Context) error {
	c.startMu.Lock()
	defer c.startMu.Unlock()
	switch c.state.Load() {
	case stateStarted:
		return fmt.Errorf("tribes: Start: channel already started")
	case stateStopped:
		return fmt.Errorf("tribes: Start: %w: a channel that was stopped, or whose Start failed after its transport started, cannot start again; create a new one", ErrChannelClosed)
	}
	addr, err := c.transport.Start(ctx, c.coord.received)
	if err != nil {
		return err
	}
	id := c.cfg.UniqueID
	if id == (UniqueID{}) {
		id = NewUniqueID()
	}
	local := &Member{
		Host: addr.Addr(), Port: int(addr.Port()), SecurePort: -1, UDPPort: -1,
		UniqueID: id, Domain: slices.Clone(c.cfg.Domain), Payload: slices.Clone(c.cfg.Payload),
	}
	if local.Host.IsUnspecified() {
		c.transport.Close()
		c.state.Store(stateStopped)
		return fmt.Errorf("tribes: the receiver listens on %s; configure an address other members can reach", addr)
	}
	c.local.Store(local)
	if err := c.transport.SetLocalMember(local); err != nil {
		c.transport.Close()
		c.state.Store(stateStopped)
		return err
	}
	var started []Starter // the interceptors started, top first
	fail := func(err error) error {
		for i := len(started) - 1; i >= 0; i-- {
			if serr := started[i].Stop(ctx); serr != nil {
				c.log.Warn("tribes: stopping an interceptor after a failed start", "interceptor", fmt.Sprintf("%T", started[i]), "err", serr)
			}
		}
		c.transport.Close()
		// The transport and the interceptors stopped cannot be started
		// again (their goroutines and queues are gone): the channel is
		// done, and says so to a second Start and to senders.
		c.state.Store(stateStopped)
		return err
	}
	for _, ic := range c.stack {
		if s, ok := ic.(Starter); ok {
			if err := s.Start(ctx); err != nil {
				return fail(fmt.Errorf("tribes: starting %T: %w", ic, err))
			}
			started = append(started, s)
		}
	}
	c.state.Store(stateStarted)
	if err := c.membership.Start(ctx, local, c.coord.memberEvent); err != nil {
		return fail(fmt.Errorf("tribes: starting membership: %w", err))
	}
	c.hbStop, c.hbDone = make(chan struct{}), make(chan struct{})
	go c.heartbeat()
	c.log.Info("tribes channel started", "member", local.String())
	return nil
}

// Stop leaves the group gracefully, stops the interceptors and closes the
// transport. Asynchronous messages still queued are written first, within
// the send timeout.
func (c *Channel) Stop(ctx context.Context) error {
	c.startMu.Lock()
	defer c.startMu.Unlock()
	if !c.state.CompareAndSwap(stateStarted, stateStopped) {
		c.state.Store(stateStopped)
		return nil
	}
	close(c.hbStop)
	<-c.hbDone
	errs := []error{c.membership.Stop(ctx)}
	for i := len(c.stack) - 1; i >= 0; i-- {
		if s, ok := c.stack[i].(Starter); ok {
			errs = append(errs, s.Stop(ctx))
		}
	}
	errs = append(errs, c.transport.Close())
	c.log.Info("tribes channel stopped")
	return errors.Join(errs...)
}

func (c *Channel) heartbeat() {
	defer close(c.hbDone)
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-c.hbStop:
			return
		case <-t.C:
			c.stack[0].Heartbeat()
		}
	}
}

// LocalMember returns the local member (nil before Start). It must not be
// modified.
func (c *Channel) LocalMember() *Member { return c.local.Load() }

// Members returns the members as the top-most interceptor that keeps a
// view sees them (see [MemberView]), else as they reached the listeners.
func (c *Channel) Members() []*Member {
	for _, ic := range c.stack[1:] {
		if v, ok := ic.(MemberView); ok {
			return v.Members()
		}
	}
	return c.head.snapshot()
}

// AwaitMembers waits until the channel sees at least n members (after the
// failure detector admitted them) and returns them, or returns ctx's error.
func (c *Channel) AwaitMembers(ctx context.Context, n int) ([]*Member, error) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if ms := c.Members(); len(ms) >= n {
			return ms, nil
		}
		select {
		case <-ctx.Done():
			return c.Members(), ctx.Err()
		case <-t.C:
		}
	}
}

// AddMessageListener adds l; it receives every message from now on.
func (c *Channel) AddMessageListener(l MessageListener) {
	c.lmu.Lock()
	defer c.lmu.Unlock()
	ls := append(slices.Clone(*c.msgListeners.Load()), l)
	c.msgListeners.Store(&ls)
}

// RemoveMessageListener removes l.
func (c *Channel) RemoveMessageListener(l MessageListener) {
	c.lmu.Lock()
	defer c.lmu.Unlock()
	ls := slices.DeleteFunc(slices.Clone(*c.msgListeners.Load()), func(x MessageListener) bool { return x == l })
	c.msgListeners.Store(&ls)
}

// AddMembershipListener adds l; it is told of membership changes from now
// on (the members already known are in Members).
func (c *Channel) AddMembershipListener(l MembershipListener) {
	c.lmu.Lock()
	defer c.lmu.Unlock()
	ls := append(slices.Clone(*c.mbrListeners.Load()), l)
	c.mbrListeners.Store(&ls)
}

// RemoveMembershipListener removes l.
func (c *Channel) RemoveMembershipListener(l MembershipListener) {
	c.lmu.Lock()
	defer c.lmu.Unlock()
	ls := slices.DeleteFunc(slices.Clone(*c.mbrListeners.Load()), func(x MembershipListener) bool { return x == l })
	c.mbrListeners.Store(&ls)
}

// Send sends data to the members to (all members when to is empty) with
// the given options; [OptByteMessage] is added, as Tribes does for a
// ByteMessage. It returns when the options are satisfied: at once for
// [OptAsynchronous], after the ACKs for [OptUseAck]. data may be reused
// when Send returns.
func (c *Channel) Send(ctx context.Context, to []*Member, data []byte, opts Options) error {
	msg := getMessage()
	msg.Options = opts | OptByteMessage
	msg.Data = data
	err := c.SendMessage(ctx, to, msg)
	msg.Data = nil
	msg.release(nil)
	return err
}

// SendMessage sends msg down the stack as it is (its options unchanged).
func (c *Channel) SendMessage(ctx context.Context, to []*Member, msg *Message) error {
	switch c.state.Load() {
	case stateNew:
		return ErrChannelNotStarted
	case stateStopped:
		return ErrChannelClosed
	}
	if len(to) == 0 && !msg.Options.Has(OptMulticast) { // a multicast needs no member list
		to = c.Members()
		if len(to) == 0 {
			return ErrNoMembers
		}
	}
	return c.stack[1].SendMessage(ctx, to, msg)
}

// head is the top of the stack: it hands messages and membership events to
// the listeners and keeps the members that reached it.
type head struct {
	BaseInterceptor
	ch      *Channel
	mu      sync.RWMutex
	members map[MemberKey]*Member
}

func (h *head) SendMessage(ctx context.Context, to []*Member, msg *Message) error {
	return h.next.SendMessage(ctx, to, msg)
}

func (h *head) MessageReceived(msg *Message) error {
	var errs error
	for _, l := range *h.ch.msgListeners.Load() {
		if err := l.MessageReceived(msg); err != nil {
			errs = err
		}
	}
	return errs
}

func (h *head) MemberAdded(m *Member) {
	h.mu.Lock()
	h.members[m.Key()] = m
	h.mu.Unlock()
	for _, l := range *h.ch.mbrListeners.Load() {
		l.MemberAdded(m)
	}
}

func (h *head) MemberDisappeared(m *Member) {
	h.mu.Lock()
	_, known := h.members[m.Key()]
	delete(h.members, m.Key())
	h.mu.Unlock()
	if !known {
		return
	}
	for _, l := range *h.ch.mbrListeners.Load() {
		l.MemberDisappeared(m)
	}
}

func (h *head) MemberUpdated(m *Member) {
	h.mu.Lock()
	if _, ok := h.members[m.Key()]; ok {
		h.members[m.Key()] = m
	}
	h.mu.Unlock()
}

func (h *head) snapshot() []*Member {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*Member, 0, len(h.members))
	for _, m := range h.members {
		out = append(out, m)
	}
	sortMembers(out)
	return out
}

// coordinator is the bottom of the stack: it hands messages to the
// transport and receives from it and from the membership.
type coordinator struct {
	BaseInterceptor
	ch *Channel
}

func (k *coordinator) SendMessage(ctx context.Context, to []*Member, msg *Message) error {
	if msg.Options.Has(OptMulticast) {
		return k.multicast(msg)
	}
	return k.ch.transport.Send(ctx, to, msg)
}

// multicast sends msg as one datagram to the group (OptMulticast).
func (k *coordinator) multicast(msg *Message) error {
	b, ok := k.ch.membership.(interface{ Broadcast(frame []byte) error })
	if !ok {
		return fmt.Errorf("tribes: the membership (%T) cannot send multicast messages", k.ch.membership)
	}
	local := k.ch.LocalMember()
	rec, err := local.AppendBinary(nil)
	if err != nil {
		return err
	}
	if msg.Timestamp == 0 {
		msg.Timestamp = time.Now().UnixMilli()
	}
	if msg.UniqueID == (UniqueID{}) {
		msg.UniqueID = NewUniqueID()
	}
	frame := appendMessageHeader(nil, msg.Options, msg.Timestamp, msg.UniqueID[:], rec, len(msg.Data))
	frame = append(frame, msg.Data...)
	frame = append(frame, frameEnd[:]...)
	return b.Broadcast(frame)
}

func (k *coordinator) Heartbeat() {}

// multicastReceived decodes a multicast message frame (OptMulticast,
// spec section 3.3; the membership checked it is well formed) and passes
// it up. Multicast messages are never acknowledged.
func (k *coordinator) multicastReceived(frame []byte) {
	body, n, err := parseFrame(frame, len(frame))
	if err != nil || n == 0 {
		return
	}
	var cd channelData
	if decodeChannelData(body, &cd) != nil {
		return
	}
	src := new(Member)
	if _, err := decodeMember(cd.member, src); err != nil {
		return
	}
	msg := &Message{Options: cd.options, Timestamp: cd.timestamp, Source: src, Data: cd.message}
	copy(msg.UniqueID[:], cd.uniqueID)
	if err := k.prev.MessageReceived(msg); err != nil {
		k.ch.log.Debug("tribes: multicast message listener failed", "source", src.String(), "err", err)
	}
}

// received is the transport's ReceiveFunc.
func (k *coordinator) received(msg *Message) error {
	return k.prev.MessageReceived(msg)
}

// memberEvent is the membership's event callback.
func (k *coordinator) memberEvent(ev MemberEvent) {
	switch ev.Type {
	case MemberAdded:
		k.prev.MemberAdded(ev.Member)
	case MemberDisappeared:
		k.ch.transport.Disconnect(ev.Member)
		k.prev.MemberDisappeared(ev.Member)
	case MemberUpdated:
		// A known member announced a new payload or domain: refresh the
		// views that hold it, without telling listeners it joined again.
		for i := len(k.ch.stack) - 1; i >= 0; i-- { // bottom up
			if u, ok := k.ch.stack[i].(MemberUpdater); ok {
				u.MemberUpdated(ev.Member)
			}
		}
	}
}
