package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"

	"github.com/wasmfarm/wasmfarm/bench/httpbench"
	"github.com/wasmfarm/wasmfarm/host"
)

// runBenchHTTP serves the counter app and a native Go handler doing the
// same work on loopback, drives both with the same load and prints req/s,
// latency and the wasm/native ratio; then the memory per instance and per
// session, and the cold and warm deploy time.
func runBenchHTTP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench http", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := httpbench.DefaultConfig()
	conns := fs.Int("connections", def.Connections, "keep-alive connections, one session each")
	dur := fs.Duration("duration", def.Duration, "measured time per target")
	warmup := fs.Duration("warmup", def.Warmup, "warmup per target and round")
	rounds := fs.Int("rounds", def.Rounds, "turns per target: the duration is split and the targets alternate")
	pool := fs.Int("pool-size", 0, "wasm instances (0 = host default, 2 × GOMAXPROCS)")
	connector := fs.String("connector", host.ConnectorH1, `the wasm app's HTTP connector: "h1" (the host's own) or "net/http" (the native handler always runs on net/http)`)
	deadline := fs.Duration("deadline", 0, "per-request guest deadline (0 = host default, 30s); always enforced")
	noDL := fs.Bool("also-no-deadlines", true, "also drive the app on a server without deadline enforcement (trusted code), to show its cost")
	useWrk := fs.Bool("wrk", false, "drive the targets with wrk (must be on the PATH)")
	wrkThreads := wrkThreadsFlag(fs)
	inProcess := fs.Bool("in-process", false, "run the load generator in this process (no server CPU figure)")
	only := fs.String("only", "throughput,memory,compile", "parts to run, comma separated")
	instances := fs.Int("instances", 8, "instances for the memory figure")
	sessions := fs.Int("sessions", 10000, "idle sessions for the memory figure")
	asJSON := fs.Bool("json", false, "print one JSON object")
	cpuProfile := fs.String("cpuprofile", "", "profile the servers while each target is driven, to `prefix`.<target>.<round>")
	role := fs.String("role", "", "internal: run as the load generator process")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: wasmfarm bench http [flags]\n\nMeasures the counter app against a native Go handler on loopback.\n\nflags:")
		fs.PrintDefaults()
	}
	if *role == "" && len(args) > 0 && args[0] == "-role=load" {
		return httpbench.LoadMain(ctx, args[1:], stdout)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *role != "" {
		return fmt.Errorf("unknown -role %q", *role)
	}
	parts := map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		parts[strings.TrimSpace(p)] = true
	}
	out := map[string]any{}
	text := func(format string, a ...any) {
		if !*asJSON {
			fmt.Fprintf(stdout, format, a...)
		}
	}

	if parts["throughput"] {
		cfg := httpbench.Config{Rounds: *rounds, AlsoNoDeadlines: *noDL, Connections: *conns, Duration: *dur, Warmup: *warmup, PoolSize: *pool, Deadline: *deadline, Connector: *connector, CPUProfile: *cpuProfile,
			Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
		if err := setLoadDriver(&cfg, *useWrk, *inProcess, *wrkThreads); err != nil {
			return err
		}
		rep, err := httpbench.Run(ctx, cfg)
		if err != nil {
			return err
		}
		out["throughput"] = rep
		sessions := sessionsText(cfg, rep.Native.Tool)
		text("HTTP session counter on loopback: %d connections (%s), %v per target in %d alternating rounds, GOMAXPROCS %d, load: %s\n",
			rep.Connections, sessions, *dur, *rounds, rep.GOMAXPROCS, rep.Native.Tool)
		text("  %-9s %10s %8s %9s %9s %9s %13s\n", "target", "req/s", "errors", "p50", "p90", "p99", "server CPU/req")
		text("  (latency percentiles: median of the rounds)\n")
		results := []httpbench.Result{rep.Native, rep.Wasm}
		if rep.WasmNoDeadlines != nil {
			results = append(results, *rep.WasmNoDeadlines)
		}
		for _, r := range results {
			cpu := "-"
			if r.ServerCPUus > 0 {
				cpu = fmt.Sprintf("%.1f µs", r.ServerCPUus)
			}
			text("  %-9s %10.0f %8d %9s %9s %9s %13s\n", r.Target, r.ReqPerSec, r.Errors, us(r.P50us), us(r.P90us), us(r.P99us), cpu)
		}
		text("  wasm/native: %.1f%% with deadlines enforced (target >= 75%%)\n", rep.Ratio*100)
		if rep.WasmNoDeadlines != nil {
			text("  wasm-nodl/native: %.1f%% without deadline enforcement (trusted code only)\n", rep.RatioNoDeadlines*100)
		}
	}
	if parts["memory"] {
		m, err := httpbench.MeasureMemory(ctx, *instances, *sessions, "")
		if err != nil {
			return err
		}
		out["memory"] = m
		text("memory: %.0f KiB RSS per pooled instance (%d instances; %.0f KiB of linear memory each after the session requests)\n",
			m.RSSPerInstanceKiB, m.Instances, m.GuestMemoryPerInstanceKiB)
		text("  %d idle sessions made by the counter app: removing them frees %.0f B of heap each = %d attribute bytes + %.0f B overhead;\n"+
			"  with the session map's %.0f B per entry (measured apart: removal does not shrink a map), %.0f B of overhead per session (target <= 300); %.0f KiB RSS per 10,000 sessions\n",
			m.Sessions, m.HeapPerSessionBytes, m.AttributeBytes, m.OverheadPerSessionBytes, m.MapBytesPerSession, m.TotalOverheadPerSessionBytes, m.RSSPer10kSessionsKiB)
	}
	if parts["compile"] {
		c, err := httpbench.MeasureCompile(ctx)
		if err != nil {
			return err
		}
		out["compile"] = c
		text("deploy and first response of the counter app (%.1f MB): cold cache %.0f ms (target <= 1000), warm cache %.0f ms (target <= 100)\n",
			float64(c.ModuleBytes)/1e6, c.ColdMs, c.WarmMs)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return nil
}

func us(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.2f ms", v/1000)
	}
	return fmt.Sprintf("%.0f µs", v)
}

// wrkThreadsFlag registers -wrk-threads.
func wrkThreadsFlag(fs *flag.FlagSet) *int {
	return fs.Int("wrk-threads", 0, "with -wrk: wrk's threads; 0 runs one per connection, so that every connection keeps a session of its own (wrk's script state is per thread: the connections of a thread share a session)")
}

// sessionsText tells how the load's connections hold sessions.
func sessionsText(cfg httpbench.Config, tool string) string {
	if tool == "wrk" {
		if n := httpbench.WrkThreads(cfg); n < cfg.Connections {
			return fmt.Sprintf("a session per wrk thread, %d threads", n)
		}
		return "one session each, a wrk thread each"
	}
	return "one session each"
}

// setLoadDriver chooses what drives the HTTP load: wrk, this process, or
// (the default) this binary as a separate load process, so that the
// server's CPU per request is measured alone. wrkThreads is wrk's thread
// count (see httpbench.Config.WrkThreads).
func setLoadDriver(cfg *httpbench.Config, useWrk, inProcess bool, wrkThreads int) error {
	cfg.WrkThreads = wrkThreads
	switch {
	case useWrk:
		p, err := exec.LookPath("wrk")
		if err != nil {
			return errors.New("-wrk: wrk is not on the PATH")
		}
		cfg.Wrk = p
	case !inProcess:
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cfg.LoadCommand = []string{exe, "bench", "http", "-role=load"}
	}
	return nil
}
