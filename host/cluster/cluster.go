package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/tribes"
)

// Errors of the cluster.
var (
	// ErrClosed occurs when a closed cluster or manager is used.
	ErrClosed = errors.New("cluster: closed")
	// ErrStateTransfer is logged and counted when a state transfer did not
	// complete within StateTransferTimeout.
	ErrStateTransfer = errors.New("cluster: state transfer incomplete")
	// ErrNoChannel occurs when New gets a Config without a Channel.
	ErrNoChannel = errors.New("cluster: no channel")
	// ErrFetch occurs when a backup manager cannot fetch a session it
	// points to from its primary or backup member.
	ErrFetch = errors.New("cluster: session fetch failed")
)

// Cluster is one member's session replication (Tomcat's SimpleTcpCluster
// with its ClusterSessionListener): it creates the replicating manager of
// each distributable app, tracks which members run which apps, and routes
// the cluster messages of the channel to the managers.
//
// Create it with [New] before the apps are deployed, pass
// [Cluster.NewManager] as the host's NewManager, add the
// [ReplicationValve] and [JvmRouteBinderValve] to the host's valves, and
// start the channel. Its methods are safe for concurrent use.
type Cluster struct {
	cfg Config
	ch  *tribes.Channel
	log *slog.Logger

	mu       sync.Mutex
	managers map[string]replicator
	peers    map[tribes.UniqueID]*peer
	closed   bool

	helloMu sync.Mutex // orders hellos: see sendHelloLocked

	reqs    sync.Map // request id (uint64) → pending
	nextReq atomic.Uint64

	events chan func() // membership work, in order, off the membership goroutines
	done   chan struct{}
	// life ends at Close: the waits of a member's requests (a state
	// transfer, a fetch) derive from it, so that Close ends them.
	life    context.Context
	endLife context.CancelFunc

	byPath atomic.Pointer[map[string]replicator] // a copy of managers for the message path
	live   atomic.Pointer[[]*tribes.Member]      // the channel's members of this domain, from its events

	stats clusterCounters
}

// peer is another member as the cluster knows it.
type peer struct {
	m        *tribes.Member
	route    string
	contexts map[string]bool
	greeted  bool // its hello arrived (route and contexts are its own word)
}

// replicator is what a replicating manager does for the cluster.
type replicator interface {
	session.Manager
	path() string
	handle(ctx context.Context, msg *tribes.Message, p parsed) error
	memberJoined(uid tribes.UniqueID)
	memberLeft(uid tribes.UniqueID)
	transfer(ctx context.Context)
	handOff(ctx context.Context) (int, error)
	ready() bool
	Stats() ManagerStats
}

type clusterCounters struct {
	received, bad, ignored, sendErrors, helloRetries atomic.Int64
}

// New returns a cluster on cfg.Channel and adds its listeners to the
// channel, which may be started before or after.
func New(cfg Config) (*Cluster, error) {
	if cfg.Channel == nil {
		return nil, ErrNoChannel
	}
	if !session.ValidRoute(cfg.JvmRoute) {
		return nil, fmt.Errorf("cluster: jvmRoute %q holds a character not allowed in a session id", cfg.JvmRoute)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Manager = cfg.Manager.withDefaults()
	c := &Cluster{
		cfg:      cfg,
		ch:       cfg.Channel,
		log:      cfg.Logger,
		managers: map[string]replicator{},
		peers:    map[tribes.UniqueID]*peer{},
		events:   make(chan func(), 256),
		done:     make(chan struct{}),
	}
	c.life, c.endLife = context.WithCancel(context.Background())
	go c.runEvents()
	c.ch.AddMembershipListener(c)
	c.mu.Lock()
	c.refreshLiveLocked()
	c.mu.Unlock()
	c.ch.AddMessageListener(c)
	// Members the channel knew before the listeners were added raised no
	// MemberAdded here, and their hellos may have arrived before anyone
	// listened: greet them now.
	for _, m := range c.domainMembers() {
		m := m.Clone()
		c.later(func() { c.greet(m, 0) })
	}
	return c, nil
}

// Config returns the cluster's configuration with defaults filled in.
func (c *Cluster) Config() Config { return c.cfg }

// Channel returns the cluster's channel.
func (c *Cluster) Channel() *tribes.Channel { return c.ch }

func (c *Cluster) runEvents() {
	for {
		select {
		case f := <-c.events:
			f()
		case <-c.done:
			return
		}
	}
}

// later runs f on the cluster's event goroutine, in order with the other
// membership work.
func (c *Cluster) later(f func()) {
	select {
	case c.events <- f:
	case <-c.done:
	}
}

// Close stops the cluster's background work and removes its listeners.
// The managers are closed by the host when it undeploys the apps.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	close(c.done)
	c.endLife()
	c.ch.RemoveMessageListener(c)
	c.ch.RemoveMembershipListener(c)
	return nil
}

// NewManager creates the replicating manager of the app at contextPath
// (delta or backup, as configured); it has the signature of
// host.Config.NewManager. It announces the app to the other members and
// receives their sessions (the state transfer) before it returns, or
// until StateTransferTimeout passes, which it logs and counts, or until
// Close. The channel must be started.
func (c *Cluster) NewManager(contextPath string, scfg session.Config) (session.Manager, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if _, dup := c.managers[contextPath]; dup {
		c.mu.Unlock()
		return nil, fmt.Errorf("cluster: a manager for %s exists", contextPath)
	}
	c.mu.Unlock()
	var (
		r   replicator
		err error
	)
	switch c.cfg.Manager.Kind {
	case KindBackup:
		r, err = newBackupManager(c, contextPath, scfg)
	default:
		r, err = newDeltaManager(c, contextPath, scfg)
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.managers[contextPath] = r
	c.publishManagersLocked()
	c.mu.Unlock()
	c.announce(true)
	// Close ends the wait too (c.life): a node stopping while it starts
	// must not wait out StateTransferTimeout for a member that does not
	// answer.
	ctx, cancel := context.WithTimeout(c.life, c.cfg.Manager.StateTransferTimeout)
	defer cancel()
	r.transfer(ctx)
	return r, nil
}

// publishManagersLocked stores a copy of managers for MessageReceived;
// c.mu is held.
func (c *Cluster) publishManagersLocked() {
	m := maps.Clone(c.managers)
	c.byPath.Store(&m)
}

// removeManager forgets the closed manager of the app at path and tells
// the others. It asks for no answers: theirs have not changed, and a
// member whose apps stop is usually leaving, so answers would often reach
// it after its channel stopped (and be logged as lost there).
func (c *Cluster) removeManager(path string) {
	c.mu.Lock()
	delete(c.managers, path)
	c.publishManagersLocked()
	c.mu.Unlock()
	c.announce(false)
}

// HandOff prepares this member to stop without losing a session: the
// sessions a BackupManager serves here get another member as primary (a
// DeltaManager's sessions are on every member already). It returns how
// many sessions it handed on. Call it after host.Server.SetDraining(true),
// so that no new session starts here meanwhile.
func (c *Cluster) HandOff(ctx context.Context) (int, error) {
	c.mu.Lock()
	rs := make([]replicator, 0, len(c.managers))
	for _, r := range c.managers {
		rs = append(rs, r)
	}
	c.mu.Unlock()
	total := 0
	var errs []error
	for _, r := range rs {
		n, err := r.handOff(ctx)
		total += n
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.path(), err))
		}
	}
	return total, errors.Join(errs...)
}

// Manager returns the replicating manager of the app at contextPath.
func (c *Cluster) Manager(contextPath string) (session.Manager, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.managers[contextPath]
	return r, ok
}

// Ready reports whether every manager finished its state transfer (or gave
// up after the timeout): the member may take requests.
func (c *Cluster) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.managers {
		if !r.ready() {
			return false
		}
	}
	return true
}

// Managers returns the statistics of every manager, by context path.
func (c *Cluster) Managers() map[string]ManagerStats {
	c.mu.Lock()
	rs := make([]replicator, 0, len(c.managers))
	for _, r := range c.managers {
		rs = append(rs, r)
	}
	c.mu.Unlock()
	out := make(map[string]ManagerStats, len(rs))
	for _, r := range rs {
		out[r.path()] = r.Stats()
	}
	return out
}

// PeerInfo describes another member as the cluster knows it.
type PeerInfo struct {
	Member   *tribes.Member
	JvmRoute string
	Contexts []string // its distributable apps
}

// Peers returns the other members that announced themselves.
func (c *Cluster) Peers() []PeerInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]PeerInfo, 0, len(c.peers))
	for _, p := range c.peers {
		pi := PeerInfo{Member: p.m, JvmRoute: p.route}
		for ctx := range p.contexts {
			pi.Contexts = append(pi.Contexts, ctx)
		}
		sort.Strings(pi.Contexts)
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].JvmRoute < out[j].JvmRoute })
	return out
}

// Stats are the cluster's message counters.
type Stats struct {
	Received   int64 // cluster messages received
	Bad        int64 // messages that failed to decode (dropped)
	Ignored    int64 // messages for an app this member does not run
	SendErrors int64 // sends that failed for at least one member
	// HelloRetries counts hellos sent again to a member whose own had not
	// arrived (see greetPauses).
	HelloRetries int64
}

// Stats returns the cluster's counters.
func (c *Cluster) Stats() Stats {
	return Stats{Received: c.stats.received.Load(), Bad: c.stats.bad.Load(),
		Ignored: c.stats.ignored.Load(), SendErrors: c.stats.sendErrors.Load(), HelloRetries: c.stats.helloRetries.Load()}
}

// localContexts returns the paths of the local managers.
func (c *Cluster) localContexts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.managers))
	for p := range c.managers {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// announce sends this member's route and apps to every member, asking
// for their hellos in return when wantReply.
func (c *Cluster) announce(wantReply bool) {
	c.helloMu.Lock()
	defer c.helloMu.Unlock()
	if members := c.domainMembers(); len(members) > 0 {
		c.sendHelloLocked(members, wantReply)
	}
}

// sendHello sends this member's hello to the members to.
func (c *Cluster) sendHello(to []*tribes.Member, wantReply bool) {
	c.helloMu.Lock()
	defer c.helloMu.Unlock()
	c.sendHelloLocked(to, wantReply)
}

// sendHelloLocked builds a hello from the apps running now and queues it;
// c.helloMu is held. A member takes each hello for the whole truth, so
// hellos must reach it in the order their app lists were read: under
// helloMu, the order they are queued in, which the transport keeps for
// each member. Built and queued from different goroutines without the
// lock, an older list could overtake a newer one, and the member would
// believe an app announced since was not running here.
func (c *Cluster) sendHelloLocked(to []*tribes.Member, wantReply bool) {
	h := hello{wantReply: wantReply, route: c.cfg.JvmRoute, contexts: c.localContexts()}
	c.sendAsync(to, h.append(nil))
}

// sendAsync queues data to the members without waiting for acks.
func (c *Cluster) sendAsync(to []*tribes.Member, data []byte) {
	if err := c.ch.Send(context.Background(), to, data, tribes.OptAsynchronous); err != nil {
		c.sendFailed(err)
	}
}

func (c *Cluster) sendFailed(err error) {
	c.stats.sendErrors.Add(1)
	c.log.Debug("cluster send failed", "err", err)
}

// domainMembers returns the channel's members, only those of the local
// member's domain unless NoSendClusterDomainOnly. The slice is shared:
// callers must not modify it. It is kept from the membership events, so
// that a request's replication does not copy the member list.
func (c *Cluster) domainMembers() []*tribes.Member {
	if p := c.live.Load(); p != nil {
		return *p
	}
	return nil
}

// refreshLiveLocked recomputes the members of this domain from the
// channel; c.mu is held (it serialises the refreshes).
func (c *Cluster) refreshLiveLocked() {
	ms := c.ch.Members()
	local := c.ch.LocalMember()
	if !c.cfg.Manager.NoSendClusterDomainOnly && local != nil {
		ms = slices.DeleteFunc(ms, func(m *tribes.Member) bool { return string(m.Domain) != string(local.Domain) })
	}
	c.live.Store(&ms)
}

// contextMembers returns the live members that announced the app at path,
// oldest first.
func (c *Cluster) contextMembers(path string) []*tribes.Member {
	live := c.domainMembers()
	c.mu.Lock()
	out := make([]*tribes.Member, 0, len(live))
	for _, m := range live {
		if p := c.peers[m.UniqueID]; p != nil && p.contexts[path] {
			out = append(out, m)
		}
	}
	c.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Alive > out[j].Alive })
	return out
}

// member returns the live member with the unique id, or nil.
func (c *Cluster) member(uid tribes.UniqueID) *tribes.Member {
	for _, m := range c.ch.Members() {
		if m.UniqueID == uid {
			return m
		}
	}
	return nil
}

// markContext records that src runs the app at path (it asked for the
// app's sessions), before the reply's snapshot is taken, so that no delta
// committed after the snapshot misses it.
func (c *Cluster) markContext(src *tribes.Member, path string) {
	c.mu.Lock()
	p := c.peers[src.UniqueID]
	if p == nil {
		p = &peer{m: src.Clone(), contexts: map[string]bool{}}
		c.peers[src.UniqueID] = p
	}
	p.contexts[path] = true
	c.mu.Unlock()
}

// localID returns the local member's unique id (zero before the channel
// started).
func (c *Cluster) localID() tribes.UniqueID {
	if m := c.ch.LocalMember(); m != nil {
		return m.UniqueID
	}
	return tribes.UniqueID{}
}

// pending is a request waiting for replies: only the member asked may
// answer it.
type pending struct {
	to tribes.UniqueID
	h  func(msg *tribes.Message, p parsed, r *reader) error
}

// request registers a handler for the replies of member to to a new
// request id. A reply from another member is ignored and counted as bad:
// request ids are sequential, so any member could name one.
func (c *Cluster) request(to tribes.UniqueID, h func(msg *tribes.Message, p parsed, r *reader) error) (uint64, func()) {
	id := c.nextReq.Add(1)
	c.reqs.Store(id, pending{to: to, h: h})
	return id, func() { c.reqs.Delete(id) }
}

// MessageReceived implements tribes.MessageListener.
//
// The rare cases (hellos, replies, bad messages, unknown contexts) are
// handled out of line, so that the frame of this function, on the path of
// every delta, stays small: the receive path then fits a new goroutine's
// first stack sizes.
func (c *Cluster) MessageReceived(msg *tribes.Message) error {
	p, ok, err := parse(msg.Data)
	if !ok {
		return nil // another component's message (the farm's)
	}
	c.stats.received.Add(1)
	if err != nil {
		c.dropBad(msg, p, err)
		return nil
	}
	switch p.typ {
	case msgHello, msgAllData, msgFetchReply:
		return c.memberMessage(msg, p)
	}
	var m replicator
	if ms := c.byPath.Load(); ms != nil {
		m = (*ms)[string(p.pathB)] // no lock, no allocation for the lookup
	}
	if m == nil {
		c.noContext(msg, p)
		return nil
	}
	if err := m.handle(context.Background(), msg, p); err != nil {
		if errors.Is(err, ErrBadMessage) || errors.Is(err, session.ErrCorrupt) {
			c.dropBad(msg, p, err)
			return nil
		}
		return err
	}
	return nil
}

// dropBad counts and logs a message that did not decode.
//
//go:noinline
func (c *Cluster) dropBad(msg *tribes.Message, p parsed, err error) {
	c.stats.bad.Add(1)
	c.log.Warn("bad cluster message dropped", "from", msg.Source, "type", p.typ, "context", string(p.pathB), "err", err)
}

// memberMessage handles a hello or a reply to a request of this member.
//
//go:noinline
func (c *Cluster) memberMessage(msg *tribes.Message, p parsed) error {
	if p.typ == msgHello {
		h, err := decodeHello(p.body)
		if err != nil {
			c.dropBad(msg, p, err)
			return nil
		}
		c.helloReceived(msg.Source.Clone(), h)
		return nil
	}
	r := reader{b: p.body}
	id := r.u64()
	v, ok := c.reqs.Load(id)
	if r.err != nil || !ok {
		c.stats.ignored.Add(1)
		return nil // a late reply to a request given up
	}
	req := v.(pending)
	if msg.Source == nil || msg.Source.UniqueID != req.to {
		c.dropBad(msg, p, fmt.Errorf("reply to request %d, which asked another member", id))
		return nil
	}
	return req.h(msg, p, &r)
}

// noContext handles a message about a context this member does not run:
// ignored, but a joiner's GET_ALL is told at once that this member lacks
// the app.
//
//go:noinline
func (c *Cluster) noContext(msg *tribes.Message, p parsed) {
	c.stats.ignored.Add(1)
	if p.typ != msgGetAll {
		return
	}
	r := reader{b: p.body}
	id := r.u64()
	if r.err == nil {
		b := header(nil, msgAllData, string(p.pathB))
		b = appendU64(b, id)
		b = append(b, allLast|allNoContext)
		b = appendAllHead(b, 0, 0)
		c.sendAsync([]*tribes.Member{msg.Source.Clone()}, b)
	}
}

func appendU64(b []byte, v uint64) []byte {
	return append(b, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// appendAllHead appends an allData's snapshot time and record count.
func appendAllHead(b []byte, snapshot int64, n int) []byte {
	b = appendVarint(b, snapshot)
	return appendUvarint(b, uint64(n))
}

func (c *Cluster) helloReceived(src *tribes.Member, h hello) {
	c.mu.Lock()
	p := c.peers[src.UniqueID]
	if p == nil {
		p = &peer{m: src, contexts: map[string]bool{}}
		c.peers[src.UniqueID] = p
	}
	p.m = src
	p.route = h.route
	p.greeted = true
	var joined []replicator
	now := map[string]bool{}
	for _, ctx := range h.contexts {
		now[ctx] = true
		if !p.contexts[ctx] {
			if m := c.managers[ctx]; m != nil {
				joined = append(joined, m)
			}
		}
	}
	var left []replicator
	for ctx := range p.contexts {
		if !now[ctx] {
			if m := c.managers[ctx]; m != nil {
				left = append(left, m)
			}
		}
	}
	p.contexts = now
	c.mu.Unlock()
	c.log.Debug("member announced", "member", src, "jvmRoute", h.route, "apps", h.contexts)
	if h.wantReply {
		c.later(func() { c.sendHello([]*tribes.Member{src}, false) })
	}
	if len(joined)+len(left) > 0 {
		c.later(func() {
			for _, m := range joined {
				m.memberJoined(src.UniqueID)
			}
			for _, m := range left {
				m.memberLeft(src.UniqueID)
			}
		})
	}
}

// MemberAdded implements tribes.MembershipListener: the new member hears
// this member's route and apps (and answers with its own).
func (c *Cluster) MemberAdded(m *tribes.Member) {
	c.mu.Lock()
	c.refreshLiveLocked()
	c.mu.Unlock()
	m = m.Clone()
	c.later(func() { c.greet(m, 0) })
}

// greetPauses are how long a member waits for a hello after greeting
// another, before it greets it again (or, after the last, gives up with a
// warning). Hellos go asynchronously, without an ack, and a lost one would
// leave the two members unaware that they run the same apps (no
// replication between them), so they are repeated until the answer
// arrives or the member leaves. A Tribes member that is not wasmfarm never
// answers.
var greetPauses atomic.Pointer[[]time.Duration] // a pointer so that tests may set it

func init() {
	greetPauses.Store(&[]time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second})
}

// greet sends m this member's hello, asking for m's, and checks later that
// it came. It runs on the event goroutine.
func (c *Cluster) greet(m *tribes.Member, attempt int) {
	c.sendHello([]*tribes.Member{m}, true)
	pauses := *greetPauses.Load()
	time.AfterFunc(pauses[min(attempt, len(pauses)-1)], func() {
		c.later(func() {
			if c.member(m.UniqueID) == nil || c.greetedBy(m.UniqueID) {
				return
			}
			if attempt+1 >= len(pauses) {
				c.log.Warn("a member never answered this member's hellos: it is not a wasmfarm member, or messages to it are lost; no sessions are replicated with it",
					"member", m, "hellos", attempt+1)
				return
			}
			c.stats.helloRetries.Add(1)
			c.log.Debug("no hello from a member yet: greeting it again", "member", m, "attempt", attempt+2)
			c.greet(m, attempt+1)
		})
	})
}

// greetedBy reports whether the member's hello arrived.
func (c *Cluster) greetedBy(uid tribes.UniqueID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.peers[uid]
	return p != nil && p.greeted
}

// MemberDisappeared implements tribes.MembershipListener: the managers
// take over what the member held.
func (c *Cluster) MemberDisappeared(m *tribes.Member) {
	uid := m.UniqueID
	c.mu.Lock()
	c.refreshLiveLocked()
	p := c.peers[uid]
	delete(c.peers, uid)
	var ms []replicator
	if p != nil {
		for ctx := range p.contexts {
			if r := c.managers[ctx]; r != nil {
				ms = append(ms, r)
			}
		}
	}
	c.mu.Unlock()
	if p != nil {
		c.log.Info("member left", "member", m, "jvmRoute", p.route)
	}
	c.later(func() {
		for _, r := range ms {
			r.memberLeft(uid)
		}
	})
}
