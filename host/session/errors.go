package session

import "errors"

var (
	// ErrTooManySessions occurs when creating a session would exceed the
	// manager's MaxActiveSessions. The host answers 503.
	ErrTooManySessions = errors.New("session: too many active sessions")
	// ErrNotFound occurs when a delta or an id change names a session the
	// manager does not hold (it expired or was invalidated meanwhile).
	ErrNotFound = errors.New("session: not found")
	// ErrInvalidated occurs when a request uses a session after
	// invalidating it.
	ErrInvalidated = errors.New("session: invalidated")
	// ErrNoSession occurs when a session operation needs a session and the
	// request has none (it did not create one).
	ErrNoSession = errors.New("session: no session")
	// ErrAttributeTooLarge occurs when an attribute key or value exceeds
	// the [Limits], or when a change would make the session or the
	// request's delta exceed their MaxEncodedSize.
	ErrAttributeTooLarge = errors.New("session: attribute too large")
	// ErrTooManyAttributes occurs when a session would hold more
	// attributes, or a request more operations, than the [Limits] allow.
	ErrTooManyAttributes = errors.New("session: too many attributes")
	// ErrCorrupt occurs when the codec meets bytes that are not a valid
	// encoding, or that exceed the [Limits].
	ErrCorrupt = errors.New("session: corrupt encoding")
	// ErrReadOnly occurs when a session listener tries to change a
	// destroyed session.
	ErrReadOnly = errors.New("session: read-only")
	// ErrClosed occurs when a closed manager is used.
	ErrClosed = errors.New("session: manager closed")
	// ErrIDInUse occurs when a session would be renamed to an id another
	// session has.
	ErrIDInUse = errors.New("session: id in use")
)
