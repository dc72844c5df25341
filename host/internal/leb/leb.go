// Package leb encodes the signed LEB128 numbers of the WebAssembly binary
// format (i32.const and i64.const immediates). Unsigned LEB128 is
// encoding/binary's AppendUvarint.
package leb

// AppendSigned appends v as a signed LEB128 number.
func AppendSigned(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
