package farm

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// Magic starts the Data of every farm message on the shared channel, so
// the farm's listener can skip the messages of other users (session
// replication's start with "WFS1").
const Magic = "WFD1"

// Message types.
const (
	msgBegin    byte = 1 // a transfer starts: kind, size, digest, path, name
	msgChunk    byte = 2 // offset, bytes
	msgCommit   byte = 3 // all bytes sent: verify and deploy
	msgAbort    byte = 4 // the origin gave up: drop the temp file
	msgResult   byte = 5 // a member's outcome of a deploy or undeploy
	msgUndeploy byte = 6 // path
	msgListReq  byte = 7 // "which apps do you run?"
	msgList     byte = 8 // the answer; flagUnsynced or flagCold when it is not (all of) the cluster's
	msgFetch    byte = 9 // "push me this app" (catch-up)
	maxMsgType       = msgFetch
)

// Begin kinds and result operations.
const (
	kindDeploy byte = 0 // a farm deploy: report the result to the origin
	kindSync   byte = 1 // a catch-up transfer asked for with msgFetch
	opDeploy   byte = 0
	opUndeploy byte = 1
)

const (
	flagMAC = 0x01
	// flagUnsynced marks a list answer (msgList) from a member whose Sync
	// has not returned yet: what it serves is not the cluster's state, so
	// a member catching up must not follow it. Older members refuse the
	// flag as unknown (FAIL_ACK), so an old member asking a new one that
	// has not synced waits for its list timeout and asks the next member:
	// it never follows such an answer.
	flagUnsynced = 0x02
	// flagCold marks a list answer (msgList) from a synced member that
	// cannot vouch that its apps are all the cluster farms: its Sync
	// followed no one (the cluster, or this member alone, was starting),
	// followed a cold member, or failed for some app. An app missing from
	// its list may be one it never had or failed to get, not one the
	// cluster dropped, so a member catching up from it keeps its own
	// modules. Such a list names the apps the member saw undeployed
	// (appEntry.Undeployed), which a member catching up does remove. An
	// answer with neither flag (as every synced member sent before the
	// flags existed) is the cluster's. As with flagUnsynced, older members
	// refuse the flag, wait for their list timeout and ask the next member:
	// they never follow a cold answer.
	flagCold    = 0x04
	headerLen   = len(Magic) + 2 + idLen
	idLen       = 16
	macLen      = sha256.Size
	maxString   = 4 << 10 // any string field
	maxListApps = 4096
	// MaxChunkSize is the largest chunk a member accepts (and the largest
	// Config.ChunkSize).
	MaxChunkSize = 8 << 20
	// maxMessage bounds every decoded farm message.
	maxMessage = headerLen + 8 + MaxChunkSize + macLen
)

// opID identifies a transfer, an undeploy or a request.
type opID [idLen]byte

func newID() opID {
	var id opID
	rand.Read(id[:])
	return id
}

func (id opID) String() string { return hex.EncodeToString(id[:]) }

// digest is a module's SHA-256.
type digest [sha256.Size]byte

func (d digest) String() string { return hex.EncodeToString(d[:]) }

// parseDigest decodes a hex SHA-256; a bad one gives the zero digest.
func parseDigest(s string) digest {
	var d digest
	if len(s) == 2*len(d) {
		if _, err := hex.Decode(d[:], []byte(s)); err != nil {
			return digest{}
		}
	}
	return d
}

// appEntry is one app in a list answer.
type appEntry struct {
	Path   string
	Digest digest
	Size   int64
	Farmed bool // its module is in the deploy dir, so it can be fetched
	// Undeployed (in cold lists only): no app; the member saw a farm
	// undeploy of Path since it started, and no deploy of it since.
	Undeployed bool
}

// App flags of a list entry.
const (
	appFarmed     = 1
	appUndeployed = 2
)

// message is a decoded farm message. Data aliases the decoder's input.
type message struct {
	Type   byte
	ID     opID
	Kind   byte // msgBegin
	Op     byte // msgResult
	Size   uint64
	Offset uint64
	Digest digest
	Path   string
	Name   string // app name (msgBegin); member name (msgResult, msgList)
	Err    string // msgResult
	Data   []byte // msgChunk
	Apps   []appEntry
	// Unsynced (msgList, the flagUnsynced header flag): the member's Sync
	// has not returned, so Apps is not the cluster's state.
	Unsynced bool
	// Cold (msgList, the flagCold header flag): the member synced, but
	// Apps may lack apps the cluster farms.
	Cold bool
}

// appendMessage appends m's encoding, without MAC, to b.
func appendMessage(b []byte, m *message) []byte {
	b = append(b, Magic...)
	var flags byte
	if m.Type == msgList && m.Unsynced {
		flags |= flagUnsynced
	}
	if m.Type == msgList && m.Cold {
		flags |= flagCold
	}
	b = append(b, m.Type, flags)
	b = append(b, m.ID[:]...)
	switch m.Type {
	case msgBegin:
		b = append(b, m.Kind)
		b = binary.BigEndian.AppendUint64(b, m.Size)
		b = append(b, m.Digest[:]...)
		b = appendString(b, m.Path)
		b = appendString(b, m.Name)
	case msgChunk:
		b = binary.BigEndian.AppendUint64(b, m.Offset)
		b = append(b, m.Data...)
	case msgResult:
		b = append(b, m.Op)
		b = append(b, m.Digest[:]...)
		b = appendString(b, m.Name)
		b = appendString(b, m.Err)
	case msgUndeploy:
		b = appendString(b, m.Path)
	case msgList:
		b = appendString(b, m.Name)
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.Apps)))
		for _, a := range m.Apps {
			b = appendString(b, a.Path)
			b = append(b, a.Digest[:]...)
			b = binary.BigEndian.AppendUint64(b, uint64(a.Size))
			f := byte(0)
			if a.Farmed {
				f |= appFarmed
			}
			if a.Undeployed {
				f |= appUndeployed
			}
			b = append(b, f)
		}
	case msgFetch:
		b = appendString(b, m.Path)
		b = append(b, m.Digest[:]...)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	if len(s) > maxString {
		s = s[:maxString]
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// seal sets the MAC flag and appends HMAC-SHA256(key, b) when key is set.
func seal(b []byte, key []byte) []byte {
	if len(key) == 0 {
		return b
	}
	b[len(Magic)+1] |= flagMAC
	h := hmac.New(sha256.New, key)
	h.Write(b)
	return h.Sum(b)
}

// isFarmMessage reports whether data starts with [Magic].
func isFarmMessage(data []byte) bool {
	return len(data) >= len(Magic) && string(data[:len(Magic)]) == Magic
}

// decodeError builds an error wrapping ErrBadMessage.
func decodeError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadMessage, fmt.Sprintf(format, args...))
}

// decodeMessage decodes a farm message (which starts with Magic) into m,
// checking its MAC against key. Strings are copied; m.Data aliases b. The
// error wraps [ErrUnauthenticated] or [ErrBadMessage].
func decodeMessage(b []byte, key []byte, m *message) error {
	*m = message{}
	if len(b) > maxMessage {
		return decodeError("%d bytes, limit %d", len(b), maxMessage)
	}
	if len(b) < headerLen || !isFarmMessage(b) {
		return decodeError("%d bytes, shorter than the %d-byte header", len(b), headerLen)
	}
	flags := b[len(Magic)+1]
	if flags&^(flagMAC|flagUnsynced|flagCold) != 0 {
		return decodeError("unknown flags %#x", flags)
	}
	if flags&flagMAC != 0 {
		if len(key) == 0 {
			return fmt.Errorf("%w: the message carries a MAC and this member has no AuthKey", ErrUnauthenticated)
		}
		if len(b) < headerLen+macLen {
			return fmt.Errorf("%w: MAC truncated", ErrUnauthenticated)
		}
		body, mac := b[:len(b)-macLen], b[len(b)-macLen:]
		h := hmac.New(sha256.New, key)
		h.Write(body)
		if !hmac.Equal(h.Sum(nil), mac) {
			return fmt.Errorf("%w: wrong MAC (another AuthKey?)", ErrUnauthenticated)
		}
		b = body
	} else if len(key) > 0 {
		return fmt.Errorf("%w: the message carries no MAC", ErrUnauthenticated)
	}
	m.Type = b[len(Magic)]
	if m.Type == 0 || m.Type > maxMsgType {
		return decodeError("unknown type %d", m.Type)
	}
	if listFlags := flags & (flagUnsynced | flagCold); listFlags != 0 {
		if m.Type != msgList {
			return decodeError("flag %#x on a type-%d message", listFlags, m.Type)
		}
		if listFlags == flagUnsynced|flagCold {
			// Cold says how a member synced: one that has not synced is
			// neither cold nor not.
			return decodeError("flags %#x and %#x together", flagUnsynced, flagCold)
		}
		m.Unsynced = listFlags == flagUnsynced
		m.Cold = listFlags == flagCold
	}
	copy(m.ID[:], b[len(Magic)+2:])
	r := reader{b: b, off: headerLen}
	switch m.Type {
	case msgBegin:
		m.Kind = r.byte()
		m.Size = r.uint64()
		r.digest(&m.Digest)
		m.Path = r.string()
		m.Name = r.string()
		if r.err == nil && m.Kind > kindSync {
			return decodeError("unknown transfer kind %d", m.Kind)
		}
	case msgChunk:
		m.Offset = r.uint64()
		if r.err == nil {
			m.Data = b[r.off:]
			r.off = len(b)
		}
	case msgResult:
		m.Op = r.byte()
		r.digest(&m.Digest)
		m.Name = r.string()
		m.Err = r.string()
		if r.err == nil && m.Op > opUndeploy {
			return decodeError("unknown operation %d", m.Op)
		}
	case msgUndeploy:
		m.Path = r.string()
	case msgList:
		m.Name = r.string()
		n := int(r.uint16())
		if n > maxListApps {
			return decodeError("%d apps, limit %d", n, maxListApps)
		}
		for i := 0; i < n && r.err == nil; i++ {
			var a appEntry
			a.Path = r.string()
			r.digest(&a.Digest)
			a.Size = int64(r.uint64())
			switch f := r.byte(); f {
			case 0:
			case appFarmed:
				a.Farmed = true
			case appUndeployed:
				// Not with appFarmed: an undeployed app has no module.
				a.Undeployed = true
			default:
				r.fail("bad app flags %d", f)
			}
			if a.Size < 0 {
				r.fail("negative size")
			}
			m.Apps = append(m.Apps, a)
		}
	case msgFetch:
		m.Path = r.string()
		r.digest(&m.Digest)
	}
	if r.err != nil {
		return r.err
	}
	if r.off != len(b) {
		return decodeError("%d trailing bytes in a type-%d message", len(b)-r.off, m.Type)
	}
	return nil
}

// reader reads big-endian fields; the first error sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = decodeError("at offset %d: %s", r.off, fmt.Sprintf(format, args...))
	}
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b)-r.off < n {
		r.fail("%d bytes needed, %d left", n, len(r.b)-r.off)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *reader) byte() byte {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) uint16() uint16 {
	if p := r.take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (r *reader) uint64() uint64 {
	if p := r.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (r *reader) digest(d *digest) {
	if p := r.take(len(d)); p != nil {
		copy(d[:], p)
	}
}

func (r *reader) string() string {
	n := int(r.uint16())
	if n > maxString {
		r.fail("string of %d bytes, limit %d", n, maxString)
		return ""
	}
	return string(r.take(n))
}
