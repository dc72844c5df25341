//go:build perfmap

package wasm

// Built with -tags perfmap, wazero writes the address and name of every
// function it compiles to /tmp/perf-<pid>.map, so that Linux perf can
// attribute samples in guest code (which Go's profiler reports only as
// runtime._ExternalCode). A module loaded from the compilation cache is
// not compiled and gets no entries: the disk cache is off in such builds.
const perfMap = true
