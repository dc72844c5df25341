package sdk

import (
	"strconv"
	"testing"
)

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
	var h Header
	h.Add("x-a", "1")
	h.Add("X-A", "2")
	if got := h.Values("x-A"); len(got) != 2 || h.Get("X-a") != "1" {
		t.Fatalf("values %q", got)
	}
}

func TestHeader(t *testing.T) {
	var nilHeader *Header
	if nilHeader.Get("a") != "" || nilHeader.Values("a") != nil || nilHeader.Len() != 0 || nilHeader.Has("a") || len(nilHeader.Keys()) != 0 {
		t.Fatal("a nil header is not empty")
	}
	var h Header
	h.Set("content-type", "text/plain")
	h.Set("Content-Type", "application/json") // replaces
	h.Add("Set-Cookie", "a=1")
	h.Add("set-cookie", "b=2")
	h.Set("X-Empty", "")
	if got := h.Get("CONTENT-TYPE"); got != "application/json" {
		t.Fatalf("Content-Type %q", got)
	}
	if got := h.Values("Set-Cookie"); len(got) != 2 || got[0] != "a=1" || got[1] != "b=2" {
		t.Fatalf("Set-Cookie %q", got)
	}
	if !h.Has("x-empty") || h.Len() != 3 {
		t.Fatalf("Has(x-empty) %v, Len %d; want true, 3", h.Has("x-empty"), h.Len())
	}
	if got := h.Keys(); len(got) != 3 || got[0] != "Content-Type" || got[1] != "Set-Cookie" || got[2] != "X-Empty" {
		t.Fatalf("Keys %q", got)
	}
	h.Del("set-COOKIE")
	if h.Has("Set-Cookie") || h.Get("Set-Cookie") != "" || h.Len() != 2 {
		t.Fatalf("after Del: Has %v, Len %d", h.Has("Set-Cookie"), h.Len())
	}
	var order []string
	for name, values := range h.All {
		order = append(order, name+"="+values[0])
	}
	if len(order) != 2 || order[0] != "Content-Type=application/json" || order[1] != "X-Empty=" {
		t.Fatalf("All %q, want the names with values in the order first set", order)
	}
	for range h.All {
		break // yield returning false stops the iteration
	}
	h.reset()
	if h.Len() != 0 || h.Get("Content-Type") != "" {
		t.Fatalf("after reset: Len %d", h.Len())
	}
	h.Set("Content-Type", "text/html")
	if h.Len() != 1 || len(h.fields) != 3 {
		t.Fatalf("after reset and Set: Len %d, %d fields; want 1 and the 3 kept names", h.Len(), len(h.fields))
	}
	if n := testing.AllocsPerRun(100, func() {
		h.reset()
		h.Set("Content-Type", "application/json")
	}); n != 0 {
		t.Errorf("Set of a kept name allocates %v times, want 0", n)
	}
	if bad := CanonicalHeaderKey("bad key"); h.Get(bad) != "" {
		t.Fatal("a name outside a token matched")
	}
}

// TestHeaderResetBounded: reset keeps the names of a response's usual
// headers for reuse, but a header set under a new name on every request
// does not grow the list without end.
func TestHeaderResetBounded(t *testing.T) {
	var h Header
	for i := range 1000 {
		h.Set("Content-Type", "text/plain")
		h.Set("X-Request-"+strconv.Itoa(i), "1")
		if h.Len() != 2 || h.Get("Content-Type") != "text/plain" {
			t.Fatalf("request %d: %d names, Content-Type %q", i, h.Len(), h.Get("Content-Type"))
		}
		h.reset()
		if n := len(h.fields); n > 64 { // a bound of its own: maxKeptFields may change
			t.Fatalf("after request %d: %d names kept", i, n)
		}
		if h.Len() != 0 || h.Has("Content-Type") {
			t.Fatalf("after reset: %d names with values", h.Len())
		}
	}
	var usual Header
	for range 3 {
		usual.Set("Content-Type", "a")
		usual.reset()
	}
	if len(usual.fields) != 1 {
		t.Fatalf("a usual header: %d names kept, want its 1 for reuse", len(usual.fields))
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
