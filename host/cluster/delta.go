package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/tribes"
)

// ReplicaListener is implemented by session listeners (the host's
// contexts) that want to hear of sessions another member created, when
// NotifyListenersOnReplication is on. SessionDestroyed of
// [session.Listener] is called for replicated invalidations and expiries.
type ReplicaListener interface {
	SessionReplicated(s *session.Session)
}

// Replicator is implemented by the replicating managers: the
// [ReplicationValve] hands each request's committed delta to Replicate.
type Replicator interface {
	session.Manager
	// Replicate sends the delta of a committed request to the members that
	// need it and returns the bytes sent. With synchronous send options it
	// returns after they applied it. A delta that only moves the access
	// time may be skipped (see ManagerConfig.AccessReplicateInterval).
	Replicate(ctx context.Context, d *session.Delta) (int, error)
}

// ManagerStats are a replicating manager's counters (Tomcat's
// DeltaManager and BackupManager MBean attributes).
type ManagerStats struct {
	Kind             Kind
	ActiveSessions   int   // sessions held (a backup manager: primary and backup copies)
	PrimarySessions  int   // sessions this member serves (backup manager), else ActiveSessions
	Proxies          int   // sessions known only by where they live (backup manager)
	SessionsCreated  int64 // created by requests on this member
	SessionsExpired  int64 // expired on this member
	Replicated       int64 // messages sent
	ReplicatedBytes  int64
	Received         int64 // messages applied from other members
	ReceivedBytes    int64
	Missing          int64 // deltas for a session this member does not hold
	SendErrors       int64
	Skipped          int64 // access-only deltas not sent (within AccessReplicateInterval)
	Fetched          int64 // sessions fetched from another member (backup manager)
	Promoted         int64 // backups promoted after their primary left (backup manager)
	StateTransferred int   // sessions received by the state transfer
	StateTransfer    time.Duration
	StateComplete    bool // the state transfer finished (false: timed out, still running, or no member could send its state)
	Ready            bool
}

type managerCounters struct {
	created, expired, replicated, replicatedBytes, received, receivedBytes,
	missing, sendErrors, skipped, fetched, promoted atomic.Int64
}

func (k *managerCounters) fill(s *ManagerStats) {
	s.SessionsCreated = k.created.Load()
	s.SessionsExpired = k.expired.Load()
	s.Replicated = k.replicated.Load()
	s.ReplicatedBytes = k.replicatedBytes.Load()
	s.Received = k.received.Load()
	s.ReceivedBytes = k.receivedBytes.Load()
	s.Missing = k.missing.Load()
	s.SendErrors = k.sendErrors.Load()
	s.Skipped = k.skipped.Load()
	s.Fetched = k.fetched.Load()
	s.Promoted = k.promoted.Load()
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// DeltaManager replicates every session of an app to every member running
// it (Tomcat's DeltaManager): creation, attribute deltas, access time, idle
// limit, id changes, invalidation and expiry.
type DeltaManager struct {
	base
	xfer
}

var (
	_ Replicator = (*DeltaManager)(nil)
	_ replicator = (*DeltaManager)(nil)
)

func newDeltaManager(c *Cluster, path string, scfg session.Config) (*DeltaManager, error) {
	m := &DeltaManager{}
	m.base.init(c, path, scfg, managerHooks{replicate: m.Replicate, expireOpts: c.cfg.Manager.SendOptions, tellReplicaExpiry: true})
	m.xfer = xfer{b: &m.base, apply: m.apply, record: m.putRecord}
	scfg.Listener = m
	// No Backup: as Tomcat's DeltaSession, a copy is a replica (twice the
	// idle limit) from the moment another member's change arrives until
	// a request is served here. Whether its route's member is alive does
	// not matter: the copy's access time may be a quarter limit old (see
	// AccessReplicateInterval) whether or not that member still serves it.
	st, err := session.NewStandardManager(scfg)
	if err != nil {
		return nil, err
	}
	m.store = st
	m.lim = st.Limits()
	return m, nil
}

// putRecord stores one session of a state-transfer block.
func (m *DeltaManager) putRecord(rec []byte) error {
	st, err := session.UnmarshalState(rec, m.lim)
	if err != nil {
		return err
	}
	_, err = m.store.Put(st)
	return err
}

// Find implements session.Manager.
func (m *DeltaManager) Find(id string) (*session.Session, bool) { return m.store.Find(id) }

// Commit implements session.Manager: it applies the delta locally; the
// ReplicationValve then calls Replicate.
func (m *DeltaManager) Commit(d *session.Delta) error {
	err := m.store.Commit(d)
	if err == nil && d.Created {
		m.k.created.Add(1)
	}
	return err
}

// accessInterval is how stale the others' view of s's access time may get.
func accessInterval(cfg ManagerConfig, s *session.Session) int64 {
	if cfg.AccessReplicateInterval > 0 {
		return cfg.AccessReplicateInterval.Milliseconds()
	}
	if d := s.MaxInactiveInterval(); d > 0 {
		return d.Milliseconds() / 4
	}
	return time.Hour.Milliseconds()
}

// Replicate implements [Replicator]: the delta goes to every member, as
// Tomcat's DeltaManager does; members that do not run the app drop it.
// (Sending only to the members known to run it would lose the changes made
// on a member that just started before it heard of the others.)
func (m *DeltaManager) Replicate(ctx context.Context, d *session.Delta) (int, error) {
	var s *session.Session
	if !d.Invalidated {
		s, _ = m.store.Peek(d.FinalID())
	}
	if !d.HasChanges() {
		if s == nil || d.Accessed-s.ReplicatedAccess() < accessInterval(m.cfg, s) {
			m.k.skipped.Add(1)
			return 0, nil
		}
	}
	if s != nil {
		s.SetReplicatedAccess(d.Accessed)
	}
	to := m.c.domainMembers()
	if len(to) == 0 {
		return 0, nil
	}
	bp := bufPool.Get().(*[]byte)
	b := header((*bp)[:0], msgDelta, m.ctx)
	b, _ = d.AppendBinary(b)
	err := m.send(ctx, to, b, m.cfg.SendOptions)
	n := len(b)
	if cap(b) <= 64<<10 {
		*bp = b
		bufPool.Put(bp)
	}
	return n, err
}

// handle applies a message of another member.
func (m *DeltaManager) handle(ctx context.Context, msg *tribes.Message, p parsed) error {
	switch p.typ {
	case msgDelta, msgExpire:
		return m.live(msg, p)
	case msgGetAll:
		return m.serveGetAll(msg, p, func() (int, func(b []byte, i int) []byte) {
			var all []*session.Session
			m.store.Range(func(s *session.Session) bool { all = append(all, s); return true })
			return len(all), func(b []byte, i int) []byte {
				st := all[i].Snapshot()
				b, _ = st.AppendBinary(b)
				return b
			}
		})
	}
	m.c.stats.ignored.Add(1)
	return nil
}

// apply applies a delta or expire message.
func (m *DeltaManager) apply(t msgType, body []byte) error {
	m.k.received.Add(1)
	m.k.receivedBytes.Add(int64(len(body)))
	switch t {
	case msgDelta:
		ev, err := m.store.ApplyEncoded(body, m.lim)
		if err != nil {
			return m.applyFailed(err)
		}
		if ev.Session == nil {
			return nil // created and invalidated by one request: nothing to keep
		}
		// Another member served the session, so this copy is a replica
		// now. The next request served here makes it the primary again:
		// its access goes out whatever AccessReplicateInterval says, so
		// that the other members take theirs for replicas (Tomcat's
		// EVT_SESSION_ACCESSED from a non-primary session).
		ev.Session.SetReplicatedAccess(0)
		if !m.cfg.NoNotifyListenersOnReplication && m.app != nil {
			if ev.Created != nil {
				if rl, ok := m.app.(ReplicaListener); ok {
					rl.SessionReplicated(ev.Created)
				}
			}
			if ev.Destroyed != nil {
				m.app.SessionDestroyed(ev.Destroyed, false)
			}
		}
	case msgExpire:
		id, reason, err := decodeExpire(body)
		if err != nil {
			return err
		}
		var s *session.Session
		var ok bool
		switch reason {
		case reasonExpired, reasonInvalidated:
			s, ok = m.store.Remove(id)
		case reasonReplicaExpired:
			// Another member's replica expired: this copy goes only if
			// it is idle past its limit here too (it may be served here).
			s, ok = m.store.RemoveExpired(id)
		default: // a newer member's: keep the session
			m.log.Debug("expire message with an unknown reason ignored", "session", id, "reason", reason)
		}
		if ok {
			m.notifyDestroyed(s, reason != reasonInvalidated)
		}
	}
	return nil
}

func (m *DeltaManager) memberJoined(tribes.UniqueID) {}

// handOff has nothing to do: every member holds every session.
func (m *DeltaManager) handOff(context.Context) (int, error) { return 0, nil }
func (m *DeltaManager) memberLeft(tribes.UniqueID)           {}

// Stats returns the manager's counters.
func (m *DeltaManager) Stats() ManagerStats {
	s := ManagerStats{Kind: KindDelta, ActiveSessions: m.store.Len(), Ready: m.ready(),
		StateTransferred: int(m.n.Load()), StateTransfer: time.Duration(m.dur.Load()), StateComplete: m.ok.Load()}
	s.PrimarySessions = s.ActiveSessions
	m.k.fill(&s)
	return s
}
