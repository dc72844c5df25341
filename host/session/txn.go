package session

import (
	"slices"
	"time"
)

// Txn is one request's view of its session. The app reads and writes
// through it; it records the request's [Delta] and never changes shared
// state. A Txn is used by one request at a time (not safe for concurrent
// use) and may be reused with Reset.
type Txn struct {
	m           Manager
	lim         Limits
	now         time.Time
	requestedID string

	opened   bool     // the requested id was looked up
	base     *Session // the committed session, or the one created by this request
	created  bool
	readOnly bool
	d        Delta
	// vals holds the values of the request's Set operations, reused by
	// the next request: the delta's values alias it, so the delta is only
	// valid until Reset (managers copy what they keep at Commit).
	vals []byte
	// opsSize is the size of the encoding of d.Ops; sessSize, when sized,
	// that of the session's attributes as the request sees them (both
	// bounded by lim.MaxEncodedSize, so that every member decodes the
	// delta and the session).
	opsSize  int
	sessSize int
	sized    bool
}

// maxKeptValueBytes bounds the value buffer Reset keeps for the next
// request.
const maxKeptValueBytes = 64 << 10

// Reset prepares t for a request to a context whose sessions m keeps. The
// request asked for requestedID (empty if none); now is the request's
// access time.
func (t *Txn) Reset(m Manager, lim Limits, requestedID string, now time.Time) {
	t.m = m
	t.lim = lim.orDefault()
	t.now = now
	t.requestedID = requestedID
	t.opened = false
	t.base = nil
	t.created = false
	t.readOnly = false
	t.d.Reset()
	t.opsSize, t.sessSize, t.sized = 0, 0, false
	t.vals = t.vals[:0]
	if cap(t.vals) > maxKeptValueBytes {
		t.vals = nil
	}
}

// ResetReadOnly prepares t as a read-only view of s, for a listener that
// runs after s was destroyed: reads see s's last attributes, writes fail
// with ErrReadOnly.
func (t *Txn) ResetReadOnly(s *Session, now time.Time) {
	t.Reset(nil, Limits{}, s.ID(), now)
	t.opened = true
	t.base = s
	t.readOnly = true
	t.d.ID = s.ID()
}

// RequestedID returns the session id the request carried.
func (t *Txn) RequestedID() string { return t.requestedID }

// Open looks up the requested session and, if there is none and create is
// true, creates one. It reports whether the request now has a session. It
// returns ErrTooManySessions when creation is refused and ErrInvalidated
// when the request invalidated its session and asks for a new one.
func (t *Txn) Open(create bool) (bool, error) {
	if !t.opened {
		t.opened = true
		if t.requestedID != "" {
			if s, ok := t.m.Find(t.requestedID); ok {
				s.open(t.now.UnixMilli()) // Tomcat's access(): no expiry under the request
				t.base = s
				t.d.ID = s.ID()
				t.d.s = s
				t.d.Accessed = t.now.UnixMilli()
			}
		}
	}
	if t.base != nil {
		if t.d.Invalidated {
			if create {
				return false, ErrInvalidated
			}
			return false, nil
		}
		return true, nil
	}
	if !create {
		return false, nil
	}
	if t.readOnly {
		return false, ErrReadOnly
	}
	s, err := t.m.Create()
	if err != nil {
		return false, err
	}
	t.base = s
	t.created = true
	t.d.ID = s.id
	t.d.Created = true
	t.d.CreationTime = s.created
	t.d.Accessed = t.now.UnixMilli()
	return true, nil
}

// Exists reports whether the request has an open, valid session (without
// creating one).
func (t *Txn) Exists() bool {
	ok, _ := t.Open(false)
	return ok
}

// Delta returns the request's delta, or nil when the request has no
// session. It is owned by t and valid until the next Reset.
func (t *Txn) Delta() *Delta {
	if t.base == nil || t.readOnly {
		return nil
	}
	return &t.d
}

// Session returns the committed session the request opened (nil if none or
// if the request created it).
func (t *Txn) Session() *Session {
	if t.created {
		return nil
	}
	return t.base
}

// ID returns the session id as the request sees it (after a ChangeID), or ""
// without a session.
func (t *Txn) ID() string {
	if t.base == nil {
		return ""
	}
	return t.d.FinalID()
}

// IsNew reports whether the request created the session.
func (t *Txn) IsNew() bool { return t.created }

// CreationTime returns the session's creation time.
func (t *Txn) CreationTime() time.Time {
	if t.base == nil {
		return time.Time{}
	}
	if t.created {
		return time.UnixMilli(t.d.CreationTime)
	}
	return t.base.CreationTime()
}

// LastAccessedTime returns the time of the previous committed request (for a
// new session, its creation time).
func (t *Txn) LastAccessedTime() time.Time {
	if t.base == nil {
		return time.Time{}
	}
	if t.created {
		return time.UnixMilli(t.d.CreationTime)
	}
	return t.base.LastAccessedTime()
}

// MaxInactiveInterval returns the session's idle limit (negative: never).
func (t *Txn) MaxInactiveInterval() time.Duration {
	if t.base == nil {
		return 0
	}
	if t.d.MaxInactiveSet {
		if t.d.MaxInactive <= 0 {
			return -1
		}
		return time.Duration(t.d.MaxInactive) * time.Second
	}
	return t.base.MaxInactiveInterval()
}

// SetMaxInactiveInterval changes the idle limit; d <= 0 means never
// expire. Sub-second values round up to one second.
func (t *Txn) SetMaxInactiveInterval(d time.Duration) error {
	if err := t.writable(); err != nil {
		return err
	}
	t.d.MaxInactive = seconds(d)
	t.d.MaxInactiveSet = true
	return nil
}

func (t *Txn) writable() error {
	if t.base == nil {
		return ErrNoSession
	}
	if t.readOnly {
		return ErrReadOnly
	}
	if t.d.Invalidated {
		return ErrInvalidated
	}
	return nil
}

// Get returns the attribute's value as this request sees it: its own
// writes first, then the committed session. The slice must not be
// modified.
func (t *Txn) Get(key string) ([]byte, bool) {
	if t.base == nil || t.d.Invalidated {
		return nil, false
	}
	for i := len(t.d.Ops) - 1; i >= 0; i-- {
		if op := &t.d.Ops[i]; op.Key == key {
			return op.Value, op.Kind == OpSet
		}
	}
	if t.created {
		return nil, false
	}
	return t.base.Get(key)
}

// Set records setting key to a copy of value. It returns
// ErrAttributeTooLarge or ErrTooManyAttributes beyond the limits, including
// when the request's changes or the session would no longer encode within
// MaxEncodedSize.
func (t *Txn) Set(key string, value []byte) error {
	if err := t.writable(); err != nil {
		return err
	}
	if len(key) > t.lim.MaxKeyBytes || len(value) > t.lim.MaxValueBytes {
		return ErrAttributeTooLarge
	}
	if len(t.d.Ops) >= t.lim.MaxAttributes {
		return ErrTooManyAttributes
	}
	old, exists := t.Get(key)
	if !exists && t.base.Len()+len(t.d.Ops) >= t.lim.MaxAttributes && len(t.Keys()) >= t.lim.MaxAttributes {
		return ErrTooManyAttributes
	}
	opSize := 1 + attrSize(key, value)
	if t.lim.deltaOverhead()+t.opsSize+opSize > t.lim.MaxEncodedSize {
		return ErrAttributeTooLarge
	}
	sess := t.sessionSize() + attrSize(key, value)
	if exists {
		sess -= attrSize(key, old)
	}
	if t.lim.stateOverhead()+sess > t.lim.MaxEncodedSize {
		return ErrAttributeTooLarge
	}
	start := len(t.vals)
	t.vals = append(t.vals, value...)
	t.d.Ops = append(t.d.Ops, Op{Kind: OpSet, Key: key, Value: t.vals[start:len(t.vals):len(t.vals)]})
	t.opsSize += opSize
	t.sessSize = sess
	return nil
}

// sessionSize returns the size of the encoding of the session's
// attributes as the request sees them.
func (t *Txn) sessionSize() int {
	if !t.sized {
		t.sized = true
		t.sessSize = 0
		if !t.created {
			t.base.mu.Lock()
			t.sessSize = t.base.attrsSizeLocked()
			t.base.mu.Unlock()
		}
	}
	return t.sessSize
}

// Remove records removing key. It returns ErrAttributeTooLarge for a key
// longer than the limit (which no session holds, and which the members
// would refuse to decode) or when the request's changes would no longer
// encode within MaxEncodedSize.
func (t *Txn) Remove(key string) error {
	if err := t.writable(); err != nil {
		return err
	}
	if len(key) > t.lim.MaxKeyBytes {
		return ErrAttributeTooLarge
	}
	if len(t.d.Ops) >= t.lim.MaxAttributes {
		return ErrTooManyAttributes
	}
	opSize := 1 + uvarintLen(uint64(len(key))) + len(key)
	if t.lim.deltaOverhead()+t.opsSize+opSize > t.lim.MaxEncodedSize {
		return ErrAttributeTooLarge
	}
	if old, exists := t.Get(key); exists {
		t.sessSize = t.sessionSize() - attrSize(key, old)
	}
	t.d.Ops = append(t.d.Ops, Op{Kind: OpRemove, Key: key})
	t.opsSize += opSize
	return nil
}

// Keys returns the attribute keys as this request sees them, sorted.
func (t *Txn) Keys() []string {
	if t.base == nil || t.d.Invalidated {
		return nil
	}
	var keys []string
	if !t.created {
		keys = t.base.Keys()
	}
	for _, op := range t.d.Ops {
		i, found := slices.BinarySearch(keys, op.Key)
		switch {
		case op.Kind == OpSet && !found:
			keys = slices.Insert(keys, i, op.Key)
		case op.Kind == OpRemove && found:
			keys = slices.Delete(keys, i, i+1)
		}
	}
	return keys
}

// Invalidate records the session's invalidation; later reads see no
// attributes and writes fail with ErrInvalidated.
func (t *Txn) Invalidate() error {
	if err := t.writable(); err != nil {
		return err
	}
	t.d.Invalidated = true
	return nil
}

// ChangeID gives the session a fresh id (as after a login, against
// session fixation) and returns it.
func (t *Txn) ChangeID() (string, error) {
	if err := t.writable(); err != nil {
		return "", err
	}
	id, err := t.m.NewID()
	if err != nil {
		return "", err
	}
	if t.created {
		t.d.ID = id
	} else {
		t.d.NewID = id
	}
	return id, nil
}
