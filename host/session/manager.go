package session

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Manager keeps the sessions of one context (app). The [StandardManager]
// keeps them on one node; the delta and backup managers of the replication
// work implement the same interface and ship each committed [Delta].
//
// All methods are safe for concurrent use.
type Manager interface {
	// Find returns the valid, unexpired session with the given id. It never
	// creates a session and never changes one (the access time moves at
	// Commit; a Txn that opens the session records its start, so that the
	// session does not expire while the request runs).
	Find(id string) (*Session, bool)
	// Create returns a new session with a fresh id, the manager's default
	// idle limit and the current time, not yet visible to Find: it becomes
	// visible when a delta with Created set commits. It returns
	// ErrTooManySessions when the manager is at MaxActiveSessions.
	Create() (*Session, error)
	// NewID returns a fresh session id (random, with the route suffix).
	NewID() (string, error)
	// Commit applies the delta of one successful request: creation,
	// attribute operations in order, idle limit, access time, id change
	// and invalidation. The manager must not keep d or its slices.
	//
	// A delta of a Txn applies to the session the request opened even if
	// its id changed meanwhile (another request's ChangeID, a failover's
	// route rewrite); Commit then sets d.NewID to the current id (d.ID
	// when the request invalidated the session or changed its id itself),
	// so that the cookie and the replicated delta carry it. It returns
	// ErrNotFound when the session is gone, and ErrTooManyAttributes or
	// ErrAttributeTooLarge, applying nothing, when the delta would grow
	// the session beyond the limits (each request checks its own changes,
	// but those of concurrent requests may add up).
	Commit(d *Delta) error
	// Invalidate removes the session with the given id, as if a request
	// invalidated it, and reports whether it existed.
	Invalidate(id string) bool
	// ChangeID gives the session a fresh id (and this manager's route) and
	// returns it; ErrNotFound if there is no such session.
	ChangeID(id string) (string, error)
	// Expire removes the sessions idle beyond their limit at now and
	// returns how many it removed. Managers also run it in the background.
	Expire(now time.Time) int
	// Len returns the number of active sessions.
	Len() int
	// Range calls fn for each active session until fn returns false.
	Range(fn func(*Session) bool)
	// Close stops background work. Sessions are kept (Tomcat's
	// expireSessionsOnShutdown="false").
	Close() error
}

// Listener hears of session lifecycle events. Its methods are called
// outside of the manager's locks, from the committing request's goroutine
// or from the background expiry; they must be safe for concurrent use.
type Listener interface {
	SessionCreated(s *Session)
	// SessionDestroyed is called after an invalidation or an expiry; the
	// session still holds its last attributes.
	SessionDestroyed(s *Session, expired bool)
}

// Config configures a [StandardManager].
type Config struct {
	// JvmRoute is appended to every id as ".<JvmRoute>"; empty means none.
	JvmRoute string
	// MaxActiveSessions caps the number of sessions; <= 0 means no limit.
	MaxActiveSessions int
	// MaxInactiveInterval is the default idle limit of new sessions;
	// 0 means 30 minutes, negative means sessions never expire.
	MaxInactiveInterval time.Duration
	// ExpireInterval is how often the background expiry runs; 0 means
	// 10 seconds, negative disables it (call Expire yourself).
	ExpireInterval time.Duration
	// IDBytes is the number of random bytes in an id; 0 means 16 (128
	// bits), and smaller values are raised to 16. An id (two hex digits a
	// byte, then the route) must fit Limits.MaxIDBytes.
	IDBytes int
	// Limits bound attributes; zero fields mean [DefaultLimits].
	Limits Limits
	// Listener, if set, hears of created and destroyed sessions.
	Listener Listener
	// Random is the source of id bytes; nil means crypto/rand.
	Random io.Reader
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Backup, if set, reports whether the session with the given id is a
	// copy of a session another member serves (a replica). A replica
	// expires only after twice its idle limit, as Tomcat's DeltaSession:
	// the member serving it replicates its access time well within one
	// limit and expires it first. Backup is called with the manager's locks
	// held and must not call back into the manager.
	//
	// Without Backup, a session is a replica when it came from another
	// member (ApplyRemote, ApplyEncoded, Put) and no request committed it
	// here since, as Tomcat's DeltaSession is primary only on the member
	// that served it last (see [Session.Replica]).
	Backup func(id string) bool
	// Logger receives expiry logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults of a [StandardManager]: no route, no
// session limit, 30 minutes of idle time, expiry every 10 seconds.
func DefaultConfig() Config {
	return Config{
		MaxInactiveInterval: DefaultMaxInactiveInterval, // Tomcat's 30 minutes
		ExpireInterval:      10 * time.Second,           // Tomcat's background processor delay
		IDBytes:             16,                         // 128 random bits
		Limits:              DefaultLimits(),
	}
}

// StandardManager keeps sessions in memory on one node, like Tomcat's
// StandardManager (without persistence across restarts).
type StandardManager struct {
	cfg    Config
	suffix string
	lim    Limits

	mu       sync.RWMutex
	sessions map[string]*Session
	closed   bool

	stop chan struct{}
	done chan struct{}
}

var _ Manager = (*StandardManager)(nil)

// NewStandardManager returns a manager and starts its background expiry.
func NewStandardManager(cfg Config) (*StandardManager, error) {
	def := DefaultConfig()
	if cfg.MaxInactiveInterval == 0 {
		cfg.MaxInactiveInterval = def.MaxInactiveInterval
	}
	if cfg.ExpireInterval == 0 {
		cfg.ExpireInterval = def.ExpireInterval
	}
	if cfg.IDBytes < def.IDBytes {
		cfg.IDBytes = def.IDBytes
	}
	if cfg.Random == nil {
		cfg.Random = rand.Reader
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if !ValidRoute(cfg.JvmRoute) {
		return nil, fmt.Errorf("session: jvmRoute %q holds a character not allowed in a session id", cfg.JvmRoute)
	}
	lim := cfg.Limits.orDefault()
	if n := 2*cfg.IDBytes + len(cfg.JvmRoute) + 1; n > lim.MaxIDBytes {
		return nil, fmt.Errorf("session: ids of %d random bytes and jvmRoute %q take up to %d bytes, more than Limits.MaxIDBytes %d", cfg.IDBytes, cfg.JvmRoute, n, lim.MaxIDBytes)
	}
	m := &StandardManager{
		cfg:      cfg,
		lim:      lim,
		sessions: make(map[string]*Session),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if cfg.JvmRoute != "" {
		m.suffix = "." + cfg.JvmRoute
	}
	if cfg.ExpireInterval > 0 {
		go m.expireLoop()
	} else {
		close(m.done)
	}
	return m, nil
}

// ValidRoute reports whether route can be a jvmRoute: printable ASCII
// without '.', ';', ',', '=', '/', '"', '\\' or spaces, so that session
// ids are cookie-safe and never need escaping in JSON or HTML.
func ValidRoute(route string) bool {
	for i := 0; i < len(route); i++ {
		c := route[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(".;,=/\"\\<>&'", c) >= 0 {
			return false
		}
	}
	return true
}

// Limits returns the manager's attribute limits.
func (m *StandardManager) Limits() Limits { return m.lim }

// MaxInactiveInterval returns the default idle limit of new sessions.
func (m *StandardManager) MaxInactiveInterval() time.Duration { return m.cfg.MaxInactiveInterval }

func (m *StandardManager) expireLoop() {
	defer close(m.done)
	t := time.NewTicker(m.cfg.ExpireInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			if n := m.Expire(m.cfg.Now()); n > 0 {
				m.cfg.Logger.Debug("sessions expired", "count", n, "active", m.Len())
			}
		}
	}
}

// NewID implements [Manager].
func (m *StandardManager) NewID() (string, error) {
	var buf [64]byte
	var raw []byte
	if m.cfg.IDBytes <= len(buf) {
		raw = buf[:m.cfg.IDBytes]
	} else {
		raw = make([]byte, m.cfg.IDBytes)
	}
	if _, err := io.ReadFull(m.cfg.Random, raw); err != nil {
		return "", fmt.Errorf("session: reading random id: %w", err)
	}
	id := make([]byte, 0, 2*len(raw)+len(m.suffix))
	id = hex.AppendEncode(id, raw)
	for i, c := range id {
		if c >= 'a' && c <= 'f' {
			id[i] = c - 'a' + 'A'
		}
	}
	return string(append(id, m.suffix...)), nil
}

// Find implements [Manager].
func (m *StandardManager) Find(id string) (*Session, bool) {
	m.mu.RLock()
	s, ok := m.sessions[id]
	m.mu.RUnlock()
	if !ok {
		return nil, false
	}
	if m.expired(s, m.cfg.Now().UnixMilli()) {
		m.remove(s, true)
		return nil, false
	}
	return s, true
}

// expired reports whether s is past its idle limit at nowMS, twice the
// limit for a replica (see Config.Backup).
func (m *StandardManager) expired(s *Session, nowMS int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return m.expiredLocked(s, nowMS)
}

// expiredLocked is expired with s.mu held. When s is past its limit,
// s.replica records whether it expired as a replica, for the listener
// (see Session.Replica).
func (m *StandardManager) expiredLocked(s *Session, nowMS int64) bool {
	if s.maxInactive <= 0 {
		return false
	}
	limit := int64(s.maxInactive) * 1000
	replica := m.replicaLocked(s)
	if replica {
		limit *= 2
	}
	if nowMS-s.idleSinceLocked() <= limit {
		return false
	}
	s.replica = replica
	return true
}

// replicaLocked reports whether s is a replica (see Config.Backup); s.mu
// is held.
func (m *StandardManager) replicaLocked(s *Session) bool {
	if m.cfg.Backup != nil {
		return m.cfg.Backup(s.id)
	}
	return s.replica
}

// Create implements [Manager].
func (m *StandardManager) Create() (*Session, error) {
	if err := m.checkRoom(); err != nil {
		return nil, err
	}
	id, err := m.NewID()
	if err != nil {
		return nil, err
	}
	return New(id, m.cfg.Now(), m.cfg.MaxInactiveInterval), nil
}

func (m *StandardManager) checkRoom() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return ErrClosed
	}
	if m.cfg.MaxActiveSessions > 0 && len(m.sessions) >= m.cfg.MaxActiveSessions {
		return fmt.Errorf("%w (maxActiveSessions %d)", ErrTooManySessions, m.cfg.MaxActiveSessions)
	}
	return nil
}

// Commit implements [Manager].
func (m *StandardManager) Commit(d *Delta) error {
	var s *Session
	if d.Created {
		s = &Session{
			id:          d.ID,
			created:     d.CreationTime,
			accessed:    d.CreationTime,
			maxInactive: seconds(m.cfg.MaxInactiveInterval),
			valid:       true,
		}
		if d.Invalidated {
			return nil // created and invalidated by one request: nothing to keep
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return ErrClosed
		}
		if m.cfg.MaxActiveSessions > 0 && len(m.sessions) >= m.cfg.MaxActiveSessions {
			m.mu.Unlock()
			return fmt.Errorf("%w (maxActiveSessions %d)", ErrTooManySessions, m.cfg.MaxActiveSessions)
		}
		if err := d.fitsLocked(s, m.lim); err != nil {
			m.mu.Unlock()
			return err
		}
		d.applyLocked(s)
		if d.NewID != "" {
			s.id = d.NewID
		}
		m.sessions[s.id] = s
		m.mu.Unlock()
		if m.cfg.Listener != nil {
			m.cfg.Listener.SessionCreated(s)
		}
		return nil
	}

	m.mu.Lock()
	id := d.ID
	if d.s != nil {
		id = d.s.id // s.id changes only with m.mu held
	}
	s, ok := m.sessions[id]
	if !ok {
		m.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotFound, d.ID)
	}
	s.mu.Lock()
	if err := d.fitsLocked(s, m.lim); err != nil {
		s.mu.Unlock()
		m.mu.Unlock()
		return err
	}
	if id != d.ID {
		// The id changed while the request ran: the delta records the
		// change as its own, which members that hold the session under
		// either id apply (see ApplyRemote), and the client gets the
		// current id.
		if d.NewID == "" && !d.Invalidated {
			d.NewID = id
		} else {
			d.ID = id
		}
	}
	d.applyLocked(s)
	s.replica = false // served here: this member's copy is the primary
	if d.NewID != "" && !d.Invalidated {
		delete(m.sessions, s.id)
		s.id = d.NewID
		m.sessions[s.id] = s
	}
	if d.Invalidated {
		delete(m.sessions, s.id)
		s.valid = false
	}
	s.mu.Unlock()
	m.mu.Unlock()
	if d.Invalidated && m.cfg.Listener != nil {
		m.cfg.Listener.SessionDestroyed(s, false)
	}
	return nil
}

// Invalidate implements [Manager].
func (m *StandardManager) Invalidate(id string) bool {
	m.mu.RLock()
	s, ok := m.sessions[id]
	m.mu.RUnlock()
	if !ok {
		return false
	}
	return m.remove(s, false)
}

// remove deletes s if it is still in the map and fires the listener.
func (m *StandardManager) remove(s *Session, expired bool) bool {
	m.mu.Lock()
	s.mu.Lock()
	cur, ok := m.sessions[s.id]
	if ok && cur == s {
		delete(m.sessions, s.id)
		s.valid = false
	}
	s.mu.Unlock()
	m.mu.Unlock()
	if ok && cur == s && m.cfg.Listener != nil {
		m.cfg.Listener.SessionDestroyed(s, expired)
	}
	return ok && cur == s
}

// ChangeID implements [Manager].
func (m *StandardManager) ChangeID(id string) (string, error) {
	newID, err := m.NewID()
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	s.mu.Lock()
	s.id = newID
	s.mu.Unlock()
	delete(m.sessions, id)
	m.sessions[newID] = s
	return newID, nil
}

// Expire implements [Manager].
func (m *StandardManager) Expire(now time.Time) int {
	nowMS := now.UnixMilli()
	var dead []*Session
	m.mu.Lock()
	for id, s := range m.sessions {
		s.mu.Lock()
		if m.expiredLocked(s, nowMS) {
			delete(m.sessions, id)
			s.valid = false
			dead = append(dead, s)
		}
		s.mu.Unlock()
	}
	m.mu.Unlock()
	if m.cfg.Listener != nil {
		for _, s := range dead {
			m.cfg.Listener.SessionDestroyed(s, true)
		}
	}
	return len(dead)
}

// Len implements [Manager].
func (m *StandardManager) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.sessions)
}

// Range implements [Manager]. fn runs without the manager's lock held.
func (m *StandardManager) Range(fn func(*Session) bool) {
	m.mu.RLock()
	all := make([]*Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	m.mu.RUnlock()
	for _, s := range all {
		if !fn(s) {
			return
		}
	}
}

// Close implements [Manager]. It stops the background expiry; it is safe to
// call more than once.
func (m *StandardManager) Close() error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		close(m.stop)
	}
	m.mu.Unlock()
	<-m.done
	return nil
}
