package tribes

import (
	"bytes"
	stdgzip "compress/gzip"
	"errors"
	"io"
	"testing"
)

// Seeds are added in code (from the §13 vectors) and under
// testdata/fuzz/<FuzzName>/.

const fuzzMaxBody = 1 << 16

func FuzzParseFrame(f *testing.F) {
	f.Add(vecFrame137)
	f.Add(vecAckFrame)
	f.Add(vecFailAckFrame)
	f.Add(vecFrame137[:50])
	f.Add(append(bytes.Clone(vecAckFrame), vecFrame137...))
	f.Fuzz(func(t *testing.T, data []byte) {
		body, n, err := parseFrame(data, fuzzMaxBody)
		switch {
		case err != nil:
			if body != nil || n != 0 {
				t.Fatalf("error with body/n: %d", n)
			}
			var de *DecodeError
			var se *SizeError
			if !(errors.As(err, &de) && errors.Is(err, ErrBadFrame)) && !errors.As(err, &se) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
		case n == 0:
			if body != nil || len(data) >= frameOverhead+fuzzMaxBody {
				t.Fatalf("incomplete with %d bytes", len(data))
			}
			if !bytes.HasPrefix(frameStart[:], data[:min(len(data), frameMarkerLen)]) {
				t.Fatal("incomplete but START does not match")
			}
		default:
			if n != len(body)+frameOverhead || len(body) > fuzzMaxBody || cap(body) != len(body) {
				t.Fatalf("n %d, body %d (cap %d)", n, len(body), cap(body))
			}
			if re := appendFrame(nil, body); !bytes.Equal(re, data[:n]) {
				t.Fatal("re-framing the body does not reproduce the frame")
			}
		}
	})
}

func FuzzDecodeChannelData(f *testing.F) {
	f.Add(appendChannelData(nil, vecFrame137Data()))
	cd := vecFrame137Data()
	cd.member = vecMember81Shutdown
	cd.message = nil
	f.Add(appendChannelData(nil, cd))
	f.Fuzz(func(t *testing.T, body []byte) {
		var cd channelData
		err := decodeChannelData(body, &cd)
		if err != nil {
			if !errors.Is(err, ErrBadChannelData) && !errors.Is(err, ErrBadMember) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(cd.uniqueID) > maxMessageIDLen || len(cd.member) == 0 {
			t.Fatalf("accepted uniqueID %d, member %d bytes", len(cd.uniqueID), len(cd.member))
		}
		if re := appendChannelData(nil, &cd); !bytes.Equal(re, body) {
			t.Fatal("re-encoding differs from the input")
		}
		var m Member
		if n, err := decodeMember(cd.member, &m); err != nil || n > len(cd.member) {
			t.Fatalf("validated member does not decode: %d, %v", n, err)
		}
	})
}

func FuzzMember(f *testing.F) {
	f.Add(vecMember77)
	f.Add(vecMember81)
	f.Add(vecMember81Shutdown)
	v6, _ := (&Member{Host: mustAddr("2001:db8::1"), Port: 4000, SecurePort: -1, UDPPort: -1}).MarshalBinary()
	f.Add(v6)
	f.Fuzz(func(t *testing.T, data []byte) {
		n1, err1 := memberRecordLen(data)
		reused := vecMember81Value() // holds old contents and capacity
		n2, err2 := decodeMember(data, reused)
		var fresh Member
		err3 := fresh.UnmarshalBinary(data)
		if (err1 == nil) != (err2 == nil) || (err1 == nil) != (err3 == nil) || n1 != n2 {
			t.Fatalf("disagree: memberRecordLen %d %v, decodeMember %d %v, UnmarshalBinary %v", n1, err1, n2, err2, err3)
		}
		if err1 != nil {
			if err1.Error() != err2.Error() || err1.Error() != err3.Error() || !errors.Is(err1, ErrBadMember) {
				t.Fatalf("different errors: %v / %v / %v", err1, err2, err3)
			}
			return
		}
		if n1 < memberFixedLen+4 || n1 > len(data) {
			t.Fatalf("n = %d for %d bytes", n1, len(data))
		}
		if !memberEqual(reused, &fresh) {
			t.Fatalf("decodeMember into a used Member = %+v, UnmarshalBinary = %+v", reused, fresh)
		}
		// Encoding what was decoded reproduces the record, unless a port is
		// outside the range we are willing to send.
		re, err := fresh.MarshalBinary()
		if err != nil {
			if !errors.Is(err, ErrBadMember) {
				t.Fatalf("MarshalBinary: %v", err)
			}
			return
		}
		if !bytes.Equal(re, data[:n1]) {
			t.Fatalf("re-encoded\n%x\nwant\n%x", re, data[:n1])
		}
	})
}

// FuzzRoundTrip decodes a frame completely (frame, ChannelData, member),
// encodes it again from the decoded values and checks that decoding the
// result gives the same values.
func FuzzRoundTrip(f *testing.F) {
	f.Add(vecFrame137)
	f.Fuzz(func(t *testing.T, data []byte) {
		body, n, err := parseFrame(data, fuzzMaxBody)
		if err != nil || n == 0 {
			return
		}
		var cd channelData
		if decodeChannelData(body, &cd) != nil {
			return
		}
		var m Member
		if _, err := decodeMember(cd.member, &m); err != nil {
			t.Fatalf("validated member: %v", err)
		}
		rec, err := m.MarshalBinary()
		if err != nil {
			return // ports we refuse to send
		}
		cd2 := cd
		cd2.member = rec
		frame := appendMessageHeader(nil, cd2.options, cd2.timestamp, cd2.uniqueID, cd2.member, len(cd2.message))
		frame = append(append(frame, cd2.message...), frameEnd[:]...)
		if want := appendFrame(nil, appendChannelData(nil, &cd2)); !bytes.Equal(frame, want) {
			t.Fatal("vectored and plain encodings differ")
		}
		body2, n2, err := parseFrame(frame, len(frame))
		if err != nil || n2 != len(frame) {
			t.Fatalf("re-parse: %d, %v", n2, err)
		}
		var cd3 channelData
		if err := decodeChannelData(body2, &cd3); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !cdEqual(&cd3, &cd2) {
			t.Fatal("channel data changed")
		}
		var m2 Member
		if _, err := decodeMember(cd3.member, &m2); err != nil || !memberEqual(&m, &m2) {
			t.Fatalf("member changed: %v", err)
		}
	})
}

func FuzzParseOptions(f *testing.F) {
	for _, s := range []string{"6", "0x6", "use_ack,sync", "8", "async", "BYTE|Use_Ack|0x100", " secure , udp ", "", ",", "0x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseOptions(s)
		if err != nil {
			return
		}
		back, err := ParseOptions(o.String())
		if err != nil || back != o {
			t.Fatalf("ParseOptions(%q) = %#x; String %q parses to %#x, %v", s, uint32(o), o.String(), uint32(back), err)
		}
	})
}

func FuzzParseUniqueID(f *testing.F) {
	for _, s := range []string{
		"{-96,-95,-94,-93,-92,-91,70,-89,-120,-87,-86,-85,-84,-83,-82,-81}",
		"a0a1a2a3a4a546a788a9aaabacadaeaf", "a0a1a2a3-a4a5-46a7-88a9-aaabacadaeaf", "{1}", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUniqueID(s)
		if err != nil {
			return
		}
		back, err := ParseUniqueID(u.String())
		if err != nil || back != u {
			t.Fatalf("ParseUniqueID(%q) = %v; String round trip %v, %v", s, u, back, err)
		}
	})
}

const fuzzGzipLimit = 1 << 20

func FuzzGzipDecompress(f *testing.F) {
	f.Add(vecJavaGzip)
	var g Gzip
	z, _ := g.Compress(nil, compressibleText(3000))
	f.Add(z)
	f.Fuzz(func(t *testing.T, src []byte) {
		g := Gzip{MaxSize: fuzzGzipLimit}
		out, err := g.Decompress([]byte("dst"), src)
		if string(out[:3]) != "dst" {
			t.Fatal("dst prefix lost")
		}
		if err != nil {
			if len(out) != 3 {
				t.Fatal("output on error")
			}
			if !errors.Is(err, ErrBadGzip) && !errors.Is(err, ErrMessageTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(out)-3 > fuzzGzipLimit {
			t.Fatalf("%d bytes over the limit", len(out)-3)
		}
		// Differential check: the standard library agrees on accepted input.
		zr, err := stdgzip.NewReader(bytes.NewReader(src))
		if err != nil {
			t.Fatalf("compress/gzip rejects what we accept: %v", err)
		}
		std, err := io.ReadAll(io.LimitReader(zr, fuzzGzipLimit+1))
		if err != nil || !bytes.Equal(std, out[3:]) {
			t.Fatalf("compress/gzip: %d bytes, %v; we: %d bytes", len(std), err, len(out)-3)
		}
	})
}

func FuzzGzipRoundTrip(f *testing.F) {
	f.Add([]byte("hello hello hello"), int8(0))
	f.Add(compressibleText(5000), int8(9))
	f.Add([]byte{}, int8(-3))
	f.Fuzz(func(t *testing.T, data []byte, level int8) {
		g := Gzip{Level: int(uint8(level))%13 - 3} // -3..9; 0 means BestSpeed
		z, err := g.Compress(nil, data)
		if err != nil {
			t.Fatal(err)
		}
		out, err := g.Decompress(nil, z)
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("round trip at level %d: %v", g.Level, err)
		}
	})
}
