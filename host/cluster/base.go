package cluster

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/tribes"
)

// base is what the delta and backup managers share: the local store of
// sessions, the app's listener, the counters and sending.
type base struct {
	c     *Cluster
	ctx   string
	cfg   ManagerConfig
	store *session.StandardManager
	app   session.Listener
	log   *slog.Logger
	lim   session.Limits

	hooks     managerHooks
	closeOnce sync.Once
	k         managerCounters
}

// managerHooks are where the two managers differ in the shared methods.
type managerHooks struct {
	replicate  func(ctx context.Context, d *session.Delta) (int, error)
	expireOpts tribes.Options            // send options of an expiry outside a request
	renamed    func(oldID, newID string) // after a local rename; nil: nothing
	forget     func(id string)           // after a session ended here; nil: nothing
	owns       func(id string) bool      // whether this member expires id at shutdown; nil: every session
	// tellReplicaExpiry: the expiry of a replica is told to the others
	// too, who drop their copies only if idle past the limit there as
	// well (DeltaManager). Without it only the expiry of a session this
	// member serves is told (BackupManager: the primary's expiry).
	tellReplicaExpiry bool
}

// init fills the fields of a new manager's base.
func (m *base) init(c *Cluster, path string, scfg session.Config, h managerHooks) {
	m.c, m.ctx, m.cfg, m.app, m.lim, m.log, m.hooks = c, path, c.cfg.Manager, scfg.Listener, scfg.Limits, scfg.Logger, h
	if m.log == nil {
		m.log = c.log.With("context", path)
	}
}

func (m *base) path() string { return m.ctx }

// Store returns the manager's local session store.
func (m *base) Store() *session.StandardManager { return m.store }

// Create implements session.Manager.
func (m *base) Create() (*session.Session, error) { return m.store.Create() }

// NewID implements session.Manager.
func (m *base) NewID() (string, error) { return m.store.NewID() }

// Expire implements session.Manager.
func (m *base) Expire(now time.Time) int { return m.store.Expire(now) }

// Len implements session.Manager: the sessions this member holds a copy of.
func (m *base) Len() int { return m.store.Len() }

// Range implements session.Manager.
func (m *base) Range(fn func(*session.Session) bool) { m.store.Range(fn) }

// SessionCreated implements session.Listener for the local store.
func (m *base) SessionCreated(s *session.Session) {
	if m.app != nil {
		m.app.SessionCreated(s)
	}
}

// notifyDestroyed runs the app's destroyed hook for a session another
// member ended, unless listeners are not notified on replication.
func (m *base) notifyDestroyed(s *session.Session, expired bool) {
	if m.app != nil && !m.cfg.NoNotifyListenersOnReplication {
		m.app.SessionDestroyed(s, expired)
	}
}

// send sends data and counts it.
func (m *base) send(ctx context.Context, to []*tribes.Member, data []byte, opts tribes.Options) error {
	err := m.c.ch.Send(ctx, to, data, opts)
	m.countSent(len(data))
	if err != nil {
		m.k.sendErrors.Add(1)
		m.c.sendFailed(err)
	}
	return err
}

func (m *base) countSent(n int) {
	m.k.replicated.Add(1)
	m.k.replicatedBytes.Add(int64(n))
}

// Invalidate implements session.Manager and tells the other members.
func (m *base) Invalidate(id string) bool {
	if !m.store.Invalidate(id) {
		return false
	}
	if m.hooks.forget != nil {
		m.hooks.forget(id)
	}
	m.sendExpire(id, reasonInvalidated)
	return true
}

// ChangeID implements session.Manager: a fresh id, replicated.
func (m *base) ChangeID(id string) (string, error) {
	newID, err := m.store.NewID()
	if err != nil {
		return "", err
	}
	if err := m.Rename(context.Background(), id, newID); err != nil {
		return "", err
	}
	return newID, nil
}

// Rename gives the session id the new id and replicates the change (the
// JvmRouteBinderValve's route rewrite). The rename stands when a member
// misses it (it is down or leaving); that is logged.
func (m *base) Rename(ctx context.Context, id, newID string) error {
	s, err := m.store.Rename(id, newID)
	if err != nil {
		return err
	}
	if m.hooks.renamed != nil {
		m.hooks.renamed(id, newID)
	}
	d := session.Delta{ID: id, NewID: newID, Accessed: s.LastAccessedTime().UnixMilli()}
	if _, err := m.hooks.replicate(ctx, &d); err != nil {
		m.log.Warn("session id change not replicated to every member", "session", newID, "err", err)
	}
	return nil
}

// Close implements session.Manager. With ExpireSessionsOnShutdown the
// sessions this member serves are expired and the others told; else they
// keep them.
func (m *base) Close() error {
	m.closeOnce.Do(func() {
		if m.cfg.ExpireSessionsOnShutdown {
			var ids []string
			m.store.Range(func(s *session.Session) bool { ids = append(ids, s.ID()); return true })
			for _, id := range ids {
				if m.hooks.owns != nil && !m.hooks.owns(id) {
					continue
				}
				if s, ok := m.store.Remove(id); ok {
					m.notifyDestroyed(s, true)
					m.sendExpire(id, reasonExpired)
				}
			}
		}
		m.c.removeManager(m.path())
	})
	return m.store.Close()
}

// SessionDestroyed implements session.Listener for the local store: the
// expiry of a session this member serves is told to the others (an
// invalidation by a request travels with its delta). A replica's expiry
// (after twice the limit) is told only with hooks.tellReplicaExpiry: the
// member serving the session may have used it within its limit through
// requests whose access was not replicated, so the members told drop
// their copies only if idle past the limit there too (see
// session.StandardManager.RemoveExpired). Tomcat's DeltaSession tells
// nobody (expire(true, false)); the seed documents' nine-step story has
// the member holding a replica expire it and the other drop it, which
// this keeps without losing a session still in use.
func (m *base) SessionDestroyed(s *session.Session, expired bool) {
	if expired {
		m.k.expired.Add(1)
		if m.hooks.forget != nil {
			m.hooks.forget(s.ID())
		}
		switch {
		case !s.Replica():
			m.sendExpire(s.ID(), reasonExpired)
		case m.hooks.tellReplicaExpiry:
			m.sendExpire(s.ID(), reasonReplicaExpired)
		}
	}
	if m.app != nil {
		m.app.SessionDestroyed(s, expired)
	}
}

// applyFailed handles an error of applying another member's delta: a delta
// for a session this member does not hold is counted and dropped; other
// errors are the caller's.
//
//go:noinline
func (m *base) applyFailed(err error) error {
	if !errors.Is(err, session.ErrNotFound) {
		return err
	}
	m.k.missing.Add(1)
	m.log.Debug("delta for a session this member does not hold", "err", err)
	return nil
}

// sendExpire tells every member that the session ended here.
func (m *base) sendExpire(id string, reason byte) {
	to := m.c.domainMembers()
	if len(to) == 0 {
		return
	}
	b := header(nil, msgExpire, m.ctx)
	b = appendStr(b, id)
	b = append(b, reason)
	m.send(context.Background(), to, b, m.hooks.expireOpts)
}
