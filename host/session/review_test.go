package session

import (
	"testing"
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
