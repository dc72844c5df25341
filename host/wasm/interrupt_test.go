package wasm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmfarm/wasmfarm/host/abi"
	"github.com/wasmfarm/wasmfarm/host/internal/leb"
	"github.com/wasmfarm/wasmfarm/host/internal/wasmtest"
)

// TestDeadlineDuringGC runs a guest that loops forever while the host
// collects garbage. Machine code cannot be preempted, so without the
// instrumentation's periodic call into Go the collector's stop-the-world
// would wait for the guest forever, and the timer meant to stop the guest
// with it: the whole process would hang (this test would then fail by the
// test binary's timeout).
func TestDeadlineDuringGC(t *testing.T) {
	ctx := context.Background()
	p := loopPool(t, 200*time.Millisecond)
	var stop atomic.Bool
	var gcs atomic.Int64
	go func() {
		for !stop.Load() {
			runtime.GC()
			gcs.Add(1)
		}
	}()
	start := time.Now()
	err := p.Handle(ctx, &Call{})
	stop.Store(true)
	if !errors.Is(err, ErrDeadline) {
		t.Fatalf("got %v, want ErrDeadline", err)
	}
	if gcs.Load() == 0 {
		t.Fatal("no garbage collection ran while the guest looped")
	}
	t.Logf("stopped after %v; %d collections meanwhile", time.Since(start).Round(time.Millisecond), gcs.Load())
}

// TestPoolAbort: Abort stops a guest looping under an hour's deadline
// and fails a call waiting for the pool's only instance (the slot the
// stopped call frees must not start a new guest); both end with ErrClosed
// (not ErrDeadline), and the pool takes no more calls.
func TestPoolAbort(t *testing.T) {
	ctx := context.Background()
	p := loopPool(t, time.Hour)
	done := make(chan error, 2)
	go func() { done <- p.Handle(ctx, &Call{}) }()
	waitFor := func(cond func() bool) {
		for {
			p.mu.Lock()
			ok := cond()
			p.mu.Unlock()
			if ok {
				return
			}
			runtime.Gosched()
		}
	}
	waitFor(func() bool { return len(p.idle) == 0 }) // the first call holds the instance
	go func() { done <- p.Handle(ctx, &Call{}) }()
	waitFor(func() bool { return p.waiting == 1 }) // the second waits for it
	p.Abort()
	for i := range 2 {
		select {
		case err := <-done:
			if !errors.Is(err, ErrClosed) || errors.Is(err, ErrDeadline) {
				t.Fatalf("call %d after Abort ended with %v, want ErrClosed", i+1, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("call %d still ran 20 s after Abort (its deadline is an hour)", i+1)
		}
	}
	if err := p.Handle(ctx, &Call{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("a call after Abort: %v, want ErrClosed", err)
	}
	if live, _, _ := p.Stats(); live != 0 {
		t.Fatalf("%d instances live after Abort", live)
	}
}

// Helpers to write modules by hand.
func sec(id byte, content []byte) []byte {
	return append(appendLEB([]byte{id}, uint32(len(content))), content...)
}

func str(s string) []byte { return append(appendLEB(nil, uint32(len(s))), s...) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

const wasmHeader = "\x00asm\x01\x00\x00\x00"

// indexModule imports a global (env.g) and a memory, defines a global of
// its own, and exports run, which loops 5000 times adding both globals and
// filling memory: the added globals must not shift the existing indices,
// and the refills (5000 loops, 5000 fills) must not change the result or
// the memory's size. It has a DWARF section and a name section.
func indexModule() []byte {
	body := cat(
		[]byte{0x01, 0x02, 0x7F}, // locals: 2 × i32 (i, acc)
		[]byte{0x03, 0x40},       // loop
		[]byte{0x20, 0x01, 0x23, 0x00, 0x6A, 0x23, 0x01, 0x6A, 0x21, 0x01}, // acc += g0 + g1
		[]byte{0x41, 0x00, 0x41, 0xAB, 0x01, 0x41, 0x10, 0xFC, 0x0B, 0x00}, // memory.fill(0, 0xAB, 16)
		[]byte{0x20, 0x00, 0x41, 0x01, 0x6A, 0x22, 0x00},                   // i++ (tee)
		[]byte{0x41, 0x88, 0x27, 0x48, 0x0D, 0x00},                         // i < 5000: br_if 0
		[]byte{0x0B, 0x20, 0x01, 0x0B},                                     // end; acc; end
	)
	return cat([]byte(wasmHeader),
		sec(1, []byte{0x01, 0x60, 0x00, 0x01, 0x7F}), // () -> i32
		sec(2, cat([]byte{0x02},
			str("env"), str("g"), []byte{0x03, 0x7F, 0x00}, // global i32 const
			str("env"), str("mem"), []byte{0x02, 0x00, 0x01})), // memory min 1
		sec(3, []byte{0x01, 0x00}),
		sec(6, []byte{0x01, 0x7F, 0x00, 0x41, 0xE4, 0x00, 0x0B}), // i32 const 100
		sec(7, cat([]byte{0x01}, str("run"), []byte{0x00, 0x00})),
		sec(10, cat([]byte{0x01}, appendLEB(nil, uint32(len(body))), body)),
		sec(0, cat(str(".debug_info"), []byte{1, 2, 3})),
		sec(0, cat(str("name"), []byte{0x01, 0x06, 0x01, 0x00}, str("run"))),
	)
}

// envModule exports the global g = 7 and a memory, for indexModule.
func envModule() []byte {
	return cat([]byte(wasmHeader),
		sec(5, []byte{0x01, 0x00, 0x01}),
		sec(6, []byte{0x01, 0x7F, 0x00, 0x41, 0x07, 0x0B}),
		sec(7, cat([]byte{0x02}, str("g"), []byte{0x03, 0x00}, str("mem"), []byte{0x02, 0x00})),
	)
}

func sectionNames(t *testing.T, bin []byte) []string {
	t.Helper()
	r := reader{b: bin, off: 8}
	var names []string
	for !r.done() {
		id := r.byte()
		p := r.bytes(int(r.u32()))
		if r.err != nil {
			t.Fatal(r.err)
		}
		name := string(rune('0' + id))
		if id == 0 {
			name, _ = customName(p)
		}
		names = append(names, name)
	}
	return names
}

func TestInstrumentKeepsMeaning(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	if _, err := r.InstantiateWithConfig(ctx, envModule(), wazero.NewModuleConfig().WithName("env")); err != nil {
		t.Fatal(err)
	}
	orig := indexModule()
	out, loops, err := instrumentLoops(orig)
	if err != nil {
		t.Fatal(err)
	}
	if loops != 1 {
		t.Fatalf("instrumented %d loops, want 1", loops)
	}
	if got := strings.Join(sectionNames(t, out), " "); got != "1 2 3 6 7 : name" {
		// ':' is the code section (id 10); .debug_info is dropped
		t.Fatalf("sections %q", got)
	}
	for _, bin := range [][]byte{orig, out} {
		m, err := r.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithName(""))
		if err != nil {
			t.Fatal(err)
		}
		res, err := m.ExportedFunction("run").Call(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := api.DecodeI32(res[0]); got != 5000*107 {
			t.Fatalf("run = %d, want %d", got, 5000*107)
		}
		if size := m.Memory().Size(); size != 65536 {
			t.Fatalf("memory is %d bytes after the run", size)
		}
		m.Close(ctx)
	}
}

func TestInstrumentRefusals(t *testing.T) {
	loop := wasmtest.Module(abi.Version, 0, true)
	noMemory := cat([]byte(wasmHeader),
		sec(1, []byte{0x01, 0x60, 0x00, 0x00}),
		sec(3, []byte{0x01, 0x00}),
		sec(10, []byte{0x01, 0x02, 0x00, 0x0B}))
	tailCall := cat([]byte(wasmHeader),
		sec(1, []byte{0x01, 0x60, 0x00, 0x00}),
		sec(3, []byte{0x01, 0x00}),
		sec(5, []byte{0x01, 0x00, 0x01}),
		sec(10, []byte{0x01, 0x04, 0x00, 0x12, 0x00, 0x0B})) // return_call 0
	reserved := cat([]byte(wasmHeader),
		sec(5, []byte{0x01, 0x00, 0x01}),
		sec(7, cat([]byte{0x01}, str(deadlineGlobal), []byte{0x02, 0x00})))
	for _, tc := range []struct {
		name, want string
		bin        []byte
	}{
		{"not wasm", "magic", []byte("hello world")},
		{"component", "version", []byte("\x00asm\x0d\x00\x01\x00")},
		{"truncated", "section", loop[:len(loop)-3]},
		{"no memory", "no memory", noMemory},
		{"tail call", "opcode 0x12", tailCall},
		{"reserved export", deadlineGlobal, reserved},
		// Global 0 and 1 do not exist in the module; after the rewrite
		// they would be the host's $stop and $fuel.
		{"global.set of $fuel", "global 1 at offset", globalEscape(0x24, 1)},
		{"global.get of $stop", "global 0 at offset", globalEscape(0x23, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := instrumentLoops(tc.bin)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
}

// globalEscape is a module with no globals whose handle runs op (global.get
// or global.set) on global idx in a loop of 1<<30 turns, storing
// 0x7fffffff first for a set. Invalid as written; before the rewrite
// checked global indexes, it validated after it and reached the deadline
// globals: a guest that refilled $fuel ran past its deadline, and the
// garbage collector's stop-the-world waited for it.
func globalEscape(op byte, idx byte) []byte {
	vbody := append([]byte{0x00, 0x41}, leb.AppendSigned(nil, abi.Version)...)
	vbody = append(vbody, 0x0b)
	h := []byte{0x01, 0x01, 0x7f, 0x41}
	h = append(leb.AppendSigned(h, 1<<30), 0x21, 0x00, 0x03, 0x40)
	if op == 0x24 {
		h = append(leb.AppendSigned(append(h, 0x41), 0x7fffffff), 0x24, idx)
	} else {
		h = append(h, 0x23, idx, 0x1a)
	}
	h = append(h, 0x20, 0x00, 0x41, 0x01, 0x6b, 0x22, 0x00, 0x0d, 0x00, 0x0b, 0x41, 0x00, 0x0b)
	code := appendLEB([]byte{0x02}, uint32(len(vbody)))
	code = append(code, vbody...)
	code = appendLEB(code, uint32(len(h)))
	code = append(code, h...)
	return cat([]byte(wasmHeader),
		sec(1, []byte{0x01, 0x60, 0x00, 0x01, 0x7f}),
		sec(3, []byte{0x02, 0x00, 0x00}),
		sec(5, []byte{0x01, 0x00, 0x01}),
		sec(7, cat([]byte{0x03}, str("wasmfarm_abi_version"), []byte{0x00, 0x00},
			str("handle"), []byte{0x00, 0x01}, str("memory"), []byte{0x02, 0x00})),
		sec(10, code))
}

// TestGuestCannotReachDeadlineGlobals: the runtime refuses to compile a
// module that names the globals the rewrite adds, and, with or without
// deadlines, one that names a global far out of range (the check's own
// error in both modes).
func TestGuestCannotReachDeadlineGlobals(t *testing.T) {
	_, err := newRuntime(t).Compile(context.Background(), "escape", globalEscape(0x24, 1))
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("compiling a module that sets the host's $fuel: %v, want a refusal", err)
	}
	for _, noDeadlines := range []bool{false, true} {
		rt, err := NewRuntime(context.Background(), Config{CacheDir: "-", NoDeadlines: noDeadlines})
		if err != nil {
			t.Fatal(err)
		}
		_, err = rt.Compile(context.Background(), "far", globalEscape(0x23, 48))
		rt.Close(context.Background())
		if !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), "global 48") {
			t.Fatalf("NoDeadlines %v: global.get 48 in a module without globals: %v, want ErrInvalidModule", noDeadlines, err)
		}
	}
}

// TestInstrumentSampleApps rewrites the committed sample modules and
// checks that wazero compiles the results.
func TestInstrumentSampleApps(t *testing.T) {
	paths, _ := filepath.Glob("../../wasmapps/build/*.wasm")
	if len(paths) == 0 {
		t.Fatal("no sample modules in wasmapps/build")
	}
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	for _, path := range paths {
		bin, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out, loops, err := instrumentLoops(bin)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if loops < 100 {
			t.Fatalf("%s: only %d loops instrumented", path, loops)
		}
		if _, err := r.CompileModule(ctx, out); err != nil {
			t.Fatalf("%s instrumented: %v", path, err)
		}
		t.Logf("%s: %d loops, %d -> %d bytes", filepath.Base(path), loops, len(bin), len(out))
	}
}

// FuzzInstrumentLoops: the rewrite never panics, and whatever wazero
// compiles it rewrites into something wazero compiles, unless it is over
// a limit (limits.go). wazero only sees what passed the structural check:
// it allocates by declared counts, gigabytes for some small inputs.
func FuzzInstrumentLoops(f *testing.F) {
	f.Add(wasmtest.Module(abi.Version, 0, true))
	f.Add(wasmtest.Module(abi.Version, 1, false))
	f.Add(indexModule())
	f.Add(envModule())
	f.Add(startModule([]byte{0x00, 0x0b}))
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	f.Fuzz(func(t *testing.T, bin []byte) {
		out, _, err := instrumentLoops(bin)
		_, _, cerr := prepareModule(bin, false)
		reserved := func(err error) bool {
			return strings.Contains(err.Error(), deadlineGlobal) || strings.Contains(err.Error(), startExport)
		}
		if (cerr == nil) != (err == nil || errors.Is(err, errNoMemory) || reserved(err)) {
			t.Fatalf("checking alone: %v; checking and rewriting: %v", cerr, err)
		}
		if cerr != nil {
			return // never given to wazero, which could allocate gigabytes
		}
		cm, cerr := compileModule(ctx, r, bin)
		if cerr != nil {
			if strings.Contains(cerr.Error(), "wazero panicked") {
				t.Fatalf("the checks passed a module wazero panics on: %v", cerr)
			}
			return
		}
		cm.Close(ctx)
		if err != nil {
			if errors.Is(err, errNoMemory) || reserved(err) {
				return
			}
			t.Fatalf("wazero compiles the module, the rewrite refuses it: %v", err)
		}
		cm, err = compileModule(ctx, r, out)
		if err != nil {
			t.Fatalf("the rewritten module does not compile: %v", err)
		}
		cm.Close(ctx)
	})
}
