package sdk

import (
	"strings"
	"testing"
)

func TestSame(t *testing.T) {
	base := "GET/counter/json/counterjvm_a-0123456789ABCDEF0123456789ABCDEF.jvm_a"
	for n := 0; n <= len(base); n++ {
		a := base[:n]
		if !same([]byte(a), a) || !sameBytes([]byte(a), []byte(a)) {
			t.Fatalf("length %d: equal bytes reported different", n)
		}
		for i := 0; i < n; i++ { // a difference at every position, in the 8-byte words and the tail
			b := []byte(a)
			b[i] ^= 0x20
			if same(b, a) || sameBytes(b, []byte(a)) {
				t.Fatalf("length %d: a difference at %d not seen", n, i)
			}
		}
		if n > 0 && (same([]byte(a[:n-1]), a) || sameBytes([]byte(a), []byte(a[1:]))) {
			t.Fatalf("length %d: different lengths reported equal", n)
		}
	}
	if !same(nil, "") || !sameBytes(nil, []byte{}) || same(nil, "x") {
		t.Fatal("empty inputs")
	}
	long := strings.Repeat("x", 1000)
	if !same([]byte(long), long) {
		t.Fatal("long equal strings")
	}
}
