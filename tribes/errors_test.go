package tribes

import (
	"errors"
	"fmt"
	"testing"
)

func TestDecodeError(t *testing.T) {
	err := error(&DecodeError{What: "member record", Offset: 14, Reason: "END marker missing", Err: ErrBadMember})
	if got, want := err.Error(), "tribes: bad member record at offset 14: END marker missing"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("heartbeat from 10.0.0.1: %w", err)
	if !errors.Is(wrapped, ErrBadMember) || errors.Is(wrapped, ErrBadFrame) {
		t.Fatal("errors.Is does not follow Unwrap to the sentinel only")
	}
	var de *DecodeError
	if !errors.As(wrapped, &de) || de.Offset != 14 {
		t.Fatal("errors.As failed")
	}
}

func TestSizeError(t *testing.T) {
	err := error(&SizeError{Size: 70000, Limit: 65535})
	if got, want := err.Error(), "tribes: message too large: 70000 bytes, limit 65535"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("send: %w", err)
	if !errors.Is(wrapped, ErrMessageTooLarge) || errors.Is(wrapped, ErrBadFrame) {
		t.Fatal("errors.Is(ErrMessageTooLarge) failed")
	}
	var se *SizeError
	if !errors.As(wrapped, &se) || se.Limit != 65535 {
		t.Fatal("errors.As failed")
	}
}
