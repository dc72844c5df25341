package tribes

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// StaticConfig configures a [StaticMembership].
type StaticConfig struct {
	// Members are the cluster's members, each with the host, port and
	// unique id it really uses (identity is host + port + id, spec §3.1).
	// The list may include the local member: the entry with the local
	// member's host and port is skipped, so every node can share one list.
	Members []*Member
	// Frequency is the interval between two rounds of checks. Default 1 s
	// (Tribes' StaticMembershipService pingInterval).
	Frequency time.Duration
	// DropTime: a member whose checks have failed for longer is dropped.
	// Default 5 s (Tribes' expirationTime). It must exceed Frequency.
	DropTime time.Duration
	// ConnectTimeout bounds each check. Default 500 ms (Tribes'
	// connectTimeout). It must not exceed Frequency.
	ConnectTimeout time.Duration
	// Dial opens the check connection; nil means a [net.Dialer]. A check
	// succeeds when Dial returns a connection, which is closed at once
	// without writing anything.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Logger receives the provider's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultStaticConfig returns Tribes' StaticMembershipService timings and no
// members.
func DefaultStaticConfig() StaticConfig {
	return StaticConfig{
		Frequency:      time.Second,            // pingInterval
		DropTime:       5 * time.Second,        // expirationTime
		ConnectTimeout: 500 * time.Millisecond, // connectTimeout
	}
}

// StaticMembership is a membership provider for a fixed list of members
// (no multicast), in the spirit of Tribes' StaticMembershipService: every
// Frequency it opens a TCP connection to each listed member's receiver; a
// member is added as soon as a check succeeds, and dropped when its checks
// have failed for longer than DropTime. It sends no heartbeats and no
// messages: liveness is the plain TCP connect. (Tomcat's
// StaticMembershipInterceptor also exchanges MEMBER_START/MEMBER_STOP
// messages over the channel; that belongs to the channel layer.)
//
// Create one with [NewStatic]; its methods are safe for concurrent use.
type StaticMembership struct {
	cfg     StaticConfig
	members []*Member
	log     *slog.Logger

	mu  sync.Mutex
	run *staticRun
}

var _ Membership = (*StaticMembership)(nil)

// NewStatic returns a static membership provider for cfg (copied, members
// included). Every member must have a valid host and a port in 1..65535.
func NewStatic(cfg StaticConfig) (*StaticMembership, error) {
	d := DefaultStaticConfig()
	if cfg.Frequency == 0 {
		cfg.Frequency = d.Frequency
	}
	if cfg.DropTime == 0 {
		cfg.DropTime = d.DropTime
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = min(d.ConnectTimeout, cfg.Frequency)
	}
	switch {
	case cfg.Frequency < 0:
		return nil, fmt.Errorf("tribes: static membership frequency %v is negative", cfg.Frequency)
	case cfg.DropTime <= cfg.Frequency:
		return nil, fmt.Errorf("tribes: static membership drop time %v must exceed the frequency %v", cfg.DropTime, cfg.Frequency)
	case cfg.ConnectTimeout < 0 || cfg.ConnectTimeout > cfg.Frequency:
		return nil, fmt.Errorf("tribes: static membership connect timeout %v out of range 0..frequency (%v)", cfg.ConnectTimeout, cfg.Frequency)
	}
	s := &StaticMembership{cfg: cfg, log: discardLogger(cfg.Logger).With("component", "tribes.static")}
	for i, m := range cfg.Members {
		if m == nil || !m.Host.IsValid() || m.Host.Zone() != "" || m.Port < 1 || m.Port > 65535 {
			return nil, fmt.Errorf("%w: static member %d (%v) needs an IP address without zone and a port in 1..65535", ErrBadMember, i, m)
		}
		s.members = append(s.members, m.Clone())
	}
	s.cfg.Members = nil
	if s.cfg.Dial == nil {
		var d net.Dialer
		s.cfg.Dial = d.DialContext
	}
	return s, nil
}

type staticRun struct {
	s       *StaticMembership
	targets []*Member
	events  func(MemberEvent)
	cancel  context.CancelFunc
	first   chan struct{} // closed after the first round
	done    chan struct{} // closed when loop returns

	evMu  sync.Mutex // serialises rounds and event delivery
	tabMu sync.RWMutex
	table memberTable
}

// Start checks every listed member once, reports the reachable ones, and
// then keeps checking every Frequency (see [Membership.Start]). If ctx ends
// during the first round, Start stops the provider and returns ctx's error.
func (s *StaticMembership) Start(ctx context.Context, local *Member, events func(MemberEvent)) error {
	if local == nil {
		return fmt.Errorf("tribes: static membership: nil local member")
	}
	if events == nil {
		events = func(MemberEvent) {}
	}
	r := &staticRun{s: s, events: events, first: make(chan struct{}), done: make(chan struct{}), table: newMemberTable(0)}
	for _, m := range s.members {
		if m.AddrPort() == local.AddrPort() {
			continue // the local member
		}
		r.targets = append(r.targets, m)
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	s.mu.Lock()
	if s.run != nil {
		s.mu.Unlock()
		cancel()
		return ErrMembershipStarted
	}
	s.run = r
	s.mu.Unlock()
	go r.loop(bg)
	select {
	case <-r.first:
	case <-ctx.Done():
		s.Stop(context.WithoutCancel(ctx))
		return ctx.Err()
	}
	s.log.Info("static membership started", "members", len(r.targets), "frequency", s.cfg.Frequency, "dropTime", s.cfg.DropTime)
	return nil
}

// loop runs the first round at once, then one every Frequency.
func (r *staticRun) loop(ctx context.Context) {
	defer close(r.done)
	r.round(ctx)
	close(r.first)
	t := time.NewTicker(r.s.cfg.Frequency)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.round(ctx)
	}
}

// round checks all targets in parallel, then reports the changes.
func (r *staticRun) round(ctx context.Context) {
	ok := make([]bool, len(r.targets))
	var wg sync.WaitGroup
	for i, m := range r.targets {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, r.s.cfg.ConnectTimeout)
			defer cancel()
			c, err := r.s.cfg.Dial(cctx, "tcp", m.AddrPort().String())
			if err != nil {
				r.s.log.Debug("static member unreachable", "member", m.String(), "err", err)
				return
			}
			c.Close()
			ok[i] = true
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // stopping: the failures are ours
	}
	now := time.Now()
	r.evMu.Lock()
	defer r.evMu.Unlock()
	var added []*Member
	r.tabMu.Lock()
	for i, m := range r.targets {
		if ok[i] {
			if res, ev := r.table.heard(m, now); res == heardAdded {
				added = append(added, ev)
			}
		}
	}
	gone := r.table.expire(now, r.s.cfg.DropTime)
	r.tabMu.Unlock()
	for _, m := range added {
		r.s.log.Info("static member reachable", "member", m.String())
		r.events(MemberEvent{Type: MemberAdded, Member: m})
	}
	for _, m := range gone {
		r.s.log.Info("static member dropped", "member", m.String(), "dropTime", r.s.cfg.DropTime)
		r.events(MemberEvent{Type: MemberDisappeared, Member: m})
	}
}

// Stop stops checking (see [Membership.Stop]).
func (s *StaticMembership) Stop(ctx context.Context) error {
	s.mu.Lock()
	r := s.run
	if r == nil {
		s.mu.Unlock()
		return nil
	}
	s.run = nil
	s.mu.Unlock()
	r.cancel()
	select {
	case <-r.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.tabMu.Lock()
	r.table.clear()
	r.tabMu.Unlock()
	return nil
}

// Members returns copies of the reachable members; nil when stopped.
func (s *StaticMembership) Members() []*Member {
	s.mu.Lock()
	r := s.run
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	r.tabMu.RLock()
	defer r.tabMu.RUnlock()
	return r.table.snapshot()
}
