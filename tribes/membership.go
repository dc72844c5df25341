package tribes

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Errors of the membership providers.
var (
	// ErrMembershipStarted occurs when Start is called on a provider that is
	// already running.
	ErrMembershipStarted = errors.New("tribes: membership already started")

	// ErrMembershipNotStarted occurs when a running provider is required
	// (for example [McastService.Broadcast]) but Start has not been called,
	// or Stop has.
	ErrMembershipNotStarted = errors.New("tribes: membership not started")
)

// MemberEventType says what happened to a member.
type MemberEventType int

// The member events.
const (
	// MemberAdded: a member was seen for the first time (or again after it
	// disappeared).
	MemberAdded MemberEventType = iota + 1
	// MemberDisappeared: a member left (its record then carries
	// [ShutdownCommand], see [Member.IsShutdown]) or was not heard from for
	// longer than the provider's drop time.
	MemberDisappeared
	// MemberUpdated: a known member announced a different command, domain,
	// payload, secure port or UDP port. Alive changes with every heartbeat
	// and is refreshed silently (see [Membership.Members]); it never causes
	// an event, as in Tribes.
	MemberUpdated
)

// String returns "added", "disappeared" or "updated".
func (t MemberEventType) String() string {
	switch t {
	case MemberAdded:
		return "added"
	case MemberDisappeared:
		return "disappeared"
	case MemberUpdated:
		return "updated"
	}
	return "MemberEventType(" + strconv.Itoa(int(t)) + ")"
}

// MemberEvent reports a change of the membership. Member is a copy that
// belongs to the receiver of the event: the provider never touches it again.
type MemberEvent struct {
	Type   MemberEventType
	Member *Member
}

// Membership is a membership provider: it announces the local member (when
// the mechanism has announcements) and reports the other members. The group
// channel runs one, or several through [Merge].
//
// Implementations in this package: [McastService] (multicast heartbeats, the
// Tribes default), [StaticMembership] (a fixed list checked by TCP connect)
// and [DNSMembership] (the addresses behind a DNS name, e.g. a Kubernetes
// headless service). tribestest.Network provides an in-memory one.
type Membership interface {
	// Start begins announcing local and reporting the other members to
	// events. It returns once the first announcement is out (multicast: the
	// first heartbeat; static and DNS: the first round of checks has been
	// reported), with an error if the provider cannot run. local is copied;
	// later changes to it have no effect.
	//
	// events is called from the provider's goroutines (or from Start
	// itself), never concurrently for one provider, in the order the
	// changes happened. It must not block for long: heartbeats wait for it.
	// It may call Members, but not Stop. The provider never reports the
	// local member.
	Start(ctx context.Context, local *Member, events func(MemberEvent)) error

	// Stop leaves the group gracefully (multicast: one BABY-ALEX heartbeat,
	// spec §3.4) and stops the provider's goroutines. It reports no events
	// for the members it forgets. It returns ctx's error if ctx ends before
	// the goroutines have stopped. Stop on a stopped provider returns nil.
	Stop(ctx context.Context) error

	// Members returns the members currently known, oldest (largest Alive)
	// first. The members are copies that belong to the caller.
	Members() []*Member
}

// discardLogger returns l, or a logger that discards everything when l is
// nil.
func discardLogger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// memberEntry is a member the table knows, with the time it was last heard
// from (on the caller's clock).
type memberEntry struct {
	m         *Member
	lastHeard time.Time
}

// heardResult is what [memberTable.heard] did with a record.
type heardResult int

const (
	heardRefreshed heardResult = iota // known member, nothing reportable changed
	heardAdded                        // new member
	heardUpdated                      // known member with a changed command, domain, payload or port
	heardFull                         // new member, but the table is full: ignored
)

// memberTable is the membership bookkeeping shared by the providers: which
// members are known and when each was last heard from. It has no clock and
// no goroutines of its own (callers pass now), so its rules are tested
// without sockets or sleeps. It is not safe for concurrent use.
type memberTable struct {
	entries map[MemberKey]*memberEntry
	max     int // 0 = no limit
}

func newMemberTable(max int) memberTable {
	return memberTable{entries: make(map[MemberKey]*memberEntry), max: max}
}

// heard records that m announced itself at now (spec §3.3 steps 3 and 4).
// m is not retained: a new member is cloned, and for a known one the fields
// that changed are copied. For heardAdded and heardUpdated, the returned
// member is a fresh copy for the event; otherwise it is nil.
func (t *memberTable) heard(m *Member, now time.Time) (heardResult, *Member) {
	key := m.Key()
	e, ok := t.entries[key]
	if !ok {
		if t.max > 0 && len(t.entries) >= t.max {
			return heardFull, nil
		}
		c := m.Clone()
		t.entries[key] = &memberEntry{m: c, lastHeard: now}
		return heardAdded, c.Clone()
	}
	e.lastHeard = now
	s := e.m
	s.Alive = m.Alive
	if s.SecurePort == m.SecurePort && s.UDPPort == m.UDPPort && bytes.Equal(s.Command, m.Command) &&
		bytes.Equal(s.Domain, m.Domain) && bytes.Equal(s.Payload, m.Payload) {
		return heardRefreshed, nil
	}
	s.SecurePort, s.UDPPort = m.SecurePort, m.UDPPort
	s.Command = append(s.Command[:0], m.Command...)
	s.Domain = append(s.Domain[:0], m.Domain...)
	s.Payload = append(s.Payload[:0], m.Payload...)
	return heardUpdated, s.Clone()
}

// remove forgets the member with key k and returns its stored record, or
// nil if it was unknown.
func (t *memberTable) remove(k MemberKey) *Member {
	e, ok := t.entries[k]
	if !ok {
		return nil
	}
	delete(t.entries, k)
	return e.m
}

// has reports whether the member with key k is known.
func (t *memberTable) has(k MemberKey) bool {
	_, ok := t.entries[k]
	return ok
}

// expire removes the members not heard from for more than dropTime before
// now (strictly more, as Java) and returns them, ordered by key so the
// events come out in a deterministic order. The returned members belong to
// the caller.
func (t *memberTable) expire(now time.Time, dropTime time.Duration) []*Member {
	var out []*Member
	for k, e := range t.entries {
		if now.Sub(e.lastHeard) > dropTime {
			delete(t.entries, k)
			out = append(out, e.m)
		}
	}
	slices.SortFunc(out, compareMemberKeys)
	return out
}

// len returns the number of known members.
func (t *memberTable) len() int { return len(t.entries) }

// clear forgets every member.
func (t *memberTable) clear() { clear(t.entries) }

// snapshot returns copies of the known members, oldest (largest Alive)
// first, ties broken by key.
func (t *memberTable) snapshot() []*Member {
	out := make([]*Member, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, e.m.Clone())
	}
	sortMembers(out)
	return out
}

// sortMembers orders ms oldest (largest Alive) first, then by key.
func sortMembers(ms []*Member) {
	slices.SortFunc(ms, func(a, b *Member) int {
		if c := cmp.Compare(b.Alive, a.Alive); c != 0 {
			return c
		}
		return compareMemberKeys(a, b)
	})
}

func compareMemberKeys(a, b *Member) int {
	if c := a.Host.Compare(b.Host); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Port, b.Port); c != 0 {
		return c
	}
	return bytes.Compare(a.UniqueID[:], b.UniqueID[:])
}

// logLimiter lets one log line through per interval and counts the ones it
// held back, so that a flood of bad datagrams cannot flood the log.
type logLimiter struct {
	every      time.Duration
	last       time.Time
	suppressed int
}

// allow reports whether a line may be logged at now, and how many were
// suppressed since the last one that was.
func (l *logLimiter) allow(now time.Time) (ok bool, suppressed int) {
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return false, 0
	}
	l.last = now
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// Merge returns a Membership that runs all providers together and reports
// each member once, deduplicated by [MemberKey]: a member is added when the
// first provider reports it and disappears when the last provider that
// reported it drops it. A graceful leave (BABY-ALEX) seen by multicast is
// therefore reported only once the other providers, e.g. a static list, also
// lose the member. MemberUpdated events are passed on for known members.
//
// Start starts the providers in order and, if one fails, stops the ones
// already started and returns the error. Stop stops them in reverse order and
// returns their errors joined.
func Merge(providers ...Membership) Membership {
	return &merged{providers: slices.Clone(providers)}
}

type merged struct {
	providers []Membership

	// deliverMu serialises event delivery across the providers; mu guards
	// the fields below and is never held while calling events, so that
	// events may call Members.
	deliverMu sync.Mutex
	mu        sync.Mutex
	events    func(MemberEvent)
	members   map[MemberKey]*mergedEntry
	started   bool
}

type mergedEntry struct {
	m  *Member
	by []bool // by[i]: provider i reports the member
}

func (g *merged) Start(ctx context.Context, local *Member, events func(MemberEvent)) error {
	g.mu.Lock()
	if g.started {
		g.mu.Unlock()
		return ErrMembershipStarted
	}
	g.started = true
	g.events = events
	g.members = make(map[MemberKey]*mergedEntry)
	g.mu.Unlock()
	for i, p := range g.providers {
		if err := p.Start(ctx, local, func(ev MemberEvent) { g.handle(i, ev) }); err != nil {
			for j := i - 1; j >= 0; j-- {
				g.providers[j].Stop(context.WithoutCancel(ctx))
			}
			g.mu.Lock()
			g.started = false
			g.mu.Unlock()
			return err
		}
	}
	return nil
}

func (g *merged) handle(i int, ev MemberEvent) {
	g.deliverMu.Lock()
	defer g.deliverMu.Unlock()
	g.mu.Lock()
	events := g.events
	k := ev.Member.Key()
	e := g.members[k]
	forward := false
	switch ev.Type {
	case MemberAdded, MemberUpdated:
		if e == nil {
			e = &mergedEntry{m: ev.Member, by: make([]bool, len(g.providers))}
			g.members[k] = e
			ev.Type, forward = MemberAdded, true
		} else if ev.Type == MemberUpdated {
			forward = true
		}
		e.by[i] = true
		if forward {
			e.m = ev.Member
			ev.Member = e.m.Clone()
		}
	case MemberDisappeared:
		if e != nil && e.by[i] {
			e.by[i] = false
			if !slices.Contains(e.by, true) {
				delete(g.members, k)
				forward = true
			}
		}
	}
	g.mu.Unlock()
	if forward && events != nil {
		events(ev)
	}
}

func (g *merged) Stop(ctx context.Context) error {
	g.mu.Lock()
	if !g.started {
		g.mu.Unlock()
		return nil
	}
	g.mu.Unlock()
	var errs []error
	for i := len(g.providers) - 1; i >= 0; i-- {
		errs = append(errs, g.providers[i].Stop(ctx))
	}
	g.mu.Lock()
	g.started = false
	g.events = nil
	clear(g.members)
	g.mu.Unlock()
	return errors.Join(errs...)
}

// Members returns the members of the merged view. Each comes from the first
// provider that lists it (so its Alive is fresh), or is the last copy an
// event carried.
func (g *merged) Members() []*Member {
	var fresh []*Member
	for _, p := range g.providers {
		fresh = append(fresh, p.Members()...)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*Member, 0, len(g.members))
	seen := make(map[MemberKey]bool, len(g.members))
	for _, m := range fresh {
		k := m.Key()
		if g.members[k] != nil && !seen[k] {
			seen[k] = true
			out = append(out, m)
		}
	}
	for k, e := range g.members {
		if !seen[k] {
			out = append(out, e.m.Clone())
		}
	}
	sortMembers(out)
	return out
}
