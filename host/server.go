package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/host/wasm"
)

// Server is a wasmfarm node's HTTP host: an [Engine] of contexts, one per
// deployed app, served over net/http. It is an http.Handler, so it can also
// be mounted in another server. Its methods are safe for concurrent use.
type Server struct {
	cfg    Config
	log    *slog.Logger
	rt     *wasm.Runtime
	engine *Engine
	chain  Invoker

	deployMu sync.Mutex // serializes Deploy and Undeploy

	httpMu      sync.Mutex
	httpSrvs    []shutdowner // *http.Server or *connector
	conn        *connector   // created by the first Serve
	closed      atomic.Bool
	draining    atomic.Bool
	badRequests atomic.Int64
	slowClients atomic.Int64
	// versions are the app versions not closed yet: one closes when its
	// last running request ends, and the runtime only after all.
	versions liveVersions

	pool sync.Pool // *Exchange
	date atomic.Pointer[httpDate]
}

// httpDate is a Date header value and the second it was made for.
type httpDate struct {
	sec int64
	v   []string
}

// dateHeader returns the Date header value for now, formatted once a
// second and shared by the responses of that second (as Tomcat's
// FastHttpDateFormat): net/http would format it for every response.
// net/http only reads header values, so the slice can be shared.
func (s *Server) dateHeader(now time.Time) []string {
	sec := now.Unix()
	if d := s.date.Load(); d != nil && d.sec == sec {
		return d.v
	}
	d := &httpDate{sec: sec, v: []string{now.UTC().Format(http.TimeFormat)}}
	s.date.Store(d)
	return d.v
}

// Engine is the server's routing of requests to contexts by path, named
// after Tomcat's Engine, which carries the jvmRoute.
type Engine struct {
	// JvmRoute is the node's route, suffixed to session ids.
	JvmRoute string

	contexts atomic.Pointer[[]*Context] // sorted by path length, longest first
}

// Contexts returns the deployed contexts, longest path first.
func (e *Engine) Contexts() []*Context {
	if p := e.contexts.Load(); p != nil {
		return append([]*Context(nil), (*p)...)
	}
	return nil
}

// Context returns the context mounted at path ("/" for the root).
func (e *Engine) Context(path string) (*Context, bool) {
	p, err := cleanContextPath(path)
	if err != nil {
		return nil, false
	}
	for _, c := range e.Contexts() {
		if c.path == p {
			return c, true
		}
	}
	return nil, false
}

// match returns the context serving a request path: the longest context
// path that equals it or is followed by '/'.
func (e *Engine) match(path string) *Context {
	p := e.contexts.Load()
	if p == nil {
		return nil
	}
	for _, c := range *p {
		if c.path == "" || path == c.path || (strings.HasPrefix(path, c.path) && path[len(c.path)] == '/') {
			return c
		}
	}
	return nil
}

// New returns a server with its wasm runtime and no apps. Deploy apps, then
// Serve or ListenAndServe.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if cfg.Connector != ConnectorH1 && cfg.Connector != ConnectorNetHTTP {
		return nil, fmt.Errorf("host: unknown connector %q (want %q or %q)", cfg.Connector, ConnectorH1, ConnectorNetHTTP)
	}
	if !session.ValidRoute(cfg.JvmRoute) {
		return nil, fmt.Errorf("host: jvmRoute %q holds a character not allowed in a session id", cfg.JvmRoute)
	}
	rt, err := wasm.NewRuntime(context.Background(), wasm.Config{CacheDir: cfg.CacheDir, CacheMaxBytes: cfg.CacheMaxBytes, MemoryLimit: cfg.MemoryLimit, NoDeadlines: cfg.NoDeadlines, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		rt:     rt,
		engine: &Engine{JvmRoute: cfg.JvmRoute},
		chain:  pipeline(cfg.Valves),
	}
	s.pool.New = func() any { return new(Exchange) }
	return s, nil
}

// SetDraining turns draining on or off. A draining server serves the
// sessions it has but creates none: a request that would create one gets
// 503 with DrainingHeader (the app's work is discarded), which a balancer
// takes as a cue to send it to another member.
func (s *Server) SetDraining(on bool) { s.draining.Store(on) }

// Draining reports whether the server is draining.
func (s *Server) Draining() bool { return s.draining.Load() }

// Engine returns the server's engine.
func (s *Server) Engine() *Engine { return s.engine }

// Config returns the server's configuration with defaults filled in.
func (s *Server) Config() Config { return s.cfg }

func cleanContextPath(path string) (string, error) {
	if path == "/" || path == "" {
		return "", nil
	}
	if !strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/") || strings.ContainsAny(path, ";?#% \t\r\n") || strings.Contains(path, "//") {
		return "", fmt.Errorf("%w: %q (want \"/\" or \"/name\")", ErrBadPath, path)
	}
	return path, nil
}

// Deploy compiles module and serves it at path, replacing the app there,
// if any: requests already running finish on the old version. A module
// that is not valid wasm, lacks the ABI's exports or speaks another ABI
// version is refused with an error wrapping a *wasm.ModuleError; the app
// already at path, and every other app, keep serving.
func (s *Server) Deploy(ctx context.Context, path string, module []byte) error {
	return s.DeployApp(ctx, path, module, AppConfig{})
}

// DeployApp is Deploy with per-app settings.
func (s *Server) DeployApp(ctx context.Context, path string, module []byte, app AppConfig) error {
	return s.deploy(ctx, path, app, func(name string) (*wasm.Module, error) {
		return s.rt.Compile(ctx, name, module)
	})
}

// DeployAppFrom is DeployApp for a module read from r (at most limit
// bytes; 0 means no limit of its own), which is not held in memory whole:
// custom sections other than the name section (padding, debug
// information) are hashed and skipped as they are read (see
// wasm.Runtime.CompileFrom). The farm deploys this way.
func (s *Server) DeployAppFrom(ctx context.Context, path string, r io.Reader, limit int64, app AppConfig) error {
	return s.deploy(ctx, path, app, func(name string) (*wasm.Module, error) {
		return s.rt.CompileFrom(ctx, name, r, limit)
	})
}

func (s *Server) deploy(ctx context.Context, path string, app AppConfig, compile func(name string) (*wasm.Module, error)) error {
	if s.closed.Load() {
		return ErrServerClosed
	}
	p, err := cleanContextPath(path)
	if err != nil {
		return err
	}
	name := app.Name
	if name == "" {
		name = path
	}
	start := time.Now()
	mod, err := compile(name)
	if err != nil {
		return fmt.Errorf("host: deploy %s: %w", path, err)
	}
	compiled := time.Since(start)
	pc := wasm.PoolConfig{Size: s.cfg.PoolSize, Deadline: s.cfg.RequestDeadline, Logger: s.log}
	if app.PoolSize > 0 {
		pc.Size = app.PoolSize
	}
	if app.RequestDeadline > 0 {
		pc.Deadline = app.RequestDeadline
	}
	pool, err := wasm.NewPool(ctx, mod, pc)
	if err != nil {
		mod.Close(context.Background())
		return fmt.Errorf("host: deploy %s: %w", path, err)
	}
	v := &appVersion{name: name, pool: pool, mod: mod, live: &s.versions}
	s.versions.add(v)

	s.deployMu.Lock()
	defer s.deployMu.Unlock()
	if s.closed.Load() {
		v.close()
		return ErrServerClosed
	}
	c, ok := s.engine.Context(path)
	if !ok {
		c = &Context{path: p, server: s, log: s.log.With("context", path)}
		mcfg := s.cfg.Sessions
		if app.MaxActiveSessions != 0 {
			mcfg.MaxActiveSessions = max(app.MaxActiveSessions, 0) // <= 0: no limit
		}
		if app.SessionTimeout != 0 {
			mcfg.MaxInactiveInterval = app.SessionTimeout // < 0: never expire
		}
		mcfg.JvmRoute = s.cfg.JvmRoute
		mcfg.Listener = c
		mcfg.Logger = c.log
		var m session.Manager
		if s.cfg.NewManager != nil {
			m, err = s.cfg.NewManager(c.Path(), mcfg)
		} else {
			m, err = session.NewStandardManager(mcfg)
		}
		if err != nil {
			v.close()
			return fmt.Errorf("host: deploy %s: session manager: %w", path, err)
		}
		c.manager = m
		c.swap(v)
		s.setContexts(append(s.engine.Contexts(), c))
	} else {
		c.swap(v)
	}
	s.log.Info("app deployed", "context", c.Path(), "module", name, "bytes", mod.Size(),
		"sha256", mod.Digest()[:16], "compile", compiled.Round(time.Millisecond), "ready", time.Since(start).Round(time.Millisecond),
		"replaced", ok)
	return nil
}

func (s *Server) setContexts(cs []*Context) {
	sort.SliceStable(cs, func(i, j int) bool { return len(cs[i].path) > len(cs[j].path) })
	s.engine.contexts.Store(&cs)
}

// Undeploy stops serving the app at path: new requests get 404, running
// ones finish, then its instances and session manager close.
func (s *Server) Undeploy(ctx context.Context, path string) error {
	s.deployMu.Lock()
	defer s.deployMu.Unlock()
	c, ok := s.engine.Context(path)
	if !ok {
		return fmt.Errorf("%w: %s", ErrAppNotFound, path)
	}
	var rest []*Context
	for _, o := range s.engine.Contexts() {
		if o != c {
			rest = append(rest, o)
		}
	}
	s.setContexts(rest)
	c.swap(nil)
	err := c.manager.Close()
	s.log.Info("app undeployed", "context", c.Path())
	return err
}

// ListenAndServe listens on addr and serves until Shutdown; it returns
// http.ErrServerClosed after a Shutdown.
func (s *Server) ListenAndServe(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

type shutdowner interface {
	Shutdown(context.Context) error
}

// BadRequests returns how many requests the connector refused as
// malformed or too large before they reached an app (h1 connector only).
func (s *Server) BadRequests() int64 { return s.badRequests.Load() }

// SlowClients returns how many connections the h1 connector closed because
// their client read nothing for WriteTimeout while a response waited, or
// did not send a request's body within ReadTimeout.
func (s *Server) SlowClients() int64 { return s.slowClients.Load() }

// Serve serves HTTP on l until Shutdown; it returns http.ErrServerClosed
// after a Shutdown. It may be called for several listeners.
func (s *Server) Serve(l net.Listener) error {
	s.httpMu.Lock()
	if s.closed.Load() {
		s.httpMu.Unlock()
		l.Close()
		return http.ErrServerClosed
	}
	var serve func(net.Listener) error
	if s.cfg.Connector == ConnectorH1 {
		if s.conn == nil { // one connector for every listener
			s.conn = newConnector(s)
			s.httpSrvs = append(s.httpSrvs, s.conn)
		}
		serve = s.conn.serve
	} else {
		hs := &http.Server{
			Handler:           s,
			MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
			ReadHeaderTimeout: min(s.cfg.ReadHeaderTimeout, s.cfg.ReadTimeout), // as h1
			ReadTimeout:       s.cfg.ReadTimeout,
			IdleTimeout:       s.cfg.IdleTimeout,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
		s.httpSrvs = append(s.httpSrvs, hs)
		serve = hs.Serve
	}
	s.httpMu.Unlock()
	s.log.Info("serving HTTP", "addr", l.Addr().String(), "jvmRoute", s.cfg.JvmRoute, "connector", s.cfg.Connector)
	return serve(l)
}

// Shutdown stops accepting requests, waits for running ones (until ctx
// ends), then closes every app and the wasm runtime. Sessions are not
// expired (Tomcat's expireSessionsOnShutdown="false"). If ctx ends first,
// Shutdown closes the connections of the requests still running, stops
// their guests (the calls end with an error wrapping wasm.ErrClosed),
// waits for the runtime to close, and returns ctx's error. (A runtime
// without deadline checks cannot stop a guest: then Shutdown returns at
// once, and the runtime closes after the last guest.)
func (s *Server) Shutdown(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	s.httpMu.Lock()
	srvs := s.httpSrvs
	s.httpMu.Unlock()
	var errs []error
	for _, hs := range srvs {
		if err := hs.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.deployMu.Lock()
	for _, c := range s.engine.Contexts() {
		c.swap(nil)
		errs = append(errs, c.manager.Close())
	}
	s.setContexts(nil)
	s.deployMu.Unlock()
	// Closing the runtime under a running guest would corrupt it: wait
	// for the versions to close, each after its last request. If ctx ends
	// first, the guests still running are stopped (each traps at its next
	// loop iteration, or when it returns from a host call), and the runtime
	// closes after them.
	closed := make(chan error, 1)
	go func() {
		s.versions.wait()
		closed <- s.rt.Close(context.Background())
	}()
	select {
	case err := <-closed:
		s.log.Info("server stopped")
		return errors.Join(append(errs, err)...)
	case <-ctx.Done():
	}
	if !s.rt.Deadlines() {
		// Nothing can stop a guest: the runtime closes after the last.
		s.log.Warn("server stopped with requests still running", "err", ctx.Err())
		return errors.Join(append(errs, ctx.Err())...)
	}
	n := s.versions.abort()
	s.log.Warn("shutdown timed out: stopping the guests still running", "apps", n, "err", ctx.Err())
	err := <-closed
	s.log.Info("server stopped")
	return errors.Join(append(errs, ctx.Err(), err)...)
}

// ServeHTTP implements http.Handler: the connector. It finds the context,
// the requested session id, runs the valves and writes the buffered
// response.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := s.pool.Get().(*Exchange)
	x.reset()
	x.Start = time.Now()
	x.Request = r
	path, urlID := splitSessionParam(r.URL.Path)
	x.Path = path
	x.Context = s.engine.match(path)
	if x.Context == nil {
		x.Fail(http.StatusNotFound, fmt.Errorf("no app serves %s", path))
		s.write(w, x)
		return
	}
	x.RequestedSessionID, x.SessionIDFromURL = s.requestedSessionID(r, x.Context, urlID)
	x.clientSessionID = x.RequestedSessionID
	s.chain.Invoke(x)
	s.write(w, x)
}

// requestedSessionID returns the session id from the JSESSIONID cookie,
// else from the URL. With several JSESSIONID cookies (e.g. for nested
// paths) the first naming a live session of this context wins, else the
// first.
func (s *Server) requestedSessionID(r *http.Request, c *Context, urlID string) (string, bool) {
	var buf [2]string // on the stack: one cookie is the common case
	ids := buf[:0]
	for _, line := range r.Header["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if val = strings.Trim(val, `"`); ok && name == s.cfg.CookieName && val != "" {
				ids = append(ids, val)
			}
		}
	}
	switch len(ids) {
	case 0:
		return urlID, urlID != ""
	case 1:
		return ids[0], false
	}
	for _, id := range ids {
		if _, ok := c.manager.Find(id); ok {
			return id, false
		}
	}
	return ids[0], false
}

// write sends the exchange's response and recycles it.
func (s *Server) write(w http.ResponseWriter, x *Exchange) {
	h := w.Header()
	for k, vs := range x.Header {
		// A reused header keeps emptied keys (wasm.Call.Reset); net/http
		// would take an empty Content-Type as set, and not sniff one.
		// The framing is the host's: a guest's Transfer-Encoding next to
		// the Content-Length below would let a client read the body as
		// chunks, and a body holding "0\r\n\r\n" and a forged response
		// would answer its next request (the ABI stores canonical keys).
		if len(vs) > 0 && k != "Transfer-Encoding" {
			h[k] = vs
		}
	}
	if x.SessionCookie != "" {
		path := x.Context.Path()
		c := http.Cookie{Name: s.cfg.CookieName, Value: x.SessionCookie, Path: path, HttpOnly: true,
			SameSite: http.SameSiteLaxMode, Secure: x.Request.TLS != nil}
		h.Add("Set-Cookie", c.String())
	}
	h["Content-Length"] = x.contentLength(len(x.Body))
	if _, ok := h["Date"]; !ok {
		h["Date"] = s.dateHeader(time.Now())
	}
	st := x.Status
	if st == 0 {
		st = http.StatusOK
	}
	if _, ok := h["Content-Type"]; !ok && st >= 200 && st != http.StatusNoContent && st != http.StatusNotModified {
		// As net/http would, from the body (for HEAD too: it is known).
		x.ctype[0] = http.DetectContentType(x.Body)
		h["Content-Type"] = x.ctype[:]
	}
	w.WriteHeader(st)
	if x.Request.Method != http.MethodHead {
		w.Write(x.Body)
	}
	if cap(x.body) > 1<<20 {
		x.body = nil // don't keep huge buffers in the pool
	}
	if cap(x.call.ResponseBody) > 1<<20 {
		x.call.ResponseBody = nil
	}
	x.Request = nil
	s.pool.Put(x)
}
