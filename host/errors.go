package host

import "errors"

var (
	// ErrAppNotFound occurs when Undeploy names a path with no app.
	ErrAppNotFound = errors.New("host: no app at that path")
	// ErrBadPath occurs when a context path is not "/" or "/name[/name...]"
	// without a trailing slash, ';', '?' or '#'.
	ErrBadPath = errors.New("host: bad context path")
	// ErrServerClosed occurs when a shut-down server is used.
	ErrServerClosed = errors.New("host: server closed")
)

// ErrDraining is the error of a request that would have created a session
// on a server being drained (see [Server.SetDraining]).
var ErrDraining = errors.New("host: draining: this member takes no new sessions")

// DrainingHeader is set on the 503 answer to such a request, so that a
// balancer (wasmfarm balance) retries it on another member.
const DrainingHeader = "X-Wasmfarm-Draining"
