// Package wasm is the wazero glue of the wasmfarm host: one [Runtime] per
// server (compilation cache on disk, memory limit, deadline checks),
// a [Module] compiled once per app version and checked against the app ABI
// (docs/abi.md, constants in package host/abi), and a [Pool] of instances
// per module that serves one request per instance at a time.
//
// # Sandbox
//
// Every call runs under a deadline: Compile instruments the module's loops
// (interrupt.go) so that a guest looping forever traps once its deadline
// passes, and the call ends with [ErrDeadline]. Compile first checks the
// module's declared counts against limits (limits.go). Memory is
// capped per instance. A trap, a guest exit, a panic inside a host function
// (e.g. a guest passing a pointer outside its memory) or a deadline leaves
// the instance unusable: the pool discards it and instantiates a new one on
// demand. Guests get the real wall and monotonic clocks and crypto/rand.
//
// # Compilation cache
//
// wazero keeps the machine code of each module compiled in a file cache
// on disk (Config.CacheDir), one entry per module version, and never
// removes one: a farm that redeploys often would grow it without bound.
// The runtime bounds it to Config.CacheMaxBytes (512 MiB by default): at
// NewRuntime and after each Compile it removes the least recently
// compiled entries (each compile sets its entry's mtime, as wazero does
// not touch the entries it reads), those of other wazero versions
// included, but not those of the modules it holds open, and logs what it
// removed. A removed entry only costs a recompilation. See cachebound.go.
//
// # Go guests
//
// A Go reactor (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared) exports
// _initialize, which the pool calls once per instance before anything else.
package wasm
