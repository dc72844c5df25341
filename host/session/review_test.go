package session

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestNewIDLongerThanBuffer: IDBytes above 64 (the stack buffer) makes
// ids of that many random bytes.
func TestNewIDLongerThanBuffer(t *testing.T) {
	m, _ := newTestManager(t, Config{IDBytes: 65})
	id, err := m.NewID()
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 130 {
		t.Fatalf("id %q of %d characters, want 130", id, len(id))
	}
}

// TestIDsFitLimits: the ids a manager makes must fit MaxIDBytes, or no
// member decodes a delta or state carrying them.
func TestIDsFitLimits(t *testing.T) {
	m, err := NewStandardManager(Config{IDBytes: 200, JvmRoute: "n1", ExpireInterval: -1})
	if err != nil {
		return // refused: fine
	}
	defer m.Close()
	var tx Txn
	tx.Reset(m, m.Limits(), "", time.Now())
	if _, err := tx.Open(true); err != nil {
		t.Fatal(err)
	}
	enc, _ := tx.Delta().AppendBinary(nil)
	var d Delta
	if err := UnmarshalDelta(enc, &d, m.Limits()); err != nil {
		t.Fatalf("IDBytes 200 accepted, but its deltas do not decode within the manager's limits: %v", err)
	}
}

// TestRemoveKeyLimit: a key longer than MaxKeyBytes cannot be in a
// session; recording its removal would make the request's delta one that
// no member decodes (and lose the request's other changes there).
func TestRemoveKeyLimit(t *testing.T) {
	lim := Limits{MaxKeyBytes: 8}
	m, clock := newTestManager(t, Config{Limits: lim})
	var tx Txn
	tx.Reset(m, m.Limits(), "", clock.Now())
	if _, err := tx.Open(true); err != nil {
		t.Fatal(err)
	}
	tx.Set("a", []byte("1"))
	if err := tx.Remove(strings.Repeat("k", 9)); !errors.Is(err, ErrAttributeTooLarge) {
		t.Errorf("Remove of a 9-byte key with MaxKeyBytes 8: %v, want ErrAttributeTooLarge", err)
	}
	enc, _ := tx.Delta().AppendBinary(nil)
	var d Delta
	if err := UnmarshalDelta(enc, &d, m.Limits()); err != nil {
		t.Fatalf("the request's delta does not decode within the same limits: %v", err)
	}
}
