//go:build !perfmap

package wasm

// perfMap is set by the perfmap build tag (see perfmap.go).
const perfMap = false
