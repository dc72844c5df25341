package wasm

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/wasmfarm/wasmfarm/host/session"
)

// Call is the state of one guest invocation: the request the guest reads,
// the response it writes and its session. The host fills the request part,
// the pool runs the guest, and the host reads the response part. A Call is
// used by one invocation at a time and may be reused after Reset.
type Call struct {
	// The request, read by the guest.
	Method      string
	Path        string // the request URI's path, without ;jsessionid
	RawQuery    string
	ContextPath string // the app's mount path, e.g. "/counter"
	RemoteAddr  string
	Header      http.Header
	Body        []byte
	JvmRoute    string

	// Session is the request's session view; nil means the guest has no
	// session (session calls answer NoSession).
	Session *session.Txn

	// Limits on what the guest may write.
	MaxResponseBytes       int // body; 0 means 16 MiB
	MaxResponseHeaderBytes int // one header name + value; 0 means 64 KiB
	// All headers: each counts for its name, its value and 32 bytes
	// (which bounds their number); 0 means 1 MiB.
	MaxResponseHeadersBytes int

	// The response, written by the guest. Status 0 means 200.
	// ResponseHeader may hold keys without values, left from an earlier
	// request on a reused Call: they are not part of the response.
	Status         int
	ResponseHeader http.Header
	ResponseBody   []byte

	// Logger receives the guest's log calls; nil means the runtime's.
	Logger *slog.Logger

	sessionErr  error // the error of a refused session creation
	headerBytes int   // what ResponseHeader's values count for (MaxResponseHeadersBytes)
	scratch     []byte
	strings     *stringCache // response head strings, kept across Reset
}

// Reset clears c for reuse, keeping its buffers. ResponseHeader keeps its
// keys with their value slices emptied, so that the next request's
// values reuse them (a key without values reads as absent; see
// ResponseHeader), unless it holds more keys than a response commonly has.
func (c *Call) Reset() {
	rh := c.ResponseHeader
	if len(rh) > maxKeptHeaderKeys {
		clear(rh)
	}
	for k, vs := range rh {
		if len(vs) > 0 {
			clear(vs)
			rh[k] = vs[:0]
		}
	}
	*c = Call{ResponseHeader: rh, ResponseBody: c.ResponseBody[:0], scratch: c.scratch[:0], strings: c.strings}
}

// maxKeptHeaderKeys bounds the response header keys Reset keeps.
const maxKeptHeaderKeys = 16

// SessionError returns the error of a session creation the guest asked for
// and the host refused (e.g. session.ErrTooManySessions), or nil.
func (c *Call) SessionError() error { return c.sessionErr }

type callKey struct{}

func callFrom(ctx context.Context) *Call {
	c, _ := ctx.Value(callKey{}).(*Call)
	return c
}
