package leb

import (
	"bytes"
	"testing"
)

func TestAppendSigned(t *testing.T) {
	for _, tc := range []struct {
		v    int64
		want []byte
	}{
		{0, []byte{0x00}},
		{63, []byte{0x3F}},
		{64, []byte{0xC0, 0x00}},
		{-1, []byte{0x7F}},
		{-64, []byte{0x40}},
		{-65, []byte{0xBF, 0x7F}},
		{8192, []byte{0x80, 0xC0, 0x00}},
		{-2147483648, []byte{0x80, 0x80, 0x80, 0x80, 0x78}},
	} {
		if got := AppendSigned([]byte{0xAA}, tc.v); !bytes.Equal(got, append([]byte{0xAA}, tc.want...)) {
			t.Errorf("AppendSigned(%d) = % x, want aa % x", tc.v, got, tc.want)
		}
	}
}
