package httpbench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wasmfarm/wasmfarm/bench"
	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// Config configures [Run].
type Config struct {
	// Connections is the number of keep-alive connections (16), each with
	// its own session.
	Connections int
	// Duration is the measured time per target (5 s), after Warmup (1 s).
	Duration time.Duration
	Warmup   time.Duration
	// PoolSize and Deadline configure the wasm app (host defaults: 2 ×
	// GOMAXPROCS instances, 30 s). Deadlines are always enforced.
	PoolSize int
	Deadline time.Duration
	// Connector is the wasm app's HTTP connector ("" = the host's
	// default, host.ConnectorH1); the native handler is net/http's.
	Connector string
	// LoadCommand, if set, runs the load generator as this command plus
	// flags (see [LoadMain]) so that the server's CPU per request is
	// measured alone.
	LoadCommand []string
	// Wrk, if set, is the path of wrk, which then drives the targets.
	Wrk string
	// WrkThreads is wrk's thread count. wrk keeps a script's state per
	// thread, so the connections of a thread share one session. 0 (the
	// default) runs a thread per connection: every connection keeps a
	// session of its own, as the Tomcat figures were taken (wrk with one
	// cookie per connection). Fewer threads share sessions.
	WrkThreads int
	// CacheDir is the compilation cache ("" = the host's default).
	CacheDir string
	// Rounds splits Duration into this many turns per target, the targets
	// alternating (1 = one block per target).
	Rounds int
	// AlsoNoDeadlines adds a third target: the same app on a server with
	// deadline enforcement off (host.Config.NoDeadlines), to show its cost.
	AlsoNoDeadlines bool
	// Module, if set, replaces the counter app as the wasm target (it is
	// mounted at /counter and driven at /counter/json).
	Module []byte
	// CPUProfile, if set, profiles this process (the servers) while each
	// target is driven, to CPUProfile.<target>.<round> (merge a target's
	// rounds with go tool pprof).
	CPUProfile string
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Connections: 16, Duration: 6 * time.Second, Warmup: time.Second, Rounds: 3}
}

// Report is the result of [Run].
type Report struct {
	GOMAXPROCS  int     `json:"gomaxprocs"`
	Connections int     `json:"connections"`
	Native      Result  `json:"native"`
	Wasm        Result  `json:"wasm"`
	Ratio       float64 `json:"ratio"` // wasm req/s ÷ native req/s
	// WasmNoDeadlines and RatioNoDeadlines are set with AlsoNoDeadlines.
	WasmNoDeadlines  *Result `json:"wasmNoDeadlines,omitempty"`
	RatioNoDeadlines float64 `json:"ratioNoDeadlines,omitempty"`
}

const appPath = "/counter/json"

// Run serves the counter app and its native twin on loopback and drives
// both, native first, with the same load.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	def := DefaultConfig()
	if cfg.Connections <= 0 {
		cfg.Connections = def.Connections
	}
	if cfg.Duration <= 0 {
		cfg.Duration = def.Duration
	}
	if cfg.Warmup < 0 {
		cfg.Warmup = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}

	native, err := newNativeCounter("bench", "/counter")
	if err != nil {
		return nil, err
	}
	defer native.Close()
	nl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ns := &http.Server{Handler: native}
	go ns.Serve(nl)
	defer ns.Close()

	mod := cfg.Module
	if mod == nil {
		mod = wasmapps.Counter()
	}
	serveWasm := func(noDeadlines bool) (net.Addr, func(), func() int, error) {
		srv, err := host.New(host.Config{JvmRoute: "bench", PoolSize: cfg.PoolSize, RequestDeadline: cfg.Deadline, CacheDir: cfg.CacheDir, NoDeadlines: noDeadlines,
			Connector: cfg.Connector})
		if err != nil {
			return nil, nil, nil, err
		}
		stop := func() { srv.Shutdown(context.Background()) }
		if err := srv.Deploy(ctx, "/counter", mod); err != nil {
			stop()
			return nil, nil, nil, err
		}
		c, _ := srv.Engine().Context("/counter")
		if err := c.Warm(ctx, srv.Config().PoolSize); err != nil {
			stop()
			return nil, nil, nil, err
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			stop()
			return nil, nil, nil, err
		}
		go srv.Serve(l)
		return l.Addr(), stop, c.Manager().Len, nil
	}
	waddr, stop, wsessions, err := serveWasm(false)
	if err != nil {
		return nil, err
	}
	defer stop()

	rep := &Report{GOMAXPROCS: runtime.GOMAXPROCS(0), Connections: cfg.Connections}
	type target struct {
		name     string
		addr     net.Addr
		res      *Result
		sessions func() int
	}
	targets := []target{{"native", nl.Addr(), &rep.Native, native.m.Len}, {"wasm", waddr, &rep.Wasm, wsessions}}
	if cfg.AlsoNoDeadlines {
		naddr, stop2, nsessions, err := serveWasm(true)
		if err != nil {
			return nil, err
		}
		defer stop2()
		rep.WasmNoDeadlines = new(Result)
		targets = append(targets, target{"wasm-nodl", naddr, rep.WasmNoDeadlines, nsessions})
	}
	// The targets take turns in Rounds slices of the duration, so that a
	// change in the machine's other load hits them alike.
	rounds := max(cfg.Rounds, 1)
	slice := cfg
	slice.Duration = cfg.Duration / time.Duration(rounds)
	per := make([][]Result, len(targets))
	for round := range rounds {
		for i, t := range targets {
			url := "http://" + t.addr.String() + appPath
			cfg.Logger.Info("driving", "target", t.name, "round", round, "url", url, "connections", cfg.Connections, "duration", slice.Duration)
			stopProfile, err := StartProfile(cfg.CPUProfile, t.name, round)
			if err != nil {
				return nil, err
			}
			r, err := drive1(ctx, slice, url)
			stopProfile()
			if err != nil {
				return nil, fmt.Errorf("httpbench: %s: %w", t.name, err)
			}
			per[i] = append(per[i], r)
		}
	}
	for i, t := range targets {
		*t.res = combine(per[i])
		t.res.Target = t.name
		t.res.Sessions = t.sessions()
		if err := CheckSessions(*t.res, rounds, cfg.Connections); err != nil {
			return nil, fmt.Errorf("httpbench: %w", err)
		}
	}
	if rep.Native.ReqPerSec > 0 {
		rep.Ratio = rep.Wasm.ReqPerSec / rep.Native.ReqPerSec
		if rep.WasmNoDeadlines != nil {
			rep.RatioNoDeadlines = rep.WasmNoDeadlines.ReqPerSec / rep.Native.ReqPerSec
		}
	}
	return rep, nil
}

// combine sums the rounds of one target; latency percentiles are the
// median of the rounds' (max for MaxUs), server CPU the request-weighted
// mean.
func combine(rs []Result) Result {
	out := Result{Tool: rs[0].Tool}
	var cpu float64
	var p50, p90, p99 []float64
	for _, r := range rs {
		out.Requests += r.Requests
		out.AllRequests += r.AllRequests
		out.Errors += r.Errors
		out.Seconds += r.Seconds
		out.MaxUs = max(out.MaxUs, r.MaxUs)
		cpu += r.ServerCPUus * float64(r.Requests)
		p50, p90, p99 = append(p50, r.P50us), append(p90, r.P90us), append(p99, r.P99us)
	}
	if out.Seconds > 0 {
		out.ReqPerSec = float64(out.Requests) / out.Seconds
	}
	if out.Requests > 0 {
		out.ServerCPUus = cpu / float64(out.Requests)
	}
	med := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	out.P50us, out.P90us, out.P99us = med(p50), med(p90), med(p99)
	return out
}

func drive1(ctx context.Context, cfg Config, url string) (Result, error) {
	switch {
	case cfg.Wrk != "":
		return runWrk(ctx, cfg, url)
	case len(cfg.LoadCommand) > 0:
		return runLoadProcess(ctx, cfg, url)
	default:
		return Load(ctx, url, cfg.Connections, cfg.Warmup, cfg.Duration)
	}
}

// CheckSessions fails when r's target ended with more sessions than its
// connections could keep over rounds (and their warmups): every
// connection must keep its session, or the benchmark measures session
// creation instead (as wrk did, once, when its script changed wrk.headers
// without defining request()).
func CheckSessions(r Result, rounds, connections int) error {
	if limit := 2 * rounds * connections; r.Sessions > limit {
		return fmt.Errorf("%s: %d sessions after %d requests (at most %d expected): the load generator does not send the session cookie back",
			r.Target, r.Sessions, r.AllRequests, limit)
	}
	return nil
}

// StartProfile starts a CPU profile to prefix.target.round, if prefix is
// set, and returns what stops it.
func StartProfile(prefix, target string, round int) (stop func(), err error) {
	if prefix == "" {
		return func() {}, nil
	}
	f, err := os.Create(fmt.Sprintf("%s.%s.%d", prefix, target, round))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runLoadProcess runs the load generator as a child process and measures
// this process's CPU time meanwhile: the servers' CPU alone.
func runLoadProcess(ctx context.Context, cfg Config, url string) (Result, error) {
	args := append(cfg.LoadCommand[1:len(cfg.LoadCommand):len(cfg.LoadCommand)],
		"-url", url, "-connections", strconv.Itoa(cfg.Connections),
		"-warmup", cfg.Warmup.String(), "-duration", cfg.Duration.String())
	cmd := exec.CommandContext(ctx, cfg.LoadCommand[0], args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	cpu0 := cpuTime()
	if err := cmd.Run(); err != nil {
		return Result{}, fmt.Errorf("load process: %v: %s", err, stderr.String())
	}
	cpu := cpuTime() - cpu0
	var r Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return Result{}, fmt.Errorf("load process output: %v: %q", err, out.String())
	}
	if r.AllRequests > 0 {
		r.ServerCPUus = float64(cpu.Microseconds()) / float64(r.AllRequests)
	}
	return r, nil
}

// LoadMain is the load generator process: flags -url, -connections,
// -warmup, -duration; it prints one JSON object.
func LoadMain(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	url := fs.String("url", "", "target URL")
	conns := fs.Int("connections", 16, "connections")
	warmup := fs.Duration("warmup", time.Second, "warmup")
	dur := fs.Duration("duration", 5*time.Second, "measured time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r, err := Load(ctx, *url, *conns, *warmup, *dur)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(r)
}

// WrkThreads returns the number of threads wrk runs with under cfg (see
// Config.WrkThreads).
func WrkThreads(cfg Config) int {
	if cfg.WrkThreads <= 0 || cfg.WrkThreads > cfg.Connections {
		return cfg.Connections
	}
	return cfg.WrkThreads
}

// runWrk drives url with wrk. Its Lua state is per thread, so a thread's
// connections share the session of the first response (and each
// connection's first request, sent before any answer, makes one).
func runWrk(ctx context.Context, cfg Config, url string) (Result, error) {
	script, err := os.CreateTemp("", "httpbench-*.lua")
	if err != nil {
		return Result{}, err
	}
	defer os.Remove(script.Name())
	script.WriteString(`
-- wrk builds a script's request once unless the script defines request():
-- changing wrk.headers later is not enough to send the cookie.
local cookie = nil
local req = nil
request = function()
  if req == nil then return wrk.format() end
  return req
end
response = function(status, headers, body)
  local c = headers["Set-Cookie"]
  if c ~= nil and cookie == nil then
    cookie = string.match(c, "JSESSIONID=[^;]+")
    req = wrk.format(nil, nil, {["Cookie"] = cookie})
  end
end
done = function(summary, latency, requests)
  io.write(string.format("WASMFARM %d %d %f %f %f %f\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`)
	script.Close()
	threads := WrkThreads(cfg)
	run := func(d time.Duration) (Result, time.Duration, error) {
		secs := max(1, int(d.Seconds()))
		cmd := exec.CommandContext(ctx, cfg.Wrk, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(cfg.Connections),
			"-d", strconv.Itoa(secs)+"s", "-s", script.Name(), url)
		cpu0 := cpuTime()
		out, err := cmd.Output()
		cpu := cpuTime() - cpu0
		if err != nil {
			return Result{}, 0, fmt.Errorf("wrk: %v", err)
		}
		r, err := parseWrk(out)
		r.Seconds = float64(secs)
		return r, cpu, err
	}
	var warm int64
	if cfg.Warmup > 0 {
		w, _, err := run(cfg.Warmup)
		if err != nil {
			return Result{}, fmt.Errorf("warmup: %w", err)
		}
		warm = w.Requests
	}
	r, cpu, err := run(cfg.Duration)
	if err != nil {
		return Result{}, err
	}
	r.AllRequests = r.Requests + warm
	r.ReqPerSec = float64(r.Requests) / r.Seconds
	if r.Requests > 0 {
		r.ServerCPUus = float64(cpu.Microseconds()) / float64(r.Requests)
	}
	return r, nil
}

// parseWrk reads the summary line the script's done() prints.
func parseWrk(out []byte) (Result, error) {
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 7 && f[0] == "WASMFARM" {
			r := Result{Tool: "wrk"}
			r.Requests, _ = strconv.ParseInt(f[1], 10, 64)
			r.Errors, _ = strconv.ParseInt(f[2], 10, 64)
			r.P50us, _ = strconv.ParseFloat(f[3], 64)
			r.P90us, _ = strconv.ParseFloat(f[4], 64)
			r.P99us, _ = strconv.ParseFloat(f[5], 64)
			r.MaxUs, _ = strconv.ParseFloat(f[6], 64)
			return r, nil
		}
	}
	return Result{}, fmt.Errorf("wrk: no summary in its output:\n%s", out)
}

// MemoryReport is the memory cost of pooled instances and idle sessions.
type MemoryReport struct {
	Instances                 int     `json:"instances"`
	RSSPerInstanceKiB         float64 `json:"rssPerInstanceKiB"`
	GuestMemoryPerInstanceKiB float64 `json:"guestMemoryPerInstanceKiB"` // linear memory after the session requests
	Sessions                  int     `json:"sessions"`
	HeapPerSessionBytes       float64 `json:"heapPerSessionBytes"`
	AttributeBytes            int     `json:"attributeBytesPerSession"`
	OverheadPerSessionBytes   float64 `json:"overheadPerSessionBytes"` // heap per session minus attribute bytes
	// MapBytesPerSession is what an entry of the session manager's map
	// costs: removing sessions does not free it (Go maps do not shrink),
	// so it is measured apart, on a map of the same type and size.
	MapBytesPerSession float64 `json:"mapBytesPerSession"`
	// TotalOverheadPerSessionBytes is OverheadPerSessionBytes plus
	// MapBytesPerSession.
	TotalOverheadPerSessionBytes float64 `json:"totalOverheadPerSessionBytes"`
	RSSPer10kSessionsKiB         float64 `json:"rssPer10kSessionsKiB"`
}

// mapBytesPerEntry returns the heap that n entries of a
// map[string]*session.Session take, keys not included (they are the
// sessions' ids, counted with the sessions).
func mapBytesPerEntry(n int) float64 {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%032X.jvm_a", i)
	}
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	m := make(map[string]*session.Session)
	for _, k := range keys {
		m[k] = nil
	}
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	runtime.KeepAlive(m)
	runtime.KeepAlive(keys)
	return float64(int64(ms1.HeapAlloc)-int64(ms0.HeapAlloc)) / float64(n)
}

// settle runs the garbage collector until the finalizers of earlier
// phases have run (wazero unmaps the machine code of a closed runtime's
// modules in finalizers: without this, the throughput phase's servers
// were unmapped in the middle of the instance measurement, which then
// came out negative) and returns the freed memory to the OS.
func settle() {
	for range 3 {
		runtime.GC()
		time.Sleep(20 * time.Millisecond) // the finalizer goroutine runs
	}
	debug.FreeOSMemory()
}

// MeasureMemory instantiates instances of the counter app and creates
// sessions through it (10,000 requests without a cookie, in-process), and
// reports the resident memory per instance and the heap per session.
func MeasureMemory(ctx context.Context, instances, sessions int, cacheDir string) (*MemoryReport, error) {
	srv, err := host.New(host.Config{JvmRoute: "jvm_a", PoolSize: instances + 1, CacheDir: cacheDir})
	if err != nil {
		return nil, err
	}
	defer srv.Shutdown(context.Background())
	if err := srv.Deploy(ctx, "/counter", wasmapps.Counter()); err != nil {
		return nil, err
	}
	c, _ := srv.Engine().Context("/counter")
	rep := &MemoryReport{Instances: instances, Sessions: sessions, AttributeBytes: len("counter") + 1}
	settle() // return what earlier phases freed, so RSS deltas are this phase's
	r0 := bench.RSS(0)
	if err := c.Warm(ctx, instances+1); err != nil {
		return nil, err
	}
	settle()
	rep.RSSPerInstanceKiB = float64(bench.RSS(0)-r0) / float64(instances) / 1024

	req := httptest.NewRequest("GET", appPath, nil)
	w := &discardWriter{h: http.Header{}}
	for range 100 { // warm the request path
		srv.ServeHTTP(w, req)
	}
	var ms0, ms1, ms2 runtime.MemStats
	debug.FreeOSMemory()
	runtime.ReadMemStats(&ms0)
	r0 = bench.RSS(0)
	g0 := c.GuestMemory()
	n0 := c.Manager().Len()
	for range sessions {
		clear(w.h)
		srv.ServeHTTP(w, req)
		if w.status != 200 {
			return nil, fmt.Errorf("httpbench: creating sessions: status %d", w.status)
		}
	}
	if got := c.Manager().Len() - n0; got != sessions {
		return nil, fmt.Errorf("httpbench: created %d sessions, want %d", got, sessions)
	}
	debug.FreeOSMemory()
	runtime.ReadMemStats(&ms1)
	r1 := bench.RSS(0)
	g1 := c.GuestMemory()
	rep.GuestMemoryPerInstanceKiB = float64(g1) / float64(instances+1) / 1024
	// The guests' linear memories live on the Go heap and may have grown
	// while the sessions were made: measure the sessions by what their
	// removal frees instead.
	if n := c.Manager().Expire(time.Now().Add(1000 * time.Hour)); n < sessions {
		return nil, fmt.Errorf("httpbench: expired %d sessions, want %d", n, sessions)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms2)
	rep.HeapPerSessionBytes = float64(int64(ms1.HeapAlloc)-int64(ms2.HeapAlloc)) / float64(sessions)
	rep.OverheadPerSessionBytes = rep.HeapPerSessionBytes - float64(rep.AttributeBytes)
	rep.MapBytesPerSession = mapBytesPerEntry(sessions)
	rep.TotalOverheadPerSessionBytes = rep.OverheadPerSessionBytes + rep.MapBytesPerSession
	// RSS while creating them, less the guests' growth (an upper bound).
	rep.RSSPer10kSessionsKiB = float64(r1-r0-(int64(g1)-int64(g0))) / 1024 * 10000 / float64(sessions)
	return rep, nil
}

type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(s int)           { w.status = s }

// CompileReport is the time to deploy the counter app and serve its first
// request, on a cold and on a warm compilation cache.
type CompileReport struct {
	ModuleBytes int     `json:"moduleBytes"`
	ColdMs      float64 `json:"coldMs"`
	WarmMs      float64 `json:"warmMs"`
}

// MeasureCompile deploys the counter app on a new server with an empty
// compilation cache, then on another new server sharing that cache, and
// times each until the first response.
func MeasureCompile(ctx context.Context) (*CompileReport, error) {
	dir, err := os.MkdirTemp("", "wasmfarm-compile-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	mod := wasmapps.Counter()
	rep := &CompileReport{ModuleBytes: len(mod)}
	for i, out := range []*float64{&rep.ColdMs, &rep.WarmMs} {
		start := time.Now()
		srv, err := host.New(host.Config{CacheDir: dir})
		if err != nil {
			return nil, err
		}
		err = srv.Deploy(ctx, "/counter", mod)
		if err == nil {
			w := &discardWriter{h: http.Header{}}
			srv.ServeHTTP(w, httptest.NewRequest("GET", appPath, nil))
			if w.status != 200 {
				err = fmt.Errorf("first request: status %d", w.status)
			}
		}
		*out = float64(time.Since(start).Microseconds()) / 1000
		srv.Shutdown(context.Background())
		if err != nil {
			return nil, fmt.Errorf("httpbench: deploy %d: %w", i, err)
		}
	}
	return rep, nil
}

// Drive drives url once with cfg's load (wrk, a load process or this
// process, as configured) for cfg.Warmup and cfg.Duration.
func Drive(ctx context.Context, cfg Config, url string) (Result, error) { return drive1(ctx, cfg, url) }

// Combine sums rounds of one target (see [Run]).
func Combine(rs []Result) Result { return combine(rs) }
