module github.com/wasmfarm/wasmfarm

go 1.26.0

require (
	github.com/klauspost/compress v1.20.3
	github.com/tetratelabs/wazero v1.12.0
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.49.0
)
