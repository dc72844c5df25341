package tribes

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

// The test vectors of spec §13, produced by the Tomcat 10.1.60 classes.
var (
	vecMember77 = unhex(`5452494245532d420100 00000035 0000000000001388 00000fa0 ffffffff ffffffff
		04 c0a80114 00000000 00000000 a0a1a2a3a4a546a788a9aaabacadaeaf 00000000 5452494245532d450100`)
	vecMember81 = unhex(`5452494245532d420100 00000039 00000000000004d2 00000fa0 ffffffff ffffffff 04 0a000005
		00000000 00000003 616263 000102030405060708090a0b0c0d0e0f 00000001 aa 5452494245532d450100`)
	vecMember81Shutdown = unhex(`5452494245532d420100 00000042 00000000000004d2 00000fa0 ffffffff ffffffff 04 0a000005
		00000009 424142592d414c4558 00000003 616263 000102030405060708090a0b0c0d0e0f 00000001 aa 5452494245532d450100`)
	vecFrame137 = unhex(`464c5432303032 00000077 00000003 0000019b76daa800 00000010 101112131415161718191a1b1c1d1e1f
		0000004d` + hex.EncodeToString(vecMember77) + ` 00000002 6869 544c4632303033`)
	vecAckFrame     = unhex(`46 4C 54 32 30 30 32 00 00 00 03 06 02 03 54 4C 46 32 30 30 33`)
	vecFailAckFrame = unhex(`46 4C 54 32 30 30 32 00 00 00 03 0B 00 05 54 4C 46 32 30 30 33`)
	vecJavaGzip     = unhex(`1f8b08000000000000ffcb48cdc9c957c84090008088f9e511000000`)
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

func vecMember77Value() *Member {
	return &Member{
		Host:       netip.MustParseAddr("192.168.1.20"),
		Port:       4000,
		SecurePort: -1,
		UDPPort:    -1,
		Alive:      5000,
		UniqueID:   UniqueID{0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0x46, 0xa7, 0x88, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf},
	}
}

func vecMember81Value() *Member {
	return &Member{
		Host:       netip.MustParseAddr("10.0.0.5"),
		Port:       4000,
		SecurePort: -1,
		UDPPort:    -1,
		Alive:      1234,
		Domain:     []byte("abc"),
		UniqueID:   UniqueID{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		Payload:    []byte{0xaa},
	}
}

func vecFrame137Data() *channelData {
	return &channelData{
		options:   OptByteMessage | OptUseAck,
		timestamp: 1767225600000,
		uniqueID:  []byte{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f},
		member:    vecMember77,
		message:   []byte("hi"),
	}
}

// memberEqual compares members treating nil and empty slices alike.
func memberEqual(a, b *Member) bool {
	return a.Host == b.Host && a.Port == b.Port && a.SecurePort == b.SecurePort && a.UDPPort == b.UDPPort &&
		a.Alive == b.Alive && bytes.Equal(a.Command, b.Command) && bytes.Equal(a.Domain, b.Domain) &&
		a.UniqueID == b.UniqueID && bytes.Equal(a.Payload, b.Payload)
}

func TestVectorsMemberEncode(t *testing.T) {
	shutdown := vecMember81Value()
	shutdown.Command = []byte(ShutdownCommand)
	tests := []struct {
		name   string
		member *Member
		want   []byte
	}{
		{"77-byte IPv4 heartbeat", vecMember77Value(), vecMember77},
		{"81-byte with domain and payload", vecMember81Value(), vecMember81},
		{"BABY-ALEX", shutdown, vecMember81Shutdown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.member.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("MarshalBinary:\n got %x\nwant %x", got, tc.want)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("len %d, want %d", len(got), len(tc.want))
			}
			var back Member
			if err := back.UnmarshalBinary(tc.want); err != nil {
				t.Fatal(err)
			}
			if !memberEqual(&back, tc.member) {
				t.Fatalf("UnmarshalBinary = %+v, want %+v", back, *tc.member)
			}
			if back.IsShutdown() != tc.member.IsShutdown() {
				t.Fatalf("IsShutdown = %v", back.IsShutdown())
			}
			n, err := memberRecordLen(tc.want)
			if err != nil || n != len(tc.want) {
				t.Fatalf("memberRecordLen = %d, %v; want %d", n, err, len(tc.want))
			}
		})
	}
	if len(vecMember77) != 77 || len(vecMember81) != 81 {
		t.Fatalf("vector lengths %d %d", len(vecMember77), len(vecMember81))
	}
	if !bytes.Contains(vecMember81Shutdown, []byte{0, 0, 0, 9, 'B', 'A', 'B', 'Y', '-', 'A', 'L', 'E', 'X'}) {
		t.Fatal("shutdown vector lacks command field")
	}
}

func TestVectorsFrame(t *testing.T) {
	if len(vecFrame137) != 137 {
		t.Fatalf("vector length %d", len(vecFrame137))
	}
	cd := vecFrame137Data()
	got := appendFrame(nil, appendChannelData(nil, cd))
	if !bytes.Equal(got, vecFrame137) {
		t.Fatalf("appendFrame(appendChannelData):\n got %x\nwant %x", got, vecFrame137)
	}

	// Vectored form: header + message + frameEnd.
	hdr := appendMessageHeader(nil, cd.options, cd.timestamp, cd.uniqueID, cd.member, len(cd.message))
	vec := append(append(hdr, cd.message...), frameEnd[:]...)
	if !bytes.Equal(vec, vecFrame137) {
		t.Fatalf("appendMessageHeader+msg+frameEnd:\n got %x\nwant %x", vec, vecFrame137)
	}

	// Decode back.
	body, n, err := parseFrame(vecFrame137, 1<<20)
	if err != nil || n != 137 || len(body) != 0x77 {
		t.Fatalf("parseFrame = len %d, %d, %v", len(body), n, err)
	}
	var dec channelData
	if err := decodeChannelData(body, &dec); err != nil {
		t.Fatal(err)
	}
	if dec.options != cd.options || dec.timestamp != cd.timestamp || !bytes.Equal(dec.uniqueID, cd.uniqueID) ||
		!bytes.Equal(dec.member, cd.member) || !bytes.Equal(dec.message, cd.message) {
		t.Fatalf("decodeChannelData = %+v", dec)
	}
	var m Member
	if n, err := decodeMember(dec.member, &m); err != nil || n != 77 || !memberEqual(&m, vecMember77Value()) {
		t.Fatalf("decodeMember = %d, %v, %+v", n, err, m)
	}
}

func TestVectorsAck(t *testing.T) {
	if !bytes.Equal(ackFrame[:], vecAckFrame) {
		t.Fatalf("ackFrame = %x", ackFrame)
	}
	if !bytes.Equal(failAckFrame[:], vecFailAckFrame) {
		t.Fatalf("failAckFrame = %x", failAckFrame)
	}
	if got := appendFrame(nil, ackBody[:]); !bytes.Equal(got, vecAckFrame) {
		t.Fatalf("appendFrame(ackBody) = %x", got)
	}
	for _, tc := range []struct {
		name           string
		frame          []byte
		wantAck, wantF bool
	}{
		{"ACK", vecAckFrame, true, false},
		{"FAIL_ACK", vecFailAckFrame, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, n, err := parseFrame(tc.frame, 3)
			if err != nil || n != 21 {
				t.Fatalf("parseFrame = %d, %v", n, err)
			}
			a, f := ackKind(body)
			if a != tc.wantAck || f != tc.wantF {
				t.Fatalf("ackKind = %v, %v", a, f)
			}
		})
	}
}

func TestVectorsJavaGzip(t *testing.T) {
	var g Gzip
	got, err := g.Decompress(nil, vecJavaGzip)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "hello hello hello" {
		t.Fatalf("Decompress = %q", got)
	}
	// Our output starts with the same fixed header fields Java checks.
	out, err := g.Compress(nil, []byte("hello hello hello"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out[:8], vecJavaGzip[:8]) || out[9] != 0xff {
		t.Fatalf("gzip header %x, want ID, CM=8, FLG=0, MTIME=0, OS=255", out[:10])
	}
}
