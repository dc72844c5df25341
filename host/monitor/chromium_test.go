//go:build unix

package monitor

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// findBrowser returns the path of Debian's chromium (or Ubuntu's
// chromium-browser); $WASMFARM_CHROMIUM names another.
func findBrowser() (string, bool) {
	if p := os.Getenv("WASMFARM_CHROMIUM"); p != "" {
		return p, true
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, true
		}
	}
	return "", false
}

// TestDashboardInChromium loads the dashboard in headless Chromium
// against a node whose counters grow, lets the page poll for five
// seconds of virtual time, and checks the DOM it drew: the members, the
// apps with their sessions, and charts with data points.
func TestDashboardInChromium(t *testing.T) {
	browser := needBrowser(t)
	f := &fakeNode{}
	dom := loadDashboard(t, browser, f.Snapshot, os.Getenv("WASMFARM_DASHBOARD_SCREENSHOT"))

	if got := dom.text(dom.byID("ready")); got != "ready" {
		t.Errorf("ready badge = %q", got)
	}
	if got := dom.text(dom.byID("route")); got != "node1" {
		t.Errorf("route = %q", got)
	}
	if got := dom.text(dom.byID("updated")); !strings.HasPrefix(got, "updated ") {
		t.Errorf("last update = %q", got)
	}

	// Members: this one and the two others, with their apps.
	members := map[string]string{}
	for _, tr := range dom.all(dom.byID("members"), "tr") {
		if route := attr(tr, "data-route"); route != "" {
			members[route] = dom.text(tr)
		}
	}
	for route, want := range map[string][]string{
		"node1": {"this member", "tcp://127.0.0.1:4000", "/cart", "/counter"},
		"node2": {"tcp://127.0.0.1:4001", "/cart", "/counter"},
		"node3": {"tcp://127.0.0.1:4002", "/counter"},
	} {
		row, ok := members[route]
		if !ok {
			t.Errorf("members table has no row for %s (rows: %q)", route, members)
			continue
		}
		for _, w := range want {
			if !strings.Contains(row, w) {
				t.Errorf("member %s row %q lacks %q", route, row, w)
			}
		}
	}

	// Apps: their session counts, short digests and replication counts.
	apps := map[string]*html.Node{}
	for _, tr := range dom.all(dom.byID("apps"), "tr") {
		if p := attr(tr, "data-app"); p != "" {
			apps[p] = tr
		}
	}
	for _, tc := range []struct {
		name, path, sessions, digest string
		replicated                   bool
	}{
		{"cart", "/cart", "17", "9f86d081884c", true},
		{"counter", "/counter", "342", "60303ae22b99", true},
		{"static, not replicated", "/static", "0", "e3b0c44298fc", false},
	} {
		tr := apps[tc.path]
		if tr == nil {
			t.Errorf("%s: apps table has no row (rows: %v)", tc.name, len(apps))
			continue
		}
		if got := dom.text(dom.firstClass(tr, "sessions")); got != tc.sessions {
			t.Errorf("%s: sessions = %q, want %s", tc.name, got, tc.sessions)
		}
		if row := dom.text(tr); !strings.Contains(row, tc.digest) {
			t.Errorf("%s: row %q lacks digest %s", tc.name, row, tc.digest)
		}
		rep := dom.text(dom.firstClass(tr, "replicated"))
		if tc.replicated == (rep == "–") {
			t.Errorf("%s: replicated cell = %q", tc.name, rep)
		}
		if spark := dom.firstClass(tr, "spark"); spark == nil || atoi(attr(spark, "data-points")) < 2 {
			t.Errorf("%s: session sparkline has no points", tc.name)
		}
	}

	// Charts: rates from several polls, sent and received.
	for _, id := range []string{"chart-messages", "chart-bytes"} {
		fig := dom.byID(id)
		if n := atoi(attr(fig, "data-points")); n <= 1 {
			t.Errorf("%s: data-points = %d, want > 1", id, n)
		}
		lines := map[string]int{}
		for _, l := range dom.all(fig, "polyline") {
			lines[attr(l, "class")] = atoi(attr(l, "data-points"))
		}
		for _, cls := range []string{"line sent", "line received"} {
			if lines[cls] <= 1 {
				t.Errorf("%s: %q has %d points (lines: %v)", id, cls, lines[cls], lines)
			}
		}
	}
	// The fake's channel sends 30 messages and 9000 bytes a second.
	if got := dom.text(dom.byID("legend-messages")); !strings.Contains(got, "sent 30/s") || !strings.Contains(got, "received 35/s") {
		t.Errorf("messages legend = %q", got)
	}
	if got := dom.text(dom.byID("legend-bytes")); !strings.Contains(got, "sent 8.8 KiB/s") {
		t.Errorf("bytes legend = %q", got)
	}
	if got := dom.text(dom.byID("parts")); !strings.Contains(got, "interceptors.TcpFailureDetector") || !strings.Contains(got, "Farm deployer") {
		t.Errorf("cluster parts = %q", tail(got, 300))
	}
}

// needBrowser returns the browser or skips the test.
func needBrowser(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real browser; skipped with -short")
	}
	browser, ok := findBrowser()
	if !ok {
		t.Skip("no chromium or chromium-browser on PATH (Debian: apt-get install chromium; or set WASMFARM_CHROMIUM)")
	}
	return browser
}

// loadDashboard serves a handler over snapshot on loopback, loads its
// page in the browser, checks that the page polled status several times
// and asked for nothing else, and returns the DOM it drew. With a
// screenshot path it also saves the page as a PNG, for a person to see.
func loadDashboard(t *testing.T, browser string, snapshot func() Snapshot, screenshot string) dom {
	t.Helper()
	var statusCalls atomic.Int64
	h := NewHandler(HandlerConfig{Snapshot: func() Snapshot {
		statusCalls.Add(1)
		return snapshot()
	}})
	var outside atomic.Int64 // requests for anything but the page and its files
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/", "/status", "/assets/dashboard.js", "/assets/dashboard.css", "/assets/favicon.svg":
		default:
			outside.Add(1)
			t.Logf("unexpected request: %s %s", r.Method, r.URL)
		}
		h.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	url := "http://" + ln.Addr().String() + "/"

	stdout := runChromium(t, browser, "--dump-dom", url)
	polls := statusCalls.Load()
	if screenshot != "" {
		runChromium(t, browser, "--screenshot="+screenshot, url)
		t.Logf("screenshot in %s", screenshot)
	}
	domBytes := stdout.Len()
	doc, err := html.Parse(stdout)
	if err != nil {
		t.Fatalf("parsing the dumped DOM: %v", err)
	}
	t.Logf("%d status polls; DOM %d bytes", polls, domBytes)
	if polls < 3 {
		t.Errorf("the page polled status %d times in 5 s of virtual time", polls)
	}
	if n := outside.Load(); n != 0 {
		t.Errorf("the page made %d requests for other things", n)
	}
	return domOf(doc)
}

// TestDashboardInChromiumStandalone: a node that is not a cluster member
// (no valve, cluster, channel or deployer) still gets a whole page.
func TestDashboardInChromiumStandalone(t *testing.T) {
	browser := needBrowser(t)
	dom := loadDashboard(t, browser, standaloneSnapshot, os.Getenv("WASMFARM_DASHBOARD_SCREENSHOT_STANDALONE"))
	for _, tc := range []struct{ id, want string }{
		{"ready", "ready"},
		{"member", "standalone"},
		{"members", "This node is not a cluster member."},
		{"apps", "/hello"},
		{"parts", "A standalone node"},
		{"traffic-source", "standalone node"},
		{"sum-sessions", "2"},
	} {
		if got := dom.text(dom.byID(tc.id)); !strings.Contains(got, tc.want) {
			t.Errorf("#%s = %q, want it to contain %q", tc.id, got, tc.want)
		}
	}
	for _, id := range []string{"chart-messages", "chart-bytes"} {
		if dom.byID(id) == nil || len(dom.all(dom.byID(id), "svg")) != 1 {
			t.Errorf("%s: no chart drawn", id)
		}
	}
}

// runChromium runs headless Chromium on the given arguments with five
// seconds of virtual time, in a temp profile, loopback only, and returns
// what it printed. The browser and its children are killed when it is
// done or after 90 s.
func runChromium(t *testing.T, browser string, args ...string) *bytes.Buffer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.Command(browser, append([]string{
		"--headless", "--no-sandbox", "--disable-gpu",
		"--user-data-dir=" + t.TempDir(),
		"--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-domain-reliability", "--disable-client-side-phishing-detection",
		// Loopback only: no name resolves, so nothing leaves the machine.
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--window-size=1280,1400",
		"--virtual-time-budget=5000",
	}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Its own process group, so its zygote and renderers go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	syscall.Kill(-pid, syscall.SIGKILL) // the group, by the browser's PID
	if errors.Is(err, context.DeadlineExceeded) {
		<-done
	}
	if err != nil {
		t.Fatalf("chromium: %v\nstderr:\n%s", err, tail(stderr.String(), 2000))
	}
	return &stdout
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// dom is a parsed page, with the few look-ups the test needs.
type dom struct{ root *html.Node }

func domOf(n *html.Node) dom { return dom{n} }

func walk(n *html.Node, f func(*html.Node) bool) bool {
	if n == nil {
		return false
	}
	if f(n) {
		return true
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if walk(c, f) {
			return true
		}
	}
	return false
}

func attr(n *html.Node, key string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func (d dom) byID(id string) *html.Node {
	var out *html.Node
	walk(d.root, func(n *html.Node) bool {
		if n.Type == html.ElementNode && attr(n, "id") == id {
			out = n
			return true
		}
		return false
	})
	return out
}

func (d dom) all(under *html.Node, tag string) []*html.Node {
	var out []*html.Node
	walk(under, func(n *html.Node) bool {
		if n.Type == html.ElementNode && n.Data == tag {
			out = append(out, n)
		}
		return false
	})
	return out
}

func (d dom) firstClass(under *html.Node, class string) *html.Node {
	var out *html.Node
	walk(under, func(n *html.Node) bool {
		if n.Type == html.ElementNode && n != under {
			for _, c := range strings.Fields(attr(n, "class")) {
				if c == class {
					out = n
					return true
				}
			}
		}
		return false
	})
	return out
}

// text is the node's text, its parts joined by spaces.
func (d dom) text(n *html.Node) string {
	var parts []string
	walk(n, func(n *html.Node) bool {
		if n.Type == html.TextNode {
			if s := strings.TrimSpace(n.Data); s != "" {
				parts = append(parts, s)
			}
		}
		return false
	})
	return strings.Join(parts, " ")
}
