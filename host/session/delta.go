package session

import (
	"fmt"
	"time"
)

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

// fitsLocked reports ErrTooManyAttributes or ErrAttributeTooLarge when
// applying d would grow s beyond lim's MaxAttributes or MaxEncodedSize
// (each request checks its own changes, but concurrent requests on one
// session may add up); s.mu is held.
func (d *Delta) fitsLocked(s *Session, lim Limits) error {
	sets, grow := 0, 0
	for i := range d.Ops {
		if op := &d.Ops[i]; op.Kind == OpSet {
			sets++
			grow += attrSize(op.Key, op.Value)
		}
	}
	if sets == 0 {
		return nil
	}
	n, size := len(s.attrs), s.attrsSizeLocked()
	if n+sets <= lim.MaxAttributes && lim.stateOverhead()+size+grow <= lim.MaxEncodedSize {
		return nil
	}
	// Near a limit: the exact count and size after d.
	n2, size2 := n, size
	for i := range d.Ops {
		op := &d.Ops[i]
		var cur []byte
		has, seen := false, false
		for j := i - 1; j >= 0; j-- {
			if d.Ops[j].Key == op.Key {
				has, cur, seen = d.Ops[j].Kind == OpSet, d.Ops[j].Value, true
				break
			}
		}
		if !seen {
			if k, ok := s.find(op.Key); ok {
				has, cur = true, s.attrs[k].Value
			}
		}
		if has {
			n2--
			size2 -= attrSize(op.Key, cur)
		}
		if op.Kind == OpSet {
			n2++
			size2 += attrSize(op.Key, op.Value)
		}
	}
	if n2 > lim.MaxAttributes && n2 > n {
		return fmt.Errorf("%w: %d attributes after the request, limit %d", ErrTooManyAttributes, n2, lim.MaxAttributes)
	}
	if lim.stateOverhead()+size2 > lim.MaxEncodedSize && size2 > size {
		return fmt.Errorf("%w: the session would encode in up to %d bytes, limit %d", ErrAttributeTooLarge, lim.stateOverhead()+size2, lim.MaxEncodedSize)
	}
	return nil
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
