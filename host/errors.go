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
