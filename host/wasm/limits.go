package wasm

import "fmt"

// Structural limits checked before wazero sees a module.
//
// wazero's decoder allocates by the counts a module declares, before
// reading what they count: twenty bytes declaring four billion locals, or
// an export vector of a billion entries, make it allocate gigabytes (found
// by FuzzInstrumentLoops, which watched wazero allocate 7 GB for a
// 15-byte input). checkSection walks every section's vectors first and
// refuses a count larger than the bytes that could hold it or than the
// limits below, which are those of the major browser engines (V8's
// wasm-limits.h), far above what real modules use.
const (
	maxTypes         = 1_000_000
	maxFunctions     = 1_000_000
	maxImports       = 100_000
	maxExports       = 100_000
	maxGlobals       = 1_000_000
	maxTables        = 100_000
	maxMemories      = 100
	maxElemSegments  = 10_000_000
	maxElemEntries   = 10_000_000
	maxDataSegments  = 100_000
	maxParams        = 1_000
	maxResults       = 1_000
	maxFunctionLocal = 50_000
	maxNames         = 10_000_000
)

// maxTableEntries bounds the entries of a module's tables, all together:
// wazero keeps them on the host's heap, 8 bytes each, outside the linear
// memory that Config.MemoryLimit caps, and a table declared without a
// maximum grows (table.grow) up to 2^32-1 entries, 32 GiB. boundTables
// gives every table a maximum within this; a Go guest's one table has
// about 6,000 entries.
const maxTableEntries = 1 << 20 // 8 MiB

// boundTables returns the table section's payload with a maximum on every
// table, so that the tables' maximums add up to at most maxTableEntries:
// each table gets its declared minimum plus an equal share of what the
// minimums leave, or less if it declares a lower maximum. It refuses
// tables whose minimums exceed maxTableEntries.
func boundTables(payload []byte) ([]byte, error) {
	type table struct {
		prefix, ref []byte // the optional 0x40 0x00 prefix; the reference type
		min         uint32
		max         uint64 // 1<<32: none declared
		init        []byte // the initializer expression, with the prefix
	}
	r := reader{b: payload}
	n := r.limit(r.count(2), maxTables, "tables")
	tables := make([]table, 0, n)
	var mins uint64
	for ; n > 0 && r.err == nil; n-- {
		var t table
		at := r.off
		if r.off < len(r.b) && r.b[r.off] == 0x40 {
			if t.prefix = r.bytes(2); r.err == nil && t.prefix[1] != 0x00 {
				r.setErr(fmt.Errorf("table at offset %d: 0x40 prefix not followed by 0x00", at))
			}
		}
		t.ref = r.bytes(1)
		if r.err == nil && t.ref[0] != 0x70 && t.ref[0] != 0x6F {
			r.setErr(fmt.Errorf("table at offset %d: reference type 0x%02x is not supported", at, t.ref[0]))
		}
		flags := r.byte()
		t.min, t.max = r.u32(), 1<<32
		switch flags {
		case 0x00:
		case 0x01:
			t.max = uint64(r.u32())
		default:
			if r.err == nil {
				r.setErr(fmt.Errorf("table at offset %d: limits flags 0x%02x are not supported", at, flags))
			}
		}
		if t.prefix != nil {
			start := r.off
			r.constExpr()
			t.init = r.b[start:r.off]
		}
		mins += uint64(t.min)
		tables = append(tables, t)
	}
	if r.err == nil && !r.done() {
		r.setErr(fmt.Errorf("%d bytes after the last table", len(r.b)-r.off))
	}
	if r.err == nil && mins > maxTableEntries {
		r.setErr(fmt.Errorf("tables of %d entries in all are over the limit of %d", mins, maxTableEntries))
	}
	if r.err != nil {
		return nil, r.fail("table section")
	}
	share := (maxTableEntries - mins) / uint64(max(len(tables), 1))
	out := appendLEB(make([]byte, 0, len(payload)+5*len(tables)), uint32(len(tables)))
	for _, t := range tables {
		out = append(append(out, t.prefix...), t.ref...)
		out = appendLEB(append(out, 0x01), t.min)
		out = appendLEB(out, uint32(min(t.max, uint64(t.min)+share)))
		out = append(out, t.init...)
	}
	return out, nil
}

// checkSection checks a known section's vectors against the limits. The
// code section's bodies are walked by instrumentBody or checkCode.
func checkSection(id byte, payload []byte) error {
	r := reader{b: payload}
	what := ""
	switch id {
	case 0:
		name, ok := customName(payload)
		if !ok {
			return fmt.Errorf("%w: custom section name runs past the section", errInstrument)
		}
		if name != "name" {
			return nil
		}
		what = "name section"
		r.bytes(int(r.u32()))
		r.nameSection()
	case 1:
		what = "type section"
		for n := r.limit(r.count(3), maxTypes, "types"); n > 0 && r.err == nil; n-- {
			if form := r.byte(); form != 0x60 && r.err == nil {
				r.setErr(fmt.Errorf("type form 0x%02x at offset %d is not a function type", form, r.off-1))
			}
			r.bytes(int(r.limit(r.count(1), maxParams, "parameters")))
			r.bytes(int(r.limit(r.count(1), maxResults, "results")))
		}
	case 2:
		what = "import section"
		r.limit(r.count(3), maxImports, "imports") // walked by countImports
		return nil
	case 3:
		what = "function section"
		r.limit(r.count(1), maxFunctions, "functions")
	case 4:
		what = "table section"
		r.limit(r.count(2), maxTables, "tables")
	case 5:
		what = "memory section"
		r.limit(r.count(2), maxMemories, "memories")
	case 6:
		what = "global section"
		for n := r.limit(r.count(3), maxGlobals, "globals"); n > 0 && r.err == nil; n-- {
			r.byte() // value type
			r.byte() // mutability
			r.constExpr()
		}
	case 7:
		what = "export section"
		for n := r.limit(r.count(3), maxExports, "exports"); n > 0 && r.err == nil; n-- {
			r.bytes(int(r.u32()))
			r.byte()
			r.u32()
		}
	case 9:
		what = "element section"
		for n := r.limit(r.count(2), maxElemSegments, "element segments"); n > 0 && r.err == nil; n-- {
			r.elemSegment()
		}
	case 10:
		what = "code section"
		r.limit(r.count(2), maxFunctions, "function bodies")
		return r.errOr(what)
	case 11:
		what = "data section"
		for n := r.limit(r.count(2), maxDataSegments, "data segments"); n > 0 && r.err == nil; n-- {
			switch flags := r.u32(); flags {
			case 0:
				r.constExpr()
			case 1:
			case 2:
				r.u32()
				r.constExpr()
			default:
				r.setErr(fmt.Errorf("data segment kind %d at offset %d is not supported", flags, r.off))
			}
			r.bytes(int(r.u32()))
		}
	default:
		return nil
	}
	return r.errOr(what)
}

// checkCode walks the code section's bodies without rewriting them (for a
// runtime without deadlines), refusing a global index of globals or more.
func checkCode(payload []byte, globals uint32) error {
	r := reader{b: payload}
	for n := r.count(2); n > 0 && r.err == nil; n-- {
		body := reader{b: r.bytes(int(r.u32())), globals: globals, limitGlobals: true}
		body.locals()
		for !body.done() && body.err == nil {
			body.instr()
		}
		if body.err != nil {
			return body.fail("instruction")
		}
	}
	if r.err == nil && !r.done() {
		return fmt.Errorf("%w: %d bytes after the last function body", errInstrument, len(payload)-r.off)
	}
	return r.errOr("code section")
}

func (r *reader) errOr(what string) error {
	if r.err != nil {
		return r.fail(what)
	}
	return nil
}

// count reads a vector's length, refusing one whose elements, at least
// minSize bytes each, could not fit in what is left.
func (r *reader) count(minSize int) uint32 {
	n := r.u32()
	if r.err == nil && uint64(n)*uint64(minSize) > uint64(len(r.b)-r.off) {
		r.setErr(fmt.Errorf("vector of %d at offset %d is longer than the %d bytes left", n, r.off, len(r.b)-r.off))
		return 0
	}
	return n
}

// limit refuses n above max.
func (r *reader) limit(n uint32, max int, what string) uint32 {
	if r.err == nil && uint64(n) > uint64(max) {
		r.setErr(fmt.Errorf("%d %s at offset %d is over the limit of %d", n, what, r.off, max))
		return 0
	}
	return n
}

// locals skips a function body's local declarations, refusing more than
// maxFunctionLocal locals in all.
func (r *reader) locals() {
	var total uint64
	for groups := r.count(2); groups > 0 && r.err == nil; groups-- {
		total += uint64(r.u32())
		r.byte()
		if total > maxFunctionLocal {
			r.setErr(fmt.Errorf("%d locals at offset %d is over the limit of %d", total, r.off, maxFunctionLocal))
		}
	}
}

// constExpr skips a constant expression, up to its end.
func (r *reader) constExpr() {
	for r.err == nil {
		if r.instr() == instrEnd {
			return
		}
	}
}

// elemSegment skips an element segment (its eight encodings).
func (r *reader) elemSegment() {
	flags := r.u32()
	if flags > 7 {
		r.setErr(fmt.Errorf("element segment kind %d at offset %d is not supported", flags, r.off))
		return
	}
	if flags&2 != 0 && flags&1 == 0 { // explicit table index
		r.u32()
	}
	if flags&1 == 0 { // active: offset
		r.constExpr()
	}
	if flags&3 != 0 { // element kind or reference type
		r.byte()
	}
	n := r.limit(r.count(1), maxElemEntries, "elements")
	for ; n > 0 && r.err == nil; n-- {
		if flags&4 != 0 {
			r.constExpr()
		} else {
			r.u32()
		}
	}
}

// nameSection walks the function and local names subsections, whose
// counts wazero allocates by; others are skipped by their size.
func (r *reader) nameSection() {
	for !r.done() && r.err == nil {
		id := r.byte()
		sub := reader{b: r.bytes(int(r.u32()))}
		if r.err != nil {
			return
		}
		switch id {
		case 1: // function names: index, name
			for n := sub.limit(sub.count(2), maxNames, "names"); n > 0 && sub.err == nil; n-- {
				sub.u32()
				sub.bytes(int(sub.u32()))
			}
		case 2: // local names: index, then index and name per local
			for n := sub.limit(sub.count(2), maxNames, "names"); n > 0 && sub.err == nil; n-- {
				sub.u32()
				for m := sub.limit(sub.count(2), maxNames, "names"); m > 0 && sub.err == nil; m-- {
					sub.u32()
					sub.bytes(int(sub.u32()))
				}
			}
		}
		if sub.err != nil {
			r.setErr(sub.err)
		}
	}
}
