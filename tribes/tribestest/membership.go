package tribestest

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// Membership is a node's [tribes.Membership] on the in-memory network.
// Membership changes are instantaneous and deterministic: Start reports the
// new member to every running membership it is not partitioned from (in
// node creation order), then reports those members to the new one, all
// from the goroutine calling Start, before Start returns. Stop, Crash,
// Partition, Heal and Update do the same for their events. Events are
// serialised over the whole network, so they are never concurrent for one
// membership; a callback may call Members, or send messages, but must not
// call Start, Stop, Update or the network's Crash, Partition or Heal.
type Membership struct {
	node *Node

	// guarded by node.net.mu
	up     bool
	local  *tribes.Member
	events func(tribes.MemberEvent)
	joined time.Time
	seq    int64
}

var _ tribes.Membership = (*Membership)(nil)

// Start joins the group as local (see [tribes.Membership.Start]). It
// returns [ErrCrashed] for a crashed node and tribes.ErrMembershipStarted
// when already running.
func (m *Membership) Start(ctx context.Context, local *tribes.Member, events func(tribes.MemberEvent)) error {
	if local == nil {
		return fmt.Errorf("tribestest: nil local member")
	}
	n := m.node.net
	n.evMu.Lock()
	defer n.evMu.Unlock()
	n.mu.Lock()
	switch {
	case m.node.crashed:
		n.mu.Unlock()
		return ErrCrashed
	case m.up:
		n.mu.Unlock()
		return tribes.ErrMembershipStarted
	}
	if events == nil {
		events = func(tribes.MemberEvent) {}
	}
	m.up, m.local, m.events, m.joined = true, local.Clone(), events, time.Now()
	m.local.Command = nil
	n.seq++
	m.seq = n.seq
	var others, mine []delivery
	for _, o := range n.nodes {
		om := o.mb
		if om == m || !om.up || n.cut[[2]*Node{m.node, o}] {
			continue
		}
		others = append(others, delivery{om.events, tribes.MemberEvent{Type: tribes.MemberAdded, Member: m.record()}})
		mine = append(mine, delivery{events, tribes.MemberEvent{Type: tribes.MemberAdded, Member: om.record()}})
	}
	n.mu.Unlock()
	deliver(others)
	deliver(mine)
	return nil
}

// Stop leaves the group: the others get MemberDisappeared with a record
// carrying tribes.ShutdownCommand (BABY-ALEX). Stop on a stopped
// membership returns nil.
func (m *Membership) Stop(ctx context.Context) error {
	n := m.node.net
	n.evMu.Lock()
	defer n.evMu.Unlock()
	n.mu.Lock()
	ds := n.leaveLocked(m, true)
	n.mu.Unlock()
	deliver(ds)
	return nil
}

// leaveLocked marks m down and returns the events for the others. Called
// with evMu and mu held.
func (n *Network) leaveLocked(m *Membership, graceful bool) []delivery {
	if !m.up {
		return nil
	}
	rec := m.record()
	if graceful {
		rec.Command = []byte(tribes.ShutdownCommand)
	}
	m.up, m.events = false, nil
	var ds []delivery
	for _, o := range n.nodes {
		om := o.mb
		if om == m || !om.up || n.cut[[2]*Node{m.node, o}] {
			continue
		}
		ds = append(ds, delivery{om.events, tribes.MemberEvent{Type: tribes.MemberDisappeared, Member: rec.Clone()}})
	}
	return ds
}

// Update replaces the announced local member record (same host, port and
// unique id) and reports MemberUpdated to the others, as a changed payload
// or domain in a heartbeat would.
func (m *Membership) Update(local *tribes.Member) error {
	n := m.node.net
	n.evMu.Lock()
	defer n.evMu.Unlock()
	n.mu.Lock()
	if !m.up {
		n.mu.Unlock()
		return tribes.ErrMembershipNotStarted
	}
	if local.Key() != m.local.Key() {
		n.mu.Unlock()
		return fmt.Errorf("tribestest: Update changes the member's identity (%v -> %v)", m.local, local)
	}
	m.local = local.Clone()
	m.local.Command = nil
	var ds []delivery
	for _, o := range n.nodes {
		om := o.mb
		if om == m || !om.up || n.cut[[2]*Node{m.node, o}] {
			continue
		}
		ds = append(ds, delivery{om.events, tribes.MemberEvent{Type: tribes.MemberUpdated, Member: m.record()}})
	}
	n.mu.Unlock()
	deliver(ds)
	return nil
}

// Members returns copies of the running members this one is not
// partitioned from, oldest first; nil when not running.
func (m *Membership) Members() []*tribes.Member {
	n := m.node.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if !m.up {
		return nil
	}
	var ms []*Membership
	for _, o := range n.nodes {
		if om := o.mb; om != m && om.up && !n.cut[[2]*Node{m.node, o}] {
			ms = append(ms, om)
		}
	}
	slices.SortFunc(ms, func(a, b *Membership) int { return int(a.seq - b.seq) })
	out := make([]*tribes.Member, len(ms))
	for i, om := range ms {
		out[i] = om.record()
	}
	return out
}

// record returns a copy of m's member record with Alive = ms since it
// joined. Called with mu held.
func (m *Membership) record() *tribes.Member {
	r := m.local.Clone()
	r.Alive = time.Since(m.joined).Milliseconds()
	return r
}
