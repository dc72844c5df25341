package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"

	"github.com/wasmfarm/wasmfarm/bench/httpbench"
	"github.com/wasmfarm/wasmfarm/bench/replbench"
	"github.com/wasmfarm/wasmfarm/host"
)

// Tomcat 10.1's figures on this machine, from the replication issue.
var tomcatReqPerSec = map[string]float64{
	"plain": 45000, "delta-async-2": 21500, "delta-sync-2": 12300, "backup-2": 13000,
	"delta-async-3": 17600, "delta-sync-3": 7800,
}

// runBenchReplication measures the counter app on a cluster member against
// the same app without replication, and the state transfer to a joiner.
func runBenchReplication(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench replication", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := httpbench.DefaultConfig()
	conns := fs.Int("connections", def.Connections, "keep-alive connections, one session each")
	dur := fs.Duration("duration", def.Duration, "measured time per target")
	warmup := fs.Duration("warmup", def.Warmup, "warmup per target and round")
	rounds := fs.Int("rounds", def.Rounds, "turns per target (the targets alternate)")
	useWrk := fs.Bool("wrk", false, "drive the targets with wrk (must be on the PATH)")
	wrkThreads := wrkThreadsFlag(fs)
	connector := fs.String("connector", host.ConnectorH1, `the members' HTTP connector: "h1" (the host's own) or "net/http"`)
	targets := fs.String("targets", "", "comma-separated subset of: plain, delta-async-2, delta-sync-2, backup-2, delta-async-3, delta-sync-3 (plain is always first)")
	only := fs.String("only", "throughput,transfer", "parts to run")
	sessions := fs.Int("sessions", 100000, "sessions for the state transfer")
	valueBytes := fs.Int("value-bytes", 1024, "attribute bytes per session for the state transfer")
	asJSON := fs.Bool("json", false, "print one JSON object")
	cpuProfile := fs.String("cpuprofile", "", "profile this process (the members) while each target is driven, to `prefix`.<target>.<round>, and during the state transfer, to prefix.transfer.0")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
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
		lc := httpbench.Config{Connections: *conns, Duration: *dur, Warmup: *warmup, Rounds: *rounds, CPUProfile: *cpuProfile, Connector: *connector}
		if err := setLoadDriver(&lc, *useWrk, false, *wrkThreads); err != nil {
			return err
		}
		cfg := replbench.Config{Load: lc, Logger: log}
		if *targets != "" {
			want := map[string]bool{"plain": true}
			for _, t := range strings.Split(*targets, ",") {
				want[strings.TrimSpace(t)] = true
			}
			for _, t := range replbench.DefaultTargets() {
				if want[t.Name] {
					cfg.Targets = append(cfg.Targets, t)
				}
			}
		}
		res, err := replbench.Run(ctx, cfg)
		if err != nil {
			return err
		}
		out["throughput"] = res
		text("counter app on member 0, members in this process on loopback channels: %d connections (%s), %v per target in %d alternating rounds, GOMAXPROCS %d, load: %s\n",
			*conns, sessionsText(lc, res[0].Tool), *dur, *rounds, runtime.GOMAXPROCS(0), res[0].Tool)
		text("  %-14s %10s %8s %9s %9s %9s %11s %8s %12s %9s %9s %13s\n", "target", "req/s", "errors", "p50", "p99", "/plain", "rounds", "Tomcat", "/Tomcat", "CPU/req", "msgs/req", "frames/write")
		for _, r := range res {
			tc := tomcatReqPerSec[r.Name]
			cpu := "-"
			if r.ServerCPUus > 0 {
				cpu = fmt.Sprintf("%.0f µs", r.ServerCPUus)
			}
			fpw := "-"
			if r.FramesPerWrite > 0 {
				fpw = fmt.Sprintf("%.1f", r.FramesPerWrite)
			}
			spread := "-"
			if len(r.RoundRatios) > 0 && r.Name != "plain" {
				spread = fmt.Sprintf("%.0f-%.0f%%", slices.Min(r.RoundRatios)*100, slices.Max(r.RoundRatios)*100)
			}
			text("  %-14s %10.0f %8d %9s %9s %8.0f%% %11s %8.0f %11.1fx %9s %9.2f %13s\n", r.Name, r.ReqPerSec, r.Errors, us(r.P50us), us(r.P99us), r.Ratio*100, spread, tc, r.ReqPerSec/tc, cpu, r.ReplicatedPerRequest, fpw)
		}
		text("  (rounds: the lowest and the highest ratio to plain of a single round, against plain's\n")
		text("   round just before it; a wide spread means the machine's noise, not the code, moves /plain;\n")
		text("   CPU/req: this process's CPU time per request, every member of the target included;\n")
		text("   msgs/req: replication messages the other members received per request driven;\n")
		text("   frames/write: asynchronous and pipelined acknowledged frames member 0 wrote per system call)\n")
		text("  targets: delta async >= 90%% of plain, sync >= 70%%, both >= 2x Tomcat\n")
		if res[0].Tool != "wrk" {
			text("  (Tomcat's figures were taken with wrk: run with -wrk to compare like with like; this load\n")
			text("   generator takes more of the machine per request, so every req/s here is lower)\n")
		}
	}
	if parts["transfer"] {
		stopProfile, err := httpbench.StartProfile(*cpuProfile, "transfer", 0)
		if err != nil {
			return err
		}
		r, err := replbench.MeasureTransfer(ctx, *sessions, *valueBytes, "", log)
		stopProfile()
		if err != nil {
			return err
		}
		out["transfer"] = r
		text("state transfer of %d sessions (%d attribute bytes each) to a joining member: %.0f ms (target < 500; Tomcat 1515), deploy %.0f ms vs %.0f ms with nothing to receive; %.0f B of heap per session = %d attribute bytes + %.0f B (target <= 300; Tomcat about 1 KiB)\n",
			r.Sessions, r.AttributeBytes, r.TransferMs, r.DeployMs, r.BaselineMs, r.HeapPerSession, r.AttributeBytes, r.OverheadPerSess)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return nil
}
