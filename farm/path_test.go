package farm

import (
	"errors"
	"testing"
)

func TestContextPath(t *testing.T) {
	tests := []struct {
		name, file, want string
		err              error
	}{
		{"root", "ROOT.wasm", "/", nil},
		{"simple", "/watch/shop.wasm", "/shop", nil},
		{"nested", "shop#v2.wasm", "/shop/v2", nil},
		{"not wasm", "shop.war", "", ErrBadPath},
		{"empty name", ".wasm", "", ErrBadPath},
		{"empty segment", "shop##2.wasm", "", ErrBadPath},
		{"trailing hash", "shop#.wasm", "", ErrBadPath},
		{"dot dot", "..#x.wasm", "", ErrBadPath},
		{"blank", "my shop.wasm", "", ErrBadPath},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ContextPath(tc.file)
			if got != tc.want || !errors.Is(err, tc.err) {
				t.Fatalf("ContextPath(%q) = %q, %v; want %q, %v", tc.file, got, err, tc.want, tc.err)
			}
			if err == nil {
				if back, _ := ContextPath(FileName(got)); back != got {
					t.Errorf("FileName(%q) = %q does not map back", got, FileName(got))
				}
			}
		})
	}
}

func TestCheckPath(t *testing.T) {
	tests := []struct {
		name, path string
		ok         bool
	}{
		{"root", "/", true},
		{"simple", "/shop", true},
		{"nested", "/a/b-c_d.e~", true},
		{"empty", "", false},
		{"relative", "shop", false},
		{"trailing slash", "/shop/", false},
		{"double slash", "/a//b", false},
		{"dot", "/a/./b", false},
		{"dotdot", "/..", false},
		{"ROOT", "/ROOT", false},
		{"percent", "/a%2f", false},
		{"query", "/a?b", false},
		{"semicolon", "/a;jsessionid=1", false},
		{"backslash", `/a\b`, false},
		{"non-ASCII", "/caf\u00e9", false},
		{"control", "/a\x00", false},
		{"too long", "/" + string(make([]byte, 300)), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPath(tc.path)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadPath)) {
				t.Errorf("CheckPath(%q) = %v, want ok=%v", tc.path, err, tc.ok)
			}
		})
	}
}

func TestParseManifest(t *testing.T) {
	tests := []struct {
		name, in, path string
		err            error
	}{
		{"path", `{"path": "/store/v2"}`, "/store/v2", nil},
		{"empty object", `{}`, "", nil},
		{"bad path", `{"path": "store"}`, "", ErrBadPath},
		{"unknown field", `{"path": "/a", "war": 1}`, "", ErrBadManifest},
		{"two objects", `{} {}`, "", ErrBadManifest},
		{"not json", `path=/a`, "", ErrBadManifest},
		{"too large", `{"path": "/a"}` + string(make([]byte, MaxManifestBytes)), "", ErrBadManifest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(tc.in))
			if m.Path != tc.path || !errors.Is(err, tc.err) || (err != nil && !errors.Is(err, ErrBadManifest)) {
				t.Errorf("ParseManifest(%q) = %+v, %v; want %q, %v", tc.in, m, err, tc.path, tc.err)
			}
		})
	}
}

// FuzzParseManifest: no panic, errors wrap ErrBadManifest, an accepted
// path is valid.
func FuzzParseManifest(f *testing.F) {
	for _, s := range []string{`{"path": "/store/v2"}`, `{}`, `{"path": "/"}`, `{"path": "x"}`, `[1]`, `{"path": "/a"} x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			if !errors.Is(err, ErrBadManifest) {
				t.Fatalf("error %v does not wrap ErrBadManifest", err)
			}
			return
		}
		if m.Path != "" && CheckPath(m.Path) != nil {
			t.Fatalf("accepted bad path %q", m.Path)
		}
	})
}

// FuzzContextPath: a name either maps to a valid path that FileName maps
// back, or is refused with ErrBadPath.
func FuzzContextPath(f *testing.F) {
	for _, s := range []string{"ROOT.wasm", "shop.wasm", "shop#v2.wasm", "a##b.wasm", "x.war", "#.wasm"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, err := ContextPath(name)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("error %v does not wrap ErrBadPath", err)
			}
			return
		}
		if CheckPath(p) != nil {
			t.Fatalf("%q gave bad path %q", name, p)
		}
		if back, err := ContextPath(FileName(p)); err != nil || back != p {
			t.Fatalf("%q → %q → %q → %q, %v", name, p, FileName(p), back, err)
		}
	})
}
