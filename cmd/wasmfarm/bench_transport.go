package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/wasmfarm/wasmfarm/bench"
)

// runBenchTransport runs "wasmfarm bench transport": the sender in this
// process, the receivers as child processes of the same binary.
func runBenchTransport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench transport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sizes := fs.String("size", "100,1KiB,64KiB,1MiB", "message sizes, comma separated (B, KiB, MiB suffixes)")
	modes := fs.String("mode", "async,ack,sync", "modes: async (no ack), ack (USE_ACK), sync (USE_ACK+SYNCHRONIZED_ACK)")
	gzip := fs.String("gzip", "off,on", "gzip: off, on, or both")
	receivers := fs.String("receivers", "1,2", "receiver processes per case: 1, 2 or both")
	conc := fs.Int("concurrency", 1, "sender goroutines")
	dur := fs.Duration("duration", time.Second, "sending time per case")
	samples := fs.Int("samples", 2000, "single-message latency samples per ack case")
	asJSON := fs.Bool("json", false, "print one JSON object per case")
	channel := fs.Bool("channel", false, "send and receive through full channels (dispatch and failure detector in the stack)")
	inline := fs.Bool("inline", false, "receivers process messages on their network loops instead of on workers")
	pooledAcks := fs.Bool("pooled-acks", false, "send acknowledged messages on pooled connections, one at a time on each, instead of one pipelined connection")
	role := fs.String("role", "", "internal: run as a receiver process")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: wasmfarm bench transport [flags]\n\nMeasures the Tribes transport against raw TCP on loopback, with receivers in separate processes.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *role == "receiver" {
		return bench.ReceiverMain(ctx, os.Stdin, stdout, *channel, *inline)
	}

	var o bench.TransportOptions
	var err error
	if o.Sizes, err = parseSizes(*sizes); err != nil {
		return err
	}
	o.Modes = splitList(*modes)
	if o.Gzip, err = parseOnOff(*gzip); err != nil {
		return err
	}
	for _, s := range splitList(*receivers) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("-receivers: %q is not a number", s)
		}
		o.Receivers = append(o.Receivers, n)
	}
	o.Concurrency, o.Duration, o.Samples, o.Channel, o.Inline, o.PooledAcks = *conc, *dur, *samples, *channel, *inline, *pooledAcks
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	o.Command = func() *exec.Cmd {
		cmd := exec.CommandContext(ctx, exe, "bench", "transport", "-role", "receiver", fmt.Sprintf("-channel=%v", *channel), fmt.Sprintf("-inline=%v", *inline))
		cmd.Stderr = stderr
		return cmd
	}

	if *asJSON {
		enc := json.NewEncoder(stdout)
		return bench.RunTransport(ctx, o, func(r bench.TransportResult) { enc.Encode(r) })
	}
	const row = "%7s %5s %4s %3s %4s %9s %8s %8s %6s %6s %6s %8s %8s %8s %6s\n"
	fmt.Fprintf(stdout, row, "size", "mode", "gzip", "rcv", "conc", "msgs/s", "MB/s", "raw MB/s", "x raw",
		"allocs", "rx all", "p50 µs", "p99 µs", "rtt µs", "x rtt")
	return bench.RunTransport(ctx, o, func(r bench.TransportResult) {
		gz := "off"
		if r.Gzip {
			gz = "on"
		}
		lat := []any{"", "", "", ""}
		if r.P50us > 0 {
			lat = []any{fmt.Sprintf("%.1f", r.P50us), fmt.Sprintf("%.1f", r.P99us), fmt.Sprintf("%.1f", r.RawRTTP50us), fmt.Sprintf("%.2f", r.LatencyRatio)}
		}
		fmt.Fprintf(stdout, row, append([]any{formatSize(r.Size), r.Mode, gz, fmt.Sprint(r.Receivers), fmt.Sprint(r.Concurrency),
			fmt.Sprintf("%.0f", r.MsgsPerSec), fmt.Sprintf("%.1f", r.MBPerSec), fmt.Sprintf("%.1f", r.RawMBPerSec),
			fmt.Sprintf("%.2f", r.RatioRaw), fmt.Sprintf("%.2f", r.AllocsPerMsg), fmt.Sprintf("%.2f", r.RxAllocsPerMsg)}, lat...)...)
	})
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseSizes parses "100,1KiB,64KiB,1MiB" (also k/KB/M/MB, all binary).
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := parseSize(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func parseSize(f string) (int, error) {
	l := strings.ToLower(f)
	mult := 1
	for _, suf := range []struct {
		s string
		m int
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"kb", 1 << 10}, {"mb", 1 << 20}, {"k", 1 << 10}, {"m", 1 << 20}, {"b", 1}} {
		if strings.HasSuffix(l, suf.s) {
			l, mult = strings.TrimSuffix(l, suf.s), suf.m
			break
		}
	}
	n, err := strconv.Atoi(l)
	if err != nil || n <= 0 || n > 64<<20/mult {
		return 0, fmt.Errorf("-size: %q is not a size from 1 B to 64 MiB", f)
	}
	return n * mult, nil
}

func formatSize(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func parseOnOff(s string) ([]bool, error) {
	var out []bool
	for _, f := range splitList(s) {
		switch strings.ToLower(f) {
		case "on", "true", "1", "yes":
			out = append(out, true)
		case "off", "false", "0", "no":
			out = append(out, false)
		case "both":
			out = append(out, false, true)
		default:
			return nil, fmt.Errorf("-gzip: %q is not on or off", f)
		}
	}
	return out, nil
}
