package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"runtime"
	"testing"

	"github.com/wasmfarm/wasmfarm/host/abi"
	"github.com/wasmfarm/wasmfarm/host/internal/wasmtest"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// padded appends a custom section of n bytes named tag to mod.
func padded(mod []byte, tag string, n int) []byte {
	content := append(str(tag), make([]byte, n)...)
	return append(append([]byte(nil), mod...), sec(0, content)...)
}

func TestCompileFrom(t *testing.T) {
	counter := wasmapps.Counter()
	const pad = 64 << 20
	big := padded(counter, "wasmfarm.pad", pad)
	ctx := context.Background()
	// The padding is hashed and skipped, never held: reading the padded
	// module allocates about what reading the counter alone does. Only the
	// read is measured: the compiler's own allocation varies from run to
	// run with its parallel workers by more than the margin (CI once saw
	// 9 MiB between two compiles of the same code).
	readAlloc := func(bin []byte) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		code, _, _, err := readStripped(bytes.NewReader(bin), 0)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		runtime.KeepAlive(code)
		return after.TotalAlloc - before.TotalAlloc
	}
	base, alloc := readAlloc(counter), readAlloc(big)
	t.Logf("allocated while reading: %.1f MiB for the counter (%d bytes), %.1f MiB with %d MiB of padding",
		float64(base)/(1<<20), len(counter), float64(alloc)/(1<<20), pad>>20)
	if alloc > base+4<<20 {
		t.Fatalf("the padding cost %d bytes of allocation", alloc-base)
	}
	rt := newRuntime(t)
	m, err := rt.CompileFrom(ctx, "big", bytes.NewReader(big), int64(len(big)))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(big)
	if m.Digest() != hex.EncodeToString(sum[:]) || m.Size() != len(big) {
		t.Fatalf("digest %s size %d, want those of all %d bytes", m.Digest(), m.Size(), len(big))
	}
	p, err := NewPool(ctx, m, PoolConfig{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	p.Close(ctx)

	// Refusals: truncated, over the limit, not wasm.
	loop := wasmtest.Module(abi.Version, 0, true)
	for _, tc := range []struct {
		name  string
		bin   []byte
		limit int64
	}{
		{"truncated", loop[:len(loop)-2], 0},
		{"truncated padding", padded(loop, "x", 100)[:len(loop)+50], 0},
		{"over the limit", big, int64(len(big) - 1)},
		{"not wasm", []byte("hello world"), 0},
	} {
		_, err := rt.CompileFrom(ctx, "bad", bytes.NewReader(tc.bin), tc.limit)
		var me *ModuleError
		if !errors.Is(err, ErrInvalidModule) || !errors.As(err, &me) {
			t.Fatalf("%s: got %v, want a ModuleError wrapping ErrInvalidModule", tc.name, err)
		}
		t.Logf("%s: %v", tc.name, err)
	}
}

// FuzzReadStripped: reading never panics, and a module read whole has the
// digest and size of all its bytes and passes or fails the structural
// check as the bytes themselves do once custom sections are set aside.
func FuzzReadStripped(f *testing.F) {
	f.Add(wasmtest.Module(abi.Version, 0, true))
	f.Add(padded(wasmtest.Module(abi.Version, 0, false), "name", 3))
	f.Add(padded(wasmtest.Module(abi.Version, 0, false), "pad", 40))
	f.Add(indexModule())
	f.Fuzz(func(t *testing.T, bin []byte) {
		code, sum, size, err := readStripped(bytes.NewReader(bin), 1<<20)
		if err != nil {
			return
		}
		if sum != sha256.Sum256(bin) || size != int64(len(bin)) {
			t.Fatalf("digest or size (%d) differ from the input's (%d)", size, len(bin))
		}
		if len(code) > len(bin) {
			t.Fatalf("kept %d bytes of %d", len(code), len(bin))
		}
		prepareModule(code, true) // must not panic
	})
}
