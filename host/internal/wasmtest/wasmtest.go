// Package wasmtest writes tiny WebAssembly modules by hand for tests: a
// module with the ABI's exports returning constants, so that tests of the
// host need no Go guest.
package wasmtest

import (
	"encoding/binary"

	"github.com/wasmfarm/wasmfarm/host/internal/leb"
)

// Module returns a module exporting memory (one page),
// wasmfarm_abi_version returning version and handle returning result;
// loop makes handle loop forever instead.
func Module(version, result int32, loop bool) []byte {
	body := func(v int32) []byte {
		b := []byte{0x00, 0x41} // no locals; i32.const
		b = append(b, sleb(int64(v))...)
		return append(b, 0x0b) // end
	}
	vbody := body(version)
	hbody := body(result)
	if loop {
		// loop (br 0) end; i32.const result; end
		hbody = append([]byte{0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x41}, sleb(int64(result))...)
		hbody = append(hbody, 0x0b)
	}
	m := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	m = append(m, section(1, []byte{0x01, 0x60, 0x00, 0x01, 0x7f})...) // type 0: () -> i32
	m = append(m, section(3, []byte{0x02, 0x00, 0x00})...)             // two functions of type 0
	m = append(m, section(5, []byte{0x01, 0x00, 0x01})...)             // memory min 1 page
	var exp []byte
	exp = append(exp, 0x03)
	exp = append(exp, name("wasmfarm_abi_version")...)
	exp = append(exp, 0x00, 0x00)
	exp = append(exp, name("handle")...)
	exp = append(exp, 0x00, 0x01)
	exp = append(exp, name("memory")...)
	exp = append(exp, 0x02, 0x00)
	m = append(m, section(7, exp)...)
	code := []byte{0x02}
	code = append(code, uleb(uint64(len(vbody)))...)
	code = append(code, vbody...)
	code = append(code, uleb(uint64(len(hbody)))...)
	code = append(code, hbody...)
	m = append(m, section(10, code)...)
	return m
}

// Empty returns a valid module with nothing in it.
func Empty() []byte { return []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00} }

func section(id byte, content []byte) []byte {
	b := []byte{id}
	b = append(b, uleb(uint64(len(content)))...)
	return append(b, content...)
}

func name(s string) []byte { return append(uleb(uint64(len(s))), s...) }

func uleb(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func sleb(v int64) []byte { return leb.AppendSigned(nil, v) }

// Import names a host function of the "wasmfarm" module, with its count of
// i32 parameters; it returns one i32.
type Import struct {
	Name   string
	Params int
}

// Guest returns a module importing imports (functions 0 to len-1, in
// order), exporting memory (one page, data at offset 0),
// wasmfarm_abi_version returning 1 and handle, whose body is the
// instructions code (without locals or the final end; it must leave an
// i32, handle's result).
func Guest(imports []Import, data string, code []byte) []byte {
	n := len(imports)
	types := uleb(uint64(n + 1)) // type i: import i; type n: () -> i32
	for _, im := range imports {
		types = append(append(types, 0x60), uleb(uint64(im.Params))...)
		for range im.Params {
			types = append(types, 0x7f)
		}
		types = append(types, 0x01, 0x7f)
	}
	types = append(types, 0x60, 0x00, 0x01, 0x7f)
	imp := uleb(uint64(n))
	for i, im := range imports {
		imp = append(append(append(imp, name("wasmfarm")...), name(im.Name)...), 0x00)
		imp = append(imp, uleb(uint64(i))...)
	}
	funcs := append([]byte{0x02}, append(uleb(uint64(n)), uleb(uint64(n))...)...)
	exp := []byte{0x03}
	exp = append(append(append(exp, name("wasmfarm_abi_version")...), 0x00), uleb(uint64(n))...)
	exp = append(append(append(exp, name("handle")...), 0x00), uleb(uint64(n+1))...)
	exp = append(append(exp, name("memory")...), 0x02, 0x00)
	version := []byte{0x00, 0x41, 0x01, 0x0b}
	handle := append(append([]byte{0x00}, code...), 0x0b)
	bodies := []byte{0x02}
	bodies = append(append(bodies, uleb(uint64(len(version)))...), version...)
	bodies = append(append(bodies, uleb(uint64(len(handle)))...), handle...)
	m := Empty()
	m = append(m, section(1, types)...)
	m = append(m, section(2, imp)...)
	m = append(m, section(3, funcs)...)
	m = append(m, section(5, []byte{0x01, 0x00, 0x01})...)
	m = append(m, section(7, exp)...)
	m = append(m, section(10, bodies)...)
	return append(m, section(11, append([]byte{0x01, 0x00, 0x41, 0x00, 0x0b}, name(data)...))...)
}

// I32 returns the instruction i32.const v.
func I32(v int) []byte { return append([]byte{0x41}, sleb(int64(v))...) }

// Call returns the instructions calling function f and dropping its
// result.
func Call(f int) []byte { return append(append([]byte{0x10}, uleb(uint64(f))...), 0x1a) }
