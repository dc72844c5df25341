// Package wasmapps holds the sample wasmfarm apps, built and embedded, so
// that a node can serve them with no build step ("builtin:counter"):
//
//   - counter: Tomcat's cluster test page: session id, node, creation time
//     and a counter (/counter, /counter/json, /counter/invalidate)
//   - cart: a shopping cart with several attributes (add, remove, clear)
//   - static: static files plus one session page, to show the replication
//     valve's filter
//
// The sources are in the sub-directories (GOOS=wasip1 main packages using
// package sdk); `go generate ./wasmapps` rebuilds build/*.wasm and
// build/MANIFEST.json, and TestBuildOutputsMatchSources fails when the
// committed outputs drift from their sources.
package wasmapps

import (
	"embed"
	"sort"
	"strings"
)

//go:generate go run ./internal/gen

//go:embed build/counter.wasm build/cart.wasm build/static.wasm
var files embed.FS

func mustRead(name string) []byte {
	b, err := files.ReadFile("build/" + name + ".wasm")
	if err != nil {
		panic("wasmapps: " + err.Error()) // the embed directive guarantees the files
	}
	return b
}

// Counter returns the counter app's module.
func Counter() []byte { return mustRead("counter") }

// Cart returns the cart app's module.
func Cart() []byte { return mustRead("cart") }

// Static returns the static-files app's module.
func Static() []byte { return mustRead("static") }

// Lookup returns the embedded app called name ("counter", "cart",
// "static").
func Lookup(name string) ([]byte, bool) {
	b, err := files.ReadFile("build/" + name + ".wasm")
	return b, err == nil
}

// Names returns the names of the embedded apps.
func Names() []string {
	entries, _ := files.ReadDir("build")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".wasm"))
	}
	sort.Strings(names)
	return names
}
