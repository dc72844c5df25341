package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/internal/syncbuf"
)

// netnsHosts builds n test hosts, each a network namespace with a veth to a
// bridge in a namespace of its own, with addresses 10.77.0.1... The host's
// own network is not touched. It needs root and iproute2.
type netnsHosts struct {
	t      *testing.T
	prefix string
	n      int
}

func newNetnsHosts(t *testing.T, n int) *netnsHosts {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network-namespace test: needs root to create namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network-namespace test: iproute2 (ip) not installed")
	}
	h := &netnsHosts{t: t, prefix: fmt.Sprintf("wf%d", os.Getpid()%100000), n: n}
	t.Cleanup(h.teardown)
	br := h.prefix + "br"
	h.ip("netns", "add", br)
	h.ip("-n", br, "link", "add", "br0", "type", "bridge")
	h.ip("-n", br, "link", "set", "br0", "up")
	for i := 1; i <= n; i++ {
		ns := h.ns(i)
		h.ip("netns", "add", ns)
		h.ip("-n", ns, "link", "set", "lo", "up")
		h.ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", fmt.Sprintf("p%d", i), "netns", br)
		h.ip("-n", br, "link", "set", fmt.Sprintf("p%d", i), "master", "br0", "up")
		h.ip("-n", ns, "addr", "add", h.addr(i)+"/24", "dev", "eth0")
		h.ip("-n", ns, "link", "set", "eth0", "up")
		h.ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0")
	}
	return h
}

func (h *netnsHosts) ns(i int) string   { return fmt.Sprintf("%sh%d", h.prefix, i) }
func (h *netnsHosts) addr(i int) string { return fmt.Sprintf("10.77.0.%d", i) }

func (h *netnsHosts) ip(args ...string) {
	h.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		h.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (h *netnsHosts) teardown() {
	for i := 1; i <= h.n; i++ {
		exec.Command("ip", "netns", "del", h.ns(i)).Run()
	}
	exec.Command("ip", "netns", "del", h.prefix+"br").Run()
}

// memberEvent is a line of "wasmfarm channel members -watch -json".
type memberEvent struct {
	Event  string `json:"event"`
	Member struct {
		Host string `json:"host"`
	} `json:"member"`
	at time.Time
}

func (ev memberEvent) String() string {
	return fmt.Sprintf("%s %s at %s", ev.Event, ev.Member.Host, ev.at.Format("15:04:05.000"))
}

// watcher runs "channel members -watch" in a host and collects its events.
type watcher struct {
	h      *netnsHosts
	i      int
	cmd    *exec.Cmd
	stderr syncbuf.Buffer
	mu     sync.Mutex
	events []memberEvent
	all    []*watcher // the test's watchers, for a failure's report
}

func (h *netnsHosts) watch(i int, extra ...string) *watcher {
	h.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		h.t.Fatal(err)
	}
	args := append([]string{"netns", "exec", h.ns(i), exe, "channel", "members", "-watch", "-json",
		"-address", h.addr(i), "-port", "4000", "-mcast-bind", h.addr(i), "-ttl", "1",
		"-mcast-address", "239.255.7.7", "-mcast-port", "45564"}, extra...)
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), "WASMFARM_TEST_MAIN=1")
	w := &watcher{h: h, i: i, cmd: cmd}
	cmd.Stderr = &w.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev memberEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				ev.at = time.Now()
				w.mu.Lock()
				w.events = append(w.events, ev)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// wait returns the time of the first event of kind for host, or fails.
func (w *watcher) wait(t *testing.T, kind, host string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if at, ok := w.find(kind, host); ok {
			return at
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.report(t)
	t.Fatalf("host %d: no %q event for %s within %v", w.i, kind, host, timeout)
	return time.Time{}
}

// report logs what every host's watcher printed and the bridge's multicast
// table, for a failure.
func (w *watcher) report(t *testing.T) {
	t.Helper()
	for _, o := range w.all {
		t.Logf("host %d (%s) events: %v\nstderr:\n%s", o.i, w.h.addr(o.i), o.snapshot(), o.stderr.String())
	}
	out, err := exec.Command("bridge", "-n", w.h.prefix+"br", "mdb", "show").CombinedOutput()
	t.Logf("bridge mdb show: %v\n%s", err, out)
}

func (w *watcher) find(kind, host string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ev := range w.events {
		if ev.Event == kind && ev.Member.Host == host {
			return ev.at, true
		}
	}
	return time.Time{}, false
}

func (w *watcher) snapshot() []memberEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]memberEvent(nil), w.events...)
}

// TestNetnsMembership runs three members on three hosts of a bridge:
// they form a group over multicast; kill -9 of one is noticed by the
// others; a host whose multicast is dropped while its TCP port answers
// is kept by the failure detector; with a 1 s drop time nobody is dropped
// falsely.
func TestNetnsMembership(t *testing.T) {
	if testing.Short() {
		t.Skip("network-namespace test: skipped with -short")
	}
	h := newNetnsHosts(t, 3)
	timing := []string{"-frequency", "250ms", "-drop-time", "1s"}
	w := []*watcher{nil, h.watch(1, timing...), h.watch(2, timing...), h.watch(3, timing...)}
	for _, x := range w[1:] {
		x.all = w[1:]
	}
	start := time.Now()
	for i := 1; i <= 3; i++ {
		for j := 1; j <= 3; j++ {
			if i != j {
				w[i].wait(t, "added", h.addr(j), 10*time.Second)
			}
		}
	}
	t.Logf("three hosts formed the group %v after starting", time.Since(start).Round(time.Millisecond))

	// No false drops with a 1 s drop time while idle.
	time.Sleep(4 * time.Second)
	for i := 1; i <= 3; i++ {
		for _, ev := range w[i].snapshot() {
			if ev.Event == "disappeared" {
				t.Fatalf("host %d dropped %s falsely", i, ev.Member.Host)
			}
		}
	}

	// Host 2's multicast is dropped, its TCP still answers: the failure
	// detector keeps it.
	// (nftables rather than tc: this kernel has no tc classifiers.)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("network-namespace test: nftables (nft) not installed; the rest passed")
	}
	h.ip("netns", "exec", h.ns(2), "nft", "add", "table", "ip", "wf")
	h.ip("netns", "exec", h.ns(2), "nft", "add", "chain", "ip", "wf", "out", "{ type filter hook output priority 0; }")
	h.ip("netns", "exec", h.ns(2), "nft", "add", "rule", "ip", "wf", "out", "ip", "daddr", "224.0.0.0/4", "counter", "drop")
	time.Sleep(3 * time.Second) // several drop times
	// The rule really dropped host 2's heartbeats (the others' membership
	// expired it; only the failure detector's probe kept it).
	rules, err := exec.Command("ip", "netns", "exec", h.ns(2), "nft", "list", "table", "ip", "wf").CombinedOutput()
	if err != nil || strings.Contains(string(rules), "packets 0 ") || !strings.Contains(string(rules), "packets ") {
		t.Fatalf("multicast drop rule did not drop anything: %v\n%s", err, rules)
	}
	for _, i := range []int{1, 3} {
		if _, gone := w[i].find("disappeared", h.addr(2)); gone {
			t.Fatalf("host %d dropped host 2, whose TCP port still answers", i)
		}
	}

	// kill -9 of host 3.
	killed := time.Now()
	w[3].cmd.Process.Signal(syscall.SIGKILL)
	for _, i := range []int{1, 2} {
		at := w[i].wait(t, "disappeared", h.addr(3), 10*time.Second)
		t.Logf("host %d noticed the kill -9 of host 3 after %v", i, at.Sub(killed).Round(time.Millisecond))
	}
}
