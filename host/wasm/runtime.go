package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wasmfarm/wasmfarm/host/abi"
)

// Config configures a [Runtime].
type Config struct {
	// CacheDir holds wazero's compilation cache. "" means
	// os.UserCacheDir()/wasmfarm/wazero; "-" disables the disk cache.
	CacheDir string
	// CacheMaxBytes bounds the disk cache: wazero writes one entry per
	// module version compiled and never removes any, so NewRuntime and
	// every Compile remove the least recently compiled entries until the
	// rest add up to at most this many bytes. Entries of modules this
	// runtime holds open (not yet closed: deployed) are kept, even over
	// the bound; a removed entry only costs a recompilation the next time
	// its module is compiled. 0 means DefaultCacheMaxBytes (512 MiB); a
	// negative value means unbounded. Entries of other wazero versions
	// (other wazero-* directories in CacheDir) count and go first, as
	// they are never read again.
	CacheMaxBytes int64
	// MemoryLimit caps each instance's linear memory, in bytes (rounded
	// down to 64 KiB pages); 0 means 64 MiB.
	MemoryLimit uint64
	// NoDeadlines compiles guests without the deadline checks that Compile
	// puts at the top of every loop (see interrupt.go). Those checks are
	// what lets a deadline stop a guest; they cost a load and a branch per
	// loop iteration. Without them a guest that loops forever keeps its
	// instance and an OS thread until the process ends: use it only for
	// trusted apps, or to measure what the checks cost. Such a guest
	// also holds up the process's garbage collector (machine code cannot
	// be preempted), and with it every other request.
	NoDeadlines bool
	// Logger receives the guests' log calls and stderr; nil discards.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with the defaults spelled out.
func DefaultConfig() Config {
	return Config{
		CacheDir:      "",                   // os.UserCacheDir()/wasmfarm/wazero
		CacheMaxBytes: DefaultCacheMaxBytes, // 512 MiB
		MemoryLimit:   64 << 20,             // 64 MiB per instance
	}
}

// Runtime is one wazero runtime with the wasmfarm host module. Safe for
// concurrent use.
type Runtime struct {
	r      wazero.Runtime
	cache  wazero.CompilationCache
	disk   *diskCache // nil without a disk cache
	log    *slog.Logger
	memMax uint64

	noDeadlines bool
}

// Deadlines reports whether calls are stopped at their deadline (see
// Config.NoDeadlines).
func (rt *Runtime) Deadlines() bool { return !rt.noDeadlines }

// NewRuntime creates the runtime, its compilation cache and the host
// module.
func NewRuntime(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.MemoryLimit == 0 {
		cfg.MemoryLimit = DefaultConfig().MemoryLimit
	}
	pages := cfg.MemoryLimit / 65536
	if pages < 1 || pages > 65536 {
		return nil, fmt.Errorf("wasm: memory limit %d bytes is outside 64 KiB..4 GiB", cfg.MemoryLimit)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// WithCloseOnContextDone stays off: deadlines are enforced by the
	// checks Compile inserts, which cost far less (interrupt.go).
	rc := wazero.NewRuntimeConfig().
		WithMemoryLimitPages(uint32(pages))
	var cache wazero.CompilationCache
	var disk *diskCache
	if perfMap && cfg.CacheDir != "-" {
		cfg.Logger.Info("wasm: built with -tags perfmap: the compilation cache is off, so that every function compiled is in the perf map", "map", fmt.Sprintf("/tmp/perf-%d.map", os.Getpid()))
		cfg.CacheDir = "-"
	}
	if cfg.CacheDir != "-" {
		dir := cfg.CacheDir
		if dir == "" {
			base, err := os.UserCacheDir()
			if err != nil {
				base = os.TempDir()
			}
			dir = filepath.Join(base, "wasmfarm", "wazero")
		}
		c, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			return nil, fmt.Errorf("wasm: compilation cache in %s: %w", dir, err)
		}
		cache = c
		rc = rc.WithCompilationCache(c)
		if cfg.CacheMaxBytes == 0 {
			cfg.CacheMaxBytes = DefaultCacheMaxBytes
		}
		disk = newDiskCache(dir, cfg.CacheMaxBytes, cfg.Logger)
		disk.prune()
	}
	rt := &Runtime{r: wazero.NewRuntimeWithConfig(ctx, rc), cache: cache, disk: disk, log: cfg.Logger, memMax: pages * 65536, noDeadlines: cfg.NoDeadlines}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt.r); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("wasm: WASI: %w", err)
	}
	if err := instantiateHostModule(ctx, rt.r, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("wasm: host module: %w", err)
	}
	return rt, nil
}

// MemoryLimit returns the per-instance memory cap in bytes.
func (rt *Runtime) MemoryLimit() uint64 { return rt.memMax }

// Close closes the runtime and every module and instance it created.
func (rt *Runtime) Close(ctx context.Context) error {
	err := rt.r.Close(ctx)
	if rt.cache != nil {
		err = errors.Join(err, rt.cache.Close(ctx))
	}
	return err
}

// Module is a compiled app module, checked against the ABI. It is compiled
// once per version (per distinct bytes) and shared by the instances of its
// pools.
type Module struct {
	rt     *Runtime
	name   string
	digest string
	size   int
	cm     wazero.CompiledModule
	// release lets the compilation cache prune the module's entry.
	release func()

	hasCreated, hasDestroyed, hasInit, hasStart bool
}

// Name returns the name given to Compile.
func (m *Module) Name() string { return m.name }

// Digest returns the hex SHA-256 of the module's bytes: its version.
func (m *Module) Digest() string { return m.digest }

// Size returns the module's size in bytes.
func (m *Module) Size() int { return m.size }

// Close releases the compiled code. Pools using it must be closed first.
func (m *Module) Close(ctx context.Context) error {
	if m.release != nil {
		m.release()
	}
	return m.cm.Close(ctx)
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// Compile compiles and checks a module. name identifies it in errors and
// logs. Refusals are *ModuleError.
func (rt *Runtime) Compile(ctx context.Context, name string, wasm []byte) (*Module, error) {
	return rt.compile(ctx, name, wasm, sha256.Sum256(wasm), len(wasm))
}

// compile compiles wasm, the module whose digest is sum and size is size
// (wasm may lack custom sections of the original: see CompileFrom).
func (rt *Runtime) compile(ctx context.Context, name string, wasm []byte, sum [32]byte, size int) (*Module, error) {
	invalid := func(err error) error {
		return &ModuleError{Module: name, Reason: "not a valid WebAssembly module: " + err.Error(), Err: fmt.Errorf("%w: %w", ErrInvalidModule, err)}
	}
	// The structure is checked before wazero decodes it (limits.go), and
	// the loops are instrumented for the deadline (interrupt.go).
	code, _, err := prepareModule(wasm, !rt.noDeadlines)
	noMemory := errors.Is(err, errNoMemory)
	switch {
	case noMemory:
		code = wasm // compiled as is, for the ABI check's refusal
	case err != nil:
		return nil, invalid(err)
	}
	// Functions compile in parallel, one worker per core: a cold compile
	// of the 2.3 MB counter app took 0.8-1 s with wazero's default of
	// one, 0.5 s with two.
	cm, err := compileModule(experimental.WithCompilationWorkers(ctx, runtime.GOMAXPROCS(0)), rt.r, code)
	if err != nil {
		return nil, invalid(err)
	}
	m := &Module{rt: rt, name: name, digest: hex.EncodeToString(sum[:]), size: size, cm: cm}
	if err := m.check(); err != nil {
		cm.Close(ctx)
		rt.disk.refused()
		return nil, err
	}
	if noMemory { // unreachable: check requires an exported memory
		cm.Close(ctx)
		rt.disk.refused()
		return nil, m.refuse(ErrMissingExport, "it has no memory")
	}
	// Its cache entry is now recent, and kept while m is open.
	m.release = rt.disk.compiled(code)
	return m, nil
}

// compileModule is r.CompileModule, with a panic of its validation (on
// this goroutine) turned into an error: wazero v1.12.0 panicked on a
// global index out of range, which prepareModule now refuses first.
func compileModule(ctx context.Context, r wazero.Runtime, code []byte) (cm wazero.CompiledModule, err error) {
	defer func() {
		if p := recover(); p != nil {
			cm, err = nil, fmt.Errorf("wazero panicked compiling it: %v", p)
		}
	}()
	return r.CompileModule(ctx, code)
}

func (m *Module) refuse(sentinel error, format string, args ...any) error {
	reason := fmt.Sprintf(format, args...)
	return &ModuleError{Module: m.name, Reason: reason, Err: fmt.Errorf("%w: %s", sentinel, reason)}
}

// check verifies the exports and imports against the ABI.
func (m *Module) check() error {
	exports := m.cm.ExportedFunctions()
	need := func(name string, required bool) (bool, error) {
		def, ok := exports[name]
		if !ok {
			if required {
				return false, m.refuse(ErrMissingExport, "it does not export %q (is it built with the wasmfarm SDK, -buildmode=c-shared?)", name)
			}
			return false, nil
		}
		if len(def.ParamTypes()) != 0 || len(def.ResultTypes()) != 1 || def.ResultTypes()[0] != i32 {
			return false, m.refuse(ErrMissingExport, "export %q has signature %v -> %v, want () -> i32", name, def.ParamTypes(), def.ResultTypes())
		}
		return true, nil
	}
	if _, err := need(abi.ExportVersion, true); err != nil {
		return err
	}
	if _, err := need(abi.ExportHandle, true); err != nil {
		return err
	}
	var err error
	if m.hasCreated, err = need(abi.ExportSessionCreated, false); err != nil {
		return err
	}
	if m.hasDestroyed, err = need(abi.ExportSessionDestroyed, false); err != nil {
		return err
	}
	if def, ok := exports[abi.ExportInitialize]; ok {
		if len(def.ParamTypes()) != 0 || len(def.ResultTypes()) != 0 {
			return m.refuse(ErrMissingExport, "export %q must be () -> ()", abi.ExportInitialize)
		}
		m.hasInit = true
	}
	_, m.hasStart = exports[startExport] // added by prepareModule
	if _, ok := m.cm.ExportedMemories()["memory"]; !ok {
		return m.refuse(ErrMissingExport, "it does not export its memory as \"memory\"")
	}
	for _, imp := range m.cm.ImportedFunctions() {
		mod, name, _ := imp.Import()
		switch mod {
		case wasi_snapshot_preview1.ModuleName:
			continue
		case abi.ModuleName:
			if name == "log" {
				if !sameTypes(imp.ParamTypes(), []api.ValueType{i32, i32, i32}) || len(imp.ResultTypes()) != 0 {
					return m.refuse(ErrUnknownImport, "it imports %s.log with the wrong signature", mod)
				}
				continue
			}
			hf, ok := hostFuncByName[name]
			if !ok {
				return m.refuse(ErrUnknownImport, "it imports %s.%s, which ABI version %d does not provide", mod, name, abi.Version)
			}
			if !sameTypes(imp.ParamTypes(), hf.params) || !sameTypes(imp.ResultTypes(), hf.results) {
				return m.refuse(ErrUnknownImport, "it imports %s.%s as %v -> %v, the host provides %v -> %v", mod, name,
					imp.ParamTypes(), imp.ResultTypes(), hf.params, hf.results)
			}
		default:
			return m.refuse(ErrUnknownImport, "it imports %s.%s from a module the host does not provide", mod, name)
		}
	}
	return nil
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
