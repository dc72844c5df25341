package balance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by [New].
var (
	// ErrNoMembers occurs when the Config lists no member.
	ErrNoMembers = errors.New("balance: no members")
	// ErrBadMember occurs when a member has no route, a duplicate route or
	// a URL that is not absolute http(s).
	ErrBadMember = errors.New("balance: bad member")
)

// Member is one backend: a wasmfarm node and its jvmRoute.
type Member struct {
	// Route is the member's jvmRoute, the suffix after the last '.' of the
	// session ids it issues (e.g. "jvm_a").
	Route string
	// URL is the member's base URL, e.g. http://127.0.0.1:8081. A path, if
	// any, is prefixed to request paths.
	URL *url.URL
}

// Config configures a [Balancer]. Zero fields take the values of
// [DefaultConfig].
type Config struct {
	// Members are the backends, at least one, with distinct routes.
	Members []Member
	// CookieName is the session cookie's name ("JSESSIONID"); the URL
	// parameter is its lower-case form (";jsessionid=").
	CookieName string
	// HealthPath is the path probed on each member ("/"). Any HTTP
	// response counts as alive.
	HealthPath string
	// HealthInterval is the time between active probes (2 s). Negative
	// turns active probing off.
	HealthInterval time.Duration
	// HealthTimeout bounds one probe (1 s, at most HealthInterval).
	HealthTimeout time.Duration
	// FailTimeout is how long a member marked down by a failed request is
	// left out of rotation before requests try it again without waiting
	// for a probe (10 s).
	FailTimeout time.Duration
	// DialTimeout bounds connecting to a member (2 s).
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a member's response
	// headers once the request is written (60 s). A timeout counts as a
	// transport failure: the member is marked down, and an idempotent
	// request retried (a POST gets 502: the member may have processed it).
	ResponseHeaderTimeout time.Duration
	// MaxRetryBody is the largest request body buffered so that the
	// request can be retried on another member (1 MiB). Larger bodies are
	// streamed and their requests are not retried.
	MaxRetryBody int64
	// Logger receives state changes and failures; nil discards.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults, with no members.
func DefaultConfig() Config {
	return Config{
		CookieName:            "JSESSIONID",
		HealthPath:            "/",
		HealthInterval:        2 * time.Second,  // probe every 2 s
		HealthTimeout:         time.Second,      // a probe gives up after 1 s
		FailTimeout:           10 * time.Second, // a failed member rests 10 s unless a probe revives it
		DialTimeout:           2 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		MaxRetryBody:          1 << 20,
	}
}

// MemberStats are one member's counters, from [Balancer.Stats].
type MemberStats struct {
	Route string
	URL   string
	// Up reports the member's health as last seen.
	Up bool
	// Draining reports that the member refused a new session because it
	// is being drained, less than FailTimeout ago: new clients go to the
	// others, requests for its own sessions still go to it.
	Draining bool
	// Requests counts the requests sent to the member (retries included).
	Requests uint64
	// Failures counts transport failures of requests and probes.
	Failures uint64
	// LastError is the last transport error, "" if none.
	LastError string
}

// Balancer is a sticky load balancer, an [http.Handler]. Its methods are
// safe for concurrent use.
type Balancer struct {
	cfg       Config
	log       *slog.Logger
	members   []*member
	byRoute   map[string]*member
	transport *http.Transport
	next      atomic.Uint64
	param     string

	cancel context.CancelFunc
	done   chan struct{}
	closed sync.Once
}

type member struct {
	route string
	url   *url.URL
	proxy *httputil.ReverseProxy

	requests atomic.Uint64
	failures atomic.Uint64

	mu      sync.Mutex
	up      bool
	downAt  time.Time
	lastErr string
	// drainingAt is when the member last refused a new session because it
	// is being drained (zero: not draining): new clients avoid it for
	// FailTimeout after that; its own sessions still go to it.
	drainingAt time.Time
}

// New validates cfg, builds the balancer and starts its health checker.
// Call [Balancer.Close] to stop it.
func New(cfg Config) (*Balancer, error) {
	def := DefaultConfig()
	if cfg.CookieName == "" {
		cfg.CookieName = def.CookieName
	}
	if cfg.HealthPath == "" {
		cfg.HealthPath = def.HealthPath
	}
	if !strings.HasPrefix(cfg.HealthPath, "/") {
		cfg.HealthPath = "/" + cfg.HealthPath
	}
	if cfg.HealthInterval == 0 {
		cfg.HealthInterval = def.HealthInterval
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = def.HealthTimeout
	}
	if cfg.HealthInterval > 0 && cfg.HealthTimeout > cfg.HealthInterval {
		cfg.HealthTimeout = cfg.HealthInterval
	}
	if cfg.FailTimeout <= 0 {
		cfg.FailTimeout = def.FailTimeout
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = def.DialTimeout
	}
	if cfg.ResponseHeaderTimeout <= 0 {
		cfg.ResponseHeaderTimeout = def.ResponseHeaderTimeout
	}
	if cfg.MaxRetryBody <= 0 {
		cfg.MaxRetryBody = def.MaxRetryBody
	}
	if len(cfg.Members) == 0 {
		return nil, ErrNoMembers
	}
	cfg.Members = append([]Member(nil), cfg.Members...)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Balancer{
		cfg:     cfg,
		log:     log,
		byRoute: make(map[string]*member, len(cfg.Members)),
		param:   ";" + strings.ToLower(cfg.CookieName) + "=",
		done:    make(chan struct{}),
	}
	b.transport = &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
	}
	for _, m := range cfg.Members {
		if m.Route == "" || strings.ContainsAny(m.Route, ".;,= \t") {
			return nil, fmt.Errorf("%w: route %q", ErrBadMember, m.Route)
		}
		if _, dup := b.byRoute[m.Route]; dup {
			return nil, fmt.Errorf("%w: duplicate route %q", ErrBadMember, m.Route)
		}
		if m.URL == nil || (m.URL.Scheme != "http" && m.URL.Scheme != "https") || m.URL.Host == "" {
			return nil, fmt.Errorf("%w: %s: URL %v is not absolute http(s)", ErrBadMember, m.Route, m.URL)
		}
		u := *m.URL
		mem := &member{route: m.Route, url: &u, up: true}
		mem.proxy = &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(mem.url)
				r.Out.Host = r.In.Host // keep the client's Host
				r.SetXForwarded()
			},
			Transport:    b.transport,
			ErrorHandler: b.proxyError,
			// A draining member refuses new sessions with 503 and
			// DrainingHeader: that is a failure to retry elsewhere.
			ModifyResponse: func(resp *http.Response) error {
				if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(DrainingHeader) != "" {
					resp.Body.Close()
					return ErrDraining
				}
				return nil
			},
		}
		b.members = append(b.members, mem)
		b.byRoute[m.Route] = mem
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	if cfg.HealthInterval > 0 {
		go b.probeLoop(ctx)
	} else {
		close(b.done)
	}
	return b, nil
}

// Close stops the health checker and closes idle connections to members.
// Requests in flight are not interrupted. Close is idempotent.
func (b *Balancer) Close() error {
	b.closed.Do(func() {
		b.cancel()
		<-b.done
		b.transport.CloseIdleConnections()
	})
	return nil
}

// Stats returns a snapshot of each member's counters, in configuration
// order.
func (b *Balancer) Stats() []MemberStats {
	out := make([]MemberStats, len(b.members))
	for i, m := range b.members {
		now := time.Now()
		m.mu.Lock()
		out[i] = MemberStats{Route: m.route, URL: m.url.Redacted(), Up: m.up, LastError: m.lastErr,
			Draining: b.drainingLocked(m, now)}
		m.mu.Unlock()
		out[i].Requests = m.requests.Load()
		out[i].Failures = m.failures.Load()
	}
	return out
}

// Route returns the jvmRoute a request asks for: the suffix after the last
// '.' of its session id, taken from the session cookie (the first one that
// names a known member, when there are several) or else from the URL's
// path parameter. It returns "" when the request carries no routed id.
func (b *Balancer) Route(r *http.Request) string {
	first := ""
	for _, line := range r.Header["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || name != b.cfg.CookieName {
				continue
			}
			rt := routeOf(strings.Trim(val, `"`))
			if _, known := b.byRoute[rt]; known {
				return rt
			}
			if first == "" {
				first = rt
			}
		}
	}
	if first != "" {
		return first
	}
	p := r.URL.Path
	if i := strings.Index(p, b.param); i >= 0 {
		id := p[i+len(b.param):]
		if end := strings.IndexAny(id, ";/?"); end >= 0 {
			id = id[:end]
		}
		return routeOf(id)
	}
	return ""
}

// routeOf returns the suffix after the last '.' of a session id.
func routeOf(id string) string {
	i := strings.LastIndexByte(id, '.')
	if i < 0 {
		return ""
	}
	return id[i+1:]
}

// healthy reports whether m takes traffic: up, or down for longer than
// FailTimeout.
func (b *Balancer) healthy(m *member, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.up || now.Sub(m.downAt) >= b.cfg.FailTimeout
}

// drainingLocked reports whether m refused a new session less than
// FailTimeout ago. m.mu is held.
func (b *Balancer) drainingLocked(m *member, now time.Time) bool {
	return !m.drainingAt.IsZero() && now.Sub(m.drainingAt) < b.cfg.FailTimeout
}

// takesNew reports whether m takes new clients: healthy and not draining.
func (b *Balancer) takesNew(m *member, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return (m.up || now.Sub(m.downAt) >= b.cfg.FailTimeout) && !b.drainingLocked(m, now)
}

// pick chooses the member for the next attempt, skipping those in tried:
// the sticky member if healthy (even when draining: it serves the
// sessions it has), else the next one in round-robin order that is
// healthy and not draining, else a healthy draining one, else (all down)
// any untried one.
func (b *Balancer) pick(route string, tried []*member) *member {
	now := time.Now()
	isTried := func(m *member) bool {
		for _, t := range tried {
			if t == m {
				return true
			}
		}
		return false
	}
	if m, ok := b.byRoute[route]; ok && !isTried(m) && b.healthy(m, now) {
		return m
	}
	n := len(b.members)
	start := int(b.next.Add(1) - 1)
	var draining, down *member
	for i := range n {
		m := b.members[(start+i)%n]
		if isTried(m) {
			continue
		}
		switch {
		case b.takesNew(m, now):
			return m
		case b.healthy(m, now):
			if draining == nil {
				draining = m
			}
		case down == nil:
			down = m
		}
	}
	if draining != nil {
		return draining
	}
	return down
}

// markDown records a transport failure of m.
func (b *Balancer) markDown(m *member, err error, why string) {
	m.failures.Add(1)
	m.mu.Lock()
	was := m.up
	m.up = false
	m.downAt = time.Now()
	m.lastErr = err.Error()
	m.mu.Unlock()
	if was {
		b.log.Warn("member down", "route", m.route, "url", m.url.Redacted(), "by", why, "err", err)
	}
}

// markUp records that m answered.
func (b *Balancer) markUp(m *member, why string) {
	m.mu.Lock()
	was := m.up
	m.up = true
	m.mu.Unlock()
	if !was {
		b.log.Info("member up", "route", m.route, "url", m.url.Redacted(), "by", why)
	}
}

// markDraining records that m refused a new session because it is being
// drained. It is not a failure: m stays up for its own sessions.
func (b *Balancer) markDraining(m *member) {
	m.mu.Lock()
	was := b.drainingLocked(m, time.Now())
	m.drainingAt = time.Now()
	m.lastErr = ErrDraining.Error()
	m.mu.Unlock()
	if !was {
		b.log.Info("member draining: new clients go to the others", "route", m.route, "url", m.url.Redacted())
	}
}

// DrainingHeader marks a member's 503 answer to a request that would have
// created a session while the member is being drained (wasmfarm's admin
// POST /drain): the balancer sends the request to another member, and
// sends new clients to the others for [Config.FailTimeout], while the
// draining member keeps serving the sessions it has.
const DrainingHeader = "X-Wasmfarm-Draining"

// ErrDraining is the error recorded for a member that refused a request
// because it is being drained.
var ErrDraining = errors.New("balance: member is draining")

// attemptWriter wraps the client's ResponseWriter during one attempt, so
// that a transport failure before the response started can be retried.
type attemptWriter struct {
	http.ResponseWriter
	wrote bool  // the final response (or 101) started: no retry, no 502
	err   error // set by proxyError
}

// WriteHeader passes the status on. An informational one (100 Continue,
// 103 Early Hints) does not start the response: the member can still fail
// and the client still get a retry's answer or a 502.
func (w *attemptWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *attemptWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the client's writer (flushes).
func (w *attemptWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// proxyError is every member proxy's ErrorHandler: it records the error
// for ServeHTTP to decide between retrying and answering 502.
func (b *Balancer) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if aw, ok := w.(*attemptWriter); ok {
		aw.err = err
		return
	}
	w.WriteHeader(http.StatusBadGateway)
}

// idempotent reports whether r may be sent again after a member may have
// processed it: an idempotent method (RFC 9110 section 9.2.2) or an
// Idempotency-Key header, the rule net/http's Transport follows.
func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	_, key := r.Header["Idempotency-Key"]
	_, xkey := r.Header["X-Idempotency-Key"]
	return key || xkey
}

// unsent reports whether err shows that the request never reached the
// member: the connection could not be made, or the member refused it
// because it is draining. Any other failure (a reset, a timeout waiting
// for the answer) may come after the member processed the request.
func unsent(err error) bool {
	if errors.Is(err, ErrDraining) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// ServeHTTP forwards r to a member, retrying on other members a request
// that never reached its member, and an idempotent one after any
// transport failure, when the request body allows.
func (b *Balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Buffer the body so the request can be sent again.
	var body []byte
	retryable := true
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		if r.ContentLength > b.cfg.MaxRetryBody {
			retryable = false
		} else {
			buf, err := io.ReadAll(io.LimitReader(r.Body, b.cfg.MaxRetryBody+1))
			if err != nil {
				http.Error(w, "balance: reading request body: "+err.Error(), http.StatusBadRequest)
				return
			}
			if int64(len(buf)) > b.cfg.MaxRetryBody {
				// Too large to keep: stream what was read and the rest once.
				retryable = false
				r.Body = struct {
					io.Reader
					io.Closer
				}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
			} else {
				body = buf
			}
		}
	}
	route := b.Route(r)
	var tried []*member
	var lastErr error
	for {
		m := b.pick(route, tried)
		if m == nil {
			break
		}
		tried = append(tried, m)
		out := r
		if retryable {
			out = r.Clone(r.Context())
			if body != nil {
				out.Body = io.NopCloser(bytes.NewReader(body))
				out.ContentLength = int64(len(body))
				// Lets the Transport resend on a fresh connection when a
				// pooled one turns out closed before anything was written.
				out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
				// The body is here already (the client got its 100
				// Continue when it was read): no need to ask the member.
				out.Header.Del("Expect")
			} else {
				out.Body = http.NoBody
				out.ContentLength = 0
			}
		}
		aw := &attemptWriter{ResponseWriter: w}
		m.requests.Add(1)
		m.proxy.ServeHTTP(aw, out)
		if aw.err == nil {
			b.markUp(m, "request")
			return
		}
		lastErr = aw.err
		if r.Context().Err() != nil {
			// The client went away; the member is not to blame.
			return
		}
		if errors.Is(aw.err, ErrDraining) {
			b.markDraining(m)
		} else {
			b.markDown(m, aw.err, "request")
		}
		if aw.wrote || !retryable || !(unsent(aw.err) || idempotent(r)) {
			if !aw.wrote {
				http.Error(w, "balance: member "+m.route+" failed", http.StatusBadGateway)
			}
			return
		}
		b.log.Debug("retrying on another member", "route", m.route, "method", r.Method, "path", r.URL.Path, "err", aw.err)
	}
	b.log.Error("no member answered", "method", r.Method, "path", r.URL.Path, "err", lastErr)
	http.Error(w, "balance: no member available", http.StatusBadGateway)
}

// probeLoop probes every member each HealthInterval until ctx ends.
func (b *Balancer) probeLoop(ctx context.Context) {
	defer close(b.done)
	t := time.NewTicker(b.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var wg sync.WaitGroup
		for _, m := range b.members {
			wg.Go(func() { b.probe(ctx, m) })
		}
		wg.Wait()
	}
}

// probe sends one GET HealthPath to m and records the outcome.
func (b *Balancer) probe(ctx context.Context, m *member) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.HealthTimeout)
	defer cancel()
	u := *m.url
	u.Path = strings.TrimSuffix(u.Path, "/") + b.cfg.HealthPath
	u.RawPath = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		b.markDown(m, err, "probe")
		return
	}
	req.Header.Set("User-Agent", "wasmfarm-balance-probe")
	resp, err := b.transport.RoundTrip(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled) {
			return // closing
		}
		b.markDown(m, err, "probe")
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	b.markUp(m, "probe")
}
