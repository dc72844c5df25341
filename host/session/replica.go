package session

import (
	"fmt"
	"strings"
	"sync"
)

// This file holds what replicating managers (package host/cluster) need
// from a StandardManager: applying changes that another member made,
// without limits or listener calls of their own (the replicating manager
// decides whom to tell).

// Route returns the jvmRoute suffix of a session id ("" if none): the part
// after the last '.'.
func Route(id string) string {
	if i := strings.LastIndexByte(id, '.'); i >= 0 {
		return id[i+1:]
	}
	return ""
}

// WithRoute returns id with its route suffix replaced by route (removed
// when route is empty), as Tomcat's JvmRouteBinderValve rewrites ids.
func WithRoute(id, route string) string {
	if i := strings.LastIndexByte(id, '.'); i >= 0 {
		id = id[:i]
	}
	if route == "" {
		return id
	}
	return id + "." + route
}

// ReplicaEvent tells what [StandardManager.ApplyRemote] did, so that the
// caller can run the app's session hooks.
type ReplicaEvent struct {
	// Session is the session the delta applied to (invalid if it was
	// invalidated).
	Session *Session
	// Created is the session the delta created, or nil.
	Created *Session
	// Destroyed is the session the delta invalidated, or nil.
	Destroyed *Session
	// OldID is the session's id before the delta changed it, or "" when
	// the id did not change.
	OldID string
	// Accessed is the delta's access time (unix milliseconds).
	Accessed int64
}

// ApplyRemote applies a delta that another member committed. Unlike
// Commit it ignores MaxActiveSessions (a replica is never refused: that
// would lose data), applies a creation of an id it already holds as an
// update (a resent message), applies a delta that changes the id to a
// session already under the new id, and calls no listener. It returns
// ErrNotFound for a delta on a session it does not hold. The session keeps d's values
// without copying them: d must not be changed afterwards (a delta decoded
// by UnmarshalDelta owns its values).
func (m *StandardManager) ApplyRemote(d *Delta) (ReplicaEvent, error) {
	return m.applyRemote(d, true)
}

// ApplyEncoded decodes a delta that another member sent (the
// [Delta.AppendBinary] encoding, within lim) and applies it as
// [StandardManager.ApplyRemote] does. It copies what it keeps and keeps
// nothing of b, which the caller may reuse on return. It allocates only
// for what it keeps: an update of a session this member holds allocates
// once per value set; a new session, attribute key or id is copied too.
func (m *StandardManager) ApplyEncoded(b []byte, lim Limits) (ReplicaEvent, error) {
	d := remoteDeltas.Get().(*Delta)
	var ev ReplicaEvent
	err := unmarshalDelta(b, d, lim, true)
	if err == nil {
		ev, err = m.applyRemote(d, false)
	}
	d.Reset() // drop the pointers into b
	remoteDeltas.Put(d)
	return ev, err
}

// remoteDeltas are ApplyEncoded's scratch deltas (their Ops capacity).
var remoteDeltas = sync.Pool{New: func() any { return new(Delta) }}

// applyRemote is ApplyRemote. Without owned, d's strings and values are
// borrowed: everything stored is a copy.
func (m *StandardManager) applyRemote(d *Delta, owned bool) (ReplicaEvent, error) {
	ev := ReplicaEvent{Accessed: d.Accessed}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ev, ErrClosed
	}
	s, ok := m.sessions[d.ID]
	if !ok && !d.Created && d.NewID != "" {
		// The id change arrived first (a rename that another request of
		// the sending member made while this delta's request ran, or a
		// resent message): the delta applies to the session under its
		// new id.
		s, ok = m.sessions[d.NewID]
	}
	if !ok {
		if !d.Created {
			return ev, fmt.Errorf("%w: %s", ErrNotFound, d.ID)
		}
		if d.Invalidated {
			return ev, nil
		}
		id := d.ID
		if !owned {
			id = strings.Clone(id)
		}
		s = &Session{id: id, created: d.CreationTime, accessed: d.CreationTime,
			maxInactive: seconds(m.cfg.MaxInactiveInterval), valid: true}
		m.sessions[id] = s
		ev.Created = s
	}
	ev.Session = s
	s.mu.Lock()
	d.apply(s, !owned, !owned)
	s.replica = true // another member served it
	if d.NewID != "" && !d.Invalidated && d.NewID != s.id {
		ev.OldID = s.id
		delete(m.sessions, s.id)
		s.id = d.NewID
		if !owned {
			s.id = strings.Clone(s.id)
		}
		m.sessions[s.id] = s
	}
	if d.Invalidated {
		delete(m.sessions, s.id)
		s.valid = false
		ev.Destroyed = s
	}
	s.mu.Unlock()
	return ev, nil
}

// Put stores a session received whole from another member (state
// transfer, a backup copy), replacing any session with its id, and
// returns it, a replica until a request commits it here. It ignores
// MaxActiveSessions and calls no listener.
func (m *StandardManager) Put(st State) (*Session, error) {
	s := st.Session()
	s.replica = true
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if old, ok := m.sessions[s.id]; ok {
		old.mu.Lock()
		old.valid = false
		old.mu.Unlock()
	}
	m.sessions[s.id] = s
	return s, nil
}

// Remove deletes the session with the given id without calling the
// listener (another member expired or invalidated it) and returns it.
func (m *StandardManager) Remove(id string) (*Session, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return nil, false
	}
	delete(m.sessions, id)
	s.mu.Lock()
	s.valid = false
	s.mu.Unlock()
	return s, true
}

// RemoveExpired is Remove for a session that another member expired: it
// deletes the session only if it is idle past its limit here too, by this
// manager's clock, and reports whether it did. A copy used here within its
// limit (through requests whose access was not replicated) stays.
func (m *StandardManager) RemoveExpired(id string) (*Session, bool) {
	nowMS := m.cfg.Now().UnixMilli()
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.expiredLocked(nowMS) {
		return nil, false
	}
	delete(m.sessions, id)
	s.valid = false
	return s, true
}

// Rename moves the session oldID to newID, as a changed id replicated from
// another member or a failover's route rewrite. It returns ErrNotFound if
// there is no session oldID and ErrIDInUse if newID is taken.
func (m *StandardManager) Rename(oldID, newID string) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[oldID]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, oldID)
	}
	if oldID == newID {
		return s, nil
	}
	if _, taken := m.sessions[newID]; taken {
		return nil, fmt.Errorf("%w: %s", ErrIDInUse, newID)
	}
	s.mu.Lock()
	s.id = newID
	s.mu.Unlock()
	delete(m.sessions, oldID)
	m.sessions[newID] = s
	return s, nil
}

// Peek returns the session with the given id whether or not it is past its
// idle limit, without expiring it (for replication and monitoring).
func (m *StandardManager) Peek(id string) (*Session, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s, ok := m.sessions[id]
	return s, ok
}

// ReplicatedAccess returns the last access time (unix milliseconds) a
// replicating manager sent to the other members.
func (s *Session) ReplicatedAccess() int64 { return s.repl.Load() }

// SetReplicatedAccess records the access time sent to the other members.
func (s *Session) SetReplicatedAccess(ms int64) { s.repl.Store(ms) }

// Replica reports whether s is a copy of a session that another member
// serves: it arrived from another member (ApplyRemote, ApplyEncoded, Put)
// and no request committed it on this member since. A replica expires
// only after twice its idle limit (a manager with a Config.Backup asks it
// instead). After s expired, Replica reports whether it expired as a
// replica (also under a Config.Backup): a replicating manager does not
// tell the others of that expiry, since the member serving the session
// may have used it since.
func (s *Session) Replica() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replica
}
