package cluster

import (
	"context"
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

	closeOnce sync.Once
	k         managerCounters
}

// init fills the fields of a new manager's base.
func (m *base) init(c *Cluster, path string, scfg session.Config) {
	m.c, m.ctx, m.cfg, m.app, m.lim, m.log = c, path, c.cfg.Manager, scfg.Listener, scfg.Limits, scfg.Logger
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
