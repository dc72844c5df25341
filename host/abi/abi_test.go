package abi

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func TestList(t *testing.T) {
	tests := []struct {
		name  string
		items []string
	}{
		{"empty", nil},
		{"one", []string{"a"}},
		{"headers", []string{"Content-Type", "text/plain", "X-Empty", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := AppendList(nil, tc.items...)
			got, err := DecodeList(b, 16)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.items) && !(len(got) == 0 && len(tc.items) == 0) {
				t.Fatalf("got %q, want %q", got, tc.items)
			}
		})
	}
	b := AppendList(nil, "a", "b", "c")
	if _, err := DecodeList(b, 2); !errors.Is(err, ErrList) {
		t.Fatalf("over the item limit: %v", err)
	}
	if _, err := DecodeList(b[:len(b)-1], 16); !errors.Is(err, ErrList) {
		t.Fatalf("truncated: %v", err)
	}
	if _, err := DecodeList(append(b, 0), 16); !errors.Is(err, ErrList) {
		t.Fatalf("trailing: %v", err)
	}
}

func FuzzDecodeList(f *testing.F) {
	f.Add(AppendList(nil, "Content-Type", "text/html"))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := DecodeList(b, 64)
		if err != nil {
			return
		}
		if again := AppendList(nil, items...); !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x != %x", again, b)
		}
	})
}
