package balance

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// backend is a fake member on a fixed loopback port that can be killed and
// restarted. It answers "route=<route> method=<m> body=<body>", echoes the
// Cookie and X-Forwarded-For headers, gives new clients a session cookie,
// and answers 404 on /healthz (a probe must still count it alive).
type backend struct {
	t      *testing.T
	route  string
	addr   string
	srv    *http.Server
	hits   atomic.Int64
	probes atomic.Int64
	n      atomic.Int64
	// fail makes every request fail after the backend read it: "crash"
	// closes the connection without an answer, "hints" sends 103 Early
	// Hints first.
	fail atomic.Value
	// seen, when set, records every request body the backend processed
	// (all backends of a test share it).
	seen *sync.Map
}

func newBackend(t *testing.T, route string) *backend {
	t.Helper()
	b := &backend{t: t, route: route}
	b.start("127.0.0.1:0")
	t.Cleanup(b.kill)
	return b
}

func (b *backend) start(addr string) {
	b.t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		b.t.Fatal(err)
	}
	b.addr = l.Addr().String()
	b.srv = &http.Server{Handler: http.HandlerFunc(b.serve)}
	go b.srv.Serve(l)
}

func (b *backend) kill()    { b.srv.Close() }
func (b *backend) restart() { b.start(b.addr) }

func (b *backend) url() *url.URL { return &url.URL{Scheme: "http", Host: b.addr} }

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		b.probes.Add(1)
		http.NotFound(w, r)
		return
	}
	b.hits.Add(1)
	body, _ := io.ReadAll(r.Body)
	if b.seen != nil {
		if n, _ := b.seen.LoadOrStore(string(body), new(atomic.Int64)); n.(*atomic.Int64).Add(1) > 1 {
			b.t.Errorf("%s: body %q processed twice", b.route, body)
		}
	}
	if mode, _ := b.fail.Load().(string); mode != "" {
		if mode == "hints" {
			w.WriteHeader(http.StatusEarlyHints)
		}
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close() // as if the member died while processing
		}
		return
	}
	if _, err := r.Cookie("JSESSIONID"); err != nil {
		http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: fmt.Sprintf("%032X.%s", b.n.Add(1), b.route), Path: "/"})
	}
	w.Header().Set("X-Cookie", r.Header.Get("Cookie"))
	w.Header().Set("X-Got-Forwarded-For", r.Header.Get("X-Forwarded-For"))
	w.Header().Set("X-Got-Host", r.Host)
	fmt.Fprintf(w, "route=%s method=%s body=%s", b.route, r.Method, body)
}

// cluster starts n backends (jvm_a, jvm_b, ...) and a balancer in front.
func cluster(t *testing.T, n int, tweak func(*Config)) ([]*backend, *Balancer, *httptest.Server) {
	t.Helper()
	var bs []*backend
	for i := range n {
		bs = append(bs, newBackend(t, "jvm_"+string(rune('a'+i))))
	}
	bal, srv := startFront(t, bs, Config{HealthPath: "/healthz", HealthInterval: 20 * time.Millisecond, FailTimeout: time.Hour}, tweak)
	return bs, bal, srv
}

// startFront starts a balancer with cfg, tweaked, in front of bs.
func startFront(t *testing.T, bs []*backend, cfg Config, tweak func(*Config)) (*Balancer, *httptest.Server) {
	t.Helper()
	for _, b := range bs {
		cfg.Members = append(cfg.Members, Member{Route: b.route, URL: b.url()})
	}
	if tweak != nil {
		tweak(&cfg)
	}
	bal, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bal.Close() })
	srv := httptest.NewServer(bal)
	t.Cleanup(srv.Close)
	return bal, srv
}

// do sends one request through the balancer and returns status and body.
func do(t *testing.T, front *httptest.Server, method, path, cookie, body string) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, front.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func servedBy(body string) string {
	r, _, _ := strings.Cut(strings.TrimPrefix(body, "route="), " ")
	return r
}

func stat(bal *Balancer, route string) MemberStats {
	for _, s := range bal.Stats() {
		if s.Route == route {
			return s
		}
	}
	return MemberStats{}
}

func TestStickyRouting(t *testing.T) {
	_, _, front := cluster(t, 3, nil)
	tests := []struct {
		name   string
		path   string
		cookie string
		want   string
	}{
		{name: "cookie a", path: "/app/x", cookie: "JSESSIONID=0123ABCD.jvm_a", want: "jvm_a"},
		{name: "cookie b", path: "/app/x", cookie: "JSESSIONID=0123ABCD.jvm_b", want: "jvm_b"},
		{name: "cookie c among others", path: "/", cookie: "foo=bar; JSESSIONID=\"99.jvm_c\"; x=y.jvm_a", want: "jvm_c"},
		{name: "first known route of several cookies", path: "/", cookie: "JSESSIONID=1.jvm_gone; JSESSIONID=2.jvm_b", want: "jvm_b"},
		{name: "url parameter", path: "/app/x;jsessionid=ABCDEF.jvm_c", want: "jvm_c"},
		{name: "url parameter before query", path: "/app;jsessionid=ABCDEF.jvm_b?q=1", want: "jvm_b"},
		{name: "cookie beats url", path: "/app;jsessionid=ABCDEF.jvm_b", cookie: "JSESSIONID=1.jvm_a", want: "jvm_a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 4 { // repeated: round robin must not move it
				st, body, _ := do(t, front, "GET", tc.path, tc.cookie, "")
				if st != 200 || servedBy(body) != tc.want {
					t.Fatalf("got %d %q, want served by %s", st, body, tc.want)
				}
			}
		})
	}
}

func TestRoute(t *testing.T) {
	bal, err := New(Config{Members: []Member{{Route: "jvm_a", URL: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}}}, HealthInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer bal.Close()
	tests := []struct {
		name, target, cookie, want string
	}{
		{name: "none", target: "/x"},
		{name: "cookie without route", target: "/x", cookie: "JSESSIONID=ABC"},
		{name: "cookie", target: "/x", cookie: "JSESSIONID=ABC.jvm_a", want: "jvm_a"},
		{name: "unknown route kept", target: "/x", cookie: "JSESSIONID=ABC.jvm_z", want: "jvm_z"},
		{name: "last dot", target: "/x", cookie: "JSESSIONID=A.B.jvm_a", want: "jvm_a"},
		{name: "other cookie name", target: "/x", cookie: "SESSION=ABC.jvm_a"},
		{name: "url", target: "/x;jsessionid=ABC.jvm_a/y", want: "jvm_a"},
		{name: "url other param", target: "/x;jsessionid=ABC.jvm_a;v=1", want: "jvm_a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tc.target, nil)
			if tc.cookie != "" {
				r.Header.Set("Cookie", tc.cookie)
			}
			if got := bal.Route(r); got != tc.want {
				t.Fatalf("Route = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRoundRobinForNewClients(t *testing.T) {
	bs, _, front := cluster(t, 3, nil)
	seen := map[string]int{}
	for range 9 {
		st, body, h := do(t, front, "GET", "/", "", "")
		if st != 200 {
			t.Fatalf("status %d", st)
		}
		seen[servedBy(body)]++
		if sc := h.Get("Set-Cookie"); !strings.Contains(sc, "."+servedBy(body)) {
			t.Fatalf("Set-Cookie %q not passed through from %s", sc, servedBy(body))
		}
	}
	for _, b := range bs {
		if seen[b.route] != 3 {
			t.Fatalf("distribution %v, want 3 each", seen)
		}
	}
	// An unknown route is a new client too.
	st, _, _ := do(t, front, "GET", "/", "JSESSIONID=1.jvm_zz", "")
	if st != 200 {
		t.Fatalf("unknown route: status %d", st)
	}
}

func TestForwardedHeadersAndCookiesUntouched(t *testing.T) {
	_, _, front := cluster(t, 1, nil)
	const ck = "JSESSIONID=0123.jvm_a; other=\"x y\""
	st, _, h := do(t, front, "GET", "/", ck, "")
	if st != 200 {
		t.Fatalf("status %d", st)
	}
	if got := h.Get("X-Cookie"); got != ck {
		t.Errorf("member got Cookie %q, want %q", got, ck)
	}
	if got := h.Get("X-Got-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", got)
	}
	if got, want := h.Get("X-Got-Host"), strings.TrimPrefix(front.URL, "http://"); got != want {
		t.Errorf("Host = %q, want the client's %q", got, want)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFailoverAndRecovery(t *testing.T) {
	bs, bal, front := cluster(t, 2, nil)
	a := bs[0]
	const ck = "JSESSIONID=00FF.jvm_a"
	if _, body, _ := do(t, front, "GET", "/", ck, ""); servedBy(body) != "jvm_a" {
		t.Fatalf("before the kill: %q", body)
	}
	a.kill()
	for i := range 3 {
		st, body, _ := do(t, front, "GET", "/", ck, "")
		if st != 200 || servedBy(body) != "jvm_b" {
			t.Fatalf("request %d after the kill: %d %q, want 200 from jvm_b", i, st, body)
		}
	}
	s := stat(bal, "jvm_a")
	if s.Up || s.Failures == 0 || s.LastError == "" {
		t.Fatalf("jvm_a after the kill: %+v, want down with a failure", s)
	}
	// New clients avoid the dead member.
	for range 4 {
		if _, body, _ := do(t, front, "GET", "/", "", ""); servedBy(body) != "jvm_b" {
			t.Fatalf("new client sent to %q while jvm_a is down", body)
		}
	}
	a.restart()
	waitFor(t, "the probe to bring jvm_a back", func() bool { return stat(bal, "jvm_a").Up })
	if a.probes.Load() == 0 {
		t.Fatal("jvm_a up without a probe answering (404 must count as alive)")
	}
	if st, body, _ := do(t, front, "GET", "/", ck, ""); st != 200 || servedBy(body) != "jvm_a" {
		t.Fatalf("after recovery: %d %q, want jvm_a", st, body)
	}
}

func TestProbeMarksDown(t *testing.T) {
	bs, bal, _ := cluster(t, 2, nil)
	bs[1].kill()
	waitFor(t, "the probe to mark jvm_b down", func() bool { return !stat(bal, "jvm_b").Up })
	if !stat(bal, "jvm_a").Up {
		t.Fatal("jvm_a marked down")
	}
}

// TestPostRetriedAfterFailover: a POST to a member that is down (its
// connection refused) never reached it, so it goes to another member.
func TestPostRetriedAfterFailover(t *testing.T) {
	bs, bal, front := cluster(t, 2, func(c *Config) { c.HealthInterval = -1 })
	bs[0].kill()
	st, body, _ := do(t, front, "POST", "/cart", "JSESSIONID=1.jvm_a", "item=42&qty=3")
	if st != 200 || body != "route=jvm_b method=POST body=item=42&qty=3" {
		t.Fatalf("got %d %q", st, body)
	}
	if s := stat(bal, "jvm_a"); s.Up {
		t.Fatalf("jvm_a still up: %+v", s)
	}
}

// TestFailureAfterSend: when a member fails after it read the request
// (it died while processing, or its answer timed out), a POST is not sent
// again, since the member may have acted on it: the client gets 502 and
// the request ran once. An idempotent request (GET, or a POST with an
// Idempotency-Key) goes to another member.
func TestFailureAfterSend(t *testing.T) {
	for _, mode := range []string{"crash", "hints"} {
		t.Run(mode, func(t *testing.T) {
			bs, _, front := cluster(t, 2, func(c *Config) { c.HealthInterval = -1 })
			bs[0].fail.Store(mode)
			if st, body, _ := do(t, front, "POST", "/pay", "JSESSIONID=1.jvm_a", "amount=100"); st != http.StatusBadGateway {
				t.Fatalf("POST: %d %q, want 502", st, body)
			}
			if a, b := bs[0].hits.Load(), bs[1].hits.Load(); a != 1 || b != 0 {
				t.Fatalf("POST ran %d times on jvm_a and %d on jvm_b, want once on jvm_a", a, b)
			}
			// That failure marked jvm_a down; each request below goes
			// through a fresh balancer, to which jvm_a is up.
			for _, method := range []string{"GET", "PUT", "DELETE"} {
				bal2, front2 := balancerFor(t, bs)
				st, body, _ := do(t, front2, method, "/", "JSESSIONID=1.jvm_a", "x")
				if st != 200 || servedBy(body) != "jvm_b" {
					t.Fatalf("%s: %d %q, want 200 from jvm_b", method, st, body)
				}
				if s := stat(bal2, "jvm_a"); s.Up {
					t.Fatalf("%s: jvm_a still up: %+v", method, s)
				}
			}
			_, front2 := balancerFor(t, bs)
			req, _ := http.NewRequest("POST", front2.URL+"/pay", strings.NewReader("amount=7"))
			req.Header.Set("Cookie", "JSESSIONID=1.jvm_a")
			req.Header.Set("Idempotency-Key", "k1")
			resp, err := front2.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || servedBy(string(body)) != "jvm_b" {
				t.Fatalf("POST with Idempotency-Key: %d %q, want 200 from jvm_b", resp.StatusCode, body)
			}
		})
	}
}

// balancerFor starts another balancer (probes off) in front of bs.
func balancerFor(t *testing.T, bs []*backend) (*Balancer, *httptest.Server) {
	t.Helper()
	return startFront(t, bs, Config{HealthInterval: -1, FailTimeout: time.Hour}, nil)
}

// TestDrainingMember: a member that refuses a new client because it is
// being drained keeps its own sessions, while new clients go to the
// others, as HAProxy's drain state and the member's drain contract say.
func TestDrainingMember(t *testing.T) {
	draining := func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("JSESSIONID"); err != nil || !strings.HasSuffix(c.Value, ".jvm_a") {
			w.Header().Set(DrainingHeader, "1")
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "route=jvm_a")
	}
	a := httptest.NewServer(http.HandlerFunc(draining))
	defer a.Close()
	b := newBackend(t, "jvm_b")
	u, _ := url.Parse(a.URL)
	bal, err := New(Config{Members: []Member{{Route: "jvm_a", URL: u}, {Route: "jvm_b", URL: b.url()}}, HealthInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer bal.Close()
	front := httptest.NewServer(bal)
	defer front.Close()
	for i := range 4 {
		if st, body, _ := do(t, front, "GET", "/", "", ""); st != 200 || servedBy(body) != "jvm_b" {
			t.Fatalf("new client %d: %d %q, want 200 from jvm_b", i, st, body)
		}
	}
	s := stat(bal, "jvm_a")
	if !s.Up || !s.Draining || s.Failures != 0 {
		t.Fatalf("jvm_a after refusing a new client: %+v, want up, draining, no failure", s)
	}
	if st, body, _ := do(t, front, "GET", "/", "JSESSIONID=S1.jvm_a", ""); st != 200 || servedBy(body) != "jvm_a" {
		t.Fatalf("jvm_a's own session: %d %q, want 200 from jvm_a", st, body)
	}
}

func TestLargeBodyNotRetried(t *testing.T) {
	bs, _, front := cluster(t, 2, func(c *Config) { c.MaxRetryBody = 16; c.HealthInterval = -1 })
	big := strings.Repeat("x", 100)
	// Alive: a large body streams through.
	if st, body, _ := do(t, front, "POST", "/", "JSESSIONID=1.jvm_a", big); st != 200 || !strings.HasSuffix(body, big) {
		t.Fatalf("large body: %d %q", st, body)
	}
	bs[0].kill()
	if st, _, _ := do(t, front, "POST", "/", "JSESSIONID=1.jvm_a", big); st != http.StatusBadGateway {
		t.Fatalf("large body to a dead member: status %d, want 502 (no retry)", st)
	}
	// A small one is retried.
	if st, body, _ := do(t, front, "POST", "/", "JSESSIONID=1.jvm_a", "small"); st != 200 || servedBy(body) != "jvm_b" {
		t.Fatalf("small body: %d %q", st, body)
	}
}

func TestAllMembersDown(t *testing.T) {
	bs, bal, front := cluster(t, 2, func(c *Config) { c.HealthInterval = -1 })
	bs[0].kill()
	bs[1].kill()
	if st, _, _ := do(t, front, "GET", "/", "", ""); st != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", st)
	}
	// Both down: the next request still tries them, and finds b back.
	bs[1].restart()
	if st, body, _ := do(t, front, "GET", "/", "JSESSIONID=1.jvm_a", ""); st != 200 || servedBy(body) != "jvm_b" {
		t.Fatalf("after b restarted: %d %q", st, body)
	}
	if !stat(bal, "jvm_b").Up {
		t.Fatal("jvm_b not marked up by the request it served")
	}
}

// TestConcurrentFailover kills and restarts a member under concurrent
// traffic. Idempotent requests (PUT) all succeed. POSTs in flight when the
// member died may get 502 (it may have processed them), but none runs
// twice: every POST carries a unique body, which the backends record.
func TestConcurrentFailover(t *testing.T) {
	for _, method := range []string{"PUT", "POST"} {
		t.Run(method, func(t *testing.T) {
			bs, _, front := cluster(t, 3, nil)
			var seen sync.Map
			for _, b := range bs {
				b.seen = &seen
			}
			errs := make(chan error, 64)
			done := make(chan struct{})
			var failed atomic.Int64
			for g := range 8 {
				go func() {
					for i := 0; ; i++ {
						select {
						case <-done:
							errs <- nil
							return
						default:
						}
						ck := fmt.Sprintf("JSESSIONID=%d.jvm_%c", i, 'a'+rune((g+i)%3))
						req, _ := http.NewRequest(method, front.URL+"/", strings.NewReader(fmt.Sprintf("%d-%d", g, i)))
						req.Header.Set("Cookie", ck)
						resp, err := front.Client().Do(req)
						if err != nil {
							errs <- err
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						switch {
						case resp.StatusCode == 200:
						case method == "POST" && resp.StatusCode == http.StatusBadGateway:
							failed.Add(1)
						default:
							errs <- fmt.Errorf("status %d for %s", resp.StatusCode, ck)
							return
						}
					}
				}()
			}
			time.Sleep(50 * time.Millisecond)
			bs[0].kill()
			time.Sleep(50 * time.Millisecond)
			bs[0].restart()
			time.Sleep(50 * time.Millisecond)
			close(done)
			for range 8 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("%s: %d answered 502", method, failed.Load())
		})
	}
}

func TestNewErrors(t *testing.T) {
	u := &url.URL{Scheme: "http", Host: "127.0.0.1:1"}
	tests := []struct {
		name    string
		members []Member
		want    error
	}{
		{name: "no members", want: ErrNoMembers},
		{name: "empty route", members: []Member{{Route: "", URL: u}}, want: ErrBadMember},
		{name: "dot in route", members: []Member{{Route: "a.b", URL: u}}, want: ErrBadMember},
		{name: "duplicate", members: []Member{{Route: "a", URL: u}, {Route: "a", URL: u}}, want: ErrBadMember},
		{name: "nil url", members: []Member{{Route: "a"}}, want: ErrBadMember},
		{name: "relative url", members: []Member{{Route: "a", URL: &url.URL{Path: "/x"}}}, want: ErrBadMember},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(Config{Members: tc.members})
			if !errors.Is(err, tc.want) {
				if b != nil {
					b.Close()
				}
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestHungMemberTimesOut(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(release)
	ok := newBackend(t, "jvm_b")
	u, _ := url.Parse(hung.URL)
	bal, err := New(Config{
		Members:               []Member{{Route: "jvm_a", URL: u}, {Route: "jvm_b", URL: ok.url()}},
		HealthInterval:        -1,
		ResponseHeaderTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer bal.Close()
	front := httptest.NewServer(bal)
	defer front.Close()
	st, body, _ := do(t, front, "GET", "/", "JSESSIONID=1.jvm_a", "")
	if st != 200 || servedBy(body) != "jvm_b" {
		t.Fatalf("got %d %q, want jvm_b after jvm_a's timeout", st, body)
	}
	if s := stat(bal, "jvm_a"); s.Up || s.Failures != 1 {
		t.Fatalf("jvm_a: %+v, want down after one failure", s)
	}
}

func TestStatsCounts(t *testing.T) {
	_, bal, front := cluster(t, 2, func(c *Config) { c.HealthInterval = -1 })
	for range 3 {
		do(t, front, "GET", "/", "JSESSIONID=1.jvm_b", "")
	}
	got := bal.Stats()
	if len(got) != 2 || got[0].Route != "jvm_a" || got[0].Requests != 0 || got[1].Requests != 3 || !got[1].Up || got[1].Failures != 0 {
		t.Fatalf("Stats = %+v", got)
	}
}

// FuzzRoute feeds arbitrary cookies and paths: Route must not panic and
// must return a suffix of its input without '.'.
func FuzzRoute(f *testing.F) {
	f.Add("JSESSIONID=ABC.jvm_a", "/x")
	f.Add("", "/app;jsessionid=1.2.jvm_b;x=y/z")
	f.Add(`a=b; JSESSIONID="q.r"; JSESSIONID=.`, "/;jsessionid=")
	bal, err := New(Config{Members: []Member{{Route: "jvm_a", URL: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}}}, HealthInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	defer bal.Close()
	f.Fuzz(func(t *testing.T, cookie, path string) {
		r := &http.Request{Header: http.Header{"Cookie": {cookie}}, URL: &url.URL{Path: path}}
		got := bal.Route(r)
		if strings.Contains(got, ".") {
			t.Fatalf("route %q contains a dot", got)
		}
		if got != "" && !strings.Contains(cookie, got) && !strings.Contains(path, got) {
			t.Fatalf("route %q not in the input", got)
		}
	})
}

func BenchmarkServeHTTP(b *testing.B) {
	member := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	defer member.Close()
	u, _ := url.Parse(member.URL)
	bal, err := New(Config{Members: []Member{{Route: "jvm_a", URL: u}}, HealthInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer bal.Close()
	front := httptest.NewServer(bal)
	defer front.Close()
	client := front.Client()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest("GET", front.URL+"/", nil)
		req.Header.Set("Cookie", "JSESSIONID=0123456789ABCDEF0123456789ABCDEF.jvm_a")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func BenchmarkRoute(b *testing.B) {
	bal, err := New(Config{Members: []Member{{Route: "jvm_a", URL: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}}}, HealthInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer bal.Close()
	r := httptest.NewRequest("GET", "/app/x", nil)
	r.Header.Set("Cookie", "theme=dark; JSESSIONID=0123456789ABCDEF0123456789ABCDEF.jvm_a")
	b.ReportAllocs()
	for b.Loop() {
		if bal.Route(r) != "jvm_a" {
			b.Fatal("wrong route")
		}
	}
}

func TestRouteAllocs(t *testing.T) {
	res := testing.Benchmark(BenchmarkRoute)
	if a := res.AllocsPerOp(); a != 0 {
		t.Fatalf("Route allocates %d times per call, want 0", a)
	}
}
