package tribes

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func cdEqual(a, b *channelData) bool {
	return a.options == b.options && a.timestamp == b.timestamp && bytes.Equal(a.uniqueID, b.uniqueID) &&
		bytes.Equal(a.member, b.member) && bytes.Equal(a.message, b.message)
}

func TestChannelDataRoundTrip(t *testing.T) {
	v6, err := (&Member{Host: mustAddr("fd00::7"), Port: 4000, SecurePort: -1, UDPPort: -1, Domain: []byte("d")}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cd   channelData
	}{
		{"vector", *vecFrame137Data()},
		{"empty message and id", channelData{options: 0, timestamp: 0, member: vecMember77}},
		{"max id length", channelData{options: 0xffffffff, timestamp: -1, uniqueID: bytes.Repeat([]byte{1}, maxMessageIDLen), member: vecMember81, message: []byte("x")}},
		{"IPv6 member", channelData{options: OptUseAck, timestamp: 1767225600000, uniqueID: make([]byte, 16), member: v6, message: make([]byte, 64<<10)}},
		{"member with trailing bytes", channelData{options: 1, uniqueID: make([]byte, 16), member: append(bytes.Clone(vecMember77), 1, 2, 3), message: []byte("m")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := appendChannelData(nil, &tc.cd)
			if len(body) != channelDataLen(&tc.cd) {
				t.Fatalf("len %d, channelDataLen %d", len(body), channelDataLen(&tc.cd))
			}
			var got channelData
			if err := decodeChannelData(body, &got); err != nil {
				t.Fatal(err)
			}
			if !cdEqual(&got, &tc.cd) {
				t.Fatalf("round trip = %+v", got)
			}
			for _, s := range [][]byte{got.uniqueID, got.member, got.message} {
				if cap(s) != len(s) {
					t.Fatalf("field capacity %d not clipped to %d", cap(s), len(s))
				}
			}
			if len(got.message) > 0 && &got.message[0] != &body[len(body)-len(got.message)] {
				t.Fatal("message does not alias the body")
			}
			// Re-encoding reproduces the input exactly.
			if again := appendChannelData(nil, &got); !bytes.Equal(again, body) {
				t.Fatal("re-encoding differs")
			}
			// Vectored header + message + END equals the whole frame.
			hdr := appendMessageHeader([]byte("pre"), tc.cd.options, tc.cd.timestamp, tc.cd.uniqueID, tc.cd.member, len(tc.cd.message))
			vec := append(append(hdr, tc.cd.message...), frameEnd[:]...)
			if want := appendFrame([]byte("pre"), body); !bytes.Equal(vec, want) {
				t.Fatal("appendMessageHeader+message+frameEnd != appendFrame(appendChannelData)")
			}
		})
	}
}

// editBody returns the vector frame body changed by f.
func editBody(f func(b []byte) []byte) []byte {
	return f(appendChannelData(nil, vecFrame137Data()))
}

func TestDecodeChannelDataErrors(t *testing.T) {
	// Vector body offsets: options 0, timestamp 4, U 12, id 16, A 32,
	// member 36, M 113, message 117, end 119.
	tests := []struct {
		name     string
		body     []byte
		sentinel error
		offset   int
		reason   string
	}{
		{"empty", nil, ErrBadChannelData, 0, "truncated: 0 bytes"},
		{"23 bytes", make([]byte, 23), ErrBadChannelData, 23, "need at least 24"},
		{"negative id length", editBody(func(b []byte) []byte { return put32(b, 12, -16) }), ErrBadChannelData, 12, "negative uniqueId length -16"},
		{"id length over 256", editBody(func(b []byte) []byte { return put32(b, 12, 257) }), ErrBadChannelData, 12, "uniqueId length 257 over the limit of 256"},
		{"id past end", append(put32(make([]byte, 24), 12, 100), make([]byte, 8)...), ErrBadChannelData, 12, "uniqueId length 100 runs past the end"},
		{"cut before member length", editBody(func(b []byte) []byte { return b[:34] }), ErrBadChannelData, 32, "truncated before the member length"},
		{"negative member length", editBody(func(b []byte) []byte { return put32(b, 32, -77) }), ErrBadChannelData, 32, "negative member length"},
		{"member length 0", put32(make([]byte, 24), 12, 0), ErrBadChannelData, 16, "member length 0"},
		{"member past end", editBody(func(b []byte) []byte { return put32(b, 32, 200) }), ErrBadChannelData, 32, "member length 200 runs past the end"},
		{"member record bad END", editBody(func(b []byte) []byte { b[36+70] = 0; return b }), ErrBadMember, 36 + 67, "END marker"},
		{"member record too short", editBody(func(b []byte) []byte {
			put32(b, 32, 76) // A one short: the record is cut
			return b
		}), ErrBadMember, 36 + 10, "member field at offset 36: truncated"},
		{"member field not a record", func() []byte {
			cd := vecFrame137Data()
			cd.member = []byte("not a member record")
			return appendChannelData(nil, cd)
		}(), ErrBadMember, 36, "BEGIN marker"},
		{"cut before message length", editBody(func(b []byte) []byte { return b[:115] }), ErrBadChannelData, 113, "truncated before the message length"},
		{"negative message length", editBody(func(b []byte) []byte { return put32(b, 113, -1) }), ErrBadChannelData, 113, "negative message length"},
		{"message past end", editBody(func(b []byte) []byte { return put32(b, 113, 3) }), ErrBadChannelData, 113, "message length 3 runs past the end of the body (2 bytes left)"},
		{"trailing bytes", editBody(func(b []byte) []byte { return append(b, 0, 0) }), ErrBadChannelData, 119, "2 trailing bytes"},
		{"message length short", editBody(func(b []byte) []byte { return put32(b, 113, 1) }), ErrBadChannelData, 118, "1 trailing bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cd := *vecFrame137Data()
			err := decodeChannelData(tc.body, &cd)
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, tc.sentinel) {
				t.Fatalf("err = %v, want *DecodeError wrapping %v", err, tc.sentinel)
			}
			if de.Offset != tc.offset || !strings.Contains(de.Reason, tc.reason) {
				t.Fatalf("err = %q (offset %d), want offset %d, %q", err, de.Offset, tc.offset, tc.reason)
			}
			if !cdEqual(&cd, vecFrame137Data()) {
				t.Fatal("cd changed on error")
			}
		})
	}
}
