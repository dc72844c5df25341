package tribes

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

var (
	_ encoding.BinaryAppender    = (*Member)(nil)
	_ encoding.BinaryMarshaler   = (*Member)(nil)
	_ encoding.BinaryUnmarshaler = (*Member)(nil)
)

func TestMemberRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{0x5a}, MaxMemberSize-memberFixedLen-16)
	tests := []struct {
		name string
		m    Member
		size int
	}{
		{"IPv4 minimal", Member{Host: netip.MustParseAddr("127.0.0.1"), Port: 4000, SecurePort: -1, UDPPort: -1}, 77},
		{"IPv6", Member{Host: netip.MustParseAddr("2001:db8::1"), Port: 4001, SecurePort: 4443, UDPPort: 4002,
			Alive: 1 << 40, UniqueID: NewUniqueID(), Domain: []byte("dom1")}, 73 + 16 + 4},
		{"IPv4-mapped IPv6 stays 16 bytes", Member{Host: netip.MustParseAddr("::ffff:10.1.2.3"), Port: 1, SecurePort: -1, UDPPort: -1}, 89},
		{"all fields", Member{Host: netip.MustParseAddr("10.0.0.5"), Port: 65535, SecurePort: 0, UDPPort: 65535,
			Alive: -5, Command: []byte(ShutdownCommand), Domain: []byte{0xff, 0}, Payload: []byte("payload")}, 77 + 9 + 2 + 7},
		{"largest record", Member{Host: netip.MustParseAddr("::1"), Port: 4000, SecurePort: -1, UDPPort: -1, Payload: big}, MaxMemberSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != tc.size {
				t.Fatalf("record is %d bytes, want %d", len(b), tc.size)
			}
			if got := int(binary.BigEndian.Uint32(b[10:])); got != len(b)-24 {
				t.Fatalf("B = %d, want %d", got, len(b)-24)
			}
			var back Member
			if err := back.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if !memberEqual(&back, &tc.m) {
				t.Fatalf("round trip = %+v, want %+v", back, tc.m)
			}
			if back.Key() != tc.m.Key() {
				t.Fatalf("Key changed: %+v vs %+v", back.Key(), tc.m.Key())
			}
			// AppendBinary appends after existing bytes.
			prefix := []byte("xyz")
			b2, err := tc.m.AppendBinary(prefix)
			if err != nil || !bytes.Equal(b2[:3], prefix) || !bytes.Equal(b2[3:], b) {
				t.Fatalf("AppendBinary with prefix: %v", err)
			}
		})
	}
}

func TestMemberAppendBinaryErrors(t *testing.T) {
	ok := *vecMember77Value()
	tests := []struct {
		name   string
		mutate func(m *Member)
		want   error
		reason string
	}{
		{"zero host", func(m *Member) { m.Host = netip.Addr{} }, ErrBadMember, "host"},
		{"host with zone", func(m *Member) { m.Host = netip.MustParseAddr("fe80::1%eth0") }, ErrBadMember, "zone"},
		{"negative port", func(m *Member) { m.Port = -1 }, ErrBadMember, "port -1"},
		{"port too big", func(m *Member) { m.Port = 65536 }, ErrBadMember, "port 65536"},
		{"secure port", func(m *Member) { m.SecurePort = -2 }, ErrBadMember, "secure port -2"},
		{"udp port", func(m *Member) { m.UDPPort = 1 << 20 }, ErrBadMember, "UDP port"},
		{"too large", func(m *Member) { m.Payload = make([]byte, MaxMemberSize-77+1) }, ErrMessageTooLarge, "65536 bytes, limit 65535"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := ok
			tc.mutate(&m)
			dst := []byte("keep")
			got, err := m.AppendBinary(dst)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err %q does not mention %q", err, tc.reason)
			}
			if string(got) != "keep" {
				t.Fatalf("dst changed to %q", got)
			}
			if _, err := m.MarshalBinary(); !errors.Is(err, tc.want) {
				t.Fatalf("MarshalBinary err = %v", err)
			}
		})
	}
	var se *SizeError
	m := ok
	m.Payload = make([]byte, MaxMemberSize)
	if _, err := m.MarshalBinary(); !errors.As(err, &se) || se.Limit != MaxMemberSize || se.Size != MaxMemberSize+77 {
		t.Fatalf("SizeError = %+v", se)
	}
}

// editMember returns a copy of vecMember77 changed by f.
func editMember(f func(b []byte) []byte) []byte {
	return f(bytes.Clone(vecMember77))
}

func put32(b []byte, off int, v int32) []byte {
	binary.BigEndian.PutUint32(b[off:], uint32(v))
	return b
}

// memberDecodeErrorCases covers every error path of scanMember.
var memberDecodeErrorCases = []struct {
	name   string
	data   []byte
	offset int
	reason string
}{
	{"empty", nil, 0, "truncated before the body length"},
	{"short BEGIN mismatch", []byte("TRIBX"), 0, "BEGIN marker"},
	{"BEGIN wrong version byte", editMember(func(b []byte) []byte { b[8] = 2; return b }), 0, "BEGIN marker"},
	{"not a member", vecFrame137, 0, "BEGIN marker"},
	{"truncated before length", vecMember77[:12], 12, "truncated before the body length"},
	{"negative body length", editMember(func(b []byte) []byte { return put32(b, 10, -1) }), 10, "negative body length -1"},
	{"truncated record", vecMember77[:76], 10, "needs 77 bytes, have 76"},
	{"huge body length", editMember(func(b []byte) []byte { return put32(b, 10, 0x7fffffff) }), 10, "truncated"},
	{"END missing", editMember(func(b []byte) []byte { b[76] = 1; return b }), 67, "END marker TRIBES-E missing"},
	{"END early", editMember(func(b []byte) []byte { return put32(b, 10, 52) }), 66, "END marker"},
	{"body shorter than fixed fields", append(append(append(memberBegin[:], 0, 0, 0, 20), make([]byte, 20)...), memberEnd[:]...),
		10, "shorter than the fixed fields"},
	{"host length 5", editMember(func(b []byte) []byte { b[34] = 5; return b }), 34, "host length 5, want 4 or 16"},
	{"host length 0", editMember(func(b []byte) []byte { b[34] = 0; return b }), 34, "host length 0"},
	{"host length negative", editMember(func(b []byte) []byte { b[34] = 0xfc; return b }), 34, "host length -4"},
	{"negative command length", editMember(func(b []byte) []byte { return put32(b, 39, -9) }), 39, "negative command length -9"},
	{"command past END", editMember(func(b []byte) []byte { return put32(b, 39, 25) }), 39, "command length 25 runs past END"},
	{"domain length cut by END", editMember(func(b []byte) []byte { return put32(b, 39, 22) }), 65, "domain length runs past END"},
	{"negative domain length", editMember(func(b []byte) []byte { return put32(b, 43, -1) }), 43, "negative domain length"},
	{"domain past END", editMember(func(b []byte) []byte { return put32(b, 43, 100) }), 43, "domain length 100 runs past END"},
	{"negative payload length", editMember(func(b []byte) []byte { return put32(b, 63, -1) }), 63, "negative payload length"},
	{"payload past END", editMember(func(b []byte) []byte { return put32(b, 63, 1) }), 63, "payload length 1 runs past END"},
	{"fields shorter than B", func() []byte {
		b := slicesInsert(bytes.Clone(vecMember77), 67, 0xee)
		return put32(b, 10, 54)
	}(), 67, "fields end at offset 67 but END is at 68"},
}

func slicesInsert(b []byte, i int, v byte) []byte {
	return append(b[:i], append([]byte{v}, b[i:]...)...)
}

func TestMemberDecodeErrors(t *testing.T) {
	for _, tc := range memberDecodeErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			check := func(fn string, err error) {
				t.Helper()
				var de *DecodeError
				if !errors.As(err, &de) || !errors.Is(err, ErrBadMember) {
					t.Fatalf("%s: err = %v, want *DecodeError wrapping ErrBadMember", fn, err)
				}
				if de.What != "member record" || de.Offset != tc.offset || !strings.Contains(de.Reason, tc.reason) {
					t.Fatalf("%s: err = %q (offset %d), want offset %d and %q", fn, err, de.Offset, tc.offset, tc.reason)
				}
			}
			m := vecMember81Value()
			orig := m.Clone()
			check("UnmarshalBinary", m.UnmarshalBinary(tc.data))
			n, err := decodeMember(tc.data, m)
			check("decodeMember", err)
			if n != 0 {
				t.Fatalf("decodeMember n = %d on error", n)
			}
			if !memberEqual(m, orig) {
				t.Fatalf("member changed on error: %+v", m)
			}
			n, err = memberRecordLen(tc.data)
			check("memberRecordLen", err)
			if n != 0 {
				t.Fatalf("memberRecordLen n = %d on error", n)
			}
		})
	}
}

func TestMemberErrorMessage(t *testing.T) {
	err := new(Member).UnmarshalBinary(editMember(func(b []byte) []byte { return put32(b, 10, 0) }))
	const want = "tribes: bad member record at offset 14: END marker TRIBES-E missing"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

func TestMemberTrailingBytes(t *testing.T) {
	data := append(bytes.Clone(vecMember81), "trailing garbage"...)
	var m Member
	if err := m.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if !memberEqual(&m, vecMember81Value()) {
		t.Fatalf("got %+v", m)
	}
	if n, err := decodeMember(data, &m); err != nil || n != 81 {
		t.Fatalf("decodeMember = %d, %v", n, err)
	}
	if n, err := memberRecordLen(data); err != nil || n != 81 {
		t.Fatalf("memberRecordLen = %d, %v", n, err)
	}
}

func TestMemberUnmarshalCopies(t *testing.T) {
	data := bytes.Clone(vecMember81)
	var m Member
	if err := m.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	shared := m // a shallow copy must not see later decodes into m
	for i := range data {
		data[i] = 0
	}
	if !memberEqual(&m, vecMember81Value()) {
		t.Fatal("member aliases its input")
	}
	if err := m.UnmarshalBinary(vecMember81Shutdown); err != nil {
		t.Fatal(err)
	}
	if string(shared.Domain) != "abc" || len(shared.Command) != 0 {
		t.Fatal("UnmarshalBinary reused the previous slices")
	}
}

func TestDecodeMemberReuses(t *testing.T) {
	m := &Member{Command: make([]byte, 0, 16), Domain: make([]byte, 0, 16), Payload: make([]byte, 0, 16)}
	cmd, dom, pay := &m.Command[:1][0], &m.Domain[:1][0], &m.Payload[:1][0]
	if _, err := decodeMember(vecMember81Shutdown, m); err != nil {
		t.Fatal(err)
	}
	if &m.Command[0] != cmd || &m.Domain[0] != dom || &m.Payload[0] != pay {
		t.Fatal("decodeMember did not reuse capacity")
	}
	if !m.IsShutdown() || string(m.Domain) != "abc" || !bytes.Equal(m.Payload, []byte{0xaa}) {
		t.Fatalf("got %+v", m)
	}
	// Decoding a record with empty fields empties them.
	if _, err := decodeMember(vecMember77, m); err != nil {
		t.Fatal(err)
	}
	if len(m.Command) != 0 || len(m.Domain) != 0 || len(m.Payload) != 0 || !memberEqual(m, vecMember77Value()) {
		t.Fatalf("got %+v", m)
	}
}

func TestMemberAccessors(t *testing.T) {
	m := vecMember81Value()
	if got, want := m.AddrPort(), netip.MustParseAddrPort("10.0.0.5:4000"); got != want {
		t.Fatalf("AddrPort = %v", got)
	}
	if m.IsShutdown() {
		t.Fatal("IsShutdown on a live member")
	}
	if got, want := m.String(), "tcp://10.0.0.5:4000 {0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15} domain=abc"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	m6 := &Member{Host: netip.MustParseAddr("::1"), Port: 4000, Command: []byte(ShutdownCommand), Domain: []byte{1, 0xff}}
	if got, want := m6.String(), "tcp://[::1]:4000 {0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0} domain={1,-1} shutdown"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}

	c := m.Clone()
	if !memberEqual(c, m) || c.Key() != m.Key() {
		t.Fatal("Clone differs")
	}
	c.Domain[0], c.Payload[0] = 'x', 0
	if string(m.Domain) != "abc" || m.Payload[0] != 0xaa {
		t.Fatal("Clone shares memory")
	}
	if (*Member)(nil).Clone() != nil {
		t.Fatal("nil Clone")
	}

	tests := []struct {
		name   string
		mutate func(*Member)
		same   bool
	}{
		{"alive ignored", func(m *Member) { m.Alive++ }, true},
		{"payload ignored", func(m *Member) { m.Payload = nil }, true},
		{"port", func(m *Member) { m.Port++ }, false},
		{"host", func(m *Member) { m.Host = netip.MustParseAddr("10.0.0.6") }, false},
		{"unique id", func(m *Member) { m.UniqueID[15]++ }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := m.Clone()
			tc.mutate(o)
			if (o.Key() == m.Key()) != tc.same {
				t.Fatalf("Key equality = %v, want %v", o.Key() == m.Key(), tc.same)
			}
		})
	}
}

func TestUniqueID(t *testing.T) {
	id := vecMember77Value().UniqueID
	const javaForm = "{-96,-95,-94,-93,-92,-91,70,-89,-120,-87,-86,-85,-84,-83,-82,-81}"
	if got := id.String(); got != javaForm {
		t.Fatalf("String = %q", got)
	}
	tests := []struct {
		name string
		in   string
		want UniqueID
	}{
		{"tribes form", javaForm, id},
		{"tribes form with blanks", " { -96, -95,-94 ,-93,-92,-91,70,-89,-120,-87,-86,-85,-84,-83,-82, -81 } ", id},
		{"zeros to 15", "{0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15}", UniqueID{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
		{"hex", "a0a1a2a3a4a546a788a9aaabacadaeaf", id},
		{"hex upper", "A0A1A2A3A4A546A788A9AAABACADAEAF", id},
		{"uuid", "a0a1a2a3-a4a5-46a7-88a9-aaabacadaeaf", id},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseUniqueID(tc.in)
			if err != nil || got != tc.want {
				t.Fatalf("ParseUniqueID(%q) = %v, %v", tc.in, got, err)
			}
		})
	}
	bad := []struct{ name, in, reason string }{
		{"empty", "", "32 hex digits"},
		{"15 bytes", "{0,1,2,3,4,5,6,7,8,9,10,11,12,13,14}", "15 bytes"},
		{"17 bytes", "{0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}", "17 bytes"},
		{"unsigned byte", "{160,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15}", `byte 0 "160"`},
		{"below -128", "{-129,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15}", "byte 0"},
		{"empty byte", "{0,,2,3,4,5,6,7,8,9,10,11,12,13,14,15}", "byte 1"},
		{"no closing brace", "{0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15", "closing brace"},
		{"31 hex digits", "a0a1a2a3a4a546a788a9aaabacadaea", "32 hex digits"},
		{"bad hex", "g0a1a2a3a4a546a788a9aaabacadaeaf", "invalid byte"},
		{"misplaced dashes", "a0a1a2a3a-4a5-46a7-88a9-aaabacadaeaf", "32 hex digits"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseUniqueID(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("ParseUniqueID(%q) err = %v, want %q", tc.in, err, tc.reason)
			}
		})
	}
}

func TestNewUniqueID(t *testing.T) {
	seen := make(map[UniqueID]bool)
	for range 100 {
		u := NewUniqueID()
		if u[6]>>4 != 4 || u[8]>>6 != 2 {
			t.Fatalf("%x lacks UUID v4 version/variant bits", u)
		}
		if seen[u] {
			t.Fatalf("duplicate %x", u)
		}
		seen[u] = true
		back, err := ParseUniqueID(u.String())
		if err != nil || back != u {
			t.Fatalf("ParseUniqueID(String()) = %v, %v", back, err)
		}
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
