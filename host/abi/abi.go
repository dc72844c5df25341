// Package abi holds the constants and the small list codec of the wasmfarm
// app ABI, shared by the host (package host/wasm) and the guest SDK
// (package wasmapps/sdk). The ABI itself is documented in docs/abi.md.
//
// This package imports only the standard library's errors and strconv
// (no fmt, no reflection), so that it compiles small for
// GOOS=wasip1 GOARCH=wasm guests.
package abi

import (
	"errors"
	"strconv"
)

// Version is the ABI version this host implements and this SDK speaks. A
// guest exports [ExportVersion] returning it; the host refuses any other.
const Version = 1

// ModuleName is the import module of every host function.
const ModuleName = "wasmfarm"

// Guest exports.
const (
	ExportVersion          = "wasmfarm_abi_version" // () -> i32: must return Version
	ExportHandle           = "handle"               // () -> i32: a Result
	ExportSessionCreated   = "session_created"      // () -> i32, optional
	ExportSessionDestroyed = "session_destroyed"    // () -> i32, optional
	ExportInitialize       = "_initialize"          // the Go reactor's start function
)

// Results of the guest's handle and hook exports.
const (
	ResultOK                 = 0 // the request succeeded: commit its delta
	ResultFailed             = 1 // the app failed (e.g. a recovered panic): 500
	ResultSessionUnavailable = 2 // a session was needed and could not be created: 503
)

// Status codes returned by host functions (negative; lengths are >= 0).
const (
	Absent          = -1 // no such value (header, attribute, session id)
	NoSession       = -2 // the request has no session
	TooLarge        = -3 // a size limit was exceeded
	TooMany         = -4 // too many attributes or operations
	Invalidated     = -5 // the session was invalidated by this request
	Invalid         = -6 // an invalid argument (e.g. a bad header name)
	TooManySessions = -7 // maxActiveSessions reached
	ReadOnly        = -8 // the session is read-only (in session_destroyed)
)

// Log levels of the log host function (those of log/slog).
const (
	LevelDebug = -4
	LevelInfo  = 0
	LevelWarn  = 4
	LevelError = 8
)

// ErrList occurs when a list encoding is malformed or exceeds its limit.
var ErrList = errors.New("abi: malformed list")

// AppendList appends the list encoding of items to b: a little-endian
// uint32 count, then for each item a little-endian uint32 length and the
// bytes. Header lists alternate names and values.
func AppendList[T ~string | ~[]byte](b []byte, items ...T) []byte {
	b = appendU32(b, uint32(len(items)))
	for _, it := range items {
		b = appendU32(b, uint32(len(it)))
		b = append(b, it...)
	}
	return b
}

// DecodeList decodes a list encoded by AppendList into strings. It accepts
// at most maxItems items and fails on truncation or trailing bytes.
func DecodeList(b []byte, maxItems int) ([]string, error) {
	r, err := NewListReader(b, maxItems)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, r.Len())
	for item, ok := r.Next(); ok; item, ok = r.Next() {
		out = append(out, string(item))
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// ListReader walks a list encoded by AppendList without copying its items,
// for decoders that must not allocate per item.
type ListReader struct {
	b    []byte
	n, i uint32
	err  error
}

// NewListReader checks the list's count against maxItems and the bytes
// there are, and returns a reader positioned at the first item.
func NewListReader(b []byte, maxItems int) (ListReader, error) {
	if len(b) < 4 {
		return ListReader{}, listErr(strconv.Itoa(len(b)) + " bytes, no count")
	}
	n := u32(b)
	b = b[4:]
	if uint64(n) > uint64(maxItems) || uint64(n)*4 > uint64(len(b)) {
		return ListReader{}, listErr(strconv.FormatUint(uint64(n), 10) + " items exceed the limit of " + strconv.Itoa(maxItems) + " or the " + strconv.Itoa(len(b)) + " bytes left")
	}
	return ListReader{b: b, n: n}, nil
}

// Len returns the number of items the list announces.
func (r *ListReader) Len() int { return int(r.n) }

// Next returns the next item, which aliases the list's bytes, or false
// when there is none left or an item is malformed: check Err then.
func (r *ListReader) Next() ([]byte, bool) {
	if r.err != nil {
		return nil, false
	}
	if r.i == r.n {
		if len(r.b) != 0 {
			r.err = listErr(strconv.Itoa(len(r.b)) + " trailing bytes")
		}
		return nil, false
	}
	if len(r.b) < 4 {
		r.err = listErr("truncated at item " + strconv.FormatUint(uint64(r.i), 10))
		return nil, false
	}
	l := u32(r.b)
	r.b = r.b[4:]
	if uint64(l) > uint64(len(r.b)) {
		r.err = listErr("item " + strconv.FormatUint(uint64(r.i), 10) + " of " + strconv.FormatUint(uint64(l), 10) + " bytes is truncated")
		return nil, false
	}
	item := r.b[:l]
	r.b = r.b[l:]
	r.i++
	return item, true
}

// Err returns the first error met by Next, including bytes left after
// the last item (found by the call to Next that returns false).
func (r *ListReader) Err() error { return r.err }

type listError struct{ msg string }

func (e *listError) Error() string { return ErrList.Error() + ": " + e.msg }
func (e *listError) Unwrap() error { return ErrList }

func listErr(msg string) error { return &listError{msg} }

func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

func u32(b []byte) uint32 {
	_ = b[3]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
