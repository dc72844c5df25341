package wasm

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidModule occurs when the bytes are not a valid WebAssembly
	// module (wrapped in a *ModuleError).
	ErrInvalidModule = errors.New("wasm: invalid module")
	// ErrMissingExport occurs when a module lacks a required export or
	// exports it with the wrong signature.
	ErrMissingExport = errors.New("wasm: missing or mistyped export")
	// ErrUnknownImport occurs when a module imports a function the host
	// does not provide.
	ErrUnknownImport = errors.New("wasm: unknown import")
	// ErrABIVersion occurs when a module speaks another ABI version.
	ErrABIVersion = errors.New("wasm: unsupported ABI version")
	// ErrInstantiate occurs when a module cannot be instantiated or its
	// _initialize fails.
	ErrInstantiate = errors.New("wasm: instantiation failed")

	// ErrDeadline occurs when a call runs past its deadline; the instance
	// is discarded. The host answers 503.
	ErrDeadline = errors.New("wasm: deadline exceeded")
	// ErrBusy occurs when no instance became free before the request's
	// context ended. The host answers 503.
	ErrBusy = errors.New("wasm: no free instance")
	// ErrTrap occurs when the guest traps, exits, runs out of memory or
	// misuses the ABI; the instance is discarded. The host answers 500.
	ErrTrap = errors.New("wasm: guest trapped")
	// ErrAppFailed occurs when the guest reports a failure (e.g. a
	// recovered panic). The host answers 500.
	ErrAppFailed = errors.New("wasm: app failed")
	// ErrSessionUnavailable occurs when the guest needed a session that
	// could not be created (maxActiveSessions). The host answers 503.
	ErrSessionUnavailable = errors.New("wasm: session unavailable")
	// ErrClosed occurs when a closed pool or runtime is used.
	ErrClosed = errors.New("wasm: closed")
)

// ModuleError is returned by [Runtime.Compile] and [NewPool] when a module is
// refused. It names the module and the reason; errors.Is matches one of
// ErrInvalidModule, ErrMissingExport, ErrUnknownImport, ErrABIVersion or
// ErrInstantiate.
type ModuleError struct {
	Module string // the module's name (an app path or file name)
	Reason string // what is wrong, for people
	Err    error  // the sentinel, possibly wrapping wazero's error
}

func (e *ModuleError) Error() string {
	return fmt.Sprintf("wasm module %s refused: %s", e.Module, e.Reason)
}

func (e *ModuleError) Unwrap() error { return e.Err }
