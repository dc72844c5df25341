package httpbench

import (
	"context"
	"os"
	"runtime/pprof"
	"testing"
	"time"
)

func TestProfileWasm(t *testing.T) {
	if os.Getenv("PROF") == "" {
		t.Skip("PROF not set")
	}
	f, _ := os.Create(os.Getenv("PROF"))
	pprof.StartCPUProfile(f)
	defer pprof.StopCPUProfile()
	var mod []byte
	if m := os.Getenv("MODULE"); m != "" {
		mod, _ = os.ReadFile(m)
	}
	rep, err := Run(context.Background(), Config{Connections: 16, Duration: 3 * time.Second, Warmup: 500 * time.Millisecond, Module: mod, CacheDir: os.TempDir() + "/wasmfarm-test-cache"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", rep)
}
