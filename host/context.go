package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/wasmfarm/wasmfarm/host/abi"
	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/host/wasm"
)

// Context is one deployed app, mounted at a path (Tomcat's Context): its
// session manager and the current version of its module with its instance
// pool. A redeploy swaps the version; requests already running finish on
// the old one, which closes when the last of them ends.
type Context struct {
	path    string // "" for the root context, else "/name..."
	server  *Server
	manager session.Manager
	log     *slog.Logger

	mu  sync.Mutex
	cur *appVersion
}

// Path returns the context path ("/" for the root context).
func (c *Context) Path() string {
	if c.path == "" {
		return "/"
	}
	return c.path
}

// Server returns the server the context belongs to.
func (c *Context) Server() *Server { return c.server }

// Manager returns the context's session manager.
func (c *Context) Manager() session.Manager { return c.manager }

// Digest returns the SHA-256 (hex) of the module serving the context.
func (c *Context) Digest() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return ""
	}
	return c.cur.pool.Module().Digest()
}

// PoolStats returns the live instances of the current version and how many
// instances it created and discarded.
func (c *Context) PoolStats() (live int, created, discarded int64) {
	c.mu.Lock()
	v := c.cur
	c.mu.Unlock()
	if v == nil {
		return 0, 0, 0
	}
	return v.pool.Stats()
}

// Warm instantiates instances of the current version until n (at most the
// pool size) are live.
func (c *Context) Warm(ctx context.Context, n int) error {
	v := c.acquire()
	if v == nil {
		return fmt.Errorf("%w: %s", ErrAppNotFound, c.Path())
	}
	defer v.release()
	return v.pool.Warm(ctx, n)
}

// GuestMemory returns the linear memory, in bytes, of the current
// version's idle instances. The wasm runtime keeps linear memories on the
// Go heap, so this is part of runtime.MemStats.HeapAlloc.
func (c *Context) GuestMemory() uint64 {
	c.mu.Lock()
	v := c.cur
	c.mu.Unlock()
	if v == nil {
		return 0
	}
	return v.pool.GuestMemory()
}

// appVersion is one deployed module version with its pool, reference
// counted by the requests using it.
type appVersion struct {
	name string
	pool *wasm.Pool
	mod  *wasm.Module
	live *liveVersions // the server's, until v closes

	mu      sync.Mutex
	refs    int
	retired bool
}

// acquire returns the current version with a reference, or nil.
func (c *Context) acquire() *appVersion {
	c.mu.Lock()
	v := c.cur
	if v != nil {
		v.mu.Lock()
		v.refs++
		v.mu.Unlock()
	}
	c.mu.Unlock()
	return v
}

func (v *appVersion) release() {
	v.mu.Lock()
	v.refs--
	done := v.retired && v.refs == 0
	v.mu.Unlock()
	if done {
		v.close()
	}
}

// retire closes v once no request uses it.
func (v *appVersion) retire() {
	v.mu.Lock()
	v.retired = true
	done := v.refs == 0
	v.mu.Unlock()
	if done {
		v.close()
	}
}

func (v *appVersion) close() {
	ctx := context.Background()
	v.pool.Close(ctx)
	v.mod.Close(ctx)
	v.live.remove(v)
}

// liveVersions are a server's app versions not closed yet.
type liveVersions struct {
	mu   sync.Mutex
	set  map[*appVersion]struct{}
	none chan struct{} // closed when set becomes empty; nil while it is
}

func (l *liveVersions) add(v *appVersion) {
	l.mu.Lock()
	if l.set == nil {
		l.set = make(map[*appVersion]struct{})
	}
	l.set[v] = struct{}{}
	l.mu.Unlock()
}

func (l *liveVersions) remove(v *appVersion) {
	l.mu.Lock()
	delete(l.set, v)
	if len(l.set) == 0 && l.none != nil {
		close(l.none)
		l.none = nil
	}
	l.mu.Unlock()
}

// wait returns when no version is live.
func (l *liveVersions) wait() {
	l.mu.Lock()
	if len(l.set) == 0 {
		l.mu.Unlock()
		return
	}
	if l.none == nil {
		l.none = make(chan struct{})
	}
	none := l.none
	l.mu.Unlock()
	<-none
}

// abort stops the calls running on every live version (see
// [wasm.Pool.Abort]) and returns how many versions it stopped.
func (l *liveVersions) abort() int {
	l.mu.Lock()
	vs := slices.Collect(maps.Keys(l.set))
	l.mu.Unlock()
	for _, v := range vs {
		v.pool.Abort()
	}
	return len(vs)
}

// swap installs v as the current version and retires the previous one.
func (c *Context) swap(v *appVersion) {
	c.mu.Lock()
	old := c.cur
	c.cur = v
	c.mu.Unlock()
	if old != nil {
		old.retire()
	}
}

// invoke is the basic valve: it runs the app on the exchange and commits
// the session delta when the app succeeded.
func (c *Context) invoke(x *Exchange) {
	v := c.acquire()
	if v == nil {
		x.Fail(http.StatusNotFound, fmt.Errorf("no app at %s", c.Path()))
		return
	}
	defer v.release()
	s := c.server
	cfg := &s.cfg

	// The body, within its limit.
	r := x.Request
	if r.ContentLength > cfg.MaxRequestBodyBytes {
		x.Fail(http.StatusRequestEntityTooLarge, fmt.Errorf("request body of %d bytes exceeds the limit of %d", r.ContentLength, cfg.MaxRequestBodyBytes))
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		body, err := readBody(x.body[:0], r.Body, cfg.MaxRequestBodyBytes)
		x.body = body
		if err != nil {
			switch {
			case errors.Is(err, errBodyTooLarge):
				x.Fail(http.StatusRequestEntityTooLarge, fmt.Errorf("request body exceeds the limit of %d bytes", cfg.MaxRequestBodyBytes))
			case errors.Is(err, os.ErrDeadlineExceeded):
				// The connector's ReadTimeout passed: the connection closes.
				x.Fail(http.StatusRequestTimeout, errors.New("the request body did not arrive within the read timeout"))
			default:
				x.Fail(http.StatusBadRequest, fmt.Errorf("reading the request body: %w", err))
			}
			return
		}
	}

	x.txn.Reset(c.manager, cfg.Sessions.Limits, x.RequestedSessionID, x.Start)
	call := &x.call
	call.Method = r.Method
	call.Path = x.Path
	call.RawQuery = r.URL.RawQuery
	call.ContextPath = c.path
	call.RemoteAddr = r.RemoteAddr
	call.Header = r.Header
	call.Body = x.body
	call.JvmRoute = cfg.JvmRoute
	call.Session = &x.txn
	call.MaxResponseBytes = cfg.MaxResponseBytes
	call.Logger = c.log

	err := v.pool.Handle(r.Context(), call)
	d := x.txn.Delta()
	if err == nil && d != nil && d.Created && v.pool.HasSessionCreated() {
		err = v.pool.Hook(r.Context(), call, abi.ExportSessionCreated)
	}
	if err == nil && call.Status != 0 && call.Status < 200 {
		// The ABI takes 100-999, but a 1xx is an interim answer, not a
		// final one: net/http would send it as such, then a 200 (or, for
		// 101, nothing more), and h1 would send a 200. The guest's
		// response is refused, as a guest failure.
		err = fmt.Errorf("%w: the final status %d is informational (1xx); a response needs 200-999", wasm.ErrAppFailed, call.Status)
	}
	if err != nil {
		x.Fail(statusOf(err), err)
		if st := statusOf(err); st >= 500 && !errors.Is(err, wasm.ErrSessionUnavailable) {
			c.log.Warn("request failed", "path", x.Path, "status", st, "err", err)
		}
		return
	}
	if d != nil && d.Created && s.draining.Load() {
		x.Fail(http.StatusServiceUnavailable, ErrDraining)
		x.Header.Set(DrainingHeader, "1")
		return
	}
	if d != nil {
		if err := c.manager.Commit(d); err != nil {
			switch {
			case errors.Is(err, session.ErrTooManySessions):
				x.Fail(http.StatusServiceUnavailable, err)
				return
			case errors.Is(err, session.ErrNotFound):
				// The session went away meanwhile (invalidated by a
				// concurrent request, or expired): the response stands,
				// as if this request had run just before the other.
				c.log.Debug("session delta not committed", "session", d.ID, "err", err)
			case errors.Is(err, session.ErrClosed):
				// The app is being undeployed or the node stops: the
				// change is not stored, so the response must not say it
				// was (503: another member, or a retry, can serve it).
				x.Fail(http.StatusServiceUnavailable, err)
				return
			default:
				// The change was refused whole (concurrent requests
				// together passed the session's limits): the app's
				// answer would claim a change that was not kept.
				c.log.Warn("session changes refused", "path", x.Path, "session", d.ID, "err", err)
				x.Fail(http.StatusInternalServerError, err)
				return
			}
		} else {
			x.Delta = d
			if id := d.FinalID(); !d.Invalidated && id != x.clientSessionID {
				x.SessionCookie = id
			}
		}
	}
	x.Status = call.Status
	x.Header = call.ResponseHeader
	x.Body = call.ResponseBody
}

// statusOf maps a guest failure to an HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, wasm.ErrDeadline), errors.Is(err, wasm.ErrBusy), errors.Is(err, wasm.ErrSessionUnavailable),
		errors.Is(err, wasm.ErrClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

var errBodyTooLarge = errors.New("body too large")

// readBody appends r to b, failing with errBodyTooLarge beyond max bytes.
func readBody(b []byte, r io.Reader, max int64) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > max {
			return b, errBodyTooLarge
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// SessionCreated implements session.Listener (unused: the created hook
// runs inside the request, before its commit).
func (c *Context) SessionCreated(*session.Session) {}

// SessionDestroyed implements session.Listener: it runs the app's
// session_destroyed hook, if any, on a read-only view of the session.
func (c *Context) SessionDestroyed(s *session.Session, expired bool) {
	c.readOnlyHook(s, abi.ExportSessionDestroyed, "expired", expired)
}

// SessionReplicated is called by replicating managers (package
// host/cluster) for a session another member created, when listeners are
// notified on replication: it runs the app's session_created hook, if any,
// on a read-only view of the session.
func (c *Context) SessionReplicated(s *session.Session) {
	c.readOnlyHook(s, abi.ExportSessionCreated, "replica", true)
}

func (c *Context) readOnlyHook(s *session.Session, hook string, args ...any) {
	v := c.acquire()
	if v == nil {
		return
	}
	defer v.release()
	if hook == abi.ExportSessionDestroyed && !v.pool.HasSessionDestroyed() || hook == abi.ExportSessionCreated && !v.pool.HasSessionCreated() {
		return
	}
	var txn session.Txn
	txn.ResetReadOnly(s, time.Now())
	call := &wasm.Call{Session: &txn, ContextPath: c.path, JvmRoute: c.server.cfg.JvmRoute, Logger: c.log}
	if err := v.pool.Hook(context.Background(), call, hook); err != nil {
		c.log.Warn(hook+" hook failed", append([]any{"session", s.ID(), "err", err}, args...)...)
	}
}
