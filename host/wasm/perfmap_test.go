//go:build perfmap

package wasm

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// TestPerfMap: with -tags perfmap, compiling a module (the cache is off)
// writes its functions' names to /tmp/perf-<pid>.map.
func TestPerfMap(t *testing.T) {
	rt, err := NewRuntime(context.Background(), Config{CacheDir: t.TempDir()}) // ignored: the cache is off
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	if rt.cache != nil {
		t.Fatal("the compilation cache is on in a perfmap build")
	}
	if _, err := rt.Compile(context.Background(), "counter", wasmapps.Counter()); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("/tmp/perf-%d.map", os.Getpid())
	defer os.Remove(name)
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "main.serve") {
		t.Fatalf("%s (%d bytes) does not name the counter's main.serve", name, len(b))
	}
}
