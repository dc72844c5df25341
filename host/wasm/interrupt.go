package wasm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/wasmfarm/wasmfarm/host/internal/leb"
)

// Deadline enforcement by instrumentation.
//
// wazero stops a runaway guest only when compiled with
// WithCloseOnContextDone, which puts at the top of every loop a call out of
// the machine code into Go to look at the module's closed flag, and starts
// a goroutine per call to watch the context. A Go guest enters a loop at
// almost every function call (the Go wasm backend makes each resumable
// function a loop), so that check cost the counter app about 13 µs per
// request, twice its own running time.
//
// Instead, Compile rewrites the module. It adds two mutable i32 globals:
// $stop, exported as deadlineGlobal, and $fuel. At the top of every loop
// body, at the entry of every function that calls (unless it begins with a
// loop), and before every memory.copy, memory.fill and memory.init, it
// inserts
//
//	$fuel -= k                  (1 at a loop, bulkFuel at a bulk operation)
//	if $fuel <= 0 {
//	    memory.grow 0           (a call into Go: see below)
//	    if $stop { unreachable }
//	    $fuel = fuelRefill
//	}
//
// which wazero compiles to a few instructions and a branch not taken. When
// a call's deadline passes, the pool's timer sets $stop, and the guest
// traps at most fuelRefill loop iterations later; the instance is then
// discarded, as after any trap.
//
// The memory.grow matters as much as the check. Machine code cannot be
// preempted by the Go runtime: a guest that never leaves it would hold
// its thread through a garbage collection's stop-the-world, which would
// then wait forever, and with it the timer meant to stop the guest (seen
// in TestSandbox before this was added). memory.grow is carried out in Go,
// where the goroutine can be preempted, so every fuelRefill iterations the
// world can stop and the timer can run. Growing by 0 pages changes nothing.
//
// Loops, calls and bulk operations are what can run long: straight-line
// code ends, and so does a function that calls nothing. Calls need their
// check although deep recursion ends in a stack overflow: a function
// calling itself twice at each of 40 levels never goes deeper than 40
// frames, and makes 2^41 calls without a loop (hours, seen in
// TestDeadlineStopsRecursion). Tail calls, which could loop without a
// loop, are not among the enabled features (CoreFeaturesV2). A guest
// sleeping in the host is woken by the pool (see nanosleep in pool.go).
//
// The rewrite decodes every instruction of every function body, as it must
// to find the loop opcodes, but validates nothing else: wazero validates
// the result. It refuses opcodes outside CoreFeaturesV2 with
// ErrInvalidModule, as wazero would. Custom sections other than the name
// section are dropped (DWARF's code offsets no longer hold, and wazero
// uses no other); the name section stays valid (no index changes).

const (
	// fuelRefill is the number of loop iterations between two calls into
	// Go: a tight loop takes about 10 µs for them, which bounds how long a
	// runaway guest can delay a stop-the-world and its deadline. (At 1024,
	// the counter app called into Go about once per request.)
	fuelRefill = 8192
	// bulkFuel is what a memory.copy, fill or init costs: one of 64 MiB
	// takes about 10 ms here, so at most 16 run between two calls into Go.
	bulkFuel = 512
)

// deadlineGlobal is the export name of the global that Compile adds.
const deadlineGlobal = "wasmfarm.deadline"

// startExport is the export name Compile gives a module's start function,
// whose start section it drops: wasm runs a start function while it
// instantiates the module, before the pool can arm the instance's
// deadline (the global is the instance's own), so a start function that
// looped forever hung the instantiation. The pool calls it first, under
// InitDeadline, as wasm would have.
const startExport = "wasmfarm.start"

// maxInstrumentSize bounds the modules the rewrite accepts (the host
// refuses larger modules before this, see Config.MaxModuleSize).
const maxInstrumentSize = 1 << 30

// errInstrument is wrapped by every refusal of the rewrite.
var errInstrument = errors.New("malformed module")

// errUnknownGlobal: a function names a global the module does not have.
// Invalid anyway (wazero refuses it), but the rewrite must refuse it
// itself: after it, the index would name the host's deadline globals.
var errUnknownGlobal = fmt.Errorf("%w: a global it does not have", errInstrument)

// errNoMemory is the rewrite's refusal of a module without a memory, which
// the ABI check refuses too, with a better message.
var errNoMemory = errors.New("it has no memory")

// instrumentLoops returns a copy of bin with a deadline check at the top of
// every loop, the number of loops instrumented, and the index of the added
// global.
func instrumentLoops(bin []byte) (out []byte, loops int, err error) {
	return prepareModule(bin, true)
}

// prepareModule checks bin's structure against the limits (limits.go),
// bounds its tables (boundTables) and, if instrument is set, returns the
// instrumented copy; otherwise it returns bin itself, or a copy with the
// tables bounded.
func prepareModule(bin []byte, instrument bool) (out []byte, loops int, err error) {
	if len(bin) > maxInstrumentSize {
		return nil, 0, fmt.Errorf("%w: %d bytes is over the %d byte limit", errInstrument, len(bin), maxInstrumentSize)
	}
	if len(bin) < 8 || !bytes.Equal(bin[:4], []byte("\x00asm")) {
		return nil, 0, fmt.Errorf("%w: no \\0asm magic number", errInstrument)
	}
	if !bytes.Equal(bin[4:8], []byte{1, 0, 0, 0}) {
		return nil, 0, fmt.Errorf("%w: binary format version %x is not 1 (a component, or not a core module?)", errInstrument, bin[4:8])
	}
	type section struct {
		id      byte
		payload []byte
	}
	var secs []section
	tablesBounded := false // a table section was rewritten (limits.go)
	r := reader{b: bin, off: 8}
	for !r.done() {
		id := r.byte()
		n := r.u32()
		payload := r.bytes(int(n))
		if r.err != nil {
			return nil, 0, r.fail("section")
		}
		if err := checkSection(id, payload); err != nil {
			return nil, 0, err
		}
		if id == 4 {
			bounded, err := boundTables(payload)
			if err != nil {
				return nil, 0, err
			}
			if !bytes.Equal(bounded, payload) {
				payload, tablesBounded = bounded, true
			}
		}
		secs = append(secs, section{id, payload})
	}

	// Count the globals (the code may name no other, and the new ones take
	// the next indices), check that there is a memory (memory.grow needs
	// one) and that the export name is free.
	// Function type indexes are checked against the type section too:
	// wazero v1.12.0's validation panics on one out of range.
	var globals, memories, types uint32
	var startFunc uint32
	hasStart := false
	for _, s := range secs {
		switch s.id {
		case 1: // type
			pr := reader{b: s.payload}
			types = pr.u32()
			if pr.err != nil {
				return nil, 0, pr.fail("type section")
			}
		case 2: // import
			g, m, err := countImports(s.payload, types)
			if err != nil {
				return nil, 0, err
			}
			globals += g
			memories += m
		case 3: // function: a type index each
			pr := reader{b: s.payload}
			for n := pr.count(1); n > 0 && pr.err == nil; n-- {
				if t := pr.u32(); t >= types && pr.err == nil {
					pr.setErr(fmt.Errorf("type %d at offset %d does not exist (the module has %d)", t, pr.off, types))
				}
			}
			if pr.err != nil {
				return nil, 0, pr.fail("function section")
			}
		case 5: // memory
			pr := reader{b: s.payload}
			memories += pr.u32()
			if pr.err != nil {
				return nil, 0, pr.fail("memory section")
			}
		case 6: // global
			pr := reader{b: s.payload}
			globals += pr.u32()
			if pr.err != nil {
				return nil, 0, pr.fail("global section")
			}
		case 7: // export
			for _, name := range []string{deadlineGlobal, startExport} {
				if instrument && exportsName(s.payload, name) {
					return nil, 0, fmt.Errorf("%w: it already exports %q, a name the host reserves", errInstrument, name)
				}
			}
		case 8: // start
			pr := reader{b: s.payload}
			startFunc, hasStart = pr.u32(), true
			if pr.err != nil || !pr.done() {
				return nil, 0, pr.fail("start section")
			}
		}
	}
	if !instrument || memories == 0 {
		// Walked, not rewritten: the global indexes are checked here too,
		// so that both modes refuse the same modules (wazero refuses such
		// an index as well, with "invalid index for global.get").
		for _, s := range secs {
			if s.id == 10 {
				if err := checkCode(s.payload, globals); err != nil {
					return nil, 0, err
				}
			}
		}
		if !instrument {
			if tablesBounded {
				out = append(make([]byte, 0, len(bin)+16), bin[:8]...)
				for _, s := range secs {
					out = append(out, s.id)
					out = appendLEB(out, uint32(len(s.payload)))
					out = append(out, s.payload...)
				}
				return out, 0, nil
			}
			return bin, 0, nil
		}
		return nil, 0, errNoMemory
	}
	stop, fuel := globals, globals+1
	loopCheck, bulkCheck := fuelCheck(stop, fuel, 1), fuelCheck(stop, fuel, bulkFuel)

	out = make([]byte, 0, len(bin)+len(bin)/32+64)
	out = append(out, bin[:8]...)
	appendSection := func(id byte, payload []byte) {
		out = append(out, id)
		out = appendLEB(out, uint32(len(payload)))
		out = append(out, payload...)
	}
	// $stop and $fuel: i32, mutable, i32.const 0 / fuelRefill, end
	newGlobals := []byte{0x7F, 0x01, 0x41, 0x00, 0x0B, 0x7F, 0x01, 0x41}
	newGlobals = leb.AppendSigned(newGlobals, fuelRefill)
	newGlobals = append(newGlobals, 0x0B)
	newExport := appendLEB(nil, uint32(len(deadlineGlobal)))
	newExport = append(newExport, deadlineGlobal...)
	newExport = append(newExport, 0x03) // global
	newExport = appendLEB(newExport, stop)
	exports := uint32(1)
	if hasStart {
		newExport = append(appendLEB(newExport, uint32(len(startExport))), startExport...)
		newExport = appendLEB(append(newExport, 0x00), startFunc) // function
		exports++
	}
	addedGlobal, addedExport := false, false
	// emitMissing adds the global and export sections, when the module has
	// none, before the first section that must follow them.
	emitMissing := func(before byte) {
		if !addedGlobal && sectionRank(before) > sectionRank(6) {
			appendSection(6, append(appendLEB(nil, 2), newGlobals...))
			addedGlobal = true
		}
		if !addedExport && sectionRank(before) > sectionRank(7) {
			appendSection(7, append(appendLEB(nil, exports), newExport...))
			addedExport = true
		}
	}
	for _, s := range secs {
		if s.id != 0 {
			emitMissing(s.id)
		}
		switch s.id {
		case 0: // custom
			// Only the name section is of use to wazero (stack traces);
			// DWARF's code offsets no longer hold, and the rest (a
			// producers section, padding) would only be copied.
			if name, _ := customName(s.payload); name != "name" {
				continue
			}
			appendSection(0, s.payload)
		case 6, 7:
			pr := reader{b: s.payload}
			n := pr.u32()
			add := exports
			if s.id == 6 {
				add = 2
			}
			if pr.err != nil || n > 1<<32-1-add {
				return nil, 0, pr.fail("section count")
			}
			p := appendLEB(nil, n+add)
			p = append(p, s.payload[pr.off:]...)
			if s.id == 6 {
				p = append(p, newGlobals...)
				addedGlobal = true
			} else {
				p = append(p, newExport...)
				addedExport = true
			}
			appendSection(s.id, p)
		case 8: // start: exported instead, called under the deadline
			continue
		case 10: // code
			p, n, err := instrumentCode(s.payload, loopCheck, bulkCheck, globals)
			if err != nil {
				return nil, 0, err
			}
			loops += n
			appendSection(10, p)
		default:
			appendSection(s.id, s.payload)
		}
	}
	emitMissing(0xFF)
	return out, loops, nil
}

// sectionRank is the position a known section must have in a module.
func sectionRank(id byte) int {
	switch id {
	case 13: // tag: after memory
		return 55
	case 12: // data count: before code
		return 95
	case 0xFF: // the end
		return 1000
	}
	return int(id) * 10
}

func customName(payload []byte) (string, bool) {
	r := reader{b: payload}
	n := r.u32()
	name := r.bytes(int(n))
	return string(name), r.err == nil
}

// fuelCheck is the sequence inserted at a loop or bulk operation costing
// k (see the top of this file).
func fuelCheck(stop, fuel uint32, k int32) []byte {
	b := appendLEB([]byte{0x23}, fuel)              // global.get $fuel
	b = leb.AppendSigned(append(b, 0x41), int64(k)) // i32.const k
	b = append(b, 0x6B, 0x24)                       // i32.sub, global.set
	b = appendLEB(b, fuel)                          // $fuel
	b = appendLEB(append(b, 0x23), fuel)
	b = append(b, 0x41, 0x00, 0x4C)                   // i32.const 0, i32.le_s
	b = append(b, 0x04, 0x40)                         // if
	b = append(b, 0x41, 0x00, 0x40, 0x00, 0x1A)       // i32.const 0, memory.grow 0, drop
	b = appendLEB(append(b, 0x23), stop)              // global.get $stop
	b = append(b, 0x04, 0x40, 0x00, 0x0B)             // if unreachable end
	b = leb.AppendSigned(append(b, 0x41), fuelRefill) // i32.const fuelRefill
	b = appendLEB(append(b, 0x24), fuel)              // global.set $fuel
	return append(b, 0x0B)                            // end
}

// countImports returns the numbers of imported globals and memories.
func countImports(payload []byte, types uint32) (globals, memories uint32, err error) {
	r := reader{b: payload}
	count := r.u32()
	for i := uint32(0); i < count && r.err == nil; i++ {
		r.bytes(int(r.u32())) // module
		r.bytes(int(r.u32())) // name
		switch kind := r.byte(); kind {
		case 0x00: // function: type index
			if t := r.u32(); t >= types && r.err == nil {
				r.setErr(fmt.Errorf("type %d at offset %d does not exist (the module has %d)", t, r.off, types))
			}
		case 0x01: // table: reftype, limits
			r.byte()
			r.limits()
		case 0x02: // memory: limits
			r.limits()
			memories++
		case 0x03: // global: valtype, mutability
			r.byte()
			r.byte()
			globals++
		default:
			if r.err == nil {
				return 0, 0, fmt.Errorf("%w: import kind 0x%02x at offset %d is not supported", errInstrument, kind, r.off-1)
			}
		}
	}
	if r.err != nil || !r.done() {
		return 0, 0, r.fail("import section")
	}
	return globals, memories, nil
}

func exportsName(payload []byte, name string) bool {
	r := reader{b: payload}
	count := r.u32()
	for i := uint32(0); i < count && r.err == nil; i++ {
		if string(r.bytes(int(r.u32()))) == name {
			return true
		}
		r.byte()
		r.u32()
	}
	return false
}

// instrumentCode rewrites the code section's payload, inserting loopCheck
// after every loop's block type and bulkCheck before every bulk memory
// operation.
func instrumentCode(payload, loopCheck, bulkCheck []byte, globals uint32) ([]byte, int, error) {
	r := reader{b: payload}
	count := r.u32()
	if r.err != nil {
		return nil, 0, r.fail("code section")
	}
	out := appendLEB(make([]byte, 0, len(payload)+len(payload)/32+16), count)
	loops := 0
	var body []byte
	for i := uint32(0); i < count; i++ {
		size := r.u32()
		start := r.off
		code := r.bytes(int(size))
		if r.err != nil {
			return nil, 0, r.fail(fmt.Sprintf("function body %d", i))
		}
		var n int
		var err error
		body, n, err = instrumentBody(body[:0], code, loopCheck, bulkCheck, globals)
		if err != nil {
			return nil, 0, fmt.Errorf("%w (function body %d at code section offset %d)", err, i, start)
		}
		loops += n
		out = appendLEB(out, uint32(len(body)))
		out = append(out, body...)
	}
	if !r.done() {
		return nil, 0, fmt.Errorf("%w: %d bytes after the last function body", errInstrument, len(payload)-r.off)
	}
	return out, loops, nil
}

// instrumentBody appends code to out with loopCheck inserted after every
// loop instruction's block type and at the function's entry if it calls
// (call or call_indirect) and does not begin with a loop, and bulkCheck
// before every memory.copy, memory.fill and memory.init.
func instrumentBody(out, code, loopCheck, bulkCheck []byte, globals uint32) ([]byte, int, error) {
	r := reader{b: code, globals: globals, limitGlobals: true}
	r.locals()
	start := len(out) + r.off // where the entry check goes
	startsWithLoop := !r.done() && code[r.off] == 0x03
	calls := false
	copied, loops := 0, 0
	for !r.done() && r.err == nil {
		at := r.off
		switch r.instr() {
		case instrCall:
			calls = true
		case instrLoop:
			out = append(out, code[copied:r.off]...)
			out = append(out, loopCheck...)
			copied = r.off
			loops++
		case instrBulk:
			out = append(out, code[copied:at]...)
			out = append(out, bulkCheck...)
			copied = at
		}
	}
	if r.err != nil {
		return nil, 0, r.fail("instruction")
	}
	out = append(out, code[copied:]...)
	if calls && !startsWithLoop {
		// A function that calls may be part of a recursion: a tree of
		// calls runs for a time its code does not bound, without a loop.
		// One that begins with a loop is checked by that loop's check.
		out = slices.Insert(out, start, loopCheck...)
	}
	return out, loops, nil
}

// Kinds of instruction, for the rewrite.
const (
	instrOther = iota
	instrLoop
	instrBulk // memory.init, memory.copy, memory.fill
	instrEnd
	instrCall // call, call_indirect
)

// instr skips one instruction and says what kind it was.
func (r *reader) instr() int {
	op := r.byte()
	switch {
	case op == 0x03: // loop
		r.s33()
		return instrLoop
	case op == 0x0B:
		return instrEnd
	case op == 0x02 || op == 0x04: // block, if
		r.s33()
	case op == 0x23 || op == 0x24: // global.get, global.set
		if i := r.u32(); r.limitGlobals && i >= r.globals && r.err == nil {
			r.setErr(fmt.Errorf("%w: global %d at offset %d does not exist (the module has %d)", errUnknownGlobal, i, r.off, r.globals))
		}
	case op == 0x10: // call
		r.u32()
		return instrCall
	case op == 0x0C || op == 0x0D || (op >= 0x20 && op <= 0x26) || op == 0x3F || op == 0x40 || op == 0xD2:
		// br, br_if, call, local.*, table.get/set, memory.size/grow,
		// ref.func: one index
		r.u32()
	case op == 0x0E: // br_table
		for n := r.count(1); n > 0 && r.err == nil; n-- {
			r.u32()
		}
		r.u32()
	case op == 0x11: // call_indirect: type, table
		r.u32()
		r.u32()
		return instrCall
	case op == 0x1C: // select with types
		r.bytes(int(r.count(1)))
	case op >= 0x28 && op <= 0x3E: // loads and stores
		r.memarg()
	case op == 0x41: // i32.const
		r.leb(5)
	case op == 0x42: // i64.const
		r.leb(10)
	case op == 0x43: // f32.const
		r.bytes(4)
	case op == 0x44: // f64.const
		r.bytes(8)
	case op == 0xD0: // ref.null: heap type
		r.byte()
	case op == 0xFC:
		if r.opFC() {
			return instrBulk
		}
	case op == 0xFD:
		r.opFD()
	case op <= 0x01 || op == 0x05 || op == 0x0F || op == 0x1A || op == 0x1B || (op >= 0x45 && op <= 0xC4) || op == 0xD1:
		// no immediates
	default:
		r.setErr(fmt.Errorf("opcode 0x%02x at offset %d is not supported (only the WebAssembly 2.0 core features are)", op, r.off-1))
	}
	return instrOther
}

// opFC skips the immediates of a 0xFC-prefixed instruction and reports
// whether it is a bulk memory operation (memory.init, copy or fill).
func (r *reader) opFC() (bulk bool) {
	sub := r.u32()
	switch {
	case sub <= 7: // saturating truncations
	case sub == 9 || sub == 11 || sub == 13 || sub == 15 || sub == 16 || sub == 17:
		// data.drop, memory.fill, elem.drop, table.grow/size/fill
		r.u32()
	case sub == 8 || sub == 10 || sub == 12 || sub == 14:
		// memory.init, memory.copy, table.init, table.copy
		r.u32()
		r.u32()
	default:
		r.unsupported(0xFC, sub)
	}
	return r.err == nil && (sub == 8 || sub == 10 || sub == 11)
}

// opFD skips the immediates of a SIMD instruction.
func (r *reader) opFD() {
	switch sub := r.u32(); {
	case sub <= 11 || sub == 92 || sub == 93: // loads, stores, load zero
		r.memarg()
	case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
		r.bytes(16)
	case sub >= 21 && sub <= 34: // extract and replace lane
		r.byte()
	case sub >= 84 && sub <= 91: // load and store lane
		r.memarg()
		r.byte()
	case sub <= 255: // no immediates
	default:
		r.unsupported(0xFD, sub)
	}
}

// reader decodes a wasm binary. The first error sticks; reads after it
// return zero values.
type reader struct {
	b   []byte
	off int
	err error
	// globals, when limitGlobals is set, is the number of globals the
	// module itself has: instr refuses global.get and global.set of a
	// higher index, which after the rewrite would name the host's $stop
	// or $fuel and let the guest switch its own deadline off.
	globals      uint32
	limitGlobals bool
}

func (r *reader) done() bool { return r.off >= len(r.b) }

func (r *reader) setErr(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) fail(what string) error {
	if r.err != nil {
		return fmt.Errorf("%w: %s: %w", errInstrument, what, r.err)
	}
	return fmt.Errorf("%w: %s at offset %d", errInstrument, what, r.off)
}

func (r *reader) unsupported(prefix byte, sub uint32) {
	r.setErr(fmt.Errorf("opcode 0x%02x %d at offset %d is not supported (only the WebAssembly 2.0 core features are)", prefix, sub, r.off))
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.setErr(fmt.Errorf("unexpected end at offset %d", r.off))
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.setErr(fmt.Errorf("%d bytes at offset %d run past the end (%d)", n, r.off, len(r.b)))
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

// leb skips a LEB128 number of at most max bytes.
func (r *reader) leb(max int) {
	for i := 0; i < max; i++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.setErr(fmt.Errorf("LEB128 number longer than %d bytes at offset %d", max, r.off))
}

func (r *reader) s33() { r.leb(5) }

func (r *reader) u32() uint32 {
	var v uint64
	for i := 0; i < 5; i++ {
		c := r.byte()
		v |= uint64(c&0x7F) << (7 * i)
		if c&0x80 == 0 {
			if v > 1<<32-1 {
				r.setErr(fmt.Errorf("u32 out of range at offset %d", r.off))
				return 0
			}
			return uint32(v)
		}
	}
	r.setErr(fmt.Errorf("u32 longer than 5 bytes at offset %d", r.off))
	return 0
}

func (r *reader) limits() {
	flags := r.byte()
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}

// memarg skips an alignment and an offset. Bit 6 of the alignment, which
// would announce a memory index (multi-memory), is refused.
func (r *reader) memarg() {
	if align := r.u32(); align >= 64 {
		r.setErr(fmt.Errorf("memory index in memarg at offset %d is not supported (multi-memory)", r.off))
	}
	r.u32()
}

// appendLEB appends v as an unsigned LEB128 number.
func appendLEB(b []byte, v uint32) []byte { return binary.AppendUvarint(b, uint64(v)) }
