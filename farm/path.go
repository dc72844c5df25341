package farm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// ModuleExt is the extension of module files in the watch and deploy
// directories.
const ModuleExt = ".wasm"

// ManifestExt is appended to a module's file name to name its optional
// manifest ("shop.wasm" → "shop.wasm.json").
const ManifestExt = ".json"

// MaxManifestBytes bounds a manifest file.
const MaxManifestBytes = 4 << 10

// maxPathLen bounds a context path (and so a file name in the deploy dir).
const maxPathLen = 200

// ContextPath returns the context path of a module file, as Tomcat names
// contexts after WAR files: "ROOT.wasm" is "/", "shop.wasm" is "/shop" and
// "shop#v2.wasm" is "/shop/v2" ('#' stands for '/'). Only the base name
// counts. The error wraps [ErrBadPath].
func ContextPath(file string) (string, error) {
	base := filepath.Base(file)
	name, ok := strings.CutSuffix(base, ModuleExt)
	if !ok || name == "" {
		return "", fmt.Errorf("%w: %q is not a %s file", ErrBadPath, base, ModuleExt)
	}
	if name == "ROOT" {
		return "/", nil
	}
	p := "/" + strings.ReplaceAll(name, "#", "/")
	if err := CheckPath(p); err != nil {
		return "", fmt.Errorf("%w (from file %q)", err, base)
	}
	return p, nil
}

// FileName returns the file name of the module for a context path, the
// inverse of [ContextPath]: "/" is "ROOT.wasm", "/shop/v2" "shop#v2.wasm".
// path must be valid (see [CheckPath]).
func FileName(path string) string {
	if path == "/" {
		return "ROOT" + ModuleExt
	}
	return strings.ReplaceAll(path[1:], "/", "#") + ModuleExt
}

// CheckPath reports whether path is a context path the farm accepts: "/"
// or "/seg[/seg...]" (not "/ROOT") where no segment is empty, "." or "..", and no
// character is a control character, a blank, '\\', '#', '%', ';', '?' or
// non-ASCII; at most 200 bytes. The error wraps [ErrBadPath].
func CheckPath(path string) error {
	if path == "/" {
		return nil
	}
	bad := func(why string) error { return fmt.Errorf("%w: %q: %s", ErrBadPath, path, why) }
	switch {
	case len(path) > maxPathLen:
		return bad("too long")
	case !strings.HasPrefix(path, "/"):
		return bad(`want "/" or "/name"`)
	case strings.HasSuffix(path, "/"):
		return bad("trailing slash")
	}
	for seg := range strings.SplitSeq(path[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return bad("empty or dot segment")
		}
	}
	if path == "/ROOT" {
		return bad(`"/ROOT" would share ROOT.wasm with "/"`)
	}
	for i := 0; i < len(path); i++ {
		if c := path[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`\#%;?`, c) >= 0 {
			return bad(fmt.Sprintf("character %q not allowed", c))
		}
	}
	return nil
}

// Manifest is the optional JSON file beside a module in the watch dir
// ("shop.wasm.json" for "shop.wasm"), for when the file name is not the
// context path:
//
//	{"path": "/shop/v2"}
type Manifest struct {
	// Path is the context path; empty means the one from the file name.
	Path string `json:"path"`
}

// ParseManifest decodes a manifest: at most [MaxManifestBytes], one JSON
// object with known fields only, and a valid path if any. The error wraps
// [ErrBadManifest] (and [ErrBadPath] for a bad path).
func ParseManifest(b []byte) (Manifest, error) {
	var m Manifest
	if len(b) > MaxManifestBytes {
		return m, fmt.Errorf("%w: %d bytes, limit %d", ErrBadManifest, len(b), MaxManifestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Manifest{}, fmt.Errorf("%w: data after the object", ErrBadManifest)
	}
	if m.Path != "" {
		if err := CheckPath(m.Path); err != nil {
			return Manifest{}, fmt.Errorf("%w: %w", ErrBadManifest, err)
		}
	}
	return m, nil
}
