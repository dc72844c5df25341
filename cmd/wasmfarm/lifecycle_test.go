package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/internal/syncbuf"
)

// inprocNode is a "wasmfarm node" run in the test process (run, as main
// does), stopped by cancelling its context as SIGTERM would.
type inprocNode struct {
	cancel         context.CancelFunc
	done           chan int // the exit code
	stdout, stderr *syncbuf.Buffer
	http, admin    string
}

var (
	adminLine = regexp.MustCompile(`(?m)^admin on (http://127\.0\.0\.1:[0-9]+)`)
	httpLine  = regexp.MustCompile(`(?m)^wasmfarm node .* on (http://127\.0\.0\.1:[0-9]+)`)
)

// startInProcess starts a node with an admin endpoint and a data dir of the
// test's, and returns once its admin endpoint listens and, if serving, its
// HTTP port too.
func startInProcess(t *testing.T, serving bool, args ...string) *inprocNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &inprocNode{cancel: cancel, done: make(chan int, 1), stdout: new(syncbuf.Buffer), stderr: new(syncbuf.Buffer)}
	all := append([]string{"node", "-http", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-admin-token", "t0ken",
		"-data-dir", t.TempDir(), "-cache-dir", filepath.Join(os.TempDir(), "wasmfarm-test-cache")}, args...)
	go func() { n.done <- run(ctx, all, n.stdout, n.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-n.done:
		case <-time.After(30 * time.Second):
			t.Errorf("node still running 30s after its context ended")
		}
		if t.Failed() {
			t.Logf("node stdout:\n%s\nstderr:\n%s", n.stdout, n.stderr)
		}
	})
	deadline := time.After(60 * time.Second)
	for {
		out := n.stdout.String()
		if m := adminLine.FindStringSubmatch(out); m != nil {
			n.admin = m[1]
		}
		if m := httpLine.FindStringSubmatch(out); m != nil {
			n.http = m[1]
		}
		if n.admin != "" && (!serving || n.http != "") {
			return n
		}
		select {
		case code := <-n.done:
			n.done <- code
			t.Fatalf("node exited (%d) before it was up:\n%s\n%s", code, n.stdout, n.stderr)
		case <-deadline:
			t.Fatalf("node not up after 60s:\n%s\n%s", n.stdout, n.stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// wait returns the node's exit code, or fails after d.
func (n *inprocNode) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case code := <-n.done:
		n.done <- code
		return code
	case <-time.After(d):
		t.Fatalf("node still running %s after its context ended", d)
		return -1
	}
}

func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const faultyModule = "../../wasmapps/build/faulty.wasm"

// TestReadyFalseWhileShuttingDown: once a node begins its graceful
// shutdown (SIGTERM), its HTTP port takes no new requests while the running
// ones finish; /ready must say so (503) instead of telling a balancer or a
// readiness probe to keep sending it traffic. The running request still
// completes.
func TestReadyFalseWhileShuttingDown(t *testing.T) {
	n := startInProcess(t, true, "-app", "/f="+faultyModule, "-shutdown-timeout", "20s", "-log-level", "warn")
	if code, _ := getStatus(t, n.admin+"/ready"); code != 200 {
		t.Fatalf("/ready of a serving node: %d", code)
	}
	type answer struct {
		code int
		body string
		err  error
	}
	slow := make(chan answer, 1)
	go func() {
		resp, err := http.Get(n.http + "/f/sleep?ms=4000")
		if err != nil {
			slow <- answer{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- answer{code: resp.StatusCode, body: string(b)}
	}()
	time.Sleep(700 * time.Millisecond) // the request runs in its guest
	n.cancel()                         // SIGTERM
	time.Sleep(300 * time.Millisecond) // the shutdown waits for the request
	select {
	case a := <-slow:
		t.Fatalf("the running request ended before the test looked at /ready: %+v", a)
	default:
	}
	if code, body := getStatus(t, n.admin+"/ready"); code != http.StatusServiceUnavailable {
		t.Errorf("/ready while shutting down: %d %q, want 503", code, strings.TrimSpace(body))
	}
	if a := <-slow; a.err != nil || a.code != 200 || a.body != "slept" {
		t.Errorf("the request running at shutdown: %+v, want 200 slept", a)
	}
	if code := n.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit code %d after a graceful shutdown", code)
	}
}

// TestStopWhileStarting: SIGTERM while a clustered node is still starting
// (here: listening for the members) stops it cleanly: exit code 0, no
// error, no HTTP port.
func TestStopWhileStarting(t *testing.T) {
	if testing.Short() {
		t.Skip("joins a loopback multicast group; skipped with -short")
	}
	n := startInProcess(t, false, append(clusterArgs(t), "-membership-wait", "30s", "-log-level", "warn",
		"-app", "/counter=builtin:counter")...)
	if code, _ := getStatus(t, n.admin+"/ready"); code != http.StatusServiceUnavailable {
		t.Fatalf("/ready of a starting node: %d", code)
	}
	n.cancel() // SIGTERM
	code := n.wait(t, 10*time.Second)
	if code != 0 {
		t.Errorf("exit code %d after SIGTERM while starting, want 0; stderr:\n%s", code, n.stderr)
	}
	if strings.Contains(n.stdout.String(), "serving") {
		t.Errorf("the node opened its HTTP port after SIGTERM:\n%s", n.stdout)
	}
}

// TestGracefulStopKeepsSessions: a member stopped with SIGTERM right
// after serving loses none of its sessions' changes: the other member
// serves each session with its last counter (asynchronous DeltaManager,
// BackupManager), and with -expire-sessions-on-shutdown the others drop
// the sessions instead.
func TestGracefulStopKeepsSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes; skipped with -short")
	}
	for _, tc := range []struct {
		name   string
		args   []string
		expire bool
	}{
		{"delta-async", []string{"-manager", "delta", "-send-options", "async"}, false},
		{"backup", []string{"-manager", "backup"}, false},
		{"backup-async", []string{"-manager", "backup", "-send-options", "async"}, false},
		{"delta-expire", []string{"-manager", "delta"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append(clusterArgs(t), "-log-level", "warn"), tc.args...)
			b := startClusterNode(t, "jvm_b", args...)
			argsA := args
			if tc.expire {
				argsA = append(append([]string{}, args...), "-expire-sessions-on-shutdown")
			}
			a := startClusterNode(t, "jvm_a", argsA...)
			waitFor(t, "A sees B", 5*time.Second, func() bool { return len(a.status(t).Members) == 1 })
			const n, reqs = 5, 20
			ids := make([]string, n)
			for i := range ids {
				_, ids[i] = a.counter(t, "json", "")
				for range reqs - 1 {
					a.counter(t, "json", ids[i])
				}
			}
			a.stop(t) // SIGTERM at once
			for i, id := range ids {
				if tc.expire {
					if b.holds(t, id) {
						t.Errorf("session %d still on B after A stopped with -expire-sessions-on-shutdown", i)
					}
					continue
				}
				if j, _ := b.counter(t, "json", id); j.Counter != reqs+1 {
					t.Errorf("session %d on B after A stopped: counter %d, want %d", i, j.Counter, reqs+1)
				}
			}
		})
	}
}

// TestShutdownTimeoutHonoured: a request still running when
// -shutdown-timeout passes is cut off, and the node stops then, clustered
// or not.
func TestShutdownTimeoutHonoured(t *testing.T) {
	for _, clustered := range []bool{false, true} {
		t.Run(map[bool]string{false: "alone", true: "cluster"}[clustered], func(t *testing.T) {
			if clustered && testing.Short() {
				t.Skip("joins a loopback multicast group; skipped with -short")
			}
			args := []string{"-app", "/f=" + faultyModule, "-shutdown-timeout", "1s", "-deadline", "2m", "-log-level", "warn"}
			if clustered {
				args = append(args, clusterArgs(t)...)
			}
			n := startInProcess(t, true, args...)
			go func() {
				resp, err := http.Get(n.http + "/f/loop")
				if err == nil {
					resp.Body.Close()
				}
			}()
			time.Sleep(500 * time.Millisecond)
			start := time.Now()
			n.cancel()
			code := n.wait(t, 20*time.Second)
			took := time.Since(start)
			t.Logf("stopped after %s with exit code %d; stderr:\n%s", took.Round(time.Millisecond), code, n.stderr)
			if took > 3*time.Second {
				t.Errorf("stopped %s after SIGTERM, -shutdown-timeout 1s", took.Round(time.Millisecond))
			}
			// The exit says what happened, once, in the node's terms.
			errText := n.stderr.String()[strings.Index(n.stderr.String(), "wasmfarm node: "):]
			if code != 1 || !strings.Contains(errText, "-shutdown-timeout 1s") || strings.Count(errText, "deadline exceeded") > 0 {
				t.Errorf("exit code %d, error %q; want 1 and an error naming -shutdown-timeout 1s", code, errText)
			}
		})
	}
}

// TestDataDirLocked: a second node on a data directory a running node
// uses (two members on one machine without -jvm-route or -data-dir would
// share the farm's deploy dir and delete each other's modules) refuses to
// start, naming the directory and the process that holds it.
func TestDataDirLocked(t *testing.T) {
	if testing.Short() {
		t.Skip("joins a loopback multicast group; skipped with -short")
	}
	dir := t.TempDir()
	startInProcess(t, true, append(clusterArgs(t), "-data-dir", dir, "-membership-wait", "0s", "-log-level", "warn",
		"-app", "/counter=builtin:counter")...)
	var stdout, stderr syncbuf.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, append([]string{"node", "-http", "127.0.0.1:0", "-data-dir", dir, "-cache-dir", filepath.Join(os.TempDir(), "wasmfarm-test-cache"),
		"-membership-wait", "0s", "-app", "/counter=builtin:counter"}, clusterArgs(t)...), &stdout, &stderr)
	want := fmt.Sprintf("data directory %s is in use by another node (process %d)", dir, os.Getpid())
	if code == 0 || !strings.Contains(stderr.String(), want) {
		t.Fatalf("second node on %s: exit %d, stderr:\n%s\nwant an error containing %q", dir, code, stderr.String(), want)
	}
}
