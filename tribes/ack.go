package tribes

// ACK protocol (spec §4): a receiver answers a USE_ACK message with a frame
// whose 3-byte body is ACK, or FAIL_ACK when synchronized processing failed.
var (
	ackBody     = [3]byte{0x06, 0x02, 0x03}
	failAckBody = [3]byte{0x0B, 0x00, 0x05}

	// ackFrame and failAckFrame are the complete 21-byte frames. Write them
	// with ackFrame[:]; never modify them.
	ackFrame = [frameOverhead + 3]byte{
		'F', 'L', 'T', '2', '0', '0', '2', 0, 0, 0, 3,
		0x06, 0x02, 0x03,
		'T', 'L', 'F', '2', '0', '0', '3',
	}
	failAckFrame = [frameOverhead + 3]byte{
		'F', 'L', 'T', '2', '0', '0', '2', 0, 0, 0, 3,
		0x0B, 0x00, 0x05,
		'T', 'L', 'F', '2', '0', '0', '3',
	}
)

// ackKind classifies a frame body received by a sender waiting for an ACK.
// A body that is neither (both false) is ignored by Java senders, which keep
// waiting.
func ackKind(body []byte) (isAck, isFailAck bool) {
	if len(body) != len(ackBody) {
		return false, false
	}
	b := [3]byte(body)
	return b == ackBody, b == failAckBody
}
