package wasm

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host/abi"
	"github.com/wasmfarm/wasmfarm/host/internal/wasmtest"
)

// cacheEntries returns the entries of wazero's file cache under dir (one
// file named by 64 hex digits per compiled module, in a wazero-* directory)
// and their total size.
func cacheEntries(t *testing.T, dir string) (map[string]int64, int64) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "wazero-*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	var total int64
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() || len(filepath.Base(p)) != 64 {
			continue
		}
		m[p] = st.Size()
		total += st.Size()
	}
	return m, total
}

// version returns a distinct module version i (i < 60: the entries of all
// are the same size).
func version(i int) []byte { return wasmtest.Module(abi.Version, int32(i), false) }

// entrySize returns the size of one version's cache entry.
func entrySize(t *testing.T) int64 {
	t.Helper()
	dir := t.TempDir()
	rt, err := NewRuntime(context.Background(), Config{CacheDir: dir, CacheMaxBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	m, err := rt.Compile(context.Background(), "v0", version(0))
	if err != nil {
		t.Fatal(err)
	}
	m.Close(context.Background())
	entries, total := cacheEntries(t, dir)
	if len(entries) != 1 || total == 0 {
		t.Fatalf("one compile left %d entries of %d bytes in %s, want 1", len(entries), total, dir)
	}
	return total
}

func cacheRuntime(t *testing.T, dir string, max int64, log *bytes.Buffer) *Runtime {
	t.Helper()
	cfg := Config{CacheDir: dir, CacheMaxBytes: max}
	if log != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(log, nil))
	}
	rt, err := NewRuntime(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

// TestCompilationCacheBounded redeploys an app N times, a new version
// each time, as a farm does: wazero writes an entry per version and never
// removes one, so the directory must be pruned to CacheMaxBytes.
func TestCompilationCacheBounded(t *testing.T) {
	const n = 20
	size := entrySize(t)
	dir := t.TempDir()
	var log bytes.Buffer
	max := 3*size + size/2 // room for three entries
	rt := cacheRuntime(t, dir, max, &log)
	ctx := context.Background()
	var deployed *Module
	for i := range n {
		m, err := rt.Compile(ctx, "app", version(i))
		if err != nil {
			t.Fatal(err)
		}
		if deployed != nil {
			deployed.Close(ctx) // the previous version is undeployed
		}
		deployed = m
	}
	entries, total := cacheEntries(t, dir)
	if total > max || len(entries) > 3 {
		t.Fatalf("after %d versions deployed one after another, the compilation cache holds %d entries, %d bytes; want at most 3 entries, %d bytes (CacheMaxBytes)", n, len(entries), total, max)
	}
	if p := rt.disk.entry(deployedCode(t, rt, version(n-1))); entries[p] == 0 {
		t.Errorf("the deployed version's entry %q was removed; entries: %v", p, entries)
	}
	if !strings.Contains(log.String(), "compilation cache pruned") {
		t.Errorf("no log line of the pruning; log:\n%s", log.String())
	}
}

// deployedCode returns the code Compile passes wazero for wasm.
func deployedCode(t *testing.T, rt *Runtime, wasm []byte) []byte {
	t.Helper()
	code, _, err := prepareModule(wasm, !rt.noDeadlines)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestCompilationCacheEntryKey checks that the runtime finds a module's
// entry under the key it derives the way wazero v1.12.0 does: if a wazero
// upgrade changes the derivation, deployed modules' entries are no longer
// protected from pruning nor touched.
func TestCompilationCacheEntryKey(t *testing.T) {
	dir := t.TempDir()
	rt := cacheRuntime(t, dir, -1, nil)
	m, err := rt.Compile(context.Background(), "app", version(1))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	entries, _ := cacheEntries(t, dir)
	p := rt.disk.entry(deployedCode(t, rt, version(1)))
	if len(entries) != 1 || entries[p] == 0 {
		t.Fatalf("derived entry %q; the cache holds %v", p, entries)
	}
	if rt.disk.inUse[p] != 1 {
		t.Errorf("entry held %d times, want 1 (the open module)", rt.disk.inUse[p])
	}
}

// TestCompilationCacheKeepsDeployed checks that the entries of modules
// still open (deployed apps) are kept even over the bound, and that a
// compile (a cache hit: wazero does not touch the file it reads) makes an
// entry recent.
func TestCompilationCacheKeepsDeployed(t *testing.T) {
	size := entrySize(t)
	ctx := context.Background()
	dir := t.TempDir()
	rt := cacheRuntime(t, dir, 3*size+size/2, nil)
	path := func(i int) string { return rt.disk.entry(deployedCode(t, rt, version(i))) }
	compile := func(i int) *Module {
		t.Helper()
		m, err := rt.Compile(ctx, "app", version(i))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// Four open modules: over the bound, none removed.
	var open []*Module
	for i := range 4 {
		open = append(open, compile(i))
	}
	if entries, _ := cacheEntries(t, dir); len(entries) != 4 {
		t.Fatalf("%d entries with 4 modules open, want 4: %v", len(entries), entries)
	}
	for _, m := range open {
		m.Close(ctx)
	}
	// Least recently compiled first: 0, 1, 2, 3 an hour apart, then 0
	// compiled again (read from the cache) is the most recent.
	for i := range 4 {
		old := time.Now().Add(time.Duration(i-4) * time.Hour)
		if err := os.Chtimes(path(i), old, old); err != nil {
			t.Fatal(err)
		}
	}
	compile(0).Close(ctx)
	entries, _ := cacheEntries(t, dir)
	for i, want := range []bool{true, false, true, true} {
		if _, ok := entries[path(i)]; ok != want {
			t.Errorf("after recompiling version 0, entry of version %d present: %v, want %v", i, ok, want)
		}
	}
}

// TestCompilationCachePrunedAtStart checks NewRuntime's pruning: entries
// of another wazero version go, a stale temporary file goes, and a
// negative CacheMaxBytes keeps everything.
func TestCompilationCachePrunedAtStart(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "wazero-v1.0.0-old")
	if err := os.MkdirAll(other, 0o700); err != nil {
		t.Fatal(err)
	}
	key := strings.Repeat("ab", 32)
	old := time.Now().Add(-2 * time.Hour)
	for _, name := range []string{key, key + ".123.tmp", "README"} {
		p := filepath.Join(other, name)
		if err := os.WriteFile(p, make([]byte, 4096), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	cacheRuntime(t, dir, -1, nil)
	if _, err := os.Stat(filepath.Join(other, key)); err != nil {
		t.Fatalf("unbounded cache: %v", err)
	}
	var log bytes.Buffer
	cacheRuntime(t, dir, 1024, &log)
	for name, want := range map[string]bool{key: false, key + ".123.tmp": false, "README": true} {
		if _, err := os.Stat(filepath.Join(other, name)); (err == nil) != want {
			t.Errorf("%s present: %v, want %v", name, err == nil, want)
		}
	}
	if !strings.Contains(log.String(), "removed=1") {
		t.Errorf("log does not say one entry was removed:\n%s", log.String())
	}
}
