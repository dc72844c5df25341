// Command gen rebuilds the sample apps' .wasm files and their manifest
// (run by `go generate ./wasmapps`, from the wasmapps directory).
package main

import (
	"fmt"
	"os"

	"github.com/wasmfarm/wasmfarm/wasmapps/internal/build"
)

func main() {
	m, err := build.Generate(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Printf("built %d apps with %s (sources %s)\n", len(m.Outputs), m.Toolchain, m.SourceHash[:16])
}
