package farm

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of the deployer. Test with [errors.Is].
var (
	// ErrClosed occurs when a Deployer is used after Close, or before Start.
	ErrClosed = errors.New("farm: deployer not running")
	// ErrBadPath occurs when a context path or module file name does not
	// map to a valid context path ("/" or "/name[/name...]").
	ErrBadPath = errors.New("farm: bad context path")
	// ErrModuleTooLarge occurs when a module exceeds Config.MaxModuleBytes.
	ErrModuleTooLarge = errors.New("farm: module too large")
	// ErrAppNotFound occurs when Undeploy names a path that no app serves
	// on this member. Host adapters wrap their own not-found error in it.
	ErrAppNotFound = errors.New("farm: no app at that path")
	// ErrBadMessage occurs when a farm message is malformed; it comes
	// wrapped with the reason.
	ErrBadMessage = errors.New("farm: malformed farm message")
	// ErrUnauthenticated occurs when a farm message lacks a valid HMAC
	// (Config.AuthKey set on one side only, or different keys).
	ErrUnauthenticated = errors.New("farm: unauthenticated farm message")
	// ErrBadManifest occurs when a module's manifest is malformed.
	ErrBadManifest = errors.New("farm: bad manifest")
	// ErrMembersFailed occurs when an operation succeeded locally but
	// failed on some members; the concrete error is a [*MembersError].
	ErrMembersFailed = errors.New("farm: operation failed on some members")
	// ErrNoPeer occurs when Sync finds no member that answers.
	ErrNoPeer = errors.New("farm: no member answered")
)

// MembersError lists the members an operation failed on. errors.Is(err,
// ErrMembersFailed) is true for it. The full per-member report is in the
// [Report] returned with it.
type MembersError struct {
	Op     string // "deploy" or "undeploy"
	Path   string
	Failed []MemberResult
}

// Error returns, for example,
// "farm: deploy /shop failed on 1 of the members: jvm_b (127.0.0.1:4001): wasm module refused: ...".
func (e *MembersError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "farm: %s %s failed on %d member(s):", e.Op, e.Path, len(e.Failed))
	for i, f := range e.Failed {
		if i > 0 {
			b.WriteByte(';')
		}
		fmt.Fprintf(&b, " %s: %s", f.Label(), f.Error)
	}
	return b.String()
}

// Is reports whether target is [ErrMembersFailed].
func (e *MembersError) Is(target error) bool { return target == ErrMembersFailed }
