package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmfarm/wasmfarm/internal/syncbuf"
)

// TestSeedConfigsRun starts a node from each seed document's <Cluster>
// example as written (typos included), two members per file so that
// sessions replicate, with flags overriding only what keeps the test on
// this machine: multicast bound to the loopback interface (TTL 0) on a
// port of its own, receiver and HTTP on any free loopback port.
func TestSeedConfigsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes; skipped with -short")
	}
	files, err := filepath.Glob("../../examples/seeds/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed configs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			args := append(clusterArgs(t), "-config", f, "-receiver", "127.0.0.1:0", "-send-options", "sync", "-log-level", "warn")
			a := startClusterNode(t, "jvm_a", args...)
			b := startClusterNode(t, "jvm_b", args...)
			waitFor(t, "A sees B run /counter", 5e9, func() bool {
				for _, m := range a.status(t).Members {
					if m.JvmRoute == "jvm_b" && len(m.Apps) == 1 {
						return true
					}
				}
				return false
			})
			j, id := a.counter(t, "json", "")
			if j.Counter != 1 || !strings.HasSuffix(id, ".jvm_a") {
				t.Fatalf("first request: %+v %q", j, id)
			}
			if !b.holds(t, id) {
				t.Fatalf("B does not hold A's session after a synchronous request")
			}
		})
	}
}

// TestNodeCheck: "wasmfarm node -config FILE -check" prints the warnings
// and the node for every example and seed config, and starts nothing.
func TestNodeCheck(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.xml")
	seeds, _ := filepath.Glob("../../examples/seeds/*.xml")
	files = append(files, seeds...)
	if len(files) < 10 {
		t.Fatalf("found only %d configs", len(files))
	}
	for _, f := range files {
		var stdout, stderr syncbuf.Buffer
		if code := run(t.Context(), []string{"node", "-config", f, "-check"}, &stdout, &stderr); code != 0 {
			t.Fatalf("%s: exit %d\n%s", f, code, stderr.String())
		}
		out := stdout.String()
		for _, want := range []string{"warning(s)", "cluster", "manager", "interceptors"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: -check output lacks %q:\n%s", f, want, out)
			}
		}
		if strings.Contains(filepath.Base(f), "typos") && !strings.Contains(stderr.String(), `did you mean "selectorTimeout"`) {
			t.Errorf("%s: no warning naming the misspelt selectorTimeout:\n%s", f, stderr.String())
		}
	}
	var stdout, stderr syncbuf.Buffer
	if code := run(t.Context(), []string{"node", "-check"}, &stdout, &stderr); code == 0 {
		t.Error("-check without -config succeeded")
	}
}

// TestContextSessionSettings: a <Context>'s sessionTimeout and its
// <Manager maxActiveSessions> apply to that app only; another app on the
// node keeps the node's settings.
func TestContextSessionSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real process; skipped with -short")
	}
	file := filepath.Join(t.TempDir(), "server.xml")
	os.WriteFile(file, []byte(`<Server><Service name="Catalina">
  <Connector port="8080"/>
  <Engine name="Catalina" defaultHost="localhost" jvmRoute="jvm_a"><Host name="localhost">
    <Context path="/limited" docBase="builtin:counter" sessionTimeout="2">
      <Manager maxActiveSessions="1"/>
    </Context>
    <Context path="/free" docBase="builtin:counter"/>
  </Host></Engine>
</Service></Server>
`), 0o644)
	n := startClusterNode(t, "jvm_a", "-config", file, "-session-timeout", "30m",
		"-cache-dir", filepath.Join(os.TempDir(), "wasmfarm-test-cache"), "-log-level", "warn")
	get := func(app string) (int, string) {
		resp, err := http.Get(n.http + app + "/json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		for _, c := range resp.Cookies() {
			if c.Name == "JSESSIONID" {
				return resp.StatusCode, c.Value
			}
		}
		return resp.StatusCode, ""
	}
	idle := func(app, id string) float64 {
		resp, err := http.Get(n.admin + "/session?app=" + app + "&id=" + id)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s sessionJSON
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || !s.Found {
			t.Fatalf("%s session %s: %v %+v", app, id, err, s)
		}
		return s.MaxInactive
	}
	st1, id1 := get("/limited")
	st2, _ := get("/limited")
	if st1 != 200 || st2 != 503 {
		t.Errorf("/limited (maxActiveSessions 1): statuses %d, %d; want 200, 503", st1, st2)
	}
	if got := idle("/limited", id1); got != 120 {
		t.Errorf("/limited (sessionTimeout 2 minutes): idle limit %vs", got)
	}
	for i := range 3 {
		st, id := get("/free")
		if st != 200 {
			t.Fatalf("/free session %d: status %d", i+1, st)
		}
		if got := idle("/free", id); got != 1800 {
			t.Errorf("/free (the node's 30m): idle limit %vs", got)
		}
	}
}
