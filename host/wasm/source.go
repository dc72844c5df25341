package wasm

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// CompileFrom compiles a module read from r, which holds at most limit
// bytes (0: no limit beyond the rewrite's own), like [Runtime.Compile], but
// without the whole module in memory: custom sections other than the name
// section (DWARF, producers, padding) are hashed and skipped as they are
// read, and only the rest, what wazero compiles, is kept. The module's
// digest and size are those of every byte read.
func (rt *Runtime) CompileFrom(ctx context.Context, name string, r io.Reader, limit int64) (*Module, error) {
	code, sum, size, err := readStripped(r, limit)
	if err != nil {
		if errors.Is(err, errInstrument) {
			return nil, &ModuleError{Module: name, Reason: "not a valid WebAssembly module: " + err.Error(), Err: fmt.Errorf("%w: %w", ErrInvalidModule, err)}
		}
		return nil, fmt.Errorf("wasm: reading module %s: %w", name, err)
	}
	return rt.compile(ctx, name, code, sum, int(size))
}

// readStripped reads a module, hashing all of it and keeping its header,
// its non-custom sections and its name section. Errors about the bytes
// wrap errInstrument; others are the reader's.
func readStripped(r io.Reader, limit int64) (code []byte, sum [32]byte, size int64, err error) {
	if limit <= 0 || limit > maxInstrumentSize {
		limit = maxInstrumentSize
	}
	h := sha256.New()
	lr := &io.LimitedReader{R: r, N: limit + 1}
	br := bufio.NewReaderSize(io.TeeReader(lr, h), 64<<10)
	malformed := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{errInstrument}, args...)...)
	}
	readErr := func(what string, err error) error {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			if lr.N <= 0 {
				return malformed("over the %d byte limit", limit)
			}
			return malformed("%s: unexpected end", what)
		}
		return err
	}
	var header [8]byte
	if _, err := io.ReadFull(br, header[:]); err != nil {
		return nil, sum, 0, readErr("header", err)
	}
	if string(header[:4]) != "\x00asm" {
		return nil, sum, 0, malformed("no \\0asm magic number")
	}
	code = append(code, header[:]...) // the version is checked by prepareModule
	var pos int64 = 8
	for {
		id, err := br.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, sum, 0, readErr("section id", err)
		}
		n, w, err := readLEB32(br)
		if err != nil {
			return nil, sum, 0, readErr("section size", err)
		}
		pos += 1 + int64(w)
		if id == 0 {
			// The name first: only the name section is kept.
			nameLen, nw, err := readLEB32(br)
			if err != nil {
				return nil, sum, 0, readErr("custom section name", err)
			}
			if uint64(nameLen)+uint64(nw) > uint64(n) {
				return nil, sum, 0, malformed("custom section name at offset %d runs past its section", pos)
			}
			var name [4]byte
			if nameLen == 4 {
				if _, err := io.ReadFull(br, name[:]); err != nil {
					return nil, sum, 0, readErr("custom section name", err)
				}
			}
			consumed := int64(nw)
			if nameLen == 4 {
				consumed += 4
			}
			if nameLen == 4 && string(name[:]) == "name" {
				code = appendLEB(append(code, 0), n)
				code = appendLEB(code, 4)
				code = append(code, "name"...)
				if code, err = readN(br, code, int64(n)-consumed); err != nil {
					return nil, sum, 0, readErr("name section", err)
				}
			} else if _, err := br.Discard(int(int64(n) - consumed)); err != nil {
				return nil, sum, 0, readErr("custom section", err)
			}
		} else {
			code = appendLEB(append(code, id), n)
			if code, err = readN(br, code, int64(n)); err != nil {
				return nil, sum, 0, readErr(fmt.Sprintf("section %d", id), err)
			}
		}
		pos += int64(n)
		if pos > limit {
			return nil, sum, 0, malformed("over the %d byte limit", limit)
		}
	}
	copy(sum[:], h.Sum(nil))
	return code, sum, pos, nil
}

// readN appends n bytes of r to b, growing b as the bytes arrive rather
// than by n up front (n is declared by the module).
func readN(r io.Reader, b []byte, n int64) ([]byte, error) {
	for n > 0 {
		chunk := min(n, 1<<20)
		start := len(b)
		b = append(b, make([]byte, chunk)...)
		if _, err := io.ReadFull(r, b[start:]); err != nil {
			return b, err
		}
		n -= chunk
	}
	return b, nil
}

// readLEB32 reads an unsigned LEB128 number of at most 5 bytes.
func readLEB32(r io.ByteReader) (uint32, int, error) {
	var v uint64
	for i := 0; i < 5; i++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, i, err
		}
		v |= uint64(c&0x7F) << (7 * i)
		if c&0x80 == 0 {
			if v > 1<<32-1 {
				return 0, i + 1, fmt.Errorf("%w: u32 out of range", errInstrument)
			}
			return uint32(v), i + 1, nil
		}
	}
	return 0, 5, fmt.Errorf("%w: u32 longer than 5 bytes", errInstrument)
}
