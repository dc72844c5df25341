package wasmapps_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/wasmapps"
	"github.com/wasmfarm/wasmfarm/wasmapps/internal/build"
)

// serve deploys mod at path on a fresh server and returns a client with a
// cookie jar and the base URL.
func serve(t *testing.T, path string, mod []byte) (*http.Client, string) {
	t.Helper()
	srv, err := host.New(host.Config{JvmRoute: "jvm_a", CacheDir: filepath.Join(os.TempDir(), "wasmfarm-test-cache")})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Deploy(context.Background(), path, mod); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.Close()
		srv.Shutdown(context.Background())
	})
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}, ts.URL
}

func get(t *testing.T, c *http.Client, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestCounterApp(t *testing.T) {
	c, base := serve(t, "/counter", wasmapps.Counter())
	var v struct {
		Session string
		Node    string
		Created int64
		Counter int
	}
	for i := 1; i <= 2; i++ {
		st, body, _ := get(t, c, base+"/counter/json")
		if st != 200 {
			t.Fatalf("status %d: %s", st, body)
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		if v.Counter != i || v.Node != "jvm_a" || !strings.HasSuffix(v.Session, ".jvm_a") || v.Created == 0 {
			t.Fatalf("request %d: %s", i, body)
		}
	}
	st, body, _ := get(t, c, base+"/counter")
	if st != 200 || !strings.Contains(body, "SESSION ID:"+v.Session) || !strings.Contains(body, "Session serviced by jvm_a") || !strings.Contains(body, "Counter: 3") {
		t.Fatalf("page %d: %s", st, body)
	}
	st, body, _ = get(t, c, base+"/counter/invalidate")
	if st != 200 || !strings.Contains(body, v.Session+" invalidated") {
		t.Fatalf("invalidate %d: %s", st, body)
	}
	_, body, _ = get(t, c, base+"/counter/json")
	if strings.Contains(body, v.Session) || !strings.Contains(body, `"counter":1`) {
		t.Fatalf("after invalidate: %s", body)
	}
}

func TestCartApp(t *testing.T) {
	c, base := serve(t, "/cart", wasmapps.Cart())
	get(t, c, base+"/cart/add?item=apple&qty=2")
	get(t, c, base+"/cart/add?item=pear")
	get(t, c, base+"/cart/add?item=apple")
	_, body, _ := get(t, c, base+"/cart/remove?item=pear")
	if !strings.Contains(body, `"items":{"apple":3}`) {
		t.Fatalf("cart: %s", body)
	}
	if st, _, _ := get(t, c, base+"/cart/add?item=apple&qty=-1"); st != 400 {
		t.Fatalf("bad qty: status %d", st)
	}
	_, body, _ = get(t, c, base+"/cart/clear")
	if !strings.Contains(body, `"items":{}`) {
		t.Fatalf("cleared cart: %s", body)
	}
}

func TestStaticApp(t *testing.T) {
	c, base := serve(t, "/static", wasmapps.Static())
	tests := []struct {
		name, path, ctype, contains string
		status                      int
	}{
		{"index", "/static/", "text/html; charset=utf-8", "wasmfarm static app", 200},
		{"css", "/static/style.css", "text/css; charset=utf-8", "font-family", 200},
		{"svg", "/static/logo.svg", "image/svg+xml", "<svg", 200},
		{"missing", "/static/nope.png", "", "not found", 404},
		{"session page", "/static/visits", "text/plain; charset=utf-8", "1 visits", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, body, h := get(t, c, base+tc.path)
			if st != tc.status || !strings.Contains(body, tc.contains) || (tc.ctype != "" && h.Get("Content-Type") != tc.ctype) {
				t.Fatalf("status %d, type %q: %s", st, h.Get("Content-Type"), body)
			}
			if tc.name != "session page" && h.Get("Set-Cookie") != "" {
				t.Fatalf("a static file set a cookie: %s", h.Get("Set-Cookie"))
			}
		})
	}
}

// TestBuildOutputsMatchSources guards the committed build/*.wasm against
// drift. With the toolchain recorded in the manifest it rebuilds every app
// and compares bytes; with another toolchain it compares the recorded hash
// of the sources instead (the bytes would differ for that reason alone).
func TestBuildOutputsMatchSources(t *testing.T) {
	m, err := build.ReadManifest(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, app := range build.Apps {
		got, err := build.FileHash(filepath.Join("build", app.Name+".wasm"))
		if err != nil {
			t.Fatal(err)
		}
		if got != m.Outputs[app.Name] {
			t.Errorf("build/%s.wasm does not match the manifest: run go generate ./wasmapps", app.Name)
		}
	}
	src, err := build.SourceHash(".")
	if err != nil {
		t.Fatal(err)
	}
	if src != m.SourceHash {
		t.Fatalf("the apps' sources changed since build/*.wasm was generated: run go generate ./wasmapps")
	}
	tc, err := build.Toolchain(".")
	if err != nil {
		t.Skipf("no go command to rebuild with (%v); the source hash matched", err)
	}
	if tc != m.Toolchain {
		t.Skipf("toolchain %s differs from %s that generated build/: compared the source hash only (it matched), not the bytes", tc, m.Toolchain)
	}
	if testing.Short() {
		t.Skip("-short: compared the source hash only (it matched); the byte-for-byte rebuild takes a while")
	}
	dir := t.TempDir()
	for _, app := range build.Apps {
		out := filepath.Join(dir, app.Name+".wasm")
		if err := build.Build(".", app, out); err != nil {
			t.Fatal(err)
		}
		got, _ := build.FileHash(out)
		if got != m.Outputs[app.Name] {
			t.Errorf("rebuilding %s with %s gives other bytes than build/%s.wasm: run go generate ./wasmapps", app.Name, tc, app.Name)
		}
	}
}
