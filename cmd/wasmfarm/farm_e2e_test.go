package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/internal/syncbuf"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// withCustomSection returns mod with a custom section appended, which
// changes the module's digest and nothing else (a new "version").
func withCustomSection(mod []byte, tag string) []byte {
	return appendCustomSection(mod, "wasmfarm.version", []byte(tag))
}

// farmCLI runs "wasmfarm <args>" in this process and returns its exit
// code and output.
func farmCLI(t *testing.T, args ...string) (int, string) {
	var stdout, stderr syncbuf.Buffer
	code := run(t.Context(), args, &stdout, &stderr)
	return code, stdout.String() + stderr.String()
}

// status returns the HTTP status of GET url.
func httpStatus(t *testing.T, url string) int {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestFarmEndToEnd: three members; deploy through one member's admin
// endpoint; all serve the app; a redeploy under load fails no request;
// a corrupt module is refused everywhere and the running version stays;
// undeploy; a member started afterwards serves the farmed apps as soon as
// its port opens.
func TestFarmEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes; skipped with -short")
	}
	const token = "e2e-admin-token"
	common := append(clusterArgs(t), "-admin-token", token, "-log-level", "warn")
	member := func(name string) *clusterProc {
		return startClusterNode(t, name, append(common, "-data-dir", t.TempDir())...)
	}
	ms := []*clusterProc{member("jvm_a"), member("jvm_b"), member("jvm_c")}
	waitFor(t, "the members see each other", 5*time.Second, func() bool { return len(ms[0].status(t).Members) == 2 })

	dir := t.TempDir()
	v1 := filepath.Join(dir, "shop.wasm")
	if err := os.WriteFile(v1, wasmapps.Counter(), 0o644); err != nil {
		t.Fatal(err)
	}
	admin := []string{"-admin", ms[0].admin, "-token", token}
	if code, out := farmCLI(t, append(append([]string{"deploy"}, admin...), v1)...); code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, out)
	}
	for _, m := range ms {
		if st := httpStatus(t, m.http+"/shop/json"); st != 200 {
			t.Fatalf("%s does not serve /shop after the deploy: %d", m.name, st)
		}
	}
	if code, out := farmCLI(t, append([]string{"apps"}, admin...)...); code != 0 || !strings.Contains(out, "/shop") || strings.Count(out, "jvm_") < 3 {
		t.Fatalf("apps: exit %d\n%s", code, out)
	}

	// Redeploy under load: clients keep their sessions on every member.
	var failed, done atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := ""
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", m.http+"/shop/json", nil)
				if id != "" {
					req.Header.Set("Cookie", "JSESSIONID="+id)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
					if err == nil {
						resp.Body.Close()
					}
					continue
				}
				for _, c := range resp.Cookies() {
					if c.Name == "JSESSIONID" {
						id = c.Value
					}
				}
				resp.Body.Close()
				done.Add(1)
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	v2 := filepath.Join(dir, "shop-v2.wasm")
	os.WriteFile(v2, withCustomSection(wasmapps.Counter(), "v2"), 0o644)
	code, out := farmCLI(t, append(append([]string{"deploy", "-path", "/shop"}, admin...), v2)...)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("redeploy: exit %d\n%s", code, out)
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during the redeploy", failed.Load(), done.Load()+failed.Load())
	}
	t.Logf("redeploy under load: %d requests, none failed", done.Load())
	digest := func(m *clusterProc) string {
		for _, a := range m.status(t).Apps {
			if a.Path == "/shop" {
				return a.Digest
			}
		}
		return ""
	}
	d2 := digest(ms[0])
	for _, m := range ms {
		if digest(m) != d2 {
			t.Fatalf("%s runs %s, want %s", m.name, digest(m), d2)
		}
	}

	// Corrupt modules are refused everywhere; v2 keeps serving.
	bad := map[string][]byte{
		"not-wasm.wasm":  []byte("this is not a wasm module"),
		"truncated.wasm": wasmapps.Counter()[:1000],
	}
	for name, b := range bad {
		f := filepath.Join(dir, name)
		os.WriteFile(f, b, 0o644)
		if code, out := farmCLI(t, append(append([]string{"deploy", "-path", "/shop"}, admin...), f)...); code == 0 {
			t.Fatalf("deploy of %s succeeded:\n%s", name, out)
		}
		for _, m := range ms {
			if digest(m) != d2 || httpStatus(t, m.http+"/shop/json") != 200 {
				t.Fatalf("after the refused %s, %s no longer serves v2", name, m.name)
			}
		}
	}

	// A member started now receives the farmed apps before its port opens.
	os.WriteFile(filepath.Join(dir, "cart.wasm"), wasmapps.Counter(), 0o644)
	if code, out := farmCLI(t, append(append([]string{"deploy", "-path", "/cart"}, admin...), filepath.Join(dir, "cart.wasm"))...); code != 0 {
		t.Fatalf("deploy /cart: exit %d\n%s", code, out)
	}
	late := member("jvm_d")
	for _, p := range []string{"/shop/json", "/cart/json"} {
		if st := httpStatus(t, late.http+p); st != 200 {
			t.Fatalf("the late member answers %s with %d as soon as its port is open", p, st)
		}
	}
	if digest(late) != d2 {
		t.Fatalf("the late member runs %s, want %s", digest(late), d2)
	}

	// Undeploy everywhere.
	if code, out := farmCLI(t, append([]string{"undeploy", "-path", "/shop"}, admin...)...); code != 0 {
		t.Fatalf("undeploy: exit %d\n%s", code, out)
	}
	for _, m := range append(ms, late) {
		if st := httpStatus(t, m.http+"/shop/json"); st != 404 {
			t.Fatalf("%s still serves /shop after the undeploy: %d", m.name, st)
		}
	}
}

// TestBenchFarm runs "wasmfarm bench farm" small: two member processes, a
// 3 MiB module, one round; it must report every phase and a memory line.
func TestBenchFarm(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes; skipped with -short")
	}
	t.Setenv("WASMFARM_TEST_MAIN", "1") // the members run this test binary
	code, out := farmCLI(t, "bench", "farm", "-members", "2", "-size", "3", "-rounds", "1")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{"3.0 MiB module to 2 members", "round 1: ", "first member ", "transfer ", "MB/s", "median", "memory: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	t.Log("\n" + out)
	for flag, want := range map[string]string{"-cache=warm": `-cache: "cold" or "shared"`, "-size=1": "the counter app alone is"} {
		if code, out := farmCLI(t, "bench", "farm", flag); code == 0 || !strings.Contains(out, want) {
			t.Errorf("%s accepted: %d %s", flag, code, out)
		}
	}
}
