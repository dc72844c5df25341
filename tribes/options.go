package tribes

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Options are the send options of a message: the int32 options field of a
// ChannelData record (spec §5). The low seven bits are defined by Tribes;
// higher bits are free for interceptors ([DefaultGzipFlag] is one).
type Options uint32

// The Tribes send options (Java Channel.SEND_OPTIONS_*), and the default
// option bit of the gzip interceptor.
const (
	OptByteMessage     Options = 0x0001 // message bytes are raw, not Java-serialised
	OptUseAck          Options = 0x0002 // the receiver must ACK
	OptSynchronizedAck Options = 0x0004 // ACK after processing (with OptUseAck)
	OptAsynchronous    Options = 0x0008 // queued by the sender; ignored by receivers
	OptSecure          Options = 0x0010 // defined by Tribes, implemented by nothing
	OptUDP             Options = 0x0020 // sent as one datagram to the member's UDP port
	OptMulticast       Options = 0x0040 // sent as a datagram to the multicast group
	DefaultGzipFlag    Options = 0x0100 // GzipInterceptor's default optionFlag
)

// optionNames lists the named bits in bit order: the name String prints
// first, then Tribes' short alias (channelSendOptions accepts both).
var optionNames = [...]struct {
	bit         Options
	name, alias string
}{
	{OptByteMessage, "byte_message", "byte"},
	{OptUseAck, "use_ack", ""},
	{OptSynchronizedAck, "synchronized_ack", "sync"},
	{OptAsynchronous, "asynchronous", "async"},
	{OptSecure, "secure", ""},
	{OptUDP, "udp", ""},
	{OptMulticast, "multicast", ""},
}

// ParseOptions parses send options the way Tomcat's channelSendOptions
// attribute is written: a decimal or 0x-hexadecimal number ("6", "0x6"), or
// a list of option names ("use_ack,sync", "async") separated by ',' or '|'.
// Names are those of spec §5 in either spelling (byte_message/byte,
// use_ack, synchronized_ack/sync, asynchronous/async, secure, udp,
// multicast), case-insensitive; numbers and names may be mixed, and blanks
// around tokens are ignored. The result is the OR of all tokens, so
// ParseOptions(o.String()) == o for every o. The error names the first bad
// token.
func ParseOptions(s string) (Options, error) {
	if strings.TrimSpace(s) == "" {
		return 0, fmt.Errorf("tribes: empty send options")
	}
	var o Options
	for rest := s; ; {
		i := strings.IndexAny(rest, ",|")
		tok := rest
		if i >= 0 {
			tok = rest[:i]
		}
		v, err := parseOptionToken(strings.TrimSpace(tok))
		if err != nil {
			return 0, fmt.Errorf("tribes: bad send option %q in %q: %w", tok, s, err)
		}
		o |= v
		if i < 0 {
			return o, nil
		}
		rest = rest[i+1:]
	}
}

func parseOptionToken(tok string) (Options, error) {
	if tok == "" {
		return 0, fmt.Errorf("empty option")
	}
	if c := tok[0]; c >= '0' && c <= '9' {
		base, digits := 10, tok
		if len(tok) > 1 && c == '0' && (tok[1] == 'x' || tok[1] == 'X') {
			base, digits = 16, tok[2:]
		}
		v, err := strconv.ParseUint(digits, base, 32)
		if err != nil {
			return 0, fmt.Errorf("not a 32-bit unsigned number")
		}
		return Options(v), nil
	}
	for _, n := range optionNames {
		if strings.EqualFold(tok, n.name) || (n.alias != "" && strings.EqualFold(tok, n.alias)) {
			return n.bit, nil
		}
	}
	return 0, fmt.Errorf("unknown option name")
}

// Has reports whether all bits of f are set in o.
func (o Options) Has(f Options) bool { return o&f == f }

// String returns the set bits joined by '|', using the long names of spec §5
// ("byte_message|use_ack|synchronized_ack"); bits without a name are printed
// together as one hexadecimal number ("use_ack|0x100"). Zero prints "0".
func (o Options) String() string {
	if o == 0 {
		return "0"
	}
	var sb strings.Builder
	sb.Grow(8 * bits.OnesCount32(uint32(o)))
	rest := o
	for _, n := range optionNames {
		if o&n.bit == 0 {
			continue
		}
		rest &^= n.bit
		if sb.Len() > 0 {
			sb.WriteByte('|')
		}
		sb.WriteString(n.name)
	}
	if rest != 0 {
		if sb.Len() > 0 {
			sb.WriteByte('|')
		}
		sb.WriteString("0x")
		sb.WriteString(strconv.FormatUint(uint64(rest), 16))
	}
	return sb.String()
}
