package tribes

import (
	"encoding/binary"
	"math"
	"strconv"
)

// ChannelData layout (spec §2): options int32, timestamp int64, U, uniqueId,
// A, member record, M, message.
const (
	cdFixedLen = 24 // options + timestamp + the three int32 lengths
	// maxMessageIDLen bounds the message uniqueId length accepted from the
	// wire. Java always writes 16.
	maxMessageIDLen = 256
)

// channelData is a decoded ChannelData record, the body of a message frame.
// The slices alias the body it was decoded from (see decodeChannelData).
type channelData struct {
	options   Options
	timestamp int64  // sender wall clock, ms since the epoch
	uniqueID  []byte // message id, 0..256 bytes (16 from Java)
	member    []byte // raw member record of the sender, structure validated
	message   []byte // message bytes
}

func badChannelData(off int, reason string) error {
	return decodeErr("channel data", off, reason, ErrBadChannelData)
}

// decodeChannelData decodes the frame body into cd without copying or
// allocating (except for errors): cd.uniqueID, cd.member and cd.message
// alias body and are valid only as long as body's bytes are (for a frame
// from parseFrame, as long as the receive buffer is not reused). Their
// capacities are clipped, so appending to one never overwrites the next.
//
// Every length is checked against the bytes remaining; the uniqueId length
// must be 0..256; the member field must be non-empty and hold a valid member
// record (checked with memberRecordLen; bytes after its END are tolerated,
// as in Java, and stay part of cd.member); the message must end exactly at
// the end of body. Errors are *[DecodeError]s with offsets into body,
// wrapping [ErrBadChannelData], or [ErrBadMember] when the member record
// itself is malformed. On error cd is unchanged.
func decodeChannelData(body []byte, cd *channelData) error {
	if len(body) < cdFixedLen {
		return badChannelData(len(body), "truncated: "+strconv.Itoa(len(body))+" bytes, need at least 24")
	}
	p := 12
	uid, p, err := cdField(body, p, "uniqueId", maxMessageIDLen)
	if err != nil {
		return err
	}
	memberOff := p + 4
	member, p, err := cdField(body, p, "member", math.MaxInt32)
	if err != nil {
		return err
	}
	if len(member) == 0 {
		return badChannelData(memberOff-4, "member length 0")
	}
	if _, err := memberRecordLen(member); err != nil {
		if de, ok := err.(*DecodeError); ok {
			de.Offset += memberOff
			de.Reason = "in channel data member field at offset " + strconv.Itoa(memberOff) + ": " + de.Reason
		}
		return err
	}
	msg, p, err := cdField(body, p, "message", math.MaxInt32)
	if err != nil {
		return err
	}
	if p != len(body) {
		return badChannelData(p, strconv.Itoa(len(body)-p)+" trailing bytes after the message")
	}
	cd.options = Options(binary.BigEndian.Uint32(body))
	cd.timestamp = int64(binary.BigEndian.Uint64(body[4:]))
	cd.uniqueID, cd.member, cd.message = uid, member, msg
	return nil
}

// cdField reads the int32 length at p (which must be in bounds of the
// remaining bytes, a message length included) and returns the field, clipped,
// and the offset after it.
func cdField(body []byte, p int, name string, limit int) (field []byte, next int, err error) {
	if len(body)-p < 4 {
		return nil, 0, badChannelData(p, "truncated before the "+name+" length")
	}
	v := int32(binary.BigEndian.Uint32(body[p:]))
	if v < 0 {
		return nil, 0, badChannelData(p, "negative "+name+" length "+strconv.Itoa(int(v)))
	}
	if int64(v) > int64(limit) {
		return nil, 0, badChannelData(p, name+" length "+strconv.Itoa(int(v))+" over the limit of "+strconv.Itoa(limit))
	}
	start := p + 4
	if int64(v) > int64(len(body)-start) {
		return nil, 0, badChannelData(p, name+" length "+strconv.Itoa(int(v))+" runs past the end of the body ("+
			strconv.Itoa(len(body)-start)+" bytes left)")
	}
	end := start + int(v)
	return body[start:end:end], end, nil
}

// channelDataLen returns the body length of cd when encoded.
func channelDataLen(cd *channelData) int {
	return cdFixedLen + len(cd.uniqueID) + len(cd.member) + len(cd.message)
}

// appendChannelData appends cd encoded as a frame body (no frame markers) to
// dst and returns the extended slice. The caller guarantees a valid member
// record, a uniqueID of at most 256 bytes and a total that fits in an int32;
// nothing is checked here.
func appendChannelData(dst []byte, cd *channelData) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(cd.options))
	dst = binary.BigEndian.AppendUint64(dst, uint64(cd.timestamp))
	dst = appendBytes32(dst, cd.uniqueID)
	dst = appendBytes32(dst, cd.member)
	return appendBytes32(dst, cd.message)
}

// appendMessageHeader appends the start of a message frame to dst: START, the
// frame length, and the ChannelData fields up to and including the message
// length, for a message of msgLen bytes. The caller sends the result, then
// the msgLen message bytes, then frameEnd[:] (vectored I/O, no copy of the
// message); the three together equal
// appendFrame(nil, appendChannelData(nil, cd)). Preconditions as for
// appendChannelData; msgLen >= 0. It does not allocate when dst has room for
// 35 + len(uniqueID) + len(member) bytes.
func appendMessageHeader(dst []byte, opts Options, ts int64, uniqueID, member []byte, msgLen int) []byte {
	dst = append(dst, frameStart[:]...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(cdFixedLen+len(uniqueID)+len(member)+msgLen))
	dst = binary.BigEndian.AppendUint32(dst, uint32(opts))
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	dst = appendBytes32(dst, uniqueID)
	dst = appendBytes32(dst, member)
	return binary.BigEndian.AppendUint32(dst, uint32(msgLen))
}
