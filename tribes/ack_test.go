package tribes

import "testing"

func TestAckKind(t *testing.T) {
	tests := []struct {
		name         string
		body         []byte
		ack, failAck bool
	}{
		{"ack", []byte{6, 2, 3}, true, false},
		{"fail ack", []byte{0x0b, 0, 5}, false, true},
		{"empty", nil, false, false},
		{"other 3 bytes", []byte{6, 2, 4}, false, false},
		{"ack prefix of longer body", []byte{6, 2, 3, 0}, false, false},
		{"two bytes", []byte{6, 2}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, f := ackKind(tc.body)
			if a != tc.ack || f != tc.failAck {
				t.Fatalf("ackKind(%x) = %v, %v", tc.body, a, f)
			}
		})
	}
}

func TestAckFramesParse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
		body  [3]byte
	}{
		{"ack", ackFrame[:], ackBody},
		{"fail ack", failAckFrame[:], failAckBody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, n, err := parseFrame(tc.frame, 3)
			if err != nil || n != len(tc.frame) || [3]byte(body) != tc.body {
				t.Fatalf("parseFrame = %x, %d, %v", body, n, err)
			}
		})
	}
}
