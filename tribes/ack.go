package tribes

import (
	"errors"
	"fmt"
	"io"
)

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

// ackReader reads the answers a sender waits for from its connection:
// ACK and FAIL_ACK frames, skipping any other frame, as Java senders do.
// The pooled connections and the pipelined one share it.
type ackReader struct {
	buf [512]byte
	n   int
}

// next returns the next answer, reading from r as needed: nil for ACK and
// ErrFailAck for FAIL_ACK, or err, the read or framing error. An answer
// already buffered is returned without a read.
func (a *ackReader) next(r io.Reader) (answer, err error) {
	for {
		body, n, err := parseFrame(a.buf[:a.n], len(a.buf))
		if err != nil {
			return nil, err
		}
		if n > 0 {
			isAck, isFail := ackKind(body)
			a.n = copy(a.buf[:], a.buf[n:a.n])
			switch {
			case isAck:
				return nil, nil
			case isFail:
				return ErrFailAck, nil
			}
			continue
		}
		if a.n == len(a.buf) {
			return nil, fmt.Errorf("tribes: unexpected %d bytes while waiting for an ACK", a.n)
		}
		k, err := r.Read(a.buf[a.n:])
		a.n += k
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("tribes: connection closed while waiting for an ACK: %w", err)
			}
			return nil, err
		}
	}
}
