// Command wasmfarm is the one binary of the wasmfarm cluster: it runs a node,
// benchmarks the transport and (as later subcommands land) deploys apps,
// balances load and reports status.
//
// Usage:
//
//	wasmfarm <command> [flags]
//
// Run "wasmfarm help" for the list of commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand of the binary.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists every subcommand. Each lives in its own file.
var commands = map[string]command{
	"bench":   {"run throughput benchmarks (bench transport ...)", runBench},
	"balance": {"sticky HTTP load balancer for the members (by jvmRoute)", runBalance},
	"channel": {"group communication tools: members, listen, send", runChannel},
	"demo":    {"start a local 3-member cluster with the balancer and the sample apps", runDemo},
	"node":    {"run a wasmfarm node serving WebAssembly apps", runNode},
	"status":  {"print a member's view of the cluster as tables", runStatus},

	"deploy":   {"deploy a .wasm module on every member (through a member's admin endpoint)", runDeploy},
	"undeploy": {"undeploy an app from every member", runUndeploy},
	"apps":     {"list the cluster's apps, their digests and members", runApps},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "wasmfarm: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	if err := cmd.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "wasmfarm %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: wasmfarm <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
}
