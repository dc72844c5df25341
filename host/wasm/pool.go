package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmfarm/wasmfarm/host/abi"
)

// PoolConfig configures a [Pool].
type PoolConfig struct {
	// Size is the most instances the pool keeps; 0 means 2 × GOMAXPROCS.
	Size int
	// Deadline bounds each call; 0 means 30 seconds.
	Deadline time.Duration
	// InitDeadline bounds an instance's _initialize and version check;
	// 0 means 30 seconds.
	InitDeadline time.Duration
	// Logger receives the pool's logs and its guests' stderr; nil means
	// the runtime's logger.
	Logger *slog.Logger
}

// DefaultPoolConfig returns the pool defaults.
func DefaultPoolConfig() PoolConfig {
	return PoolConfig{
		Size:         2 * runtime.GOMAXPROCS(0), // about two instances per core
		Deadline:     30 * time.Second,          // per request
		InitDeadline: 30 * time.Second,
	}
}

// Pool holds instances of one module and runs calls on them, one call per
// instance at a time. Instances are created on demand up to Size and
// discarded after a trap or deadline. Safe for concurrent use.
type Pool struct {
	m   *Module
	cfg PoolConfig
	log *slog.Logger

	// Idle instances are reused last in, first out, so that under a
	// steady load the same few instances (about one per busy core) serve
	// and their memory stays in the CPU caches; a queue would rotate
	// through every instance. An acquirer that finds none idle and none to
	// create waits on handoff, to which release passes its instance while
	// anyone waits.
	mu      sync.Mutex
	idle    []*instance    // most recently released last
	waiting int            // acquirers blocked in acquire
	handoff chan *instance // capacity Size: a release never blocks
	slots   chan struct{}  // one token per live instance

	closed  atomic.Bool
	aborted atomic.Bool
	live    map[*instance]struct{} // every instance not closed; under mu

	created   atomic.Int64
	discarded atomic.Int64
}

type instance struct {
	mod                        api.Module
	handle, created, destroyed api.Function
	ctx                        *instanceCtx
	// stack holds a call's result (every export called per request is
	// () -> i32): CallWithStack does not allocate one per call as Call does.
	stack [1]uint64
}

// instanceCtx is the context of every call on one instance. When a call
// runs past its deadline, a per-instance timer (reset for each call, so
// enforcing the deadline allocates nothing per request) sets the
// instance's deadline global, which makes the guest trap at its next loop
// iteration (interrupt.go), and closes Done, which wakes a guest sleeping
// in the host. The pool discards the instance, so a fired context is never
// reused. Value carries the current Call to the host functions.
type instanceCtx struct {
	done  chan struct{}
	fired atomic.Bool
	call  *Call
	timer *time.Timer
	stop  api.MutableGlobal // the module's deadline global; nil without deadlines
}

func newInstanceCtx() *instanceCtx {
	c := &instanceCtx{done: make(chan struct{})}
	c.timer = time.AfterFunc(time.Hour, c.expire)
	c.timer.Stop()
	return c
}

// expire stops the running call. It runs on the timer's goroutine: the
// store into the global is seen by the guest's machine code at its next
// loop iteration.
func (c *instanceCtx) expire() {
	if c.fired.CompareAndSwap(false, true) {
		if c.stop != nil {
			c.stop.Set(1)
		}
		close(c.done)
	}
}

// nanosleep is the guest's sleep (WASI clock subscriptions): it ends early
// when the call's deadline passes.
func (c *instanceCtx) nanosleep(ns int64) {
	t := time.NewTimer(time.Duration(ns))
	select {
	case <-t.C:
	case <-c.done:
		t.Stop()
	}
}

func (c *instanceCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *instanceCtx) Done() <-chan struct{}       { return c.done }

func (c *instanceCtx) Err() error {
	if c.fired.Load() {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *instanceCtx) Value(key any) any {
	if _, ok := key.(callKey); ok {
		return c.call
	}
	return nil
}

// NewPool creates a pool and its first instance, which checks that the
// module initializes and speaks this host's ABI version; a refusal is a
// *ModuleError.
func NewPool(ctx context.Context, m *Module, cfg PoolConfig) (*Pool, error) {
	def := DefaultPoolConfig()
	if cfg.Size <= 0 {
		cfg.Size = def.Size
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = def.Deadline
	}
	if cfg.InitDeadline <= 0 {
		cfg.InitDeadline = def.InitDeadline
	}
	if cfg.Logger == nil {
		cfg.Logger = m.rt.log
	}
	p := &Pool{
		m:       m,
		cfg:     cfg,
		log:     cfg.Logger.With("app", m.name),
		idle:    make([]*instance, 0, cfg.Size),
		live:    make(map[*instance]struct{}, cfg.Size),
		handoff: make(chan *instance, cfg.Size),
		slots:   make(chan struct{}, cfg.Size),
	}
	p.slots <- struct{}{}
	in, err := p.newInstance(ctx)
	if err != nil {
		<-p.slots
		return nil, err
	}
	p.idle = append(p.idle, in)
	return p, nil
}

// Module returns the pool's module.
func (p *Pool) Module() *Module { return p.m }

// Deadline returns the per-call deadline.
func (p *Pool) Deadline() time.Duration { return p.cfg.Deadline }

// Stats returns the number of live instances, and how many were created
// and discarded since the pool started.
func (p *Pool) Stats() (live int, created, discarded int64) {
	return len(p.slots), p.created.Load(), p.discarded.Load()
}

// GuestMemory returns the linear memory, in bytes, of the idle instances
// (those not serving a request right now).
func (p *Pool) GuestMemory() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var total uint64
	for _, in := range p.idle {
		total += uint64(in.mod.Memory().Size())
	}
	return total
}

// popIdle removes and returns the most recently released idle instance,
// or nil. It holds mu.
func (p *Pool) popIdle() *instance {
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	in := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	return in
}

// take returns the most recently released idle instance, or one handed
// to a waiter that went away, or nil.
func (p *Pool) take() *instance {
	p.mu.Lock()
	in := p.popIdle()
	p.mu.Unlock()
	if in != nil {
		return in
	}
	select {
	case in := <-p.handoff:
		return in
	default:
		return nil
	}
}

// HasSessionCreated and HasSessionDestroyed report the optional hooks.
func (p *Pool) HasSessionCreated() bool   { return p.m.hasCreated }
func (p *Pool) HasSessionDestroyed() bool { return p.m.hasDestroyed }

// logWriter turns a guest's stdout or stderr into log records.
type logWriter struct {
	log   *slog.Logger
	level slog.Level
	fd    string
}

func (w logWriter) Write(b []byte) (int, error) {
	if s := strings.TrimRight(string(b), "\n"); s != "" {
		w.log.Log(context.Background(), w.level, s, "source", w.fd)
	}
	return len(b), nil
}

func (p *Pool) newInstance(ctx context.Context) (*instance, error) {
	ictx := newInstanceCtx()
	mc := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(). // a reactor's _initialize is called below
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(ictx.nanosleep).
		WithRandSource(rand.Reader).
		WithStdout(logWriter{p.log, slog.LevelInfo, "stdout"}).
		WithStderr(logWriter{p.log, slog.LevelWarn, "stderr"})
	mod, err := p.m.rt.r.InstantiateModule(ctx, p.m.cm, mc)
	if err != nil {
		return nil, &ModuleError{Module: p.m.name, Reason: "instantiation failed: " + err.Error(), Err: fmt.Errorf("%w: %w", ErrInstantiate, err)}
	}
	fail := func(sentinel error, reason string) (*instance, error) {
		ictx.timer.Stop()
		mod.Close(context.Background())
		return nil, &ModuleError{Module: p.m.name, Reason: reason, Err: fmt.Errorf("%w: %s", sentinel, reason)}
	}
	if !p.m.rt.noDeadlines {
		g, ok := mod.ExportedGlobal(deadlineGlobal).(api.MutableGlobal)
		if !ok {
			return fail(ErrInstantiate, "the deadline global is missing (module not compiled by this runtime?)")
		}
		ictx.stop = g
		ictx.timer.Reset(p.cfg.InitDeadline)
	}
	// init runs an export during instantiation, under InitDeadline.
	callInit := func(export string) ([]uint64, error) {
		res, err := mod.ExportedFunction(export).Call(ictx)
		if err != nil && ictx.fired.Load() {
			return nil, fmt.Errorf("ran past its %v deadline", p.cfg.InitDeadline)
		}
		return res, err
	}
	if p.m.hasStart {
		if _, err := callInit(startExport); err != nil {
			return fail(ErrInstantiate, "the start function failed: "+err.Error())
		}
	}
	if p.m.hasInit {
		if _, err := callInit(abi.ExportInitialize); err != nil {
			return fail(ErrInstantiate, "_initialize failed: "+err.Error())
		}
	}
	res, err := callInit(abi.ExportVersion)
	if err != nil {
		return fail(ErrInstantiate, abi.ExportVersion+" failed: "+err.Error())
	}
	if v := api.DecodeI32(res[0]); v != abi.Version {
		return fail(ErrABIVersion, fmt.Sprintf("it speaks ABI version %d, this host speaks version %d", v, abi.Version))
	}
	if !p.m.rt.noDeadlines && !ictx.timer.Stop() {
		return fail(ErrInstantiate, fmt.Sprintf("initialization ran past its %v deadline", p.cfg.InitDeadline))
	}
	in := &instance{mod: mod, handle: mod.ExportedFunction(abi.ExportHandle), ctx: ictx}
	if p.m.hasCreated {
		in.created = mod.ExportedFunction(abi.ExportSessionCreated)
	}
	if p.m.hasDestroyed {
		in.destroyed = mod.ExportedFunction(abi.ExportSessionDestroyed)
	}
	p.created.Add(1)
	p.mu.Lock()
	p.live[in] = struct{}{}
	p.mu.Unlock()
	return in, nil
}

// discard closes an instance that is no longer in the pool.
func (p *Pool) discard(in *instance) {
	in.ctx.timer.Stop()
	in.mod.Close(context.Background())
	p.mu.Lock()
	delete(p.live, in)
	p.mu.Unlock()
	<-p.slots
}

// acquire returns a free instance, creating one if the pool has room, or
// waits until one is released or ctx ends.
func (p *Pool) acquire(ctx context.Context) (*instance, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	// Take the most recently released instance, or register as a waiter
	// in the same critical section: a release after it sees the waiter and
	// hands its instance over.
	p.mu.Lock()
	in := p.popIdle()
	if in == nil {
		p.waiting++
	}
	p.mu.Unlock()
	if in != nil {
		return in, nil
	}
	defer func() {
		p.mu.Lock()
		p.waiting--
		p.mu.Unlock()
	}()
	select {
	case in := <-p.handoff: // one handed to a waiter that went away
		return in, nil
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Deadline)
	defer cancel()
	select {
	case in := <-p.handoff:
		return in, nil
	case p.slots <- struct{}{}:
		in, err := p.newInstance(ctx)
		if err != nil {
			<-p.slots
			return nil, err
		}
		if p.closed.Load() {
			// Closed meanwhile (an instance released by an aborted call
			// frees the slot this waiter took): Abort may not have seen
			// this instance, so it must not run.
			p.discard(in)
			return nil, ErrClosed
		}
		return in, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrBusy, context.Cause(ctx))
	}
}

// release returns in to the pool, or discards it when it is broken or the
// pool is closed.
func (p *Pool) release(in *instance, broken bool) {
	if broken || p.closed.Load() {
		if broken {
			p.discarded.Add(1)
		}
		p.discard(in)
		return
	}
	p.mu.Lock()
	if p.waiting > 0 {
		p.mu.Unlock()
		p.handoff <- in
	} else {
		p.idle = append(p.idle, in)
		p.mu.Unlock()
	}
	if p.closed.Load() {
		p.drain() // Close ran meanwhile
	}
}

// Warm instantiates instances until n (at most Size) are live, so that the
// first requests do not pay for instantiation.
func (p *Pool) Warm(ctx context.Context, n int) error {
	n = min(n, p.cfg.Size)
	var made []*instance
	defer func() {
		for _, in := range made {
			p.release(in, false)
		}
	}()
	for len(p.slots) < n {
		select {
		case p.slots <- struct{}{}:
		default:
			return nil
		}
		in, err := p.newInstance(ctx)
		if err != nil {
			<-p.slots
			return err
		}
		made = append(made, in)
	}
	return nil
}

// Handle runs the guest's handle export for c under the pool's deadline.
// ctx bounds only the wait for a free instance: once running, a guest is
// bounded by the deadline alone (a client that goes away does not stop
// it). It returns nil when the guest succeeded; ErrAppFailed,
// ErrSessionUnavailable, ErrDeadline, ErrTrap or ErrBusy otherwise (wrapped
// with details).
func (p *Pool) Handle(ctx context.Context, c *Call) error {
	return p.call(ctx, c, "")
}

// Hook runs an optional session hook export (abi.ExportSessionCreated or
// abi.ExportSessionDestroyed) for c; it does nothing if the module lacks
// it.
func (p *Pool) Hook(ctx context.Context, c *Call, export string) error {
	if (export == abi.ExportSessionCreated && !p.m.hasCreated) || (export == abi.ExportSessionDestroyed && !p.m.hasDestroyed) {
		return nil
	}
	return p.call(ctx, c, export)
}

func (p *Pool) call(ctx context.Context, c *Call, export string) error {
	in, err := p.acquire(ctx)
	if err != nil {
		if errors.Is(err, ErrBusy) && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: waited %v: %w", ErrDeadline, p.cfg.Deadline, err)
		}
		return err
	}
	fn := in.handle
	switch export {
	case abi.ExportSessionCreated:
		fn = in.created
	case abi.ExportSessionDestroyed:
		fn = in.destroyed
	}
	ictx := in.ctx
	ictx.call = c
	deadlines := !p.m.rt.noDeadlines
	if deadlines {
		ictx.timer.Reset(p.cfg.Deadline)
	}
	err = fn.CallWithStack(ictx, in.stack[:])
	stopped := !deadlines || ictx.timer.Stop()
	ictx.call = nil
	if err != nil {
		p.release(in, true)
		return p.classify(err, c, ictx.fired.Load())
	}
	r := api.DecodeI32(in.stack[0])
	// A guest that recovered from a panic may have left its globals half
	// updated: replace it too. So is one whose deadline fired just as it
	// returned (its module may be closing).
	p.release(in, r == abi.ResultFailed || !stopped)
	switch r {
	case abi.ResultOK:
		return nil
	case abi.ResultSessionUnavailable:
		if c.sessionErr != nil {
			return fmt.Errorf("%w: %w", ErrSessionUnavailable, c.sessionErr)
		}
		return ErrSessionUnavailable
	default:
		return fmt.Errorf("%w: %s returned %d", ErrAppFailed, exportName(export), r)
	}
}

func exportName(e string) string {
	if e == "" {
		return abi.ExportHandle
	}
	return e
}

func (p *Pool) classify(err error, c *Call, fired bool) error {
	if fired && p.aborted.Load() {
		p.log.Warn("guest stopped: the pool was aborted (a forced shutdown)", "path", c.Path)
		return fmt.Errorf("%w: the call was stopped by a forced shutdown", ErrClosed)
	}
	if fired {
		p.log.Warn("guest ran past its deadline; instance discarded", "deadline", p.cfg.Deadline, "path", c.Path)
		return fmt.Errorf("%w (%v)", ErrDeadline, p.cfg.Deadline)
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		p.log.Error("guest exited; instance discarded", "code", exit.ExitCode(), "path", c.Path)
		return fmt.Errorf("%w: exited with code %d", ErrTrap, exit.ExitCode())
	}
	p.log.Error("guest trapped; instance discarded", "err", err, "path", c.Path)
	return fmt.Errorf("%w: %w", ErrTrap, err)
}

// Close discards the idle instances; instances in use are discarded when
// released. It does not close the module.
func (p *Pool) Close(context.Context) error {
	p.closed.Store(true)
	p.drain()
	return nil
}

// Abort closes the pool and stops the calls running on it, as if their
// deadline had passed: each guest traps at its next loop iteration or
// wakes from a sleep, and its call ends with an error wrapping ErrClosed.
// A forced shutdown uses it; without deadline checks (a runtime with
// deadlines off) a guest looping forever is not stopped.
func (p *Pool) Abort() {
	p.aborted.Store(true)
	p.closed.Store(true)
	p.mu.Lock()
	live := slices.Collect(maps.Keys(p.live))
	p.mu.Unlock()
	for _, in := range live {
		in.ctx.expire()
	}
	p.drain()
}

func (p *Pool) drain() {
	for in := p.take(); in != nil; in = p.take() {
		p.discard(in)
	}
}
