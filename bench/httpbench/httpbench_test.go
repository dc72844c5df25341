package httpbench

import (
	"bufio"
	"context"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestResponseParser(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		status int
		cookie string
		body   string
		ok     bool
	}{
		{"ok", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: JSESSIONID=AB.n1; Path=/x\r\n\r\nhi", 200, "AB.n1", "hi", true},
		{"503", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", 503, "", "", true},
		{"no length", "HTTP/1.1 200 OK\r\n\r\n", 0, "", "", false},
		{"garbage", "hello\r\n", 0, "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			err := r.read(bufio.NewReader(strings.NewReader(tc.in)))
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (r.status != tc.status || r.cookie != tc.cookie || string(r.body[:len(tc.body)]) != tc.body) {
				t.Fatalf("got %d %q %q", r.status, r.cookie, r.body)
			}
		})
	}
}

// TestRun drives both targets briefly in-process: both must answer
// without errors, and sessions must stick (the counter grows).
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a server and drives it for a second")
	}
	rep, err := Run(context.Background(), Config{Connections: 2, Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond, PoolSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Result{rep.Native, rep.Wasm} {
		if r.Requests == 0 || r.Errors != 0 || r.P99us <= 0 {
			t.Fatalf("%s: %+v", r.Target, r)
		}
	}
	t.Logf("native %.0f req/s, wasm %.0f req/s, ratio %.2f", rep.Native.ReqPerSec, rep.Wasm.ReqPerSec, rep.Ratio)

	// The memory figures right after a throughput phase, as the command
	// takes them, must be plausible. (After the command's longer phase the
	// instance figure once came out negative: see settle. This short run
	// did not reproduce that; it checks the measurement end to end.)
	mem, err := MeasureMemory(context.Background(), 4, 2000, "")
	if err != nil {
		t.Fatal(err)
	}
	if mem.RSSPerInstanceKiB <= 0 || mem.GuestMemoryPerInstanceKiB <= 0 || mem.OverheadPerSessionBytes <= 0 || mem.MapBytesPerSession <= 0 {
		t.Fatalf("implausible memory figures: %+v", mem)
	}
	t.Logf("%.0f KiB RSS per instance, %.0f B overhead per session", mem.RSSPerInstanceKiB, mem.OverheadPerSessionBytes)
}

// TestRunWrk drives both targets with wrk: a wrk thread's connections
// must keep the session of the first response (its script sends the
// cookie back), or the benchmark measures session creation. Each
// connection's first request goes out before any answer, so there are
// between one session per thread and one per connection, for the warmup
// and again for the measured run (a wrk process of its own). The warmup's
// requests count in AllRequests (replbench divides the replicated
// messages by them).
func TestRunWrk(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: drives two servers with wrk for a second each")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk is not on the PATH (Debian package wrk; .ci/run installs it)")
	}
	rep, err := Run(context.Background(), Config{Wrk: wrk, Connections: 4, Duration: time.Second, Warmup: time.Second, Rounds: 1, PoolSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	threads := min(runtime.GOMAXPROCS(0), 4)
	for _, r := range []Result{rep.Native, rep.Wasm} {
		if r.Tool != "wrk" || r.Requests == 0 || r.Errors != 0 {
			t.Fatalf("%s: %+v", r.Target, r)
		}
		if r.AllRequests <= r.Requests {
			t.Fatalf("%s: %d requests in all, %d measured: the warmup's are missing", r.Target, r.AllRequests, r.Requests)
		}
		if r.Sessions < 2*threads || r.Sessions > 2*4 {
			t.Fatalf("%s: %d sessions after %d requests from two runs of %d wrk threads on 4 connections", r.Target, r.Sessions, r.AllRequests, threads)
		}
	}
	t.Logf("native %.0f req/s, wasm %.0f req/s, %d and %d sessions", rep.Native.ReqPerSec, rep.Wasm.ReqPerSec, rep.Native.Sessions, rep.Wasm.Sessions)
}

func TestParseWrk(t *testing.T) {
	r, err := parseWrk([]byte("Running 1s test @ http://x/\nWASMFARM 1200 3 250.5 400 900.25 12000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 1200 || r.Errors != 3 || r.P50us != 250.5 || r.P99us != 900.25 || r.MaxUs != 12000 {
		t.Fatalf("%+v", r)
	}
	if _, err := parseWrk([]byte("unable to connect to 127.0.0.1:1\n")); err == nil {
		t.Fatal("no summary line: want an error")
	}
}

func TestNativeCounterSessions(t *testing.T) {
	h, err := newNativeCounter("n1", "/counter")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	// The native twin answers like the counter app: same JSON, counter
	// grows per session.
	rep, err := Load(context.Background(), "http://"+serveNative(t, h)+"/counter/json", 1, 0, 200*time.Millisecond)
	if err != nil || rep.Requests == 0 || rep.Errors != 0 {
		t.Fatalf("%+v %v", rep, err)
	}
	if h.m.Len() != 1 {
		t.Fatalf("%d sessions for one connection, want 1", h.m.Len())
	}
}
