package main

import (
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
