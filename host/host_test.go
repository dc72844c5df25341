package host_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// newServer starts a server with the given apps on a loopback listener.
func newServer(t testing.TB, cfg host.Config, apps map[string][]byte) (*host.Server, string) {
	t.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = cacheDir(t)
	}
	srv, err := host.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for path, mod := range apps {
		if err := srv.Deploy(context.Background(), path, mod); err != nil {
			t.Fatal(err)
		}
	}
	return serveExisting(t, srv)
}

// serveExisting serves srv on a loopback test server until the test ends.
func serveExisting(t testing.TB, srv *host.Server) (*host.Server, string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv, "http://" + l.Addr().String()
}

// cacheDir shares one compilation cache across the tests of a run.
func cacheDir(t testing.TB) string {
	dir := os.Getenv("WASMFARM_TEST_CACHE")
	if dir == "" {
		dir = os.TempDir() + "/wasmfarm-test-cache"
	}
	return dir
}

func faulty(t testing.TB) []byte {
	b, err := os.ReadFile("../wasmapps/build/faulty.wasm")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type client struct {
	t      testing.TB
	base   string
	cookie string
}

func (c *client) get(path string) (int, string, http.Header) {
	c.t.Helper()
	return c.do("GET", path, "", nil)
}

func (c *client) do(method, path, body string, hdr map[string]string) (int, string, http.Header) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if c.cookie != "" {
		req.Header.Set("Cookie", "JSESSIONID="+c.cookie)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, ck := range resp.Cookies() {
		if ck.Name == "JSESSIONID" {
			c.cookie = ck.Value
		}
	}
	return resp.StatusCode, string(b), resp.Header
}

type counterJSON struct {
	Session string `json:"session"`
	Node    string `json:"node"`
	Created int64  `json:"created"`
	Counter int    `json:"counter"`
}

func TestCounter(t *testing.T) {
	_, base := newServer(t, host.Config{JvmRoute: "jvm_a"}, map[string][]byte{"/counter": wasmapps.Counter()})
	c := &client{t: t, base: base}
	var first counterJSON
	for i := 1; i <= 3; i++ {
		st, body, _ := c.get("/counter/json")
		if st != 200 {
			t.Fatalf("status %d: %s", st, body)
		}
		var got counterJSON
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		if i == 1 {
			first = got
		}
		if got.Counter != i || got.Node != "jvm_a" || got.Session != first.Session || !strings.HasSuffix(got.Session, ".jvm_a") || got.Created != first.Created {
			t.Fatalf("request %d: %+v (first %+v)", i, got, first)
		}
	}
	if c.cookie != first.Session {
		t.Fatalf("cookie %q, session %q", c.cookie, first.Session)
	}
	st, body, _ := c.get("/counter/")
	if st != 200 || !strings.Contains(body, "SESSION ID:"+first.Session) || !strings.Contains(body, "Counter: 4") {
		t.Fatalf("page %d: %s", st, body)
	}
}

// TestManySessionsOneInstance: requests of many sessions alternate on one
// instance (more sessions than the SDK's cache of id strings has slots);
// each sees its own id and counter.
func TestManySessionsOneInstance(t *testing.T) {
	srv, err := host.New(host.Config{JvmRoute: "jvm_a", CacheDir: cacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.DeployApp(context.Background(), "/counter", wasmapps.Counter(), host.AppConfig{PoolSize: 1}); err != nil {
		t.Fatal(err)
	}
	_, base := serveExisting(t, srv)
	clients := make([]*client, 150)
	for round := 1; round <= 3; round++ {
		for i := range clients {
			if clients[i] == nil {
				clients[i] = &client{t: t, base: base}
			}
			c := clients[i]
			st, body, _ := c.get("/counter/json")
			var got struct {
				Session string
				Counter int
			}
			if err := json.Unmarshal([]byte(body), &got); st != 200 || err != nil {
				t.Fatalf("session %d, round %d: %d %q", i, round, st, body)
			}
			if got.Session != c.cookie || got.Counter != round {
				t.Fatalf("session %d, round %d: answered session %s counter %d; want %s and %d", i, round, got.Session, got.Counter, c.cookie, round)
			}
		}
	}
}

// TestResponseDate: responses carry a current Date header (the server
// formats it once a second rather than letting net/http do it per
// response).
func TestResponseDate(t *testing.T) {
	_, base := newServer(t, host.Config{}, map[string][]byte{"/counter": wasmapps.Counter()})
	c := &client{t: t, base: base}
	for range 3 {
		st, _, h := c.get("/counter/json")
		d, err := http.ParseTime(h.Get("Date"))
		if st != 200 || err != nil || len(h.Values("Date")) != 1 {
			t.Fatalf("%d, Date %q: %v", st, h.Values("Date"), err)
		}
		if off := time.Since(d); off < -time.Second || off > 2*time.Second {
			t.Fatalf("Date %v is %v off", d, off)
		}
	}
}
