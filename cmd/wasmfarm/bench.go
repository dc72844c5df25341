package main

import (
	"context"
	"fmt"
	"io"
)

// benchCommands are the benchmarks under "wasmfarm bench".
var benchCommands = map[string]command{
	"transport":   {"Tribes transport throughput and ack latency (separate processes on loopback)", runBenchTransport},
	"http":        {"HTTP requests/s of a wasm app against a native Go handler", runBenchHTTP},
	"replication": {"requests/s with session replication (delta async/sync, backup) and state transfer", runBenchReplication},
	"farm":        {"a farmed deploy: time by phase and the members' memory (separate processes on loopback)", runBenchFarm},
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprintln(stdout, "usage: wasmfarm bench <benchmark> [flags]")
		for name, c := range benchCommands {
			fmt.Fprintf(stdout, "  %-10s %s\n", name, c.summary)
		}
		return nil
	}
	c, ok := benchCommands[args[0]]
	if !ok {
		return fmt.Errorf("unknown benchmark %q (have: transport, http, replication, farm)", args[0])
	}
	return c.run(ctx, args[1:], stdout, stderr)
}
