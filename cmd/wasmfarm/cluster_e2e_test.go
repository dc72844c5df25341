package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host/monitor"
	"github.com/wasmfarm/wasmfarm/internal/syncbuf"
)

// clusterProc is a "wasmfarm node -cluster" process (this test binary
// re-executed as the command).
type clusterProc struct {
	name        string
	http, admin string // base URLs
	cmd         *exec.Cmd
	out         *syncbuf.Buffer // stdout and stderr
	lines       []string        // stdout, in order
	done        chan struct{}
}

// clusterArgs returns the flags every member of one test's cluster shares:
// its own multicast port and domain on the loopback interface, so that
// concurrent tests never see each other, and fast heartbeats.
func clusterArgs(t *testing.T) []string {
	port := 46000 + rand.IntN(2000)
	return []string{"-cluster", "-mcast-port", fmt.Sprint(port), "-mcast-bind", "127.0.0.1",
		"-domain", fmt.Sprintf("e2e-%d-%d", os.Getpid(), port),
		"-mcast-frequency", "100ms", "-mcast-droptime", "1s",
		"-cache-dir", filepath.Join(os.TempDir(), "wasmfarm-test-cache"), "-log-level", "info"}
}

// startClusterNode starts a member and returns once its HTTP port is open.
func startClusterNode(t *testing.T, name string, args ...string) *clusterProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &clusterProc{name: name, out: new(syncbuf.Buffer), done: make(chan struct{})}
	p.cmd = exec.Command(exe, append([]string{"node", "-http", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-jvm-route", name,
		"-app", "/counter=builtin:counter"}, args...)...)
	p.cmd.Env = append(os.Environ(), "WASMFARM_TEST_MAIN=1")
	p.cmd.Stderr = p.out
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		re := regexp.MustCompile(`^(admin on|wasmfarm node .* on) (http://127\.0\.0\.1:[0-9]+)`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.out, line)
			if m := re.FindStringSubmatch(line); m != nil {
				if strings.HasPrefix(m[1], "admin") {
					p.admin = m[2]
				} else {
					p.http = m[2]
					close(ready)
				}
			}
		}
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	select {
	case <-ready:
		return p
	case <-p.done:
		t.Fatalf("%s exited before serving:\n%s", name, p.out)
	case <-time.After(60 * time.Second):
		t.Fatalf("%s not serving after 60s:\n%s", name, p.out)
	}
	return nil
}

func (p *clusterProc) kill(t *testing.T) {
	p.cmd.Process.Kill()
	<-p.done
}

func (p *clusterProc) stop(t *testing.T) {
	select {
	case <-p.done:
	default:
		if !stopProcess(p.cmd.Process, p.done, 10*time.Second) {
			t.Errorf("%s did not stop within 10s of SIGTERM", p.name)
		}
	}
	if t.Failed() {
		t.Logf("%s output:\n%s", p.name, p.out)
	}
}

// counter requests /counter/<what> with the session id (empty: none) and
// returns the JSON answer (for "json") and the cookie the member set.
func (p *clusterProc) counter(t *testing.T, what, id string) (counterState, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", p.http+"/counter/"+what, nil)
	if id != "" {
		req.Header.Set("Cookie", "JSESSIONID="+id)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s /counter/%s: %d %s", p.name, what, resp.StatusCode, body)
	}
	var set string
	for _, c := range resp.Cookies() {
		if c.Name == "JSESSIONID" {
			set = c.Value
		}
	}
	var st counterState
	if what == "json" {
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatalf("%s: %v: %s", p.name, err, body)
		}
	}
	return st, set
}

type counterState struct {
	Session string `json:"session"`
	Node    string `json:"node"`
	Counter int    `json:"counter"`
}

// holds reports whether the member holds the session (admin /session).
func (p *clusterProc) holds(t *testing.T, id string) bool {
	t.Helper()
	return p.session(t, id).Found
}

// session is the member's view of a session (admin /session).
func (p *clusterProc) session(t *testing.T, id string) sessionJSON {
	t.Helper()
	resp, err := http.Get(p.admin + "/session?app=/counter&id=" + id)
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	defer resp.Body.Close()
	var s sessionJSON
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func (p *clusterProc) status(t *testing.T) monitor.Snapshot {
	t.Helper()
	resp, err := http.Get(p.admin + "/status")
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	defer resp.Body.Close()
	var st monitor.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func (p *clusterProc) activeSessions(t *testing.T) int {
	t.Helper()
	for _, a := range p.status(t).Apps {
		if a.Path == "/counter" {
			return a.ActiveSessions
		}
	}
	return -1
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNineSteps is the seed documents' Tomcat A/B story with real
// processes on loopback multicast.
func TestNineSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes; skipped with -short")
	}
	common := append(clusterArgs(t), "-session-timeout", "4s")
	// A expires sessions in the background every 200 ms; B never does on
	// its own (1 h), so step 9 shows an expiry on A reaching B.
	argsA := append(append([]string{}, common...), "-session-expire-interval", "200ms")
	argsB := append(append([]string{}, common...), "-session-expire-interval", "1h")

	// 1. A starts.
	a := startClusterNode(t, "jvm_a", argsA...)
	_, s0 := a.counter(t, "json", "")

	// 2. B starts and receives A's sessions before it opens its port.
	b := startClusterNode(t, "jvm_b", argsB...)
	if !b.holds(t, s0) {
		t.Fatalf("B opened its port without A's session %s:\n%s", s0, b.out)
	}
	if !strings.Contains(b.out.String(), "state received") {
		t.Fatalf("B did not log a state transfer:\n%s", b.out)
	}

	// 3. A creates S1.
	j, s1 := a.counter(t, "json", "")
	time.Sleep(20 * time.Millisecond) // a later access time for the second request
	a.counter(t, "json", s1)
	if j.Counter != 1 || !strings.HasSuffix(s1, ".jvm_a") {
		t.Fatalf("S1 on A: %+v %q", j, s1)
	}
	// Replication is asynchronous: wait until B has S1 as A left it (the
	// same last access), not merely created, before A is killed.
	onA := a.session(t, s1)
	waitFor(t, "B holds S1 as A left it", 2*time.Second, func() bool {
		onB := b.session(t, s1)
		return onB.Found && onB.LastAccessed == onA.LastAccessed
	})

	// wasmfarm status shows B's view: both members, the app, its manager.
	if code, out := farmCLI(t, "status", "-admin", b.admin); code != 0 || !strings.Contains(out, "jvm_a") ||
		!strings.Contains(out, "/counter") || !strings.Contains(out, "delta") {
		t.Fatalf("wasmfarm status: exit %d\n%s", code, out)
	}

	// 4. A crashes.
	a.kill(t)

	// 5. B serves S1 with its state and takes it over (.jvm_b).
	j, s1b := b.counter(t, "json", s1)
	if j.Counter != 3 || j.Node != "jvm_b" {
		t.Fatalf("S1 on B after A died: %+v", j)
	}
	if want := strings.TrimSuffix(s1, ".jvm_a") + ".jvm_b"; s1b != want {
		t.Fatalf("B's cookie for S1 %q, want %q", s1b, want)
	}

	// 6. A restarts and receives every session from B before it opens its port.
	a = startClusterNode(t, "jvm_a", argsA...)
	if !a.holds(t, s1b) || !a.holds(t, s0) {
		t.Fatalf("restarted A opened its port without B's sessions:\n%s", a.out)
	}

	// 7. A invalidates S1; B drops it.
	a.counter(t, "invalidate", s1b)
	waitFor(t, "B drops the invalidated S1", 2*time.Second, func() bool {
		return !b.holds(t, s1b) && !b.holds(t, strings.TrimSuffix(s1b, ".jvm_b")+".jvm_a")
	})

	// 8. B creates S2; A has it.
	_, s2 := b.counter(t, "json", "")
	waitFor(t, "A holds S2", 2*time.Second, func() bool { return a.holds(t, s2) })

	// 9. S2 expires on A by inactivity (a replica: after twice its 4 s
	// limit), and B, which never expires sessions itself here, drops it.
	start := time.Now()
	waitFor(t, "A expires S2", 15*time.Second, func() bool { return !a.holds(t, s2) })
	waitFor(t, "B drops S2", 2*time.Second, func() bool { return !b.holds(t, s2) })
	t.Logf("S2 expired on A and dropped by B %s after its last access", time.Since(start).Round(100*time.Millisecond))
}
