package host_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/host/abi"
	"github.com/wasmfarm/wasmfarm/host/internal/wasmtest"
	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/host/wasm"
	"github.com/wasmfarm/wasmfarm/internal/syncbuf"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

func TestDeployRefusals(t *testing.T) {
	srv, base := newServer(t, host.Config{}, map[string][]byte{"/counter": wasmapps.Counter()})
	tests := []struct {
		name   string
		module []byte
		want   error
		reason string
	}{
		{"not wasm", []byte("#!/bin/sh\necho hi\n"), wasm.ErrInvalidModule, "not a valid WebAssembly module"},
		{"no exports", wasmtest.Empty(), wasm.ErrMissingExport, `does not export "wasmfarm_abi_version"`},
		{"wrong ABI version", wasmtest.Module(abi.Version+1, 0, false), wasm.ErrABIVersion, "ABI version 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := srv.DeployApp(context.Background(), "/bad", tc.module, host.AppConfig{Name: "bad.wasm"})
			var me *wasm.ModuleError
			if !errors.Is(err, tc.want) || !errors.As(err, &me) || me.Module != "bad.wasm" || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("got %v, want %v naming bad.wasm and %q", err, tc.want, tc.reason)
			}
			// The other app keeps serving, the refused path serves nothing.
			c := &client{t: t, base: base}
			if st, body, _ := c.get("/counter/json"); st != 200 {
				t.Fatalf("counter after a refused deploy: %d %s", st, body)
			}
			if st, _, _ := c.get("/bad"); st != 404 {
				t.Fatalf("refused app answers %d", st)
			}
		})
	}
	// A refused redeploy keeps the old version serving.
	if err := srv.Deploy(context.Background(), "/counter", []byte("junk")); err == nil {
		t.Fatal("junk redeploy accepted")
	}
	c := &client{t: t, base: base}
	if st, _, _ := c.get("/counter/json"); st != 200 {
		t.Fatalf("counter after a refused redeploy: %d", st)
	}
	if err := srv.Deploy(context.Background(), "counter", wasmapps.Counter()); !errors.Is(err, host.ErrBadPath) {
		t.Fatalf("bad path: %v", err)
	}
}

func TestSandbox(t *testing.T) {
	srv, err := host.New(host.Config{JvmRoute: "n1", CacheDir: cacheDir(t), MaxRequestBodyBytes: 1000, MaxHeaderBytes: 4096, MaxResponseBytes: 1 << 20,
		Sessions: session.Config{Limits: session.Limits{MaxValueBytes: 1 << 16}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.DeployApp(context.Background(), "/f", faulty(t), host.AppConfig{Name: "faulty.wasm", PoolSize: 2, RequestDeadline: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	// The same module with a short deadline, for the infinite loop.
	if err := srv.DeployApp(context.Background(), "/fast", faulty(t), host.AppConfig{Name: "faulty.wasm", PoolSize: 1, RequestDeadline: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	ts := newHTTPTest(t, srv)
	c := &client{t: t, base: ts}
	if st, body, _ := c.get("/f/ok"); st != 200 || body != "1" {
		t.Fatalf("ok: %d %q", st, body)
	}
	id := c.cookie
	ctx, _ := srv.Engine().Context("/f")
	s, ok := ctx.Manager().Find(id)
	if !ok {
		t.Fatal("session not committed")
	}
	if v, _ := s.Get("hook:created"); string(v) != "yes" {
		t.Fatalf("session_created hook did not run: %q", v)
	}

	tests := []struct {
		name   string
		method string
		path   string
		body   string
		header map[string]string
		status int
	}{
		{"infinite loop", "GET", "/fast/loop", "", nil, 503},
		{"panic", "GET", "/f/panic", "", nil, 500},
		{"exit", "GET", "/f/exit", "", nil, 500},
		{"out of memory", "GET", "/f/oom", "", nil, 500},
		{"oversized attribute", "GET", "/f/big?n=100000", "", nil, 413},
		{"oversized response", "GET", "/f/bigbody?n=2000000", "", nil, 413},
		{"oversized body", "POST", "/f/echo", strings.Repeat("x", 1001), nil, 413},
		{"oversized headers", "GET", "/f/ok", "", map[string]string{"X-Big": strings.Repeat("x", 20000)}, 431},
		{"unknown context", "GET", "/nope", "", nil, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			st, body, _ := c.do(tc.method, tc.path, tc.body, tc.header)
			if st != tc.status {
				t.Fatalf("status %d, want %d: %s", st, tc.status, body)
			}
			t.Logf("%d after %v: %.120s", st, time.Since(start).Round(time.Millisecond), strings.TrimSpace(body))
			// The session keeps its last committed state and the app serves on.
			if v, _ := s.Get("counter"); string(v) != "1" {
				t.Fatalf("session counter %q after %s, want 1", v, tc.name)
			}
		})
	}
	if st, body, _ := c.get("/f/ok"); st != 200 || body != "2" {
		t.Fatalf("after the failures: %d %q", st, body)
	}
	_, created, discarded := ctx.PoolStats()
	if discarded < 3 || created < discarded {
		t.Fatalf("instances created %d, discarded %d: want the 3 broken ones (panic, exit, oom) replaced", created, discarded)
	}
	st, body, h := c.do("POST", "/f/echo", "hello", map[string]string{"X-Test": "t1"})
	if st != 200 || body != "hello" || h.Get("X-Method") != "POST" || h.Get("X-Test") != "t1" {
		t.Fatalf("echo: %d %q %v", st, body, h)
	}
}

func newHTTPTest(t *testing.T, srv *host.Server) string {
	t.Helper()
	_, base := serveExisting(t, srv)
	return base
}

func TestSessionFeatures(t *testing.T) {
	srv, base := newServer(t, host.Config{JvmRoute: "n1", Sessions: session.Config{MaxActiveSessions: 3}},
		map[string][]byte{"/f": faulty(t), "/counter": wasmapps.Counter()})
	_ = srv

	t.Run("cookie attributes", func(t *testing.T) {
		c := &client{t: t, base: base}
		_, _, h := c.get("/counter/json")
		ck := h.Get("Set-Cookie")
		for _, want := range []string{"JSESSIONID=", ".n1;", "Path=/counter", "HttpOnly", "SameSite=Lax"} {
			if !strings.Contains(ck, want) {
				t.Fatalf("cookie %q lacks %q", ck, want)
			}
		}
		if strings.Contains(ck, "Secure") {
			t.Fatalf("cookie %q is Secure over plain HTTP", ck)
		}
		// No new cookie when the session stays the same.
		if _, _, h := c.get("/counter/json"); h.Get("Set-Cookie") != "" {
			t.Fatalf("cookie sent again: %s", h.Get("Set-Cookie"))
		}
	})

	t.Run("jsessionid in the URL", func(t *testing.T) {
		c := &client{t: t, base: base}
		_, body, _ := c.get("/counter/json")
		id := c.cookie
		c2 := &client{t: t, base: base}
		_, body, _ = c2.get("/counter/json;jsessionid=" + id)
		if !strings.Contains(body, id) || !strings.Contains(body, `"counter":2`) {
			t.Fatalf("URL session: %s", body)
		}
	})

	t.Run("change id", func(t *testing.T) {
		c := &client{t: t, base: base}
		c.get("/f/ok")
		old := c.cookie
		_, body, _ := c.get("/f/login")
		parts := strings.Fields(body)
		if len(parts) != 2 || parts[0] != old || parts[1] != c.cookie || c.cookie == old || !strings.HasSuffix(c.cookie, ".n1") {
			t.Fatalf("login: %q, cookie %s (was %s)", body, c.cookie, old)
		}
		if _, body, _ := c.get("/f/ok"); body != "2" {
			t.Fatalf("counter after id change: %q", body)
		}
		c.cookie = old
		if _, body, _ := c.get("/f/ok"); body != "1" {
			t.Fatalf("old id still works: %q", body)
		}
	})

	t.Run("maxActiveSessions", func(t *testing.T) {
		var last int
		var body string
		for range 5 {
			c := &client{t: t, base: base}
			last, body, _ = c.get("/counter/json")
		}
		if last != 503 || !strings.Contains(body, "too many active sessions") {
			t.Fatalf("past maxActiveSessions: %d %s", last, body)
		}
	})
}

func TestRedeployWhileServing(t *testing.T) {
	srv, base := newServer(t, host.Config{}, map[string][]byte{"/app": faulty(t)})
	var wg sync.WaitGroup
	wg.Add(1)
	var st int
	var body string
	go func() {
		defer wg.Done()
		c := &client{t: t, base: base}
		st, body, _ = c.get("/app/sleep?ms=700")
	}()
	time.Sleep(200 * time.Millisecond)
	if err := srv.Deploy(context.Background(), "/app", wasmapps.Counter()); err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, base: base}
	if st, b, _ := c.get("/app/json"); st != 200 || !strings.Contains(b, `"counter":1`) {
		t.Fatalf("new version: %d %s", st, b)
	}
	wg.Wait()
	if st != 200 || body != "slept" {
		t.Fatalf("in-flight request on the old version: %d %q", st, body)
	}
	if err := srv.Undeploy(context.Background(), "/app"); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := c.get("/app/json"); st != 404 {
		t.Fatalf("after undeploy: %d", st)
	}
	if err := srv.Undeploy(context.Background(), "/app"); !errors.Is(err, host.ErrAppNotFound) {
		t.Fatalf("second undeploy: %v", err)
	}
}

func TestValveSeesDelta(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	valve := host.ValveFunc(func(x *host.Exchange, next host.Invoker) {
		next.Invoke(x)
		mu.Lock()
		defer mu.Unlock()
		if x.Delta == nil {
			seen = append(seen, fmt.Sprintf("%s: no delta", x.Path))
			return
		}
		var ops []string
		for _, op := range x.Delta.Ops {
			ops = append(ops, op.Kind.String()+" "+op.Key+"="+string(op.Value))
		}
		seen = append(seen, fmt.Sprintf("%s: created=%v %v", x.Path, x.Delta.Created, ops))
	})
	_, base := newServer(t, host.Config{Valves: []host.Valve{valve}}, map[string][]byte{"/s": wasmapps.Static(), "/counter": wasmapps.Counter()})
	c := &client{t: t, base: base}
	c.get("/counter/json")
	c.get("/counter/json")
	c.get("/s/style.css")
	want := []string{
		"/counter/json: created=true [set counter=1]",
		"/counter/json: created=false [set counter=2]",
		"/s/style.css: no delta",
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("valve saw\n%q\nwant\n%q", seen, want)
	}
}

func TestConcurrentRequests(t *testing.T) {
	_, base := newServer(t, host.Config{PoolSize: 3}, map[string][]byte{"/counter": wasmapps.Counter()})
	const workers, each = 6, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &client{t: t, base: base}
			for i := 1; i <= each; i++ {
				st, body, _ := c.get("/counter/json")
				if st != 200 || !strings.Contains(body, fmt.Sprintf(`"counter":%d}`, i)) {
					errs <- fmt.Errorf("request %d: %d %s", i, st, body)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

var _ = http.StatusOK

func TestSecureCookieOverTLS(t *testing.T) {
	srv, _ := newServer(t, host.Config{}, map[string][]byte{"/counter": wasmapps.Counter()})
	ts := httptest.NewTLSServer(srv)
	defer ts.Close()
	resp, err := ts.Client().Get(ts.URL + "/counter/json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ck := resp.Header.Get("Set-Cookie"); !strings.Contains(ck, "Secure") || !strings.Contains(ck, "HttpOnly") {
		t.Fatalf("cookie over TLS: %q", ck)
	}
}

func TestSessionDestroyedHook(t *testing.T) {
	var logs syncbuf.Buffer
	srv, base := newServer(t, host.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, map[string][]byte{"/f": faulty(t)})
	c := &client{t: t, base: base}
	c.get("/f/ok")
	c.get("/f/ok")
	ctx, _ := srv.Engine().Context("/f")
	if !ctx.Manager().Invalidate(c.cookie) {
		t.Fatal("session not found")
	}
	if want := "destroyed " + c.cookie + " counter=2"; !strings.Contains(logs.String(), want) {
		t.Fatalf("log lacks %q:\n%s", want, logs.String())
	}
}

func TestSeveralSessionCookies(t *testing.T) {
	_, base := newServer(t, host.Config{}, map[string][]byte{"/counter": wasmapps.Counter()})
	c := &client{t: t, base: base}
	c.get("/counter/json")
	live := c.cookie
	st, body, _ := c.do("GET", "/counter/json", "", map[string]string{"Cookie": "JSESSIONID=STALE; JSESSIONID=" + live})
	if st != 200 || !strings.Contains(body, live) || !strings.Contains(body, `"counter":2`) {
		t.Fatalf("%d %s", st, body)
	}
}

// TestPerAppSessionSettings: an app's AppConfig session limits (a
// <Context>'s) apply to its sessions only; the other apps keep the
// server's.
func TestPerAppSessionSettings(t *testing.T) {
	srv, err := host.New(host.Config{JvmRoute: "n1", CacheDir: cacheDir(t),
		Sessions: session.Config{MaxActiveSessions: 3, MaxInactiveInterval: 10 * time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for path, app := range map[string]host.AppConfig{
		"/one":     {MaxActiveSessions: 1, SessionTimeout: 90 * time.Second},
		"/many":    {MaxActiveSessions: -1, SessionTimeout: -1},
		"/default": {},
	} {
		if err := srv.DeployApp(ctx, path, wasmapps.Counter(), app); err != nil {
			t.Fatal(err)
		}
	}
	_, base := serveExisting(t, srv)
	statuses := func(path string, n int) []int {
		var st []int
		for range n {
			c := &client{t: t, base: base}
			s, _, _ := c.get(path + "/json")
			st = append(st, s)
		}
		return st
	}
	for _, tc := range []struct {
		path string
		want []int
		idle time.Duration
	}{
		{"/one", []int{200, 503, 503}, 90 * time.Second},
		{"/many", []int{200, 200, 200, 200, 200}, -1},
		{"/default", []int{200, 200, 200, 503}, 10 * time.Minute},
	} {
		if got := statuses(tc.path, len(tc.want)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: statuses %v, want %v", tc.path, got, tc.want)
		}
		c, _ := srv.Engine().Context(tc.path)
		if n, want := c.Manager().Len(), strings.Count(fmt.Sprint(tc.want), "200"); n != want {
			t.Errorf("%s: %d sessions, want %d", tc.path, n, want)
		}
		c.Manager().Range(func(s *session.Session) bool {
			if got := s.MaxInactiveInterval(); got != tc.idle && !(tc.idle < 0 && got < 0) {
				t.Errorf("%s: session idle limit %v, want %v", tc.path, got, tc.idle)
			}
			return true
		})
	}
}

// TestResponseHeadersDoNotLeak: exchanges (and their response headers)
// are reused across requests and apps; a header one response set is never
// part of the next.
func TestResponseHeadersDoNotLeak(t *testing.T) {
	_, base := newServer(t, host.Config{}, map[string][]byte{"/f": faulty(t), "/counter": wasmapps.Counter()})
	c := &client{t: t, base: base}
	for range 20 {
		// The echo sets no Content-Type: net/http sniffs one.
		if st, _, h := c.do("POST", "/f/echo", "x", map[string]string{"X-Test": "t1"}); st != 200 || h.Get("X-Test") != "t1" ||
			h.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("echo: %d %v", st, h)
		}
		st, _, h := c.get("/counter/json")
		if st != 200 || h.Get("Content-Type") != "application/json" {
			t.Fatalf("counter: %d %v", st, h)
		}
		for _, k := range []string{"X-Test", "X-Method", "X-Headers"} {
			if _, ok := h[k]; ok {
				t.Fatalf("counter response carries %s from the echo response: %v", k, h)
			}
		}
	}
}

// TestResponseHeadSequence: the SDK sends the previous response head
// again, without encoding it, when the status and every header value are
// those of the previous response on the same instance; any change shows.
func TestResponseHeadSequence(t *testing.T) {
	c := oneInstanceFaulty(t)
	type want struct {
		status int
		xa     []string
		xnew   string
	}
	a := want{200, []string{"1"}, ""}
	steps := []struct {
		query string
		want  want
	}{
		{"m=a", a}, {"m=a", a}, {"m=b", want{200, nil, ""}}, {"m=a", a}, {"m=c", want{201, []string{"1"}, ""}},
		{"m=a", a}, {"m=d", want{200, []string{"1", "2"}, ""}}, {"m=d", want{200, []string{"1", "2"}, ""}},
		{"m=a", a}, {"m=v&v=x", want{200, []string{"x"}, ""}}, {"m=v&v=y", want{200, []string{"y"}, ""}},
		{"m=v&v=y", want{200, []string{"y"}, ""}}, {"m=n", want{200, []string{"1"}, "new"}}, {"m=a", a}, {"m=a", a},
	}
	for i, s := range steps {
		st, _, h := c.get("/f/head?" + s.query)
		if st != s.want.status || h.Get("Content-Type") != "text/plain" || !slices.Equal(h.Values("X-A"), s.want.xa) || h.Get("X-New") != s.want.xnew {
			t.Fatalf("step %d (%s): status %d, Content-Type %q, X-A %q, X-New %q; want %d, text/plain, %q, %q",
				i, s.query, st, h.Get("Content-Type"), h.Values("X-A"), h.Get("X-New"), s.want.status, s.want.xa, s.want.xnew)
		}
	}
}

// TestRequestFieldsNotCarriedOver: a handler may change its Request's
// fields; the next request with the same request line on the same
// instance still sees its own.
func TestRequestFieldsNotCarriedOver(t *testing.T) {
	c := oneInstanceFaulty(t)
	for i := range 3 {
		if st, body, _ := c.get("/f/mutate?q=1"); st != 200 || body != "GET /f/mutate q=1 /f" {
			t.Fatalf("request %d: %d %q, want 200 \"GET /f/mutate q=1 /f\"", i, st, body)
		}
	}
}

// oneInstanceFaulty serves the faulty app at /f from a pool of one
// instance, so that consecutive requests run on the same instance.
func oneInstanceFaulty(t *testing.T) *client {
	srv, err := host.New(host.Config{CacheDir: cacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.DeployApp(context.Background(), "/f", faulty(t), host.AppConfig{Name: "faulty.wasm", PoolSize: 1}); err != nil {
		t.Fatal(err)
	}
	_, base := serveExisting(t, srv)
	return &client{t: t, base: base}
}
