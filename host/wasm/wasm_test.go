package wasm

import (
	"context"
	"errors"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmfarm/wasmfarm/host/abi"
	"github.com/wasmfarm/wasmfarm/host/internal/wasmtest"
	"github.com/wasmfarm/wasmfarm/host/session"
)

func newRuntime(t testing.TB) *Runtime {
	t.Helper()
	rt, err := NewRuntime(context.Background(), Config{CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

func TestRefusals(t *testing.T) {
	rt := newRuntime(t)
	tests := []struct {
		name   string
		module []byte
		want   error
	}{
		{"not wasm", []byte("hello"), ErrInvalidModule},
		{"no exports", wasmtest.Empty(), ErrMissingExport},
		{"wrong version", wasmtest.Module(abi.Version+1, 0, false), ErrABIVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := rt.Compile(context.Background(), "app.wasm", tc.module)
			if err == nil {
				_, err = NewPool(context.Background(), m, PoolConfig{Size: 1})
			}
			var me *ModuleError
			if !errors.Is(err, tc.want) || !errors.As(err, &me) || me.Module != "app.wasm" {
				t.Fatalf("got %v, want %v naming app.wasm", err, tc.want)
			}
			t.Log(err)
		})
	}
}

// testPool compiles module on a runtime of the test's own and returns a
// pool of it, closed when the test ends.
func testPool(t *testing.T, name string, module []byte, cfg PoolConfig) *Pool {
	t.Helper()
	ctx := context.Background()
	m, err := newRuntime(t).Compile(ctx, name, module)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPool(ctx, m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(ctx) })
	return p
}

// loopPool returns a pool of one instance of a guest whose handle loops
// forever, with the deadline.
func loopPool(t *testing.T, deadline time.Duration) *Pool {
	return testPool(t, "loop", wasmtest.Module(abi.Version, 0, true), PoolConfig{Size: 1, Deadline: deadline})
}

func TestPoolDeadlineAndReplace(t *testing.T) {
	ctx := context.Background()
	p := loopPool(t, 100*time.Millisecond)
	start := time.Now()
	err := p.Handle(ctx, &Call{})
	if !errors.Is(err, ErrDeadline) || time.Since(start) > 5*time.Second {
		t.Fatalf("loop: %v after %v", err, time.Since(start))
	}
	live, created, discarded := p.Stats()
	if live != 0 || created != 1 || discarded != 1 {
		t.Fatalf("after a deadline: live %d created %d discarded %d", live, created, discarded)
	}

	rt := newRuntime(t)
	ok, _ := rt.Compile(ctx, "ok", wasmtest.Module(abi.Version, abi.ResultOK, false))
	p2, err := NewPool(ctx, ok, PoolConfig{Size: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close(ctx)
	for range 10 {
		if err := p2.Handle(ctx, &Call{}); err != nil {
			t.Fatal(err)
		}
	}
	failed, _ := rt.Compile(ctx, "failed", wasmtest.Module(abi.Version, abi.ResultFailed, false))
	p3, _ := NewPool(ctx, failed, PoolConfig{Size: 1})
	defer p3.Close(ctx)
	if err := p3.Handle(ctx, &Call{}); !errors.Is(err, ErrAppFailed) {
		t.Fatalf("failed app: %v", err)
	}
}

// memModule returns an instance whose memory the host functions use.
func memModule(t testing.TB, rt *Runtime) api.Module {
	t.Helper()
	m, err := rt.r.Instantiate(context.Background(), wasmtest.Module(abi.Version, 0, false))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// FuzzHostFunctions calls every host function with arbitrary arguments on
// a one-page memory: each must either work or refuse with a guestError
// (which traps the guest), never panic otherwise or write outside the
// memory.
func FuzzHostFunctions(f *testing.F) {
	rt := newRuntime(f)
	mod := memModule(f, rt)
	mgr, err := session.NewStandardManager(session.Config{ExpireInterval: -1, Limits: session.Limits{MaxValueBytes: 1024}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(0), uint32(0), uint32(10), uint32(100), uint32(5), uint32(0))
	f.Add(uint8(7), uint32(65530), uint32(10), uint32(0), uint32(0), uint32(1))
	f.Add(uint8(15), uint32(1), uint32(2), uint32(3), uint32(4), uint32(5))
	f.Fuzz(func(t *testing.T, fn uint8, a, b, c, d, e uint32) {
		hf := hostFuncs[int(fn)%len(hostFuncs)]
		var txn session.Txn
		txn.Reset(mgr, mgr.Limits(), "", time.Now())
		call := &Call{Method: "GET", Path: "/x", Header: http.Header{"X-A": {"1", "2"}}, Body: []byte("body"), Session: &txn}
		stack := []uint64{uint64(a), uint64(b), uint64(c), uint64(d), uint64(e)}
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(guestError); !ok {
					t.Fatalf("%s(%v) panicked: %v", hf.name, stack, r)
				}
			}
		}()
		hf.fn(context.Background(), call, mod, stack)
	})
}

func TestHeaderValidation(t *testing.T) {
	tests := []struct {
		name       string
		op         int32
		key, value string
		want       int
	}{
		{"ok", 0, "X-A", "1", 0},
		{"bad name", 0, "X A", "1", abi.Invalid},
		{"response splitting", 0, "X-A", "1\r\nSet-Cookie: x", abi.Invalid},
		{"bad op", 9, "X-A", "1", abi.Invalid},
		{"too large", 0, "X-A", string(make([]byte, 70<<10)), abi.TooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Call{}
			if got := setResponseHeader(c, tc.op, []byte(tc.key), []byte(tc.value)); got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}

// FuzzResponseHead feeds arbitrary bytes to the response_head decoder: it
// must apply a valid list (odd item count, status digits, token names,
// values without CR/LF) exactly as the list says, and refuse anything else
// without changing the response. The same Call decodes every input after
// a first head, as a pooled Call does, so what a head leaves for the next
// (emptied keys, cached strings) is fuzzed too.
func FuzzResponseHead(f *testing.F) {
	f.Add(abi.AppendList(nil, "201", "Content-Type", "text/plain", "X-A", "1"))
	f.Add(abi.AppendList(nil, "", "X-A", "a\r\nb"))
	f.Add(abi.AppendList(nil, "200", "x-a", "1", "X-A", "2", "content-type", "x-a"))
	f.Add([]byte{1, 0, 0, 0, 3, 0, 0})
	c := &Call{}
	first := abi.AppendList(nil, "404", "X-Old", "old", "Content-Type", "text/html")
	f.Fuzz(func(t *testing.T, b []byte) {
		c.Reset()
		if code := setResponseHead(c, first); code != 0 {
			t.Fatalf("first head refused: %d", code)
		}
		c.Reset()
		code := setResponseHead(c, b)
		got := map[string][]string{}
		for k, vs := range c.ResponseHeader {
			if len(vs) > 0 {
				got[k] = vs
			}
		}
		if code != 0 {
			if c.Status != 0 || len(got) != 0 {
				t.Fatalf("refused head (%d) changed the response: %d %v", code, c.Status, got)
			}
			return
		}
		// The reference: the list decoded whole, checked item by item.
		items, err := abi.DecodeList(b, maxHeadBytes/4)
		if err != nil || len(items)%2 != 1 {
			t.Fatalf("accepted a list the decoder refuses (%v, %d items)", err, len(items))
		}
		st := 0
		if items[0] != "" {
			st, err = strconv.Atoi(items[0])
			if err != nil || st < 100 || st > 999 || len(items[0]) > 3 {
				t.Fatalf("status %q accepted", items[0])
			}
		}
		if c.Status != st {
			t.Fatalf("status %d, want %d", c.Status, st)
		}
		want := map[string][]string{}
		for i := 1; i < len(items); i += 2 {
			if !validHeaderName(items[i]) || !validHeaderValue(items[i+1]) {
				t.Fatalf("invalid header %q: %q accepted", items[i], items[i+1])
			}
			k := http.CanonicalHeaderKey(items[i])
			want[k] = append(want[k], items[i+1])
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("headers %q, want %q", got, want)
		}
	})
}

// TestResponseHeadReuse: a pooled Call decodes a head equal to the
// previous request's without allocating, and a header of the previous
// response is not part of the next one.
func TestResponseHeadReuse(t *testing.T) {
	c := &Call{}
	head := abi.AppendList(nil, "200", "Content-Type", "application/json", "X-Count", "1")
	if setResponseHead(c, head) != 0 {
		t.Fatal("head refused")
	}
	allocs := testing.AllocsPerRun(100, func() {
		c.Reset()
		if setResponseHead(c, head) != 0 {
			t.Fatal("head refused")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per repeated head, want 0", allocs)
	}
	c.Reset()
	if setResponseHead(c, abi.AppendList(nil, "", "content-type", "text/plain")) != 0 {
		t.Fatal("second head refused")
	}
	if got := c.ResponseHeader.Values("Content-Type"); len(got) != 1 || got[0] != "text/plain" {
		t.Errorf("Content-Type %q, want [text/plain]", got)
	}
	if _, ok := c.ResponseHeader["X-Count"]; ok && c.ResponseHeader.Get("X-Count") != "" {
		t.Errorf("X-Count %q left from the previous response", c.ResponseHeader.Get("X-Count"))
	}
	if c.Status != 0 {
		t.Errorf("status %d left from the previous response", c.Status)
	}
}

// TestSetMaxInactiveClamps: session_set_max_inactive takes any int64 from
// the guest; a negative count means "never expires" however large, and a
// count beyond int32 seconds is clamped, never wrapped.
func TestSetMaxInactiveClamps(t *testing.T) {
	mgr, err := session.NewStandardManager(session.Config{ExpireInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	var set hostFunc
	for _, hf := range hostFuncs {
		if hf.name == "session_set_max_inactive" {
			set = hf
		}
	}
	for _, tc := range []struct {
		secs int64
		want time.Duration
	}{
		{-1, -1}, {0, -1}, {-(1 << 62), -1}, {math.MinInt64, -1}, {-(1 << 40) - 7, -1},
		{30, 30 * time.Second}, {1 << 40, (1<<31 - 1) * time.Second}, {math.MaxInt64, (1<<31 - 1) * time.Second},
	} {
		var txn session.Txn
		txn.Reset(mgr, mgr.Limits(), "", time.Now())
		if _, err := txn.Open(true); err != nil {
			t.Fatal(err)
		}
		stack := []uint64{uint64(tc.secs)}
		set.fn(context.Background(), &Call{Session: &txn}, nil, stack)
		if got := txn.MaxInactiveInterval(); int32(stack[0]) != 0 || (got < 0) != (tc.want < 0) || tc.want >= 0 && got != tc.want {
			t.Errorf("session_set_max_inactive(%d): code %d, limit %v, want %v", tc.secs, int32(stack[0]), got, tc.want)
		}
	}
}
