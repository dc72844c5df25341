package host

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/host/wasm"
)

// Exchange is one request and its buffered response as it passes the
// valves (Tomcat's Request/Response pair). The response is written to the
// client only after the whole pipeline returned, so a valve may still
// change it, or delay it (e.g. to wait for replication acks).
//
// An Exchange belongs to one request; valves must not keep it, nor its
// Delta or Body, after Invoke returns.
type Exchange struct {
	// Request is the HTTP request. Its URL path may still hold a
	// ";jsessionid=" parameter; Path does not.
	Request *http.Request
	// Path is the request path without ";jsessionid=...".
	Path string
	// Context is the app that serves the request.
	Context *Context
	// RequestedSessionID is the session id the client sent (cookie first,
	// then URL); a valve may rewrite it before the app runs.
	RequestedSessionID string
	// SessionIDFromURL reports that the id came from ";jsessionid=".
	SessionIDFromURL bool

	// Status, Header and Body are the response (Status 0 means 200).
	Status int
	Header http.Header
	Body   []byte

	// SessionCookie, if set when the pipeline ends, is sent as the
	// session cookie. The basic valve sets it when the request created a
	// session or changed its id; a valve that rewrites the id sets it too.
	SessionCookie string

	// Delta is the session delta the request committed, or nil if the
	// request had no session or failed. Valid until the exchange ends.
	Delta *session.Delta
	// Err is why the request failed (the status is then 4xx or 5xx), or
	// nil.
	Err error

	// Start is when the request arrived.
	Start time.Time

	// Attributes are request attributes set by valves (Tomcat's request
	// attributes), e.g. the session id a client sent before a failover
	// rewrote it. Nil until the first SetAttribute.
	Attributes map[string]string

	clientSessionID string
	call            wasm.Call
	txn             session.Txn
	body            []byte
	cl              contentLength
	ctype           [1]string // a sniffed Content-Type
}

// contentLength is the Content-Length header value of the exchange's
// previous response, kept so that an equal length costs no allocation.
type contentLength struct {
	n int
	v [1]string
}

// contentLength returns the header value for a body of n bytes. The slice
// is the exchange's: net/http copies the header when the status is
// written, before the exchange is reused.
func (x *Exchange) contentLength(n int) []string {
	if x.cl.n != n || x.cl.v[0] == "" {
		x.cl = contentLength{n: n, v: [1]string{strconv.Itoa(n)}}
	}
	return x.cl.v[:]
}

// reset readies x for the next request, keeping its buffers. It clears
// the fields one by one rather than assigning a new Exchange, which would
// copy the call and the session view (most of its 700 bytes) twice per
// request; TestExchangeReset checks that no field is left out.
func (x *Exchange) reset() {
	x.call.Reset()
	x.txn.Reset(nil, session.Limits{}, "", time.Time{}) // drops the session, keeps the buffers
	x.body = x.body[:0]
	x.Request, x.Path, x.Context, x.RequestedSessionID, x.SessionIDFromURL = nil, "", nil, "", false
	x.Status, x.Header, x.Body, x.SessionCookie = 0, nil, nil, ""
	x.Delta, x.Err, x.Start, x.Attributes, x.clientSessionID = nil, nil, time.Time{}, nil, ""
}

// SetAttribute sets a request attribute.
func (x *Exchange) SetAttribute(name, value string) {
	if x.Attributes == nil {
		x.Attributes = make(map[string]string, 2)
	}
	x.Attributes[name] = value
}

// Fail sets an error response: status, a plain-text message and Err.
func (x *Exchange) Fail(status int, err error) {
	x.Status = status
	x.Err = err
	x.Delta = nil
	if x.Header == nil {
		x.Header = http.Header{}
	} else {
		clear(x.Header)
	}
	x.Header.Set("Content-Type", "text/plain; charset=utf-8")
	x.Header.Set("X-Content-Type-Options", "nosniff")
	x.Body = append(x.Body[:0], http.StatusText(status)...)
	if err != nil {
		x.Body = append(x.Body, ": "...)
		x.Body = append(x.Body, err.Error()...)
	}
	x.Body = append(x.Body, '\n')
}

// splitSessionParam removes ";jsessionid=ID" from path and returns the
// cleaned path and ID ("" if absent). Other path parameters are kept.
func splitSessionParam(path string) (string, string) {
	const param = ";jsessionid="
	i := strings.Index(path, param)
	if i < 0 {
		return path, ""
	}
	rest := path[i+len(param):]
	end := strings.IndexAny(rest, ";/?")
	if end < 0 {
		end = len(rest)
	}
	return path[:i] + rest[end:], rest[:end]
}
