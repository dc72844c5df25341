//go:build wasip1

package sdk

import "unsafe"

// The host functions of ABI version 1 (docs/abi.md). Buffers are
// (pointer, capacity) pairs; a function that fills a buffer returns the
// full length, writing only when it fits, or a negative abi status.

//go:wasmimport wasmfarm log
func hostLog(level int32, msg unsafe.Pointer, msgLen int32)

//go:wasmimport wasmfarm request_info
func hostRequestInfo(buf unsafe.Pointer, capacity int32) int32

//go:wasmimport wasmfarm response_head
func hostResponseHead(p unsafe.Pointer, n int32) int32

//go:wasmimport wasmfarm session_info
func hostSessionInfo(buf unsafe.Pointer, capacity int32) int32

//go:wasmimport wasmfarm request_method
func hostRequestMethod(buf unsafe.Pointer, capacity int32) int32

//go:wasmimport wasmfarm request_path
func hostRequestPath(buf unsafe.Pointer, capacity int32) int32

//go:wasmimport wasmfarm request_query
func hostRequestQuery(buf unsafe.Pointer, capacity int32) int32

//go:wasmimport wasmfarm request_remote_addr
func hostRequestRemoteAddr(buf unsafe.Pointer, capacity int32) int32

//go:wasmimport wasmfarm context_path
func hostContextPath(buf unsafe.Pointer, capacity int32) int32

//go:wasmimport wasmfarm node_route
func hostNodeRoute(buf unsafe.Pointer, capacity int32) int32

//go:wasmimport wasmfarm request_header
func hostRequestHeader(name unsafe.Pointer, nameLen int32, buf unsafe.Pointer, capacity int32) int32

//go:wasmimport wasmfarm request_headers
func hostRequestHeaders(buf unsafe.Pointer, capacity int32) int32

//go:wasmimport wasmfarm request_body
func hostRequestBody(buf unsafe.Pointer, capacity int32) int32

//go:wasmimport wasmfarm response_status
func hostResponseStatus(code int32) int32

//go:wasmimport wasmfarm response_header
func hostResponseHeader(op int32, name unsafe.Pointer, nameLen int32, value unsafe.Pointer, valueLen int32) int32

//go:wasmimport wasmfarm response_write
func hostResponseWrite(p unsafe.Pointer, n int32) int32

//go:wasmimport wasmfarm session_open
func hostSessionOpen(create int32) int32

//go:wasmimport wasmfarm session_id
func hostSessionID(buf unsafe.Pointer, capacity int32) int32

//go:wasmimport wasmfarm session_is_new
func hostSessionIsNew() int32

//go:wasmimport wasmfarm session_get
func hostSessionGet(key unsafe.Pointer, keyLen int32, buf unsafe.Pointer, capacity int32) int32

//go:wasmimport wasmfarm session_set
func hostSessionSet(key unsafe.Pointer, keyLen int32, value unsafe.Pointer, valueLen int32) int32

//go:wasmimport wasmfarm session_remove
func hostSessionRemove(key unsafe.Pointer, keyLen int32) int32

//go:wasmimport wasmfarm session_keys
func hostSessionKeys(buf unsafe.Pointer, capacity int32) int32

//go:wasmimport wasmfarm session_invalidate
func hostSessionInvalidate() int32

//go:wasmimport wasmfarm session_change_id
func hostSessionChangeID() int32

//go:wasmimport wasmfarm session_max_inactive
func hostSessionMaxInactive() int64

//go:wasmimport wasmfarm session_set_max_inactive
func hostSessionSetMaxInactive(seconds int64) int32

//go:wasmimport wasmfarm session_creation_time
func hostSessionCreationTime() int64

//go:wasmimport wasmfarm session_last_accessed_time
func hostSessionLastAccessedTime() int64

func strPtr(s string) (unsafe.Pointer, int32) {
	return unsafe.Pointer(unsafe.StringData(s)), int32(len(s))
}

func bytesPtr(b []byte) (unsafe.Pointer, int32) {
	return unsafe.Pointer(unsafe.SliceData(b)), int32(len(b))
}

// scratch is the buffer host functions fill; it grows to the largest value
// seen. Safe because an instance runs one call at a time.
var scratch = make([]byte, 512)

// pull calls f with the scratch buffer, growing it and calling again when
// the value does not fit. It returns the bytes (aliasing scratch, valid
// until the next pull) or the negative status.
func pull(f func(buf unsafe.Pointer, capacity int32) int32) ([]byte, int32) {
	n := f(unsafe.Pointer(unsafe.SliceData(scratch)), int32(len(scratch)))
	if n < 0 {
		return nil, n
	}
	if int(n) > len(scratch) {
		scratch = make([]byte, n)
		n = f(unsafe.Pointer(unsafe.SliceData(scratch)), int32(len(scratch)))
		if n < 0 || int(n) > len(scratch) {
			return nil, n
		}
	}
	return scratch[:n], n
}

func pullString(f func(buf unsafe.Pointer, capacity int32) int32) string {
	b, _ := pull(f)
	return string(b)
}
