package tribes

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseFrameComplete(t *testing.T) {
	tests := []struct {
		name    string
		body    []byte
		maxBody int
	}{
		{"empty body", nil, 0},
		{"ack", ackBody[:], 3},
		{"channel data", appendChannelData(nil, vecFrame137Data()), 0x77},
		{"body containing markers", append(append(frameEnd[:], frameStart[:]...), frameEnd[:]...), 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frame := appendFrame(nil, tc.body)
			if len(frame) != len(tc.body)+frameOverhead {
				t.Fatalf("frame length %d", len(frame))
			}
			// Followed by the start of the next frame, which must be left alone.
			buf := append(bytes.Clone(frame), frameStart[:4]...)
			body, n, err := parseFrame(buf, tc.maxBody)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(frame) || !bytes.Equal(body, tc.body) {
				t.Fatalf("parseFrame = %x, %d", body, n)
			}
			if cap(body) != len(body) {
				t.Fatalf("body capacity %d not clipped to %d", cap(body), len(body))
			}
			if len(body) > 0 && &body[0] != &buf[frameHeaderLen] {
				t.Fatal("body does not alias buf")
			}
			// Every proper prefix is incomplete, not an error.
			for i := range len(frame) {
				body, n, err := parseFrame(frame[:i], tc.maxBody)
				if body != nil || n != 0 || err != nil {
					t.Fatalf("prefix %d: parseFrame = %x, %d, %v", i, body, n, err)
				}
			}
		})
	}
}

func TestParseFrameStream(t *testing.T) {
	var stream []byte
	var want [][]byte
	for i := range 5 {
		body := bytes.Repeat([]byte{byte(i)}, i*10)
		want = append(want, body)
		stream = appendFrame(stream, body)
	}
	stream = append(stream, ackFrame[:]...)
	want = append(want, ackBody[:])
	var got [][]byte
	for len(stream) > 0 {
		body, n, err := parseFrame(stream, 100)
		if err != nil || n == 0 {
			t.Fatalf("parseFrame = %d, %v with %d bytes left", n, err, len(stream))
		}
		got = append(got, body)
		stream = stream[n:]
	}
	if len(got) != len(want) {
		t.Fatalf("%d frames, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d = %x, want %x", i, got[i], want[i])
		}
	}
}

func TestParseFrameErrors(t *testing.T) {
	frame := appendFrame(nil, []byte("hello"))
	badEnd := bytes.Clone(frame)
	badEnd[len(badEnd)-1] = '4'
	neg := bytes.Clone(frame)
	neg[7] = 0x80
	tests := []struct {
		name    string
		buf     []byte
		maxBody int
		offset  int
		reason  string
	}{
		{"first byte wrong", []byte("X"), 100, 0, "START"},
		{"fourth byte wrong", []byte("FLT3"), 100, 3, "START"},
		{"start at offset 1", append([]byte{0}, frame...), 100, 0, "START"},
		{"member record instead of frame", vecMember77, 1 << 20, 0, "START"},
		{"7 bytes wrong", []byte("FLT2003"), 100, 0, "START"},
		{"negative length", neg[:11], 100, 7, "negative length -2147483643"},
		{"END wrong", badEnd, 100, 16, "END marker TLF2003 missing after 5-byte body"},
		{"END shifted", append(append(bytes.Clone(frame[:11]), "hell"...), append(frameEnd[:], 0)...), 100, 16, "END"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, n, err := parseFrame(tc.buf, tc.maxBody)
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, ErrBadFrame) {
				t.Fatalf("err = %v, want *DecodeError wrapping ErrBadFrame", err)
			}
			if body != nil || n != 0 {
				t.Fatalf("body %x, n %d on error", body, n)
			}
			if de.What != "frame" || de.Offset != tc.offset || !strings.Contains(de.Reason, tc.reason) {
				t.Fatalf("err = %q (offset %d), want offset %d, %q", err, de.Offset, tc.offset, tc.reason)
			}
		})
	}
}

func TestParseFrameTooLarge(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		maxBody int
	}{
		{"one over", 101, 100},
		{"max int32", 0x7fffffff, 64 << 20},
		{"zero limit", 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Only the 11-byte header is present: the limit is enforced
			// before the body arrives.
			hdr := appendMessageHeader(nil, 0, 0, nil, nil, 0)[:frameHeaderLen]
			put32(hdr, 7, int32(tc.n))
			_, n, err := parseFrame(hdr, tc.maxBody)
			var se *SizeError
			if !errors.As(err, &se) || !errors.Is(err, ErrMessageTooLarge) || n != 0 {
				t.Fatalf("err = %v, n = %d; want *SizeError", err, n)
			}
			if se.Size != int64(tc.n) || se.Limit != int64(tc.maxBody) {
				t.Fatalf("SizeError = %+v", se)
			}
		})
	}
	// Exactly at the limit is fine.
	frame := appendFrame(nil, make([]byte, 100))
	if _, n, err := parseFrame(frame, 100); err != nil || n != len(frame) {
		t.Fatalf("at limit: %d, %v", n, err)
	}
}

func TestParseFrameByteByByte(t *testing.T) {
	frame := bytes.Clone(vecFrame137)
	var buf []byte
	for i, c := range frame {
		buf = append(buf, c)
		body, n, err := parseFrame(buf, 1<<10)
		if err != nil {
			t.Fatalf("byte %d: %v", i, err)
		}
		if i < len(frame)-1 && n != 0 {
			t.Fatalf("byte %d: complete too early", i)
		}
		if i == len(frame)-1 && (n != len(frame) || len(body) != 0x77) {
			t.Fatalf("last byte: n = %d", n)
		}
	}
}
