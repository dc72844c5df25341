package tribes

import (
	"strings"
	"testing"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Options
	}{
		{"decimal 6", "6", OptUseAck | OptSynchronizedAck},
		{"hex 0x6", "0x6", OptUseAck | OptSynchronizedAck},
		{"hex upper", "0X1F", 0x1f},
		{"async number", "8", OptAsynchronous},
		{"names", "use_ack,sync", OptUseAck | OptSynchronizedAck},
		{"async name", "async", OptAsynchronous},
		{"long names", "asynchronous,synchronized_ack,byte_message", OptAsynchronous | OptSynchronizedAck | OptByteMessage},
		{"short byte", "byte", OptByteMessage},
		{"all rest", "secure|udp|multicast", OptSecure | OptUDP | OptMulticast},
		{"case insensitive", "USE_ACK,Sync", OptUseAck | OptSynchronizedAck},
		{"pipe and blanks", " use_ack | sync ", OptUseAck | OptSynchronizedAck},
		{"mixed number and name", "use_ack|0x100", OptUseAck | DefaultGzipFlag},
		{"zero", "0", 0},
		{"max", "4294967295", 0xffffffff},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseOptions(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("ParseOptions(%q) = %#x, want %#x", tc.in, uint32(got), uint32(tc.want))
			}
		})
	}
}

func TestParseOptionsErrors(t *testing.T) {
	tests := []struct {
		name, in, token string // token must appear in the error
	}{
		{"empty", "", "empty"},
		{"blank", "  ", "empty"},
		{"unknown name", "use_ack,bogus", `"bogus"`},
		{"empty token", "use_ack,,sync", `""`},
		{"trailing separator", "use_ack|", `""`},
		{"negative", "-1", `"-1"`},
		{"too big", "4294967296", `"4294967296"`},
		{"bad hex", "0xzz", `"0xzz"`},
		{"bare 0x", "0x", `"0x"`},
		{"plus sign", "+6", `"+6"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseOptions(tc.in)
			if err == nil {
				t.Fatalf("ParseOptions(%q) succeeded", tc.in)
			}
			if !strings.Contains(err.Error(), tc.token) {
				t.Fatalf("error %q does not name %s", err, tc.token)
			}
		})
	}
}

func TestOptionsString(t *testing.T) {
	tests := []struct {
		name string
		in   Options
		want string
	}{
		{"zero", 0, "0"},
		{"7", 7, "byte_message|use_ack|synchronized_ack"},
		{"9", 9, "byte_message|asynchronous"},
		{"all named", 0x7f, "byte_message|use_ack|synchronized_ack|asynchronous|secure|udp|multicast"},
		{"gzip flag", OptUseAck | DefaultGzipFlag, "use_ack|0x100"},
		{"only unknown", 0x80000080, "0x80000080"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.String(); got != tc.want {
				t.Fatalf("String() = %q, want %q", got, tc.want)
			}
			back, err := ParseOptions(tc.in.String())
			if err != nil || back != tc.in {
				t.Fatalf("ParseOptions(String()) = %#x, %v", uint32(back), err)
			}
		})
	}
}

func TestOptionsHas(t *testing.T) {
	o := OptUseAck | OptSynchronizedAck
	tests := []struct {
		name string
		f    Options
		want bool
	}{
		{"one bit set", OptUseAck, true},
		{"both bits set", OptUseAck | OptSynchronizedAck, true},
		{"one of two missing", OptUseAck | OptByteMessage, false},
		{"missing", OptAsynchronous, false},
		{"zero flag", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := o.Has(tc.f); got != tc.want {
				t.Fatalf("Has(%v) = %v", tc.f, got)
			}
		})
	}
}
