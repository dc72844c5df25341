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
