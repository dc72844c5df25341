package wasm

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host/abi"
	"github.com/wasmfarm/wasmfarm/host/internal/leb"
)

// guestModule is a module exporting memory (one page), an ABI version
// function and handle (a () -> i32 body of its own, with locals), plus
// extra functions of the given types. types[0] must be () -> i32.
// tables is the table section's payload, if any.
func guestModule(types [][]byte, extra []struct {
	typ  byte
	body []byte
}, handle []byte, tables []byte) []byte {
	vbody := append(leb.AppendSigned([]byte{0x00, 0x41}, abi.Version), 0x0b)
	typeSec := appendLEB(nil, uint32(len(types)))
	for _, t := range types {
		typeSec = append(typeSec, t...)
	}
	funcs := []byte{0x00, 0x00}
	bodies := [][]byte{vbody, handle}
	for _, e := range extra {
		funcs = append(funcs, e.typ)
		bodies = append(bodies, e.body)
	}
	code := appendLEB(nil, uint32(len(bodies)))
	for _, b := range bodies {
		code = appendLEB(code, uint32(len(b)))
		code = append(code, b...)
	}
	m := cat([]byte(wasmHeader),
		sec(1, typeSec),
		sec(3, append(appendLEB(nil, uint32(len(funcs))), funcs...)))
	if tables != nil {
		m = append(m, sec(4, tables)...)
	}
	return cat(m,
		sec(5, []byte{0x01, 0x00, 0x01}),
		sec(7, cat([]byte{0x03}, str("wasmfarm_abi_version"), []byte{0x00, 0x00},
			str("handle"), []byte{0x00, 0x01}, str("memory"), []byte{0x02, 0x00})),
		sec(10, code))
}

// TestDeadlineStopsRecursion: a guest without a single loop that calls
// itself twice at each of 30 levels (2^31 calls, seconds of work, never
// deeper than 30 frames) is stopped at its deadline like a looping one.
// A call is straight-line code, but a tree of them is not bounded by
// the module's size.
func TestDeadlineStopsRecursion(t *testing.T) {
	// f(n): if n { f(n-1); f(n-1) }
	f := []byte{0x00, 0x20, 0x00, 0x04, 0x40,
		0x20, 0x00, 0x41, 0x01, 0x6b, 0x10, 0x02,
		0x20, 0x00, 0x41, 0x01, 0x6b, 0x10, 0x02,
		0x0b, 0x0b}
	handle := []byte{0x00, 0x41, 30, 0x10, 0x02, 0x41, 0x00, 0x0b} // f(30); 0
	mod := guestModule([][]byte{{0x60, 0x00, 0x01, 0x7f}, {0x60, 0x01, 0x7f, 0x00}},
		[]struct {
			typ  byte
			body []byte
		}{{1, f}}, handle, nil)
	p := testPool(t, "recursion", mod, PoolConfig{Size: 1, Deadline: 50 * time.Millisecond})
	start := time.Now()
	err := p.Handle(context.Background(), &Call{})
	if el := time.Since(start); !errors.Is(err, ErrDeadline) || el > 2*time.Second {
		t.Fatalf("a guest recursing without loops under a 50ms deadline: %v after %v, want ErrDeadline at about 50ms", err, el.Round(time.Millisecond))
	}
}

// TestTableMemoryBounded: a guest's tables live on the host's heap
// (8 bytes an entry) outside the linear memory its limit caps: neither
// a table declared with 16M entries (128 MiB) nor table.grow by as many
// may get them. A Go guest's table, declared without a maximum, still
// works (the sample apps run in other tests).
func TestTableMemoryBounded(t *testing.T) {
	const entries = 1 << 24
	types := [][]byte{{0x60, 0x00, 0x01, 0x7f}}
	t.Run("grow", func(t *testing.T) {
		// handle: table.grow(ref.null func, 1<<24) != -1 (1: it grew)
		handle := leb.AppendSigned([]byte{0x00, 0xd0, 0x70, 0x41}, entries)
		handle = append(handle, 0xfc, 0x0f, 0x00, 0x41, 0x7f, 0x47, 0x0b)
		mod := guestModule(types, nil, handle, []byte{0x01, 0x70, 0x00, 0x00}) // funcref, min 0, no max
		for _, noDeadlines := range []bool{false, true} {
			ctx := context.Background()
			rt, err := NewRuntime(ctx, Config{CacheDir: "-", NoDeadlines: noDeadlines})
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Close(ctx)
			m, err := rt.Compile(ctx, "grow", mod)
			if err != nil {
				t.Fatal(err)
			}
			p, err := NewPool(ctx, m, PoolConfig{Size: 1})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Handle(ctx, &Call{}); err != nil {
				t.Fatalf("NoDeadlines %v: table.grow by %d entries (%d MiB of host memory) succeeded, past the %d MiB memory limit: %v",
					noDeadlines, entries, entries*8>>20, rt.MemoryLimit()>>20, err)
			}
			p.Close(ctx)
		}
	})
	t.Run("declared", func(t *testing.T) {
		handle := []byte{0x00, 0x41, 0x00, 0x0b}
		tables := appendLEB([]byte{0x01, 0x70, 0x00}, entries) // funcref, min 1<<24
		ctx := context.Background()
		m, err := newRuntime(t).Compile(ctx, "declared", guestModule(types, nil, handle, tables))
		if err == nil {
			var p *Pool
			p, err = NewPool(ctx, m, PoolConfig{Size: 1})
			if err == nil {
				p.Close(ctx)
				t.Fatalf("an instance with a table of %d entries (%d MiB of host memory) was created", entries, entries*8>>20)
			}
		}
		if !errors.Is(err, ErrInvalidModule) {
			t.Fatalf("a table of %d entries: %v, want ErrInvalidModule", entries, err)
		}
		t.Log(err)
	})
}

// TestResponseHeadersBounded: MaxResponseHeaderBytes bounds one header,
// and the response's headers together are bounded too, however the guest
// adds them (response_header, response_head): the body has its limit,
// and headers must not be a way around it.
func TestResponseHeadersBounded(t *testing.T) {
	value := make([]byte, 1000)
	for i := range value {
		value[i] = 'v'
	}
	total := func(c *Call) (n int) {
		for k, vs := range c.ResponseHeader {
			for _, v := range vs {
				n += len(k) + len(v)
			}
		}
		return n
	}
	t.Run("response_header", func(t *testing.T) {
		c := &Call{}
		refused := 0
		for range 20000 {
			if setResponseHeader(c, 1, []byte("X-A"), value) != 0 {
				refused++
			}
		}
		if n := total(c); refused == 0 || n > 2<<20 {
			t.Fatalf("20000 headers of 1 KB added: %d refused, %d bytes of headers held", refused, n)
		}
	})
	t.Run("response_head", func(t *testing.T) {
		c := &Call{}
		items := []string{""}
		for range 900 {
			items = append(items, "X-A", string(value))
		}
		head := abi.AppendList(nil, items...)
		refused := 0
		for range 20 {
			if setResponseHead(c, head) != 0 {
				refused++
			}
		}
		if n := total(c); refused == 0 || n > 2<<20 {
			t.Fatalf("20 heads of 900 headers of 1 KB: %d refused, %d bytes of headers held", refused, n)
		}
	})
	t.Run("set replaces", func(t *testing.T) {
		c := &Call{}
		for i := range 20000 {
			if code := setResponseHeader(c, 0, []byte("X-A"), value); code != 0 {
				t.Fatalf("setting the same header for the %dth time: %d", i+1, code)
			}
		}
		if code := setResponseHeader(c, 2, []byte("X-A"), nil); code != 0 {
			t.Fatal(code)
		}
		for i := range 500 {
			if code := setResponseHeader(c, 1, []byte("X-B"), value); code != 0 {
				t.Fatalf("adding header %d after a delete: %d", i+1, code)
			}
		}
	})
}

// TestInitDeadlineStopsStartSection: a module's start function (section
// 8) runs while the instance is created, before _initialize: looping
// forever there must end the instantiation at InitDeadline like a loop
// in _initialize, not hang the deploy (or the request creating an
// instance) forever.
func TestInitDeadlineStopsStartSection(t *testing.T) {
	loop := []byte{0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b} // loop br 0 end
	mod := startModule(loop)
	ctx := context.Background()
	// A start function still runs: one that traps fails the instance.
	m, err := newRuntime(t).Compile(ctx, "trap", startModule([]byte{0x00, 0x00, 0x0b}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPool(ctx, m, PoolConfig{Size: 1}); !errors.Is(err, ErrInstantiate) {
		t.Fatalf("a start function that traps: %v, want ErrInstantiate", err)
	}
	m, err = newRuntime(t).Compile(ctx, "start", mod)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		p, err := NewPool(ctx, m, PoolConfig{Size: 1, InitDeadline: 100 * time.Millisecond})
		if err == nil {
			p.Close(ctx)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrInstantiate) {
			t.Fatalf("a start function looping forever: %v, want ErrInstantiate", err)
		}
		t.Log(err)
	case <-time.After(5 * time.Second):
		t.Fatal("NewPool still instantiating 5 s after a 100ms InitDeadline: the start function loops on")
	}
}

// startModule is a guest whose start section names a () -> () function
// with body start.
func startModule(start []byte) []byte {
	types := [][]byte{{0x60, 0x00, 0x01, 0x7f}, {0x60, 0x00, 0x00}}
	mod := guestModule(types, []struct {
		typ  byte
		body []byte
	}{{1, start}}, []byte{0x00, 0x41, 0x00, 0x0b}, nil)
	// The start section (8) goes between exports (7) and code (10).
	i := 0
	for r := (reader{b: mod, off: 8}); !r.done(); {
		at := r.off
		id := r.byte()
		r.bytes(int(r.u32()))
		if id == 10 {
			i = at
		}
	}
	return cat(mod[:i:i], sec(8, []byte{0x02}), mod[i:])
}
