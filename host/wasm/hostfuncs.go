package wasm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/wasmfarm/wasmfarm/host/abi"
	"github.com/wasmfarm/wasmfarm/host/session"
)

// hostFunc is one function of the wasmfarm host module.
type hostFunc struct {
	name            string
	params, results []api.ValueType
	fn              func(ctx context.Context, c *Call, m api.Module, stack []uint64)
}

var hostFuncByName = map[string]hostFunc{}

func init() {
	for _, f := range hostFuncs {
		hostFuncByName[f.name] = f
	}
}

// guestError is the panic value of a host function refusing a guest's
// arguments; wazero turns it into an error of the call, and the pool
// discards the instance.
type guestError struct{ msg string }

func (e guestError) Error() string { return "wasm: guest misused the ABI: " + e.msg }

// read returns the guest's bytes [ptr, ptr+n), aliasing its memory (valid
// until the guest runs again). An out-of-bounds range traps the guest.
func read(m api.Module, ptr, n uint32) []byte {
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		panic(guestError{fmt.Sprintf("range [%d, %d+%d) is outside its memory of %d bytes", ptr, ptr, n, m.Memory().Size())})
	}
	return b
}

// out writes data to the guest buffer [ptr, ptr+capacity) if it fits and
// returns len(data) either way: a guest whose buffer is too small grows it
// and calls again.
func out[T string | []byte](m api.Module, ptr, capacity uint32, data T) uint64 {
	if uint64(len(data)) > uint64(capacity) {
		return api.EncodeI32(int32(len(data)))
	}
	var ok bool
	switch d := any(data).(type) {
	case string:
		ok = m.Memory().WriteString(ptr, d)
	case []byte:
		ok = m.Memory().Write(ptr, d)
	}
	if !ok {
		panic(guestError{fmt.Sprintf("buffer [%d, %d+%d) is outside its memory of %d bytes", ptr, ptr, capacity, m.Memory().Size())})
	}
	return api.EncodeI32(int32(len(data)))
}

func u32(v uint64) uint32 { return api.DecodeU32(v) }
func code(v int) uint64   { return api.EncodeI32(int32(v)) }

// sessionCode maps a session error to an ABI status code.
func sessionCode(c *Call, err error) uint64 {
	switch {
	case err == nil:
		return code(0)
	case errors.Is(err, session.ErrNoSession):
		return code(abi.NoSession)
	case errors.Is(err, session.ErrAttributeTooLarge):
		return code(abi.TooLarge)
	case errors.Is(err, session.ErrTooManyAttributes):
		return code(abi.TooMany)
	case errors.Is(err, session.ErrInvalidated):
		return code(abi.Invalidated)
	case errors.Is(err, session.ErrReadOnly):
		return code(abi.ReadOnly)
	case errors.Is(err, session.ErrTooManySessions):
		c.sessionErr = err
		return code(abi.TooManySessions)
	}
	c.sessionErr = err
	return code(abi.Invalid)
}

func strOut(get func(c *Call) string) func(ctx context.Context, c *Call, m api.Module, s []uint64) {
	return func(_ context.Context, c *Call, m api.Module, s []uint64) {
		s[0] = out(m, u32(s[0]), u32(s[1]), get(c))
	}
}

var (
	bufParams = []api.ValueType{i32, i32}
	oneI32    = []api.ValueType{i32}
	oneI64    = []api.ValueType{i64}
)

// hostFuncs is the wasmfarm host module, ABI version 1 (docs/abi.md).
var hostFuncs = []hostFunc{
	{"request_method", bufParams, oneI32, strOut(func(c *Call) string { return c.Method })},
	{"request_path", bufParams, oneI32, strOut(func(c *Call) string { return c.Path })},
	{"request_query", bufParams, oneI32, strOut(func(c *Call) string { return c.RawQuery })},
	{"request_remote_addr", bufParams, oneI32, strOut(func(c *Call) string { return c.RemoteAddr })},
	{"context_path", bufParams, oneI32, strOut(func(c *Call) string { return c.ContextPath })},
	{"node_route", bufParams, oneI32, strOut(func(c *Call) string { return c.JvmRoute })},
	{"request_info", bufParams, oneI32, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		c.scratch = abi.AppendList(c.scratch[:0], c.Method, c.Path, c.RawQuery, c.ContextPath, c.JvmRoute)
		s[0] = out(m, u32(s[0]), u32(s[1]), c.scratch)
	}},
	{"request_header", []api.ValueType{i32, i32, i32, i32}, oneI32, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		name := read(m, u32(s[0]), u32(s[1]))
		vals := c.Header[http.CanonicalHeaderKey(string(name))]
		switch len(vals) {
		case 0:
			s[0] = code(abi.Absent)
		case 1:
			s[0] = out(m, u32(s[2]), u32(s[3]), vals[0])
		default:
			c.scratch = c.scratch[:0]
			for i, v := range vals {
				if i > 0 {
					c.scratch = append(c.scratch, ", "...)
				}
				c.scratch = append(c.scratch, v...)
			}
			s[0] = out(m, u32(s[2]), u32(s[3]), c.scratch)
		}
	}},
	{"request_headers", bufParams, oneI32, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		c.scratch = encodeHeader(c.scratch[:0], c.Header)
		s[0] = out(m, u32(s[0]), u32(s[1]), c.scratch)
	}},
	{"request_body", bufParams, oneI32, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		s[0] = out(m, u32(s[0]), u32(s[1]), c.Body)
	}},
	{"response_status", oneI32, oneI32, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		st := int(api.DecodeI32(s[0]))
		if st < 100 || st > 999 {
			s[0] = code(abi.Invalid)
			return
		}
		c.Status = st
		s[0] = code(0)
	}},
	{"response_header", []api.ValueType{i32, i32, i32, i32, i32}, oneI32, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		op := api.DecodeI32(s[0])
		name := read(m, u32(s[1]), u32(s[2]))
		value := read(m, u32(s[3]), u32(s[4]))
		s[0] = code(setResponseHeader(c, op, name, value))
	}},
	{"response_head", bufParams, oneI32, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		s[0] = code(setResponseHead(c, read(m, u32(s[0]), u32(s[1]))))
	}},
	{"response_write", bufParams, oneI32, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		b := read(m, u32(s[0]), u32(s[1]))
		max := c.MaxResponseBytes
		if max <= 0 {
			max = 16 << 20
		}
		if len(c.ResponseBody)+len(b) > max {
			s[0] = code(abi.TooLarge)
			return
		}
		c.ResponseBody = append(c.ResponseBody, b...)
		s[0] = code(0)
	}},
	{"session_open", oneI32, oneI32, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		if c.Session == nil {
			s[0] = code(abi.NoSession)
			return
		}
		ok, err := c.Session.Open(api.DecodeI32(s[0]) != 0)
		switch {
		case err != nil:
			s[0] = sessionCode(c, err)
		case ok:
			s[0] = code(1)
		default:
			s[0] = code(0)
		}
	}},
	{"session_info", bufParams, oneI32, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		if c.Session == nil || c.Session.ID() == "" {
			s[0] = code(abi.NoSession)
			return
		}
		c.scratch = appendSessionInfo(c.scratch[:0], c.Session)
		s[0] = out(m, u32(s[0]), u32(s[1]), c.scratch)
	}},
	{"session_id", bufParams, oneI32, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		if c.Session == nil || c.Session.ID() == "" {
			s[0] = code(abi.NoSession)
			return
		}
		s[0] = out(m, u32(s[0]), u32(s[1]), c.Session.ID())
	}},
	{"session_is_new", nil, oneI32, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		if c.Session != nil && c.Session.IsNew() {
			s[0] = code(1)
		} else {
			s[0] = code(0)
		}
	}},
	{"session_get", []api.ValueType{i32, i32, i32, i32}, oneI32, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		if c.Session == nil {
			s[0] = code(abi.NoSession)
			return
		}
		key := read(m, u32(s[0]), u32(s[1]))
		v, ok := c.Session.Get(c.str(key))
		if !ok {
			s[0] = code(abi.Absent)
			return
		}
		s[0] = out(m, u32(s[2]), u32(s[3]), v)
	}},
	{"session_set", []api.ValueType{i32, i32, i32, i32}, oneI32, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		if c.Session == nil {
			s[0] = code(abi.NoSession)
			return
		}
		key := read(m, u32(s[0]), u32(s[1]))
		val := read(m, u32(s[2]), u32(s[3]))
		s[0] = sessionCode(c, c.Session.Set(c.str(key), val))
	}},
	{"session_remove", bufParams, oneI32, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		if c.Session == nil {
			s[0] = code(abi.NoSession)
			return
		}
		key := read(m, u32(s[0]), u32(s[1]))
		s[0] = sessionCode(c, c.Session.Remove(c.str(key)))
	}},
	{"session_keys", bufParams, oneI32, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		if c.Session == nil {
			s[0] = code(abi.NoSession)
			return
		}
		c.scratch = abi.AppendList(c.scratch[:0], c.Session.Keys()...)
		s[0] = out(m, u32(s[0]), u32(s[1]), c.scratch)
	}},
	{"session_invalidate", nil, oneI32, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		if c.Session == nil {
			s[0] = code(abi.NoSession)
			return
		}
		s[0] = sessionCode(c, c.Session.Invalidate())
	}},
	{"session_change_id", nil, oneI32, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		if c.Session == nil {
			s[0] = code(abi.NoSession)
			return
		}
		_, err := c.Session.ChangeID()
		s[0] = sessionCode(c, err)
	}},
	{"session_max_inactive", nil, oneI64, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		if c.Session == nil || c.Session.ID() == "" {
			s[0] = api.EncodeI64(abi.NoSession)
			return
		}
		d := c.Session.MaxInactiveInterval()
		if d < 0 {
			s[0] = api.EncodeI64(-1)
			return
		}
		s[0] = api.EncodeI64(int64(d / time.Second))
	}},
	{"session_set_max_inactive", oneI64, oneI32, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		if c.Session == nil {
			s[0] = code(abi.NoSession)
			return
		}
		// Clamp before converting: seconds beyond ±2^33 overflow a
		// Duration, and a large negative count would wrap to a positive
		// limit where the guest asked for "never expires".
		secs := int64(s[0])
		secs = min(max(secs, -1), 1<<31-1)
		s[0] = sessionCode(c, c.Session.SetMaxInactiveInterval(time.Duration(secs)*time.Second))
	}},
	{"session_creation_time", nil, oneI64, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		if c.Session == nil || c.Session.ID() == "" {
			s[0] = api.EncodeI64(abi.NoSession)
			return
		}
		s[0] = api.EncodeI64(c.Session.CreationTime().UnixMilli())
	}},
	{"session_last_accessed_time", nil, oneI64, func(_ context.Context, c *Call, m api.Module, s []uint64) {
		if c.Session == nil || c.Session.ID() == "" {
			s[0] = api.EncodeI64(abi.NoSession)
			return
		}
		s[0] = api.EncodeI64(c.Session.LastAccessedTime().UnixMilli())
	}},
}

// logFunc is registered separately: it works outside a request too (e.g.
// from a guest's init), using the runtime's logger.
func logFunc(rt *Runtime) api.GoModuleFunc {
	return func(ctx context.Context, m api.Module, s []uint64) {
		level := slog.Level(api.DecodeI32(s[0]))
		msg := read(m, u32(s[1]), u32(s[2]))
		if len(msg) > 64<<10 {
			msg = msg[:64<<10]
		}
		l := rt.log
		if c := callFrom(ctx); c != nil && c.Logger != nil {
			l = c.Logger
		}
		if l.Enabled(ctx, level) {
			l.Log(ctx, level, string(msg), "source", "guest")
		}
	}
}

// setResponseHeader applies op (0 set, 1 add, 2 delete) and returns a
// status code. Names and values are validated as net/http does.
func setResponseHeader(c *Call, op int32, name, value []byte) int {
	max := c.MaxResponseHeaderBytes
	if max <= 0 {
		max = 64 << 10
	}
	if len(name)+len(value) > max {
		return abi.TooLarge
	}
	n := string(name)
	if !validHeaderName(n) {
		return abi.Invalid
	}
	if c.ResponseHeader == nil {
		c.ResponseHeader = make(http.Header)
	}
	// old is what the values op 0 and 2 remove count for.
	old := 0
	if op == 0 || op == 2 {
		for _, v := range c.ResponseHeader.Values(n) {
			old += len(n) + len(v) + headerOverhead
		}
	}
	switch op {
	case 0, 1:
		if !validHeaderValue(value) {
			return abi.Invalid
		}
		size := len(n) + len(value) + headerOverhead
		if c.headerBytes-old+size > c.maxHeadersBytes() {
			return abi.TooLarge
		}
		v := string(value)
		if op == 0 {
			c.ResponseHeader.Set(n, v)
		} else {
			c.ResponseHeader.Add(n, v)
		}
		c.headerBytes += size - old
	case 2:
		c.ResponseHeader.Del(n)
		c.headerBytes -= old
	default:
		return abi.Invalid
	}
	return 0
}

// headerOverhead is what a response header counts for against
// MaxResponseHeadersBytes beyond its name and value (as HTTP/2's header
// list size): it bounds the number of headers too.
const headerOverhead = 32

func (c *Call) maxHeadersBytes() int {
	if c.MaxResponseHeadersBytes <= 0 {
		return 1 << 20
	}
	return c.MaxResponseHeadersBytes
}

// maxHeadBytes bounds a response_head list.
const maxHeadBytes = 1 << 20

// setResponseHead applies a response_head list: the status as decimal
// digits, then alternating header names and values, each added. It
// returns an abi status; on error nothing is applied. It reads the list in
// place, twice (check, then apply), and takes names and values that equal
// a previous request's from c's string cache, so that a guest sending the
// same head as before costs no allocation.
func setResponseHead(c *Call, b []byte) int {
	if len(b) > maxHeadBytes {
		return abi.TooLarge
	}
	r, err := abi.NewListReader(b, maxHeadBytes/4)
	if err != nil || r.Len()%2 != 1 {
		return abi.Invalid
	}
	apply := r
	status, _ := r.Next()
	st := 0
	if len(status) > 0 {
		if len(status) > 3 {
			return abi.Invalid
		}
		for _, d := range status {
			if d < '0' || d > '9' {
				return abi.Invalid
			}
			st = st*10 + int(d-'0')
		}
		if st < 100 {
			return abi.Invalid
		}
	}
	max := c.MaxResponseHeaderBytes
	if max <= 0 {
		max = 64 << 10
	}
	added := 0
	for {
		name, ok := r.Next()
		if !ok {
			break
		}
		value, _ := r.Next() // the count is odd: a name has a value
		if len(name)+len(value) > max {
			return abi.TooLarge
		}
		if !validHeaderName(name) || !validHeaderValue(value) {
			return abi.Invalid
		}
		added += len(name) + len(value) + headerOverhead
	}
	if r.Err() != nil {
		return abi.Invalid
	}
	if c.headerBytes+added > c.maxHeadersBytes() {
		return abi.TooLarge
	}
	c.headerBytes += added
	if st != 0 {
		c.Status = st
	}
	if r.Len() > 1 && c.ResponseHeader == nil {
		c.ResponseHeader = make(http.Header, (r.Len()-1)/2)
	}
	apply.Next() // the status
	for {
		name, ok := apply.Next()
		if !ok {
			break
		}
		value, _ := apply.Next()
		k := c.cache().canonicalKey(name)
		c.ResponseHeader[k] = append(c.ResponseHeader[k], c.str(value))
	}
	return 0
}

// str returns string(b), from c's cache of recent strings: attribute
// keys and response heads repeat from one request to the next.
func (c *Call) str(b []byte) string { return c.cache().get(b) }

func (c *Call) cache() *stringCache {
	if c.strings == nil {
		c.strings = new(stringCache)
	}
	return c.strings
}

// stringCache hands out strings equal to byte slices, reusing those made
// before (the last 16).
type stringCache struct {
	e       [16]cachedString
	n, next int
}

type cachedString struct {
	raw, str string // str is raw, canonicalized if key
	key      bool
}

// get returns string(b).
func (sc *stringCache) get(b []byte) string { return sc.lookup(b, false) }

// canonicalKey returns http.CanonicalHeaderKey(string(b)).
func (sc *stringCache) canonicalKey(b []byte) string { return sc.lookup(b, true) }

func (sc *stringCache) lookup(b []byte, key bool) string {
	for i := range sc.n {
		if e := &sc.e[i]; e.key == key && e.raw == string(b) {
			return e.str
		}
	}
	e := cachedString{raw: string(b), key: key}
	e.str = e.raw
	if key {
		e.str = http.CanonicalHeaderKey(e.raw)
	}
	sc.e[sc.next] = e
	sc.next = (sc.next + 1) % len(sc.e)
	sc.n = min(sc.n+1, len(sc.e))
	return e.str
}

// appendSessionInfo appends the session_info record: flags (bit 0: new),
// creation and last access time (unix ms), max inactive interval (seconds,
// -1 never), each little-endian int64, then the id.
func appendSessionInfo(b []byte, t *session.Txn) []byte {
	var flags byte
	if t.IsNew() {
		flags = 1
	}
	mi := int64(-1)
	if d := t.MaxInactiveInterval(); d >= 0 {
		mi = int64(d / time.Second)
	}
	b = append(b, flags)
	b = binary.LittleEndian.AppendUint64(b, uint64(t.CreationTime().UnixMilli()))
	b = binary.LittleEndian.AppendUint64(b, uint64(t.LastAccessedTime().UnixMilli()))
	b = binary.LittleEndian.AppendUint64(b, uint64(mi))
	return append(b, t.ID()...)
}

// encodeHeader appends h as an abi list of alternating names and values,
// names sorted.
func encodeHeader(b []byte, h http.Header) []byte {
	names := make([]string, 0, len(h))
	n := 0
	for k, vs := range h {
		names = append(names, k)
		n += len(vs)
	}
	sort.Strings(names)
	items := make([]string, 0, 2*n)
	for _, k := range names {
		for _, v := range h[k] {
			items = append(items, k, v)
		}
	}
	return abi.AppendList(b, items...)
}

func instantiateHostModule(ctx context.Context, r wazero.Runtime, rt *Runtime) error {
	b := r.NewHostModuleBuilder(abi.ModuleName)
	for _, f := range hostFuncs {
		fn := f.fn
		name := f.name
		b = b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, s []uint64) {
			c := callFrom(ctx)
			if c == nil {
				panic(guestError{name + " called outside a request"})
			}
			fn(ctx, c, m, s)
		}), f.params, f.results).Export(f.name)
	}
	b = b.NewFunctionBuilder().WithGoModuleFunction(logFunc(rt), []api.ValueType{i32, i32, i32}, nil).Export("log")
	_, err := b.Instantiate(ctx)
	return err
}

// validHeaderName reports whether n is an RFC 9110 token.
func validHeaderName[T ~string | ~[]byte](n T) bool {
	if len(n) == 0 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' || c == '*' ||
			c == '+' || c == '-' || c == '.' || c == '^' || c == '_' || c == '`' || c == '|' || c == '~':
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v holds no control bytes other than
// horizontal tab (so no CR or LF: no response splitting).
func validHeaderValue[T ~string | ~[]byte](v T) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
