package session

import (
	"bytes"
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

// TestDeltaFitsEncodedSize: every request's delta must decode on the
// other members within the same limits: sets whose encoding exceeds
// MaxEncodedSize are refused when made.
func TestDeltaFitsEncodedSize(t *testing.T) {
	lim := Limits{MaxValueBytes: 100, MaxEncodedSize: 1000, MaxIDBytes: 64}
	m, clock := newTestManager(t, Config{Limits: lim})
	var tx Txn
	tx.Reset(m, m.Limits(), "", clock.Now())
	if _, err := tx.Open(true); err != nil {
		t.Fatal(err)
	}
	var err error
	for i := 0; i < 20 && err == nil; i++ {
		err = tx.Set(string(rune('a'+i)), bytes.Repeat([]byte{'v'}, 100))
	}
	if !errors.Is(err, ErrAttributeTooLarge) {
		t.Errorf("20 sets of 100 bytes with MaxEncodedSize 1000: %v, want ErrAttributeTooLarge", err)
	}
	enc, _ := tx.Delta().AppendBinary(nil)
	var d Delta
	if err := UnmarshalDelta(enc, &d, m.Limits()); err != nil {
		t.Fatalf("the request's delta does not decode within the same limits: %v", err)
	}
	if err := m.Commit(tx.Delta()); err != nil {
		t.Fatal(err)
	}
	s, _ := m.Find(tx.ID())
	st := s.Snapshot()
	b, _ := st.AppendBinary(nil)
	if _, err := UnmarshalState(b, m.Limits()); err != nil {
		t.Fatalf("the session does not decode within the same limits: %v", err)
	}
}

// TestSessionFitsEncodedSize: requests that each stay within the limits
// must not build a session whose state exceeds MaxEncodedSize (which no
// member would accept in a state transfer or a backup).
func TestSessionFitsEncodedSize(t *testing.T) {
	lim := Limits{MaxValueBytes: 600, MaxEncodedSize: 1000, MaxIDBytes: 64}
	m, clock := newTestManager(t, Config{Limits: lim})
	id, err := request(t, m, "", clock.Now(), func(tx *Txn) error {
		tx.Open(true)
		return tx.Set("a", bytes.Repeat([]byte{'a'}, 600))
	})
	if err != nil {
		t.Fatal(err)
	}
	var tx Txn
	tx.Reset(m, m.Limits(), id, clock.Now())
	tx.Open(false)
	if err := tx.Set("b", bytes.Repeat([]byte{'b'}, 600)); !errors.Is(err, ErrAttributeTooLarge) {
		t.Errorf("a second value of 600 bytes with MaxEncodedSize 1000: %v, want ErrAttributeTooLarge", err)
	}
	// Replacing the value keeps the session's size: allowed.
	if err := tx.Set("a", bytes.Repeat([]byte{'c'}, 600)); err != nil {
		t.Errorf("replacing a value of 600 bytes with another: %v", err)
	}
	if err := m.Commit(tx.Delta()); err != nil {
		t.Fatal(err)
	}
	s, _ := m.Find(id)
	st := s.Snapshot()
	b, _ := st.AppendBinary(nil)
	if _, err := UnmarshalState(b, m.Limits()); err != nil {
		t.Fatalf("the session does not decode within the same limits: %v", err)
	}
}

// TestConcurrentSetsKeepAttributeLimit: two requests that each add an
// attribute to a session one short of MaxAttributes must not leave it
// holding more than MaxAttributes (a state no member decodes).
func TestConcurrentSetsKeepAttributeLimit(t *testing.T) {
	m, clock := newTestManager(t, Config{Limits: Limits{MaxAttributes: 3}})
	id, err := request(t, m, "", clock.Now(), func(tx *Txn) error {
		tx.Open(true)
		tx.Set("a", nil)
		return tx.Set("b", nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	err1, err2 := concurrentSets(t, m, id, clock.Now(), nil)
	s, _ := m.Find(id)
	st := s.Snapshot()
	b, _ := st.AppendBinary(nil)
	if _, err := UnmarshalState(b, m.Limits()); err != nil {
		t.Fatalf("commits %v, %v left %d attributes %q (MaxAttributes 3): %v", err1, err2, s.Len(), s.Keys(), err)
	}
	if err1 != nil || !errors.Is(err2, ErrTooManyAttributes) {
		t.Fatalf("commits %v, %v; want nil, ErrTooManyAttributes", err1, err2)
	}
	// A request replacing attributes of the full session still commits.
	if _, err := request(t, m, id, clock.Now(), func(tx *Txn) error {
		tx.Open(false)
		tx.Remove("a")
		return tx.Set("z", nil)
	}); err != nil {
		t.Fatalf("swapping an attribute of the full session: %v", err)
	}
}

// concurrentSets opens session id in two requests that each set their own
// key ("x", "y") to value, then commits them in order.
func concurrentSets(t *testing.T, m *StandardManager, id string, now time.Time, value []byte) (err1, err2 error) {
	t.Helper()
	var t1, t2 Txn
	for i, tx := range []*Txn{&t1, &t2} {
		tx.Reset(m, m.Limits(), id, now)
		tx.Open(false)
		if err := tx.Set(string(rune('x'+i)), value); err != nil {
			t.Fatal(err)
		}
	}
	return m.Commit(t1.Delta()), m.Commit(t2.Delta())
}

// TestConcurrentSetsKeepEncodedSize: two requests that each add a value
// fitting the session alone must not together make it exceed
// MaxEncodedSize.
func TestConcurrentSetsKeepEncodedSize(t *testing.T) {
	m, clock := newTestManager(t, Config{Limits: Limits{MaxValueBytes: 480, MaxEncodedSize: 1000, MaxIDBytes: 64}})
	id, err := request(t, m, "", clock.Now(), func(tx *Txn) error { _, err := tx.Open(true); return err })
	if err != nil {
		t.Fatal(err)
	}
	err1, err2 := concurrentSets(t, m, id, clock.Now(), bytes.Repeat([]byte{'v'}, 480))
	s, _ := m.Find(id)
	st := s.Snapshot()
	b, _ := st.AppendBinary(nil)
	if _, err := UnmarshalState(b, m.Limits()); err != nil {
		t.Fatalf("commits %v, %v left a session of %d bytes: %v", err1, err2, len(b), err)
	}
	if err1 != nil || !errors.Is(err2, ErrAttributeTooLarge) {
		t.Fatalf("commits %v, %v; want nil, ErrAttributeTooLarge", err1, err2)
	}
}

// TestExpiryDuringRequest: as Tomcat's thisAccessedTime, a request that
// opened a session before its idle limit keeps it: the session does not
// expire under it (its writes are not lost), counted from the request's
// start.
func TestExpiryDuringRequest(t *testing.T) {
	m, clock := newTestManager(t, Config{MaxInactiveInterval: time.Minute})
	id, err := request(t, m, "", clock.Now(), func(tx *Txn) error { _, err := tx.Open(true); return err })
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(59 * time.Second)
	var tx Txn
	tx.Reset(m, m.Limits(), id, clock.Now())
	if ok, _ := tx.Open(false); !ok {
		t.Fatal("session not found within its limit")
	}
	clock.Add(2 * time.Second) // the request runs 2 s
	tx.Set("cart", []byte("1 item"))
	if n := m.Expire(clock.Now()); n != 0 {
		t.Errorf("the sweep 61 s after the last request expired %d sessions, one opened 2 s ago by a running request", n)
	}
	if err := m.Commit(tx.Delta()); err != nil {
		t.Fatalf("commit of the request: %v", err)
	}
	if got := func() time.Time { s, _ := m.Find(id); return s.LastAccessedTime() }(); !got.Equal(clock.Now().Add(-2 * time.Second)) {
		t.Fatalf("last accessed %v", got)
	}
}
