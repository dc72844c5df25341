package tribes

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// UniqueID is the 16-byte identity a member picks at start-up (spec §3.1).
// Together with the host address and the port it identifies a member; a
// restarted node picks a new one.
type UniqueID [16]byte

// NewUniqueID returns 16 bytes from crypto/rand with the UUID version 4 and
// variant bits set, as Java's UUIDGenerator does.
func NewUniqueID() UniqueID {
	var u UniqueID
	rand.Read(u[:]) // never returns an error (crypto/rand crashes the program instead)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// String returns the form Tribes uses in configuration files (the uniqueId
// attribute of a StaticMember, spec §10): signed decimal bytes in braces,
// for example "{-96,-95,-94,-93,-92,-91,70,-89,-120,-87,-86,-85,-84,-83,-82,-81}".
func (u UniqueID) String() string {
	b := make([]byte, 0, 2+16*4)
	b = append(b, '{')
	for i, c := range u {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(int8(c)), 10)
	}
	return string(append(b, '}'))
}

// ParseUniqueID parses a member unique id written as Tribes' configuration
// form "{b0,b1,...,b15}" (16 signed decimal bytes, -128..127, blanks
// allowed around them), as 32 hexadecimal digits, or as a UUID
// "8-4-4-4-12" hexadecimal string.
func ParseUniqueID(s string) (UniqueID, error) {
	var u UniqueID
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "{") {
		if !strings.HasSuffix(t, "}") {
			return u, fmt.Errorf("tribes: bad unique id %q: missing closing brace", s)
		}
		parts := strings.Split(t[1:len(t)-1], ",")
		if len(parts) != len(u) {
			return u, fmt.Errorf("tribes: bad unique id %q: %d bytes, want 16", s, len(parts))
		}
		for i, p := range parts {
			v, err := strconv.ParseInt(strings.TrimSpace(p), 10, 8)
			if err != nil {
				return u, fmt.Errorf("tribes: bad unique id %q: byte %d %q is not a signed byte (-128..127)", s, i, p)
			}
			u[i] = byte(v)
		}
		return u, nil
	}
	if len(t) == 36 && t[8] == '-' && t[13] == '-' && t[18] == '-' && t[23] == '-' {
		t = t[:8] + t[9:13] + t[14:18] + t[19:23] + t[24:]
	}
	if len(t) != 2*len(u) {
		return u, fmt.Errorf("tribes: bad unique id %q: want {16 signed bytes} or 32 hex digits", s)
	}
	if _, err := hex.Decode(u[:], []byte(t)); err != nil {
		return UniqueID{}, fmt.Errorf("tribes: bad unique id %q: %v", s, err)
	}
	return u, nil
}

// ShutdownCommand is the member command of a graceful leave (spec §3.4): a
// member record carrying it makes receivers drop the member at once.
const ShutdownCommand = "BABY-ALEX"

// MaxMemberSize is the largest member record the codec encodes: heartbeats
// travel in one UDP datagram, and Java refuses larger ones.
const MaxMemberSize = 65535

// Member is one cluster member as described by its member record (spec §3.1):
// the payload of a heartbeat and the sender field of every message.
//
// A Member owns its slices: [Member.UnmarshalBinary] and [Member.Clone]
// copy. Member is not safe for concurrent mutation.
type Member struct {
	Host       netip.Addr // receiver address: IPv4 (4 bytes on the wire) or IPv6 (16), no zone
	Port       int        // receiver TCP port, 0..65535
	SecurePort int        // -1 = none
	UDPPort    int        // -1 = none
	Alive      int64      // ms since the member's membership service started (spec §3.3); not a timestamp
	Command    []byte     // empty, or ShutdownCommand
	Domain     []byte     // cluster domain, ISO-8859-1 bytes; empty = none
	UniqueID   UniqueID
	Payload    []byte // application-defined
}

// MemberKey is a member's identity (Java MemberImpl.equals): host address,
// port and unique id. It is comparable and may be used as a map key.
type MemberKey struct {
	Host netip.Addr
	Port int
	ID   UniqueID
}

// Member record layout (spec §3.1).
const (
	memberMarkerLen = 10
	memberFixedLen  = 73 // markers, length, alive, 3 ports, host length, C, D, uniqueId, P
	memberAliveOff  = 14
	memberHostOff   = 35
)

var (
	memberBegin = [memberMarkerLen]byte{'T', 'R', 'I', 'B', 'E', 'S', '-', 'B', 1, 0}
	memberEnd   = [memberMarkerLen]byte{'T', 'R', 'I', 'B', 'E', 'S', '-', 'E', 1, 0}
)

// AppendBinary appends m's member record to b (encoding.BinaryAppender).
// It fails, leaving b's contents unchanged, when Host is not a valid IPv4
// or IPv6 address without zone, a port is out of range (wrapping
// [ErrBadMember]), or the record would exceed [MaxMemberSize] (a
// *[SizeError]).
func (m *Member) AppendBinary(b []byte) ([]byte, error) {
	if !m.Host.IsValid() || m.Host.Zone() != "" {
		return b, fmt.Errorf("%w: host %q is not an IP address without zone", ErrBadMember, m.Host.String())
	}
	if m.Port < 0 || m.Port > 65535 {
		return b, fmt.Errorf("%w: port %d out of range 0..65535", ErrBadMember, m.Port)
	}
	if m.SecurePort < -1 || m.SecurePort > 65535 {
		return b, fmt.Errorf("%w: secure port %d out of range -1..65535", ErrBadMember, m.SecurePort)
	}
	if m.UDPPort < -1 || m.UDPPort > 65535 {
		return b, fmt.Errorf("%w: UDP port %d out of range -1..65535", ErrBadMember, m.UDPPort)
	}
	hostLen := 4
	if m.Host.Is6() {
		hostLen = 16
	}
	size := memberFixedLen + hostLen + len(m.Command) + len(m.Domain) + len(m.Payload)
	if size > MaxMemberSize {
		return b, &SizeError{Size: int64(size), Limit: MaxMemberSize}
	}
	b = append(b, memberBegin[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(size-24))
	b = binary.BigEndian.AppendUint64(b, uint64(m.Alive))
	b = binary.BigEndian.AppendUint32(b, uint32(int32(m.Port)))
	b = binary.BigEndian.AppendUint32(b, uint32(int32(m.SecurePort)))
	b = binary.BigEndian.AppendUint32(b, uint32(int32(m.UDPPort)))
	b = append(b, byte(hostLen))
	if hostLen == 4 {
		a := m.Host.As4()
		b = append(b, a[:]...)
	} else {
		a := m.Host.As16()
		b = append(b, a[:]...)
	}
	b = appendBytes32(b, m.Command)
	b = appendBytes32(b, m.Domain)
	b = append(b, m.UniqueID[:]...)
	b = appendBytes32(b, m.Payload)
	return append(b, memberEnd[:]...), nil
}

// appendBytes32 appends an int32 length and p.
func appendBytes32(b, p []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
	return append(b, p...)
}

// MarshalBinary returns m's member record (encoding.BinaryMarshaler).
func (m *Member) MarshalBinary() ([]byte, error) {
	hostLen := 16
	if m.Host.Is4() {
		hostLen = 4
	}
	return m.AppendBinary(make([]byte, 0, memberFixedLen+hostLen+len(m.Command)+len(m.Domain)+len(m.Payload)))
}

// UnmarshalBinary decodes the member record at the start of data into m
// (encoding.BinaryUnmarshaler). It checks everything spec §3.1 defines:
// BEGIN at offset 0, a non-negative body length B with 24+B bytes present,
// END exactly at 14+B, a host length of 4 or 16, non-negative field lengths
// that stay inside the record and add up to B. Bytes after END are ignored,
// as Java does. m gets fresh copies of the variable fields and does not
// alias data. On error, a *[DecodeError] wrapping [ErrBadMember], m is
// unchanged.
func (m *Member) UnmarshalBinary(data []byte) error {
	l, err := scanMember(data)
	if err != nil {
		return err
	}
	m.Command, m.Domain, m.Payload = nil, nil, nil
	l.fill(data, m)
	return nil
}

// decodeMember is UnmarshalBinary for the receive hot path: it decodes the
// record at the start of data into m, reusing the capacity of m.Command,
// m.Domain and m.Payload (so it does not allocate once they are large
// enough, and it overwrites whatever they pointed to). m does not alias
// data. n is the length of the record, which may be shorter than data. On
// error m is unchanged.
func decodeMember(data []byte, m *Member) (n int, err error) {
	l, err := scanMember(data)
	if err != nil {
		return 0, err
	}
	l.fill(data, m)
	return l.n, nil
}

// memberRecordLen validates the member record at the start of data exactly as
// decodeMember does, without decoding it, and returns its length. It does not
// allocate unless it returns an error.
func memberRecordLen(data []byte) (int, error) {
	l, err := scanMember(data)
	return l.n, err
}

// memberLayout holds the positions of a validated member record's variable
// fields.
type memberLayout struct {
	n                      int // record length
	hostLen                int
	cmdOff, cmdLen         int
	domOff, domLen         int
	uidOff, payOff, payLen int
}

func (l *memberLayout) fill(data []byte, m *Member) {
	if l.hostLen == 4 {
		m.Host = netip.AddrFrom4([4]byte(data[memberHostOff:]))
	} else {
		m.Host = netip.AddrFrom16([16]byte(data[memberHostOff:]))
	}
	m.Alive = int64(binary.BigEndian.Uint64(data[memberAliveOff:]))
	m.Port = int(int32(binary.BigEndian.Uint32(data[22:])))
	m.SecurePort = int(int32(binary.BigEndian.Uint32(data[26:])))
	m.UDPPort = int(int32(binary.BigEndian.Uint32(data[30:])))
	m.Command = append(m.Command[:0], data[l.cmdOff:l.cmdOff+l.cmdLen]...)
	m.Domain = append(m.Domain[:0], data[l.domOff:l.domOff+l.domLen]...)
	m.UniqueID = UniqueID(data[l.uidOff:])
	m.Payload = append(m.Payload[:0], data[l.payOff:l.payOff+l.payLen]...)
}

func badMember(off int, reason string) error {
	return decodeErr("member record", off, reason, ErrBadMember)
}

// scanMember validates the member record at the start of data and locates its
// fields. It is the single implementation behind decodeMember,
// memberRecordLen and UnmarshalBinary, so they always agree.
func scanMember(data []byte) (memberLayout, error) {
	var l memberLayout
	n := min(len(data), memberMarkerLen)
	if !bytes.Equal(data[:n], memberBegin[:n]) {
		return l, badMember(0, "BEGIN marker TRIBES-B missing")
	}
	if len(data) < memberAliveOff {
		return l, badMember(len(data), "truncated before the body length ("+strconv.Itoa(len(data))+" bytes)")
	}
	b := int32(binary.BigEndian.Uint32(data[memberMarkerLen:]))
	if b < 0 {
		return l, badMember(memberMarkerLen, "negative body length "+strconv.Itoa(int(b)))
	}
	if int64(len(data))-24 < int64(b) {
		return l, badMember(memberMarkerLen, "truncated: body length "+strconv.Itoa(int(b))+
			" needs "+strconv.FormatInt(int64(b)+24, 10)+" bytes, have "+strconv.Itoa(len(data)))
	}
	end := memberAliveOff + int(b) // offset of END
	if [memberMarkerLen]byte(data[end:]) != memberEnd {
		return l, badMember(end, "END marker TRIBES-E missing")
	}
	// Walk the body [14, end) field by field.
	if end-memberAliveOff < memberFixedLen-24 {
		return l, badMember(memberMarkerLen, "body length "+strconv.Itoa(int(b))+" shorter than the fixed fields (49)")
	}
	h := int(int8(data[memberHostOff-1]))
	if h != 4 && h != 16 {
		return l, badMember(memberHostOff-1, "host length "+strconv.Itoa(h)+", want 4 or 16")
	}
	l.hostLen = h
	p := memberHostOff + h
	var err error
	if l.cmdOff, l.cmdLen, p, err = memberField(data, p, end, "command"); err != nil {
		return l, err
	}
	if l.domOff, l.domLen, p, err = memberField(data, p, end, "domain"); err != nil {
		return l, err
	}
	l.uidOff = p
	p += len(UniqueID{})
	if l.payOff, l.payLen, p, err = memberField(data, p, end, "payload"); err != nil {
		return l, err
	}
	if p != end {
		return l, badMember(p, "fields end at offset "+strconv.Itoa(p)+" but END is at "+strconv.Itoa(end))
	}
	l.n = end + memberMarkerLen
	return l, nil
}

// memberField reads the int32 length at p and checks that the length and its
// bytes end at or before end. It returns the field's offset and length and
// the offset after it.
func memberField(data []byte, p, end int, name string) (off, n, next int, err error) {
	if end-p < 4 {
		return 0, 0, 0, badMember(p, name+" length runs past END")
	}
	v := int32(binary.BigEndian.Uint32(data[p:]))
	if v < 0 {
		return 0, 0, 0, badMember(p, "negative "+name+" length "+strconv.Itoa(int(v)))
	}
	if int64(v) > int64(end-p-4) {
		return 0, 0, 0, badMember(p, name+" length "+strconv.Itoa(int(v))+" runs past END")
	}
	return p + 4, int(v), p + 4 + int(v), nil
}

// Key returns m's identity.
func (m *Member) Key() MemberKey {
	return MemberKey{Host: m.Host, Port: m.Port, ID: m.UniqueID}
}

// AddrPort returns the address of m's TCP receiver. A Port outside 0..65535
// (never produced by decoding a record Java sent) is truncated to 16 bits.
func (m *Member) AddrPort() netip.AddrPort {
	return netip.AddrPortFrom(m.Host, uint16(m.Port))
}

// IsShutdown reports whether m announces a graceful leave: its command is
// [ShutdownCommand].
func (m *Member) IsShutdown() bool { return string(m.Command) == ShutdownCommand }

// Clone returns a deep copy of m (nil for a nil m). The copy shares no memory
// with m.
func (m *Member) Clone() *Member {
	if m == nil {
		return nil
	}
	c := *m
	c.Command = bytes.Clone(m.Command)
	c.Domain = bytes.Clone(m.Domain)
	c.Payload = bytes.Clone(m.Payload)
	return &c
}

// String describes m for logs, for example
// "tcp://10.0.0.5:4000 {0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15} domain=abc".
// A domain that is not printable ASCII is shown in Tribes' "{b1,b2}" byte
// form; a member that is leaving gets " shutdown" appended.
func (m *Member) String() string {
	var sb strings.Builder
	sb.WriteString("tcp://")
	sb.WriteString(m.AddrPort().String())
	sb.WriteByte(' ')
	sb.WriteString(m.UniqueID.String())
	if len(m.Domain) > 0 {
		sb.WriteString(" domain=")
		if printableASCII(m.Domain) {
			sb.Write(m.Domain)
		} else {
			sb.WriteByte('{')
			for i, c := range m.Domain {
				if i > 0 {
					sb.WriteByte(',')
				}
				sb.WriteString(strconv.Itoa(int(int8(c))))
			}
			sb.WriteByte('}')
		}
	}
	if m.IsShutdown() {
		sb.WriteString(" shutdown")
	}
	return sb.String()
}

func printableASCII(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c > '~' || c == '{' {
			return false
		}
	}
	return true
}
