//go:build wasip1

package sdk

import (
	"errors"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/wasmfarm/wasmfarm/host/abi"
)

// Handler serves one request. It may write the response and use the session.
type Handler interface {
	ServeWasm(w ResponseWriter, r *Request, s *Session)
}

// HandlerFunc adapts a function to a [Handler].
type HandlerFunc func(w ResponseWriter, r *Request, s *Session)

// ServeWasm calls f(w, r, s).
func (f HandlerFunc) ServeWasm(w ResponseWriter, r *Request, s *Session) { f(w, r, s) }

var (
	handler          Handler = HandlerFunc(notFound)
	onCreated        func(*Session)
	onDestroyed      func(*Session)
	errNoSessionRoom = errors.New("sdk: no session available")
)

func notFound(w ResponseWriter, r *Request, s *Session) {
	w.WriteHeader(404)
	w.Write([]byte("no handler registered\n"))
}

// Handle sets the app's handler. Call it from an init function.
func Handle(h Handler) { handler = h }

// HandleFunc sets the app's handler function. Call it from an init
// function.
func HandleFunc(f func(w ResponseWriter, r *Request, s *Session)) { handler = HandlerFunc(f) }

// OnSessionCreated sets a function the host calls after a request that
// created a session succeeded (Tomcat's sessionCreated). It may read and
// write the session.
func OnSessionCreated(f func(s *Session)) { onCreated = f }

// OnSessionDestroyed sets a function the host calls when a session is
// invalidated or expires (Tomcat's sessionDestroyed). The session is
// read-only there.
func OnSessionDestroyed(f func(s *Session)) { onDestroyed = f }

// Errors of session and response operations.
var (
	ErrTooLarge       = errors.New("sdk: value too large")
	ErrTooMany        = errors.New("sdk: too many attributes")
	ErrInvalidated    = errors.New("sdk: session invalidated")
	ErrNoSession      = errors.New("sdk: no session")
	ErrReadOnly       = errors.New("sdk: session is read-only")
	ErrInvalid        = errors.New("sdk: invalid argument")
	ErrHostStatus     = errors.New("sdk: unexpected host status")
	errAbsentInternal = errors.New("sdk: absent")
)

func statusErr(code int32) error {
	switch code {
	case 0:
		return nil
	case abi.TooLarge:
		return ErrTooLarge
	case abi.TooMany:
		return ErrTooMany
	case abi.Invalidated:
		return ErrInvalidated
	case abi.NoSession:
		return ErrNoSession
	case abi.ReadOnly:
		return ErrReadOnly
	case abi.Invalid:
		return ErrInvalid
	case abi.Absent:
		return errAbsentInternal
	case abi.TooManySessions:
		panic(errNoSessionRoom)
	}
	return &hostStatusError{code}
}

//go:wasmexport wasmfarm_abi_version
func abiVersion() int32 { return abi.Version }

// The request, response and session of the current call: an instance
// serves one request at a time, so they are reused rather than allocated
// per request (a handler must not keep them after it returns).
var (
	curReq  Request
	curResp = response{sentStatus: -1}
	curSess Session
	curNode string
	calls   uint32
	headBuf []byte
	// lastInfo is the previous request's request_info list.
	lastInfo []byte
)

// yieldEvery is how often (in calls) handle yields to the Go scheduler so
// that the guest's background garbage collector can run; yielding on every
// call costs about as much as the rest of a small request.
const yieldEvery = 16

//go:wasmexport handle
func handle() (result int32) {
	r, w, s := &curReq, &curResp, &curSess
	*r = Request{}
	w.status = 0 // flush emptied the headers
	*s = Session{id: s.id}
	defer func() {
		if p := recover(); p != nil {
			result = recovered(p)
			w.reset()
		}
		if calls++; calls%yieldEvery == 0 {
			runtime.Gosched() // let the guest's garbage collector run
		}
	}()
	if info, _ := pull(hostRequestInfo); !sameBytes(info, lastInfo) {
		// Otherwise the same method, path, query, context path and node
		// as the previous request (common under load): one comparison
		// instead of one per field.
		decodeRequestInfo(info)
		lastInfo = append(lastInfo[:0], info...)
	}
	// From lastReq, not from the previous Request, which the handler may
	// have changed.
	r.Method, r.Path, r.RawQuery, r.ContextPath = lastReq[0], lastReq[1], lastReq[2], lastReq[3]
	handler.ServeWasm(w, r, s)
	w.flush()
	return abi.ResultOK
}

// lastReq holds the method, path, query and context path decoded from
// lastInfo.
var lastReq [4]string

// decodeRequestInfo sets lastReq and curNode from a request_info list
// (method, path, query, context path, node), without allocating for
// values equal to the previous ones: strings are only made for what
// changed. A malformed list leaves them empty.
func decodeRequestInfo(b []byte) {
	var items [5][]byte
	ok := len(b) >= 4 && le32(b) == 5
	if ok {
		b = b[4:]
		for i := range items {
			if len(b) < 4 {
				ok = false
				break
			}
			n := le32(b)
			b = b[4:]
			if uint64(n) > uint64(len(b)) {
				ok = false
				break
			}
			items[i], b = b[:n], b[n:]
		}
	}
	if !ok {
		lastReq = [4]string{}
		return
	}
	lastReq[0] = intern(items[0], lastReq[0], "GET", "POST", "HEAD")
	lastReq[1] = intern(items[1], lastReq[1])
	lastReq[2] = intern(items[2], lastReq[2])
	lastReq[3] = intern(items[3], lastReq[3])
	curNode = intern(items[4], curNode)
}

// intern returns the candidate equal to b, or a new string.
func intern(b []byte, candidates ...string) string {
	if len(b) == 0 {
		return ""
	}
	for _, c := range candidates {
		if same(b, c) {
			return c
		}
	}
	return string(b)
}

func le32(b []byte) uint32 {
	_ = b[3]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func recovered(p any) int32 {
	if err, ok := p.(error); ok && errors.Is(err, errNoSessionRoom) {
		return abi.ResultSessionUnavailable
	}
	var msg string
	switch v := p.(type) {
	case error:
		msg = v.Error()
	case string:
		msg = v
	default:
		msg = "(non-string panic value)"
	}
	buf := make([]byte, 8<<10)
	buf = buf[:runtime.Stack(buf, false)]
	Log(LevelError, "panic: "+msg+"\n"+string(buf))
	return abi.ResultFailed
}

type hostStatusError struct{ code int32 }

func (e *hostStatusError) Error() string {
	return ErrHostStatus.Error() + " " + strconv.Itoa(int(e.code))
}

func (e *hostStatusError) Unwrap() error { return ErrHostStatus }

//go:wasmexport session_created
func sessionCreated() (result int32) {
	return hook(onCreated)
}

//go:wasmexport session_destroyed
func sessionDestroyed() (result int32) {
	return hook(onDestroyed)
}

func hook(f func(*Session)) (result int32) {
	if f == nil {
		return abi.ResultOK
	}
	defer func() {
		if p := recover(); p != nil {
			result = recovered(p)
		}
	}()
	var s Session
	f(&s)
	return abi.ResultOK
}

// Node returns the jvmRoute of the node serving the request ("" if none).
func Node() string {
	if curNode == "" {
		curNode = pullString(hostNodeRoute)
	}
	return curNode
}

// Log levels, those of log/slog.
const (
	LevelDebug = abi.LevelDebug
	LevelInfo  = abi.LevelInfo
	LevelWarn  = abi.LevelWarn
	LevelError = abi.LevelError
)

// Log writes msg to the node's log at level.
func Log(level int, msg string) {
	p, n := strPtr(msg)
	hostLog(int32(level), p, n)
}

// Request is the incoming request. Method, Path, RawQuery and ContextPath
// are filled before the handler runs; headers and body are fetched on
// first use.
type Request struct {
	Method      string
	Path        string // the request URI's path, e.g. "/counter/json"
	RawQuery    string // without '?'
	ContextPath string // the app's mount path, e.g. "/counter"

	header  *Header
	body    []byte
	query   Values
	gotBody bool
}

// AppPath returns the path below the context path: "/json" for
// "/counter/json" under "/counter", and "/" for the context root.
func (r *Request) AppPath() string {
	p := strings.TrimPrefix(r.Path, r.ContextPath)
	if p == "" {
		return "/"
	}
	return p
}

// HeaderValue returns the request header name (values joined by ", "), or
// "" if absent, in one host call.
func (r *Request) HeaderValue(name string) string {
	if r.header != nil {
		return strings.Join(r.header.Values(name), ", ")
	}
	np, nn := strPtr(name)
	b, n := pull(func(buf unsafe.Pointer, c int32) int32 { return hostRequestHeader(np, nn, buf, c) })
	if n < 0 {
		return ""
	}
	return string(b)
}

// Header returns all request headers.
func (r *Request) Header() *Header {
	if r.header == nil {
		r.header = &Header{}
		b, _ := pull(hostRequestHeaders)
		items, err := abi.DecodeList(b, 1<<16)
		if err == nil {
			for i := 0; i+1 < len(items); i += 2 {
				r.header.Add(items[i], items[i+1])
			}
		}
	}
	return r.header
}

// Body returns the request body (the host has read it, within its limit).
func (r *Request) Body() []byte {
	if !r.gotBody {
		r.gotBody = true
		b, _ := pull(hostRequestBody)
		r.body = append([]byte(nil), b...)
	}
	return r.body
}

// RemoteAddr returns the client's address ("ip:port").
func (r *Request) RemoteAddr() string { return pullString(hostRequestRemoteAddr) }

// Query returns the parsed query string.
func (r *Request) Query() Values {
	if r.query == nil {
		r.query = ParseQuery(r.RawQuery)
	}
	return r.query
}

// FormValue returns the first value of the query parameter name, or of the
// form field name in an application/x-www-form-urlencoded POST body.
func (r *Request) FormValue(name string) string {
	if v := r.Query().Get(name); v != "" {
		return v
	}
	if r.Method == "POST" && strings.HasPrefix(r.HeaderValue("Content-Type"), "application/x-www-form-urlencoded") {
		return ParseQuery(string(r.Body())).Get(name)
	}
	return ""
}

// ResponseWriter writes the response, like net/http's.
type ResponseWriter interface {
	// Header returns the response headers to change before the handler
	// returns.
	Header() *Header
	// Write appends to the body; it fails with ErrTooLarge beyond the
	// host's limit.
	Write(p []byte) (int, error)
	// WriteString appends s to the body.
	WriteString(s string) (int, error)
	// WriteHeader sets the status code (default 200).
	WriteHeader(statusCode int)
}

type response struct {
	header Header
	status int
	// The status and the number of fields headBuf encodes; sentStatus is
	// -1 when headBuf holds no complete head.
	sentStatus, sentFields int
}

// reset readies w for the next request, keeping its header's names and
// slices: a header emptied here reads as absent.
func (w *response) reset() {
	w.status = 0
	w.header.reset()
}

func (w *response) Header() *Header { return &w.header }

func (w *response) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *response) Write(p []byte) (int, error) {
	ptr, n := bytesPtr(p)
	if err := statusErr(hostResponseWrite(ptr, n)); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *response) WriteString(s string) (int, error) {
	ptr, n := strPtr(s)
	if err := statusErr(hostResponseWrite(ptr, n)); err != nil {
		return 0, err
	}
	return len(s), nil
}

// flush sends the response head: the one headBuf holds when nothing in it
// changed (sameHead), else a new encoding. It empties the header for the
// next request, keeping its names and slices.
func (w *response) flush() {
	if w.status == 0 && len(w.header.fields) == 0 {
		return
	}
	send := w.sameHead() || w.encodeHead()
	w.header.reset()
	if send {
		p, l := bytesPtr(headBuf)
		if code := hostResponseHead(p, l); code != 0 {
			Log(LevelWarn, "response head refused: "+statusErr(code).Error())
		}
	}
}

// encodeHead encodes the response_head list into headBuf in one pass over
// the headers (the count first as a placeholder, then the status, then
// names and values) and records what it holds for sameHead. It reports
// false when there is nothing to send: no status and no values.
func (w *response) encodeHead() bool {
	w.sentStatus, w.sentFields = -1, 0 // headBuf is about to change
	b := append(headBuf[:0], 0, 0, 0, 0)
	if w.status != 0 {
		var d [3]byte
		st := strconv.AppendInt(d[:0], int64(w.status), 10)
		b = appendU32(b, uint32(len(st)))
		b = append(b, st...)
	} else {
		b = appendU32(b, 0)
	}
	n := 1
	for i := range w.header.fields {
		f := &w.header.fields[i]
		for _, v := range f.values {
			b = appendU32(b, uint32(len(f.name)))
			b = append(b, f.name...)
			b = appendU32(b, uint32(len(v)))
			b = append(b, v...)
		}
		n += 2 * len(f.values)
		f.sentN, f.sent = len(f.values), ""
		if len(f.values) == 1 {
			f.sent = f.values[0]
		}
	}
	headBuf = b
	if w.status == 0 && n == 1 {
		return false
	}
	b[0], b[1], b[2], b[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	w.sentStatus, w.sentFields = w.status, len(w.header.fields)
	return true
}

// sameHead reports whether the response's head is the one headBuf holds
// from an earlier request (common: the same status and Content-Type on
// every request), so that flush sends it without encoding it again. A
// value counts as the same when it is the very string sent before: the
// field holds on to that string, so its bytes cannot have been reused for
// another. Fields with several values are always encoded.
func (w *response) sameHead() bool {
	if w.status != w.sentStatus || len(w.header.fields) != w.sentFields {
		return false
	}
	for i := range w.header.fields {
		f := &w.header.fields[i]
		switch {
		case len(f.values) != f.sentN || len(f.values) > 1:
			return false
		case len(f.values) == 1 && (len(f.values[0]) != len(f.sent) || unsafe.StringData(f.values[0]) != unsafe.StringData(f.sent)):
			return false
		}
	}
	return true
}

func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

// Session is the request's session (see the package doc for when it is
// created). Methods that need a session and cannot create one because the
// node is at its session limit end the request with a 503.
type Session struct {
	state int8 // 0 not asked, 1 exists, -1 none
	info  bool // the fields below are loaded
	isNew bool
	id    string
	// unix ms and seconds, as session_info returns them
	created, accessed, maxInactive int64
}

func (s *Session) open(create bool) bool {
	if s.state == 1 || (s.state == -1 && !create) {
		return s.state == 1
	}
	c := int32(0)
	if create {
		c = 1
	}
	switch r := hostSessionOpen(c); {
	case r == 1:
		s.state = 1
	case r == 0 || r == abi.Invalidated || r == abi.NoSession || r == abi.ReadOnly:
		s.state = -1
	default:
		statusErr(r) // panics for TooManySessions
		s.state = -1
	}
	return s.state == 1
}

// load opens (creating if needed) and fetches the session's id and times.
func (s *Session) load() bool {
	if !s.open(true) {
		return false
	}
	if !s.info {
		b, n := pull(hostSessionInfo)
		if n < 25 {
			return false
		}
		s.isNew = b[0]&1 != 0
		s.created = int64(le64(b[1:]))
		s.accessed = int64(le64(b[9:]))
		s.maxInactive = int64(le64(b[17:]))
		if !same(b[25:], s.id) {
			s.id = sessionID(b[25:])
		}
		s.info = true
	}
	return true
}

// idCache holds session id strings this instance made, so that the ids
// of the sessions it keeps serving are not allocated again on every
// request (requests of different sessions alternate on an instance, and
// each new string is garbage for the guest's collector). It is direct
// mapped on the id's first 8 bytes, random hex for the host's ids (the
// end is the node's route, the same for all).
var idCache [64]string

// sessionID returns b as a string, from idCache when it holds it.
func sessionID(b []byte) string {
	if len(b) < 8 {
		return string(b)
	}
	slot := &idCache[le64(b)%uint64(len(idCache))]
	if !same(b, *slot) {
		*slot = string(b)
	}
	return *slot
}

func le64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// Exists reports whether the request has a session, without creating one.
func (s *Session) Exists() bool { return s.open(false) }

// ID returns the session id, creating the session if needed.
func (s *Session) ID() string {
	if !s.load() {
		return ""
	}
	return s.id
}

// IsNew reports whether this request created the session.
func (s *Session) IsNew() bool { return s.load() && s.isNew }

// CreationTime returns when the session was created.
func (s *Session) CreationTime() time.Time {
	if !s.load() {
		return time.Time{}
	}
	return time.UnixMilli(s.created)
}

// LastAccessedTime returns the time of the session's previous request.
func (s *Session) LastAccessedTime() time.Time {
	if !s.load() {
		return time.Time{}
	}
	return time.UnixMilli(s.accessed)
}

// MaxInactiveInterval returns the session's idle limit (negative: never
// expires).
func (s *Session) MaxInactiveInterval() time.Duration {
	if !s.load() {
		return 0
	}
	if s.maxInactive < 0 {
		return -1
	}
	return time.Duration(s.maxInactive) * time.Second
}

// SetMaxInactiveInterval changes the idle limit (<= 0: never expires).
func (s *Session) SetMaxInactiveInterval(d time.Duration) error {
	if !s.load() {
		return ErrNoSession
	}
	secs := int64(d / time.Second)
	if d > 0 && secs == 0 {
		secs = 1
	}
	if d <= 0 {
		secs = -1
	}
	if err := statusErr(hostSessionSetMaxInactive(secs)); err != nil {
		return err
	}
	s.maxInactive = secs
	return nil
}

// Get returns a copy of the attribute's value and whether it is set. It
// does not create a session.
func (s *Session) Get(key string) ([]byte, bool) {
	if !s.open(false) {
		return nil, false
	}
	kp, kn := strPtr(key)
	b, n := pull(func(buf unsafe.Pointer, c int32) int32 { return hostSessionGet(kp, kn, buf, c) })
	if n < 0 {
		return nil, false
	}
	return append([]byte{}, b...), true
}

// GetString returns the attribute as a string ("" if unset).
func (s *Session) GetString(key string) string {
	if !s.open(false) {
		return ""
	}
	kp, kn := strPtr(key)
	b, _ := pull(func(buf unsafe.Pointer, c int32) int32 { return hostSessionGet(kp, kn, buf, c) })
	return string(b)
}

// GetInt returns the attribute parsed as a decimal integer; ok is false if
// it is unset or not a number.
func (s *Session) GetInt(key string) (v int64, ok bool) {
	if !s.open(false) {
		return 0, false
	}
	kp, kn := strPtr(key)
	b, n := pull(func(buf unsafe.Pointer, c int32) int32 { return hostSessionGet(kp, kn, buf, c) })
	if n < 0 {
		return 0, false
	}
	return parseInt(b)
}

// parseInt parses a decimal int64 without allocating.
func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
		if v < 0 {
			return 0, false
		}
	}
	if neg {
		v = -v
	}
	return v, true
}

// Set sets the attribute key to a copy of value, creating the session if
// needed.
func (s *Session) Set(key string, value []byte) error {
	if !s.open(true) {
		return ErrInvalidated
	}
	kp, kn := strPtr(key)
	vp, vn := bytesPtr(value)
	return statusErr(hostSessionSet(kp, kn, vp, vn))
}

// SetString sets the attribute to a string.
func (s *Session) SetString(key, value string) error {
	if !s.open(true) {
		return ErrInvalidated
	}
	kp, kn := strPtr(key)
	vp, vn := strPtr(value)
	return statusErr(hostSessionSet(kp, kn, vp, vn))
}

// SetInt sets the attribute to the decimal form of v.
func (s *Session) SetInt(key string, v int64) error {
	// A buffer on the stack would escape (its address goes to the host),
	// costing an allocation per call: an instance serves one request at a
	// time, and the host copies the value before returning.
	return s.Set(key, strconv.AppendInt(intBuf[:0], v, 10))
}

var intBuf [20]byte

// Remove removes the attribute. Without a session it does nothing.
func (s *Session) Remove(key string) error {
	if !s.open(false) {
		return nil
	}
	kp, kn := strPtr(key)
	return statusErr(hostSessionRemove(kp, kn))
}

// Keys returns the attribute keys, sorted.
func (s *Session) Keys() []string {
	if !s.open(false) {
		return nil
	}
	b, n := pull(hostSessionKeys)
	if n < 0 {
		return nil
	}
	keys, _ := abi.DecodeList(b, 1<<20)
	return keys
}

// Invalidate ends the session when the request succeeds. Without a session
// it does nothing.
func (s *Session) Invalidate() error {
	if !s.open(false) {
		return nil
	}
	return statusErr(hostSessionInvalidate())
}

// ChangeID gives the session a new id (call it after a login, against
// session fixation) and returns it.
func (s *Session) ChangeID() (string, error) {
	if !s.open(true) {
		return "", ErrInvalidated
	}
	if err := statusErr(hostSessionChangeID()); err != nil {
		return "", err
	}
	s.info = false
	return s.ID(), nil
}
