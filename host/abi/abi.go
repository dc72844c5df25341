// Package abi holds the constants and the small list codec of the wasmfarm
// app ABI, shared by the host (package host/wasm) and the guest SDK
// (package wasmapps/sdk). The ABI itself is documented in docs/abi.md.
//
// This package imports only the standard library's errors, fmt and
// encoding/binary, so that it compiles for GOOS=wasip1 GOARCH=wasm guests.
package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
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
	b = binary.LittleEndian.AppendUint32(b, uint32(len(items)))
	for _, it := range items {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(it)))
		b = append(b, it...)
	}
	return b
}

// DecodeList decodes a list encoded by AppendList into strings. It accepts
// at most maxItems items and fails on truncation or trailing bytes.
func DecodeList(b []byte, maxItems int) ([]string, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: %d bytes, no count", ErrList, len(b))
	}
	n := binary.LittleEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(maxItems) || uint64(n)*4 > uint64(len(b)) {
		return nil, fmt.Errorf("%w: %d items exceed the limit of %d or the %d bytes left", ErrList, n, maxItems, len(b))
	}
	out := make([]string, 0, n)
	for i := uint32(0); i < n; i++ {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: truncated at item %d", ErrList, i)
		}
		l := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if uint64(l) > uint64(len(b)) {
			return nil, fmt.Errorf("%w: item %d of %d bytes is truncated", ErrList, i, l)
		}
		out = append(out, string(b[:l]))
		b = b[l:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrList, len(b))
	}
	return out, nil
}
