package main

import (
	"context"
	"os"
	"testing"
)

// TestMain lets tests run this test binary as the wasmfarm command (set
// WASMFARM_TEST_MAIN=1 and pass the command line), for tests that need
// real processes, e.g. inside network namespaces.
func TestMain(m *testing.M) {
	if os.Getenv("WASMFARM_TEST_MAIN") == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
