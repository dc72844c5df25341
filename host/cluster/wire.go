package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// The cluster's messages travel as Tribes byte messages on the node's
// channel, beside the farm's. Every one starts with Magic, then a type, the
// context path it concerns and a body:
//
//	"WFS1" | type(1) | uvarint len | context path | body
//
// Strings and byte strings are uvarint length + bytes, ids are Tribes
// unique ids (16 bytes), counters uvarints. Bodies by type:
//
//	hello      flags(1) | route | n | n × context path   (context path "")
//	delta      a session.Delta encoding
//	expire     id | reason(1)
//	getAll     request id(8) | kind(1)
//	allData    request id(8) | flags(1) | snapshot time (varint ms) | n | n × record
//	backup     primary(16) | backup(16) | a session.State encoding
//	proxy      id | primary(16) | backup(16)
//	fetch      request id(8) | id
//	fetchReply request id(8) | found(1) | a session.State encoding
//	rename     old id | new id
//
// An allData record is a session.State encoding (delta manager) or a proxy
// body (backup manager); its flags mark the last block, a member without
// the context, and a member that cannot send (the rest of) its state.
const Magic = "WFS1"

type msgType byte

const (
	msgHello msgType = iota + 1
	msgDelta
	msgExpire
	msgGetAll
	msgAllData
	msgBackup
	msgProxy
	msgFetch
	msgFetchReply
	msgRename
	msgTypes // one past the last
)

var msgNames = [...]string{"", "hello", "delta", "expire", "getAll", "allData", "backup", "proxy", "fetch", "fetchReply", "rename"}

func (t msgType) String() string {
	if t > 0 && t < msgTypes {
		return msgNames[t]
	}
	return fmt.Sprintf("type(%d)", byte(t))
}

// allData flags.
const (
	allLast      byte = 1 << iota // the last block of the transfer
	allNoContext                  // the member does not run the context
	allFailed                     // the member cannot send (the rest of) its state: ask another
)

// expire reasons.
const (
	reasonExpired     byte = 1 // the member serving the session expired it (or shut down with ExpireSessionsOnShutdown)
	reasonInvalidated byte = 2
	// reasonReplicaExpired: a member's replica expired (after twice the
	// limit); a receiver drops its copy only if idle past the limit there
	// too. A member that predates it drops nothing (an unknown reason).
	reasonReplicaExpired byte = 3
)

// Limits of the decoder: a message is at most MaxMessageBytes (a state
// block holds whole sessions, each within session.Limits).
const (
	MaxMessageBytes = 64 << 20
	maxPathBytes    = 1 << 10
	maxIDBytes      = 256
	maxRouteBytes   = 256
	maxContexts     = 1 << 12
)

// ErrBadMessage wraps every decoding failure of a cluster message.
var ErrBadMessage = errors.New("cluster: bad message")

// header appends the start of a message of type t about context path.
func header(b []byte, t msgType, path string) []byte {
	b = append(b, Magic...)
	b = append(b, byte(t))
	return appendStr(b, path)
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// reader decodes a message; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrBadMessage}, args...)...)
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.fail("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint(max uint64, what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad %s", what)
		return 0
	}
	if v > max {
		r.fail("%s %d exceeds the limit of %d", what, v, max)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad %s", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) u64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.fail("truncated")
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// raw reads a length-prefixed byte string of at most max bytes. (It
// reads the length itself: what+" length" for uvarint would allocate on
// every message, not only on failure.)
func (r *reader) raw(max int, what string) []byte {
	if r.err != nil {
		return nil
	}
	v, n := binary.Uvarint(r.b)
	switch {
	case n <= 0:
		r.fail("bad %s length", what)
		return nil
	case v > uint64(max):
		r.fail("%s length %d exceeds the limit of %d", what, v, max)
		return nil
	}
	r.b = r.b[n:]
	if uint64(len(r.b)) < v {
		r.fail("%s truncated", what)
		return nil
	}
	p := r.b[:v]
	r.b = r.b[v:]
	return p
}

func (r *reader) str(max int, what string) string { return string(r.raw(max, what)) }

func (r *reader) uid() tribes.UniqueID {
	var u tribes.UniqueID
	if r.err != nil {
		return u
	}
	if len(r.b) < len(u) {
		r.fail("truncated member id")
		return u
	}
	copy(u[:], r.b)
	r.b = r.b[len(u):]
	return u
}

func (r *reader) rest() []byte {
	p := r.b
	r.b = nil
	return p
}

func (r *reader) end() {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
}

// parsed is a decoded message header; body is the rest (aliasing the
// message's bytes).
type parsed struct {
	typ   msgType
	pathB []byte // the context path, aliasing the message
	body  []byte
	path  string // set by the managers that need it as a string
}

// parse decodes the header of a cluster message. ok is false (and err
// nil) for a message that is not the cluster's (no Magic), e.g. a farm
// message on the same channel.
func parse(data []byte) (p parsed, ok bool, err error) {
	if len(data) < len(Magic) || string(data[:len(Magic)]) != Magic {
		return p, false, nil
	}
	if len(data) > MaxMessageBytes {
		return p, true, fmt.Errorf("%w: %d bytes exceed the limit of %d", ErrBadMessage, len(data), MaxMessageBytes)
	}
	r := reader{b: data[len(Magic):]}
	p.typ = msgType(r.byte())
	if r.err == nil && (p.typ == 0 || p.typ >= msgTypes) {
		r.fail("unknown message type %d", byte(p.typ))
	}
	p.pathB = r.raw(maxPathBytes, "context path")
	p.body = r.rest()
	return p, true, r.err
}

// decodeExpire decodes the body of an expire message: the session id and
// the reason.
func decodeExpire(body []byte) (id string, reason byte, err error) {
	r := reader{b: body}
	id = r.str(maxIDBytes, "session id")
	reason = r.byte()
	r.end()
	return id, reason, r.err
}

// hello is a member's announcement of its route and distributable apps.
type hello struct {
	wantReply bool
	route     string
	contexts  []string
}

func (h *hello) append(b []byte) []byte {
	b = header(b, msgHello, "")
	var f byte
	if h.wantReply {
		f = 1
	}
	b = append(b, f)
	b = appendStr(b, h.route)
	b = binary.AppendUvarint(b, uint64(len(h.contexts)))
	for _, c := range h.contexts {
		b = appendStr(b, c)
	}
	return b
}

func decodeHello(body []byte) (hello, error) {
	r := reader{b: body}
	var h hello
	h.wantReply = r.byte()&1 != 0
	h.route = r.str(maxRouteBytes, "route")
	n := int(r.uvarint(maxContexts, "context count"))
	for i := 0; i < n && r.err == nil; i++ {
		h.contexts = append(h.contexts, r.str(maxPathBytes, "context path"))
	}
	r.end()
	return h, r.err
}

// proxyRec says where a session lives (backup manager).
type proxyRec struct {
	id      string
	primary tribes.UniqueID
	backup  tribes.UniqueID
}

func (p *proxyRec) appendBody(b []byte) []byte {
	b = appendStr(b, p.id)
	b = append(b, p.primary[:]...)
	return append(b, p.backup[:]...)
}

func (r *reader) proxy() proxyRec {
	var p proxyRec
	p.id = r.str(maxIDBytes, "session id")
	p.primary = r.uid()
	p.backup = r.uid()
	return p
}

func appendVarint(b []byte, v int64) []byte   { return binary.AppendVarint(b, v) }
func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }
