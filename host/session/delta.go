package session

import "time"

// OpKind says what an [Op] does.
type OpKind uint8

// The operations a request records on a session.
const (
	OpSet    OpKind = 1 // set the attribute Key to Value
	OpRemove OpKind = 2 // remove the attribute Key
)

func (k OpKind) String() string {
	switch k {
	case OpSet:
		return "set"
	case OpRemove:
		return "remove"
	}
	return "unknown"
}

// Op is one attribute change of a request.
type Op struct {
	Kind  OpKind
	Key   string
	Value []byte // nil for OpRemove
}

// Delta is what one request did to one session: exactly the set and remove
// calls the app made, in order, plus its effect on the session's lifecycle.
// Managers apply it in [Manager.Commit]; replicating managers also ship it
// (see [Delta.AppendBinary]).
type Delta struct {
	// ID is the session's id when the request began; for a session created
	// by the request it is the new session's id. Commit updates ID or
	// NewID when the id changed while the request ran (see
	// [Manager.Commit]).
	ID string
	// NewID is set when the request changed the session id (login).
	NewID string
	// Created reports that the request created the session, at
	// CreationTime.
	Created      bool
	CreationTime int64 // unix milliseconds
	// Accessed is the request's access time (unix milliseconds), which
	// becomes the session's last accessed time.
	Accessed int64
	// MaxInactive is the new idle limit in seconds (<= 0: never expires),
	// meaningful when MaxInactiveSet.
	MaxInactive    int32
	MaxInactiveSet bool
	// Invalidated reports that the request invalidated the session; Ops
	// made before the invalidation are kept for the record.
	Invalidated bool
	// Ops are the attribute changes in call order.
	Ops []Op

	// s is the committed session the request opened (set by Txn.Open):
	// Commit applies the delta to it even when another request or a
	// failover changed its id meanwhile.
	s *Session
}

// Reset clears d for reuse, keeping the capacity of Ops.
func (d *Delta) Reset() {
	clear(d.Ops)
	*d = Delta{Ops: d.Ops[:0]}
}

// FinalID returns the session id after the request: NewID if the id
// changed, else ID.
func (d *Delta) FinalID() string {
	if d.NewID != "" {
		return d.NewID
	}
	return d.ID
}

// HasChanges reports whether d changes more than the access time: a
// creation, an attribute change, an id or idle-limit change or an
// invalidation.
func (d *Delta) HasChanges() bool {
	return d.Created || d.NewID != "" || d.MaxInactiveSet || d.Invalidated || len(d.Ops) > 0
}

// applyLocked applies the attribute, idle-limit and access-time parts of d
// to s (not creation, id change or invalidation, which the manager handles).
// Values are copied, so d may be reused afterwards.
func (d *Delta) applyLocked(s *Session) { d.apply(s, true, false) }

// apply is applyLocked; copyValues stores copies of d's values instead of
// d's own, and copyKeys copies a key the session does not hold yet.
func (d *Delta) apply(s *Session, copyValues, copyKeys bool) {
	for _, op := range d.Ops {
		switch op.Kind {
		case OpSet:
			v := op.Value
			if copyValues {
				v = append([]byte(nil), v...)
			}
			s.setLocked(op.Key, v, copyKeys)
		case OpRemove:
			s.removeLocked(op.Key)
		}
	}
	if d.MaxInactiveSet {
		s.maxInactive = d.MaxInactive
	}
	if d.Accessed > s.accessed {
		s.accessed = d.Accessed
	}
}

// Apply applies the attribute changes, idle limit and access time of d to
// s. Managers use it; it does not handle creation, id change or
// invalidation.
func (d *Delta) Apply(s *Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d.applyLocked(s)
}

func unixMilli(t time.Time) int64 { return t.UnixMilli() }
