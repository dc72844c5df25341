package session

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxInactiveInterval is the idle time after which a session expires
// unless the app or the manager configures another (Tomcat's default).
const DefaultMaxInactiveInterval = 30 * time.Minute

// Attr is one session attribute: a key and an opaque value.
type Attr struct {
	Key   string
	Value []byte
}

// Session is one HTTP session. Its methods are safe for concurrent use. A
// Session returned by a [Manager] reflects committed state only; requests
// change it through a [Txn] and [Manager.Commit].
type Session struct {
	mu          sync.Mutex
	id          string
	created     int64 // unix milliseconds
	accessed    int64 // unix milliseconds, last committed request
	maxInactive int32 // seconds; <= 0 means never expires
	valid       bool
	replica     bool         // a copy of a session another member serves, see Replica
	attrs       []Attr       // sorted by key; values are never modified in place
	repl        atomic.Int64 // last access time replicated (unix ms), see ReplicatedAccess
	// opened is the start (unix milliseconds) of the latest request that
	// opened the session on this member, committed or not (Tomcat's
	// thisAccessedTime): the session is idle from the later of accessed
	// and opened, so that it does not expire under a running request.
	opened int64
}

// New returns a valid session with the given id, creation time and idle
// limit, and no attributes. Managers call it; apps get sessions from a
// manager.
func New(id string, created time.Time, maxInactive time.Duration) *Session {
	ms := created.UnixMilli()
	return &Session{id: id, created: ms, accessed: ms, maxInactive: seconds(maxInactive), valid: true}
}

func seconds(d time.Duration) int32 {
	if d <= 0 {
		return -1
	}
	s := d / time.Second
	if s < 1 {
		s = 1
	}
	if s > 1<<31-1 {
		s = 1<<31 - 1
	}
	return int32(s)
}

// ID returns the session id (with its route suffix, if any).
func (s *Session) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// CreationTime returns when the session was created.
func (s *Session) CreationTime() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.UnixMilli(s.created)
}

// LastAccessedTime returns the time of the last committed request.
func (s *Session) LastAccessedTime() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.UnixMilli(s.accessed)
}

// MaxInactiveInterval returns the idle time after which the session expires;
// a negative value means it never expires.
func (s *Session) MaxInactiveInterval() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.maxInactive <= 0 {
		return -1
	}
	return time.Duration(s.maxInactive) * time.Second
}

// Valid reports whether the session has been neither invalidated nor expired
// (as of its removal by a manager).
func (s *Session) Valid() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.valid
}

// Expired reports whether the session is idle for longer than its max
// inactive interval at now, counted from its last committed request or
// the start of a later request that opened it on this member.
func (s *Session) Expired(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiredLocked(now.UnixMilli())
}

func (s *Session) expiredLocked(nowMS int64) bool {
	return s.maxInactive > 0 && nowMS-s.idleSinceLocked() > int64(s.maxInactive)*1000
}

// idleSinceLocked returns when s became idle (unix milliseconds): the
// later of its last committed access and the start of the latest request
// that opened it here.
func (s *Session) idleSinceLocked() int64 { return max(s.accessed, s.opened) }

// open records that a request starting at ms (unix milliseconds) opened s.
func (s *Session) open(ms int64) {
	s.mu.Lock()
	if ms > s.opened {
		s.opened = ms
	}
	s.mu.Unlock()
}

// Get returns the value of the attribute key. The returned slice is shared
// and must not be modified; it stays valid (a later Set replaces the value
// rather than changing it).
func (s *Session) Get(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.find(key)
	if !ok {
		return nil, false
	}
	return s.attrs[i].Value, true
}

// Keys returns the attribute keys in sorted order.
func (s *Session) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, len(s.attrs))
	for i, a := range s.attrs {
		keys[i] = a.Key
	}
	return keys
}

// Len returns the number of attributes.
func (s *Session) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.attrs)
}

// Size returns the number of attribute bytes (keys and values).
func (s *Session) Size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, a := range s.attrs {
		n += len(a.Key) + len(a.Value)
	}
	return n
}

// attrsSizeLocked returns the size of the encoding of s's attributes.
func (s *Session) attrsSizeLocked() int {
	n := 0
	for _, a := range s.attrs {
		n += attrSize(a.Key, a.Value)
	}
	return n
}

func (s *Session) find(key string) (int, bool) {
	return slices.BinarySearchFunc(s.attrs, key, func(a Attr, k string) int { return strings.Compare(a.Key, k) })
}

// setLocked stores value without a copy (the caller hands it over); with
// cloneKey, a key the session does not hold yet is stored as a copy (the
// caller's key is borrowed).
func (s *Session) setLocked(key string, value []byte, cloneKey bool) {
	i, ok := s.find(key)
	if ok {
		s.attrs[i].Value = value
		return
	}
	if cloneKey {
		key = strings.Clone(key)
	}
	s.attrs = slices.Insert(s.attrs, i, Attr{Key: key, Value: value})
}

func (s *Session) removeLocked(key string) {
	if i, ok := s.find(key); ok {
		s.attrs = slices.Delete(s.attrs, i, i+1)
	}
}

// Snapshot returns a copy of the session's state, for codecs and tests.
func (s *Session) Snapshot() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return State{
		ID:          s.id,
		Created:     s.created,
		Accessed:    s.accessed,
		MaxInactive: s.maxInactive,
		Attrs:       slices.Clone(s.attrs),
	}
}

// State is a plain copy of a session: what the codec ships.
type State struct {
	ID          string
	Created     int64 // unix milliseconds
	Accessed    int64 // unix milliseconds
	MaxInactive int32 // seconds; <= 0 never expires
	Attrs       []Attr
}

// Session returns a valid session holding st. Attributes are sorted and
// deduplicated (the last value of a key wins).
func (st State) Session() *Session {
	attrs := slices.Clone(st.Attrs)
	slices.SortStableFunc(attrs, func(a, b Attr) int { return strings.Compare(a.Key, b.Key) })
	out := attrs[:0]
	for i, a := range attrs {
		if i+1 < len(attrs) && attrs[i+1].Key == a.Key {
			continue
		}
		out = append(out, a)
	}
	return &Session{id: st.ID, created: st.Created, accessed: st.Accessed, maxInactive: st.MaxInactive, valid: true, attrs: out}
}
