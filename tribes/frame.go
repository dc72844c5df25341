package tribes

import (
	"encoding/binary"
	"strconv"
)

// Framing of the Tribes TCP stream (spec §1): every unit on a connection is
//
//	START "FLT2002" | int32 N | N body bytes | END "TLF2003"
const (
	frameMarkerLen = 7
	frameHeaderLen = frameMarkerLen + 4 // START + length
	frameOverhead  = 18                 // START + length + END
)

var (
	frameStart = [frameMarkerLen]byte{'F', 'L', 'T', '2', '0', '0', '2'}
	// frameEnd is the END marker. A sender that writes a message with
	// vectored I/O ([appendMessageHeader], then the message) ends it with
	// frameEnd[:]. Never modify it.
	frameEnd = [frameMarkerLen]byte{'T', 'L', 'F', '2', '0', '0', '3'}
)

// appendFrame appends a complete frame carrying body to dst and returns the
// extended slice. The caller guarantees len(body) <= math.MaxInt32.
func appendFrame(dst, body []byte) []byte {
	dst = append(dst, frameStart[:]...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	dst = append(dst, body...)
	return append(dst, frameEnd[:]...)
}

// parseFrame inspects the front of buf, the bytes received so far on one
// connection.
//
//   - A complete frame at the front: body is its body and n (> 0) the number
//     of bytes to cut off buf. body aliases buf (its capacity is clipped, so
//     appending to it never overwrites the next frame); it is valid only as
//     long as the caller keeps buf's bytes in place.
//   - A prefix of a frame that looks valid so far: (nil, 0, nil); read more.
//   - Malformed input: a *[DecodeError] wrapping [ErrBadFrame] when START is
//     not at offset 0 (detected as soon as the bytes present differ from
//     START), the length is negative, or END is not at 11+N. When N exceeds
//     maxBody, a *[SizeError] (errors.Is(err, ErrMessageTooLarge)) is
//     returned from the 11-byte header alone, before the body arrives. The
//     stream cannot be resynchronised after an error: close the connection.
//
// maxBody is the largest accepted body length; it must be >= 3 (the ACK
// body) for ACKs to pass. parseFrame does not allocate except for errors.
func parseFrame(buf []byte, maxBody int) (body []byte, n int, err error) {
	if len(buf) < frameMarkerLen {
		for i, c := range buf {
			if c != frameStart[i] {
				return nil, 0, decodeErr("frame", i, "START marker FLT2002 missing", ErrBadFrame)
			}
		}
		return nil, 0, nil
	}
	if [frameMarkerLen]byte(buf) != frameStart {
		return nil, 0, decodeErr("frame", 0, "START marker FLT2002 missing", ErrBadFrame)
	}
	if len(buf) < frameHeaderLen {
		return nil, 0, nil
	}
	size := int32(binary.BigEndian.Uint32(buf[frameMarkerLen:]))
	if size < 0 {
		return nil, 0, decodeErr("frame", frameMarkerLen, "negative length "+strconv.Itoa(int(size)), ErrBadFrame)
	}
	if int64(size) > int64(maxBody) {
		return nil, 0, &SizeError{Size: int64(size), Limit: int64(maxBody)}
	}
	bodyLen := int(size)
	if len(buf)-frameOverhead < bodyLen {
		return nil, 0, nil
	}
	end := frameHeaderLen + bodyLen
	if [frameMarkerLen]byte(buf[end:]) != frameEnd {
		return nil, 0, decodeErr("frame", end, "END marker TLF2003 missing after "+strconv.Itoa(bodyLen)+"-byte body", ErrBadFrame)
	}
	return buf[frameHeaderLen:end:end], end + frameMarkerLen, nil
}
