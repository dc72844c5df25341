package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// TestMain lets tests run this test binary as the wasmfarm command (set
// WASMFARM_TEST_MAIN=1 and pass the command line), for tests that need
// real processes, e.g. inside network namespaces.
func TestMain(m *testing.M) {
	if os.Getenv("WASMFARM_TEST_MAIN") == "1" {
		// As main does: Ctrl-C and SIGTERM end the command gracefully.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}
