package sdk

import "testing"

func TestCanonicalHeaderKey(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"lower", "content-type", "Content-Type"},
		{"upper", "CONTENT-TYPE", "Content-Type"},
		{"canonical", "X-Forwarded-For", "X-Forwarded-For"},
		{"space", "bad key", "bad key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := CanonicalHeaderKey(tc.in); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	h := Header{}
	h.Add("x-a", "1")
	h.Add("X-A", "2")
	if got := h.Values("x-A"); len(got) != 2 || h.Get("X-a") != "1" {
		t.Fatalf("values %q", got)
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct{ name, in, key, want string }{
		{"plain", "item=apple&qty=2", "qty", "2"},
		{"plus", "item=green+apple", "item", "green apple"},
		{"escape", "item=caf%C3%A9", "item", "café"},
		{"bad escape", "item=%zz", "item", "%zz"},
		{"absent", "a=1", "b", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseQuery(tc.in).Get(tc.key); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
