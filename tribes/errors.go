package tribes

import (
	"errors"
	"strconv"
)

// Sentinel errors of the wire codec. Decoders never return them bare: they
// come wrapped in a [*DecodeError] (which says where and why) or, for
// [ErrMessageTooLarge], as a [*SizeError]. Test with [errors.Is].
var (
	// ErrMessageTooLarge occurs when a frame announces a body larger than the
	// configured limit, when a gzip message decompresses to more than
	// [Gzip.MaxSize], or when a member record would exceed [MaxMemberSize].
	// The concrete error is a [*SizeError].
	ErrMessageTooLarge = errors.New("tribes: message too large")

	// ErrBadFrame occurs when a byte stream does not follow the Tribes framing
	// (START marker not at offset 0, negative length, END marker not where the
	// length says). The connection it came from cannot be resynchronised.
	ErrBadFrame = errors.New("tribes: malformed frame")

	// ErrBadMember occurs when a member record (a heartbeat, or the member
	// field of a message) is malformed, and when a [Member] that cannot be
	// encoded (no valid host, ports out of range) is marshalled.
	ErrBadMember = errors.New("tribes: malformed member record")

	// ErrBadChannelData occurs when a frame body is not a valid ChannelData
	// record (lengths negative or past the end, trailing bytes).
	ErrBadChannelData = errors.New("tribes: malformed channel data")

	// ErrBadGzip occurs when a message flagged as gzip-compressed is not a
	// valid gzip stream.
	ErrBadGzip = errors.New("tribes: malformed gzip data")
)

// DecodeError describes malformed input found by a decoder.
//
// What names the structure ("frame", "member record", "channel data",
// "gzip data"), Offset is the byte offset of the offending field in the
// decoder's input (for the member field of a ChannelData, in the ChannelData
// body), Reason says what is wrong, and Err is one of the package's
// sentinel errors, returned by Unwrap:
//
//	var de *tribes.DecodeError
//	if errors.As(err, &de) && errors.Is(err, tribes.ErrBadMember) {
//		log.Warn("bad heartbeat", "offset", de.Offset, "reason", de.Reason)
//	}
type DecodeError struct {
	What   string
	Offset int
	Reason string
	Err    error
}

// Error returns, for example,
// "tribes: bad member record at offset 14: END marker missing".
func (e *DecodeError) Error() string {
	return "tribes: bad " + e.What + " at offset " + strconv.Itoa(e.Offset) + ": " + e.Reason
}

// Unwrap returns the sentinel error (ErrBadFrame, ErrBadMember, ...).
func (e *DecodeError) Unwrap() error { return e.Err }

// SizeError reports a size over a limit. errors.Is(err, ErrMessageTooLarge)
// is true for it. Size is the announced or encoded size when known; when a
// decompressor stops early it is a lower bound (Limit+1 or a bit more).
type SizeError struct {
	Size, Limit int64
}

// Error returns, for example,
// "tribes: message too large: 70000 bytes, limit 65535".
func (e *SizeError) Error() string {
	return "tribes: message too large: " + strconv.FormatInt(e.Size, 10) +
		" bytes, limit " + strconv.FormatInt(e.Limit, 10)
}

// Is reports whether target is [ErrMessageTooLarge].
func (e *SizeError) Is(target error) bool { return target == ErrMessageTooLarge }

// decodeErr builds a *DecodeError. Kept small so that error paths do not
// inflate the callers' hot paths.
func decodeErr(what string, off int, reason string, sentinel error) error {
	return &DecodeError{What: what, Offset: off, Reason: reason, Err: sentinel}
}
