package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
)

const (
	bodyNone = iota
	bodyLength
	bodyChunked
)

// maxChunkLine caps a chunk's size line with its extensions.
const maxChunkLine = 4096

// ErrChunk is a malformed chunked body.
var ErrChunk = errors.New("h1: malformed chunked body")

// Body is a request body as it arrives on the connection: Content-Length
// bytes, or chunks, whose extensions and trailer fields are read and
// dropped. It belongs to its [Reader] and is reused; Close does nothing
// (the connection drains what the handler left, see [Body.Drain]).
type Body struct {
	br   *bufio.Reader
	max  int          // trailer bytes allowed
	cont func() error // sends 100 Continue

	mode     int
	left     int64 // bytes left: of the body, or of the current chunk
	needCRLF bool  // a chunk's data ended; its line end is next
	expect   bool  // 100 Continue not sent yet
	started  bool  // the handler read
	err      error // sticky; io.EOF once read whole
}

func (b *Body) reset() {
	*b = Body{br: b.br, max: b.max, cont: b.cont}
}

func (b *Body) length(n int64, expect bool) {
	b.mode, b.left, b.expect = bodyLength, n, expect
}

func (b *Body) chunk(expect bool) {
	b.mode, b.expect = bodyChunked, expect
}

// Close implements io.Closer; it does nothing.
func (b *Body) Close() error { return nil }

// Read implements io.Reader.
func (b *Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	b.started = true
	if b.expect {
		b.expect = false
		if b.cont != nil {
			if err := b.cont(); err != nil {
				b.err = err
				return 0, err
			}
		}
	}
	switch b.mode {
	case bodyLength:
		return b.readLength(p)
	case bodyChunked:
		return b.readChunked(p)
	}
	b.err = io.EOF
	return 0, io.EOF
}

func (b *Body) readLength(p []byte) (int, error) {
	if b.left == 0 {
		b.err = io.EOF
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	switch {
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	case err == nil && b.left == 0:
		err = io.EOF
	}
	b.err = err
	return n, err
}

func (b *Body) readChunked(p []byte) (int, error) {
	for b.left == 0 {
		if b.needCRLF {
			if err := b.crlf(); err != nil {
				b.err = err
				return 0, err
			}
			b.needCRLF = false
		}
		n, err := b.chunkSize()
		if err != nil {
			b.err = err
			return 0, err
		}
		if n == 0 {
			if err := b.trailer(); err != nil {
				b.err = err
				return 0, err
			}
			b.err = io.EOF
			return 0, io.EOF
		}
		b.left, b.needCRLF = n, true
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	b.err = err
	return n, err
}

// chunkLine reads a line of the chunked framing, without its CRLF.
func (b *Body) chunkLine() ([]byte, error) {
	ln, err := b.br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull || len(ln) > maxChunkLine:
		return nil, ErrChunk
	case err == io.EOF:
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, err
	}
	// CRLF only: a bare LF here is what smuggling attempts send, and
	// net/http refuses it too.
	if len(ln) < 2 || ln[len(ln)-2] != '\r' {
		return nil, ErrChunk
	}
	return ln[:len(ln)-2], nil
}

func (b *Body) crlf() error {
	ln, err := b.chunkLine()
	if err == nil && len(ln) != 0 {
		err = ErrChunk
	}
	return err
}

// chunkSize reads a chunk-size line: hex digits, then optional
// extensions, which are dropped.
func (b *Body) chunkSize() (int64, error) {
	ln, err := b.chunkLine()
	if err != nil {
		return 0, err
	}
	var n int64
	i := 0
	for ; i < len(ln); i++ {
		c := ln[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto rest
		}
		if i == 15 {
			return 0, ErrChunk // 16 hex digits could overflow int64
		}
		n = n<<4 | int64(d)
	}
rest:
	if i == 0 {
		return 0, ErrChunk
	}
	if ext := trimOWS(ln[i:]); len(ext) > 0 && (ext[0] != ';' || !validValue(ext)) {
		return 0, ErrChunk
	}
	return n, nil
}

// trailer reads the trailer section after the last chunk and drops it.
func (b *Body) trailer() error {
	total := 0
	for {
		ln, err := b.chunkLine()
		if err != nil {
			return err
		}
		if len(ln) == 0 {
			return nil
		}
		if total += len(ln); total > b.max {
			return &Error{Status: http.StatusRequestHeaderFieldsTooLarge, Reason: "trailer section too large"}
		}
		if colon := bytes.IndexByte(ln, ':'); colon <= 0 || !validToken(ln[:colon]) || !validValue(ln[colon+1:]) {
			return ErrChunk
		}
	}
}

// Drain reads and drops what the handler left of the body, up to limit
// bytes, and reports whether the connection can carry another request:
// not if the body failed, is longer than that, or was never asked for
// after "Expect: 100-continue" (the client may not send it at all).
func (b *Body) Drain(limit int64) bool {
	switch {
	case b.err == io.EOF || b.mode == bodyNone:
		return true
	case b.err != nil:
		return false
	case b.expect && !b.started:
		return false
	case b.mode == bodyLength:
		if b.left > limit {
			return false
		}
		n, err := b.br.Discard(int(b.left))
		b.left -= int64(n)
		return err == nil
	}
	n, err := io.CopyN(io.Discard, b, limit+1)
	return err == io.EOF && n <= limit
}

// Reusable reports whether [Body.Drain] with this limit can keep the
// connection without reading more than is known now: the body is read
// whole, or is a Content-Length body of at most limit bytes left whose
// 100 Continue is not pending.
func (b *Body) Reusable(limit int64) bool {
	switch {
	case b.err == io.EOF || b.mode == bodyNone:
		return true
	case b.err != nil || (b.expect && !b.started):
		return false
	}
	return b.mode == bodyLength && b.left <= limit
}
