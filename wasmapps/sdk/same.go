package sdk

import "unsafe"

// same reports whether b holds the bytes of s; sameBytes is the same for
// two slices. They compare 8 bytes at a time: the Go runtime's comparison
// goes byte by byte on wasm, and the request line and session id compared
// on every request are 40 to 60 bytes long.
func same(b []byte, s string) bool {
	return len(b) == len(s) && sameMem(unsafe.Pointer(unsafe.SliceData(b)), unsafe.Pointer(unsafe.StringData(s)), len(b))
}

func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && sameMem(unsafe.Pointer(unsafe.SliceData(a)), unsafe.Pointer(unsafe.SliceData(b)), len(a))
}

func sameMem(pa, pb unsafe.Pointer, n int) bool {
	i := 0
	for ; i+8 <= n; i += 8 {
		if *(*uint64)(unsafe.Add(pa, i)) != *(*uint64)(unsafe.Add(pb, i)) {
			return false
		}
	}
	for ; i < n; i++ {
		if *(*byte)(unsafe.Add(pa, i)) != *(*byte)(unsafe.Add(pb, i)) {
			return false
		}
	}
	return true
}
