package session

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type recListener struct {
	mu        sync.Mutex
	created   []string
	destroyed []string
}

func (l *recListener) SessionCreated(s *Session) {
	l.mu.Lock()
	l.created = append(l.created, s.ID())
	l.mu.Unlock()
}

func (l *recListener) SessionDestroyed(s *Session, expired bool) {
	l.mu.Lock()
	l.destroyed = append(l.destroyed, fmt.Sprintf("%s expired=%v", s.ID(), expired))
	l.mu.Unlock()
}

func newTestManager(t testing.TB, cfg Config) (*StandardManager, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.UnixMilli(1_700_000_000_000)}
	cfg.Now = clock.Now
	if cfg.ExpireInterval == 0 {
		cfg.ExpireInterval = -1
	}
	m, err := NewStandardManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, clock
}

// request runs fn in a Txn and commits its delta, as the host does.
func request(t *testing.T, m *StandardManager, id string, now time.Time, fn func(tx *Txn) error) (string, error) {
	t.Helper()
	var tx Txn
	tx.Reset(m, m.Limits(), id, now)
	if err := fn(&tx); err != nil {
		return "", err
	}
	if d := tx.Delta(); d != nil {
		if err := m.Commit(d); err != nil {
			return "", err
		}
		return d.FinalID(), nil
	}
	return "", nil
}

func TestIDFormat(t *testing.T) {
	tests := []struct {
		name, route string
		re          string
	}{
		{"no route", "", `^[0-9A-F]{32}$`},
		{"route", "jvm_a", `^[0-9A-F]{32}\.jvm_a$`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newTestManager(t, Config{JvmRoute: tc.route})
			seen := map[string]bool{}
			for range 100 {
				id, err := m.NewID()
				if err != nil {
					t.Fatal(err)
				}
				if !regexp.MustCompile(tc.re).MatchString(id) {
					t.Fatalf("id %q does not match %s", id, tc.re)
				}
				if seen[id] {
					t.Fatalf("duplicate id %q", id)
				}
				seen[id] = true
			}
		})
	}
}

func TestBadRoute(t *testing.T) {
	if _, err := NewStandardManager(Config{JvmRoute: "a.b"}); err == nil {
		t.Fatal("route with a dot accepted")
	}
}

func TestLifecycle(t *testing.T) {
	l := &recListener{}
	m, clock := newTestManager(t, Config{JvmRoute: "n1", Listener: l})

	id, err := request(t, m, "", clock.Now(), func(tx *Txn) error {
		if ok, err := tx.Open(true); !ok || err != nil {
			return fmt.Errorf("open: %v %v", ok, err)
		}
		if !tx.IsNew() {
			t.Error("new session not new")
		}
		return tx.Set("counter", []byte("1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	s, ok := m.Find(id)
	if !ok {
		t.Fatal("committed session not found")
	}
	if v, _ := s.Get("counter"); string(v) != "1" {
		t.Fatalf("counter = %q", v)
	}

	// A failed request changes nothing: its delta is never committed.
	var tx Txn
	tx.Reset(m, m.Limits(), id, clock.Now())
	tx.Open(false)
	tx.Set("counter", []byte("99"))
	if v, _ := tx.Get("counter"); string(v) != "99" {
		t.Fatalf("read-your-writes: %q", v)
	}
	if v, _ := s.Get("counter"); string(v) != "1" {
		t.Fatalf("uncommitted write visible: %q", v)
	}

	// Change id, then invalidate.
	clock.Add(time.Minute)
	newID, err := request(t, m, id, clock.Now(), func(tx *Txn) error {
		tx.Open(false)
		if tx.IsNew() {
			t.Error("existing session reported new")
		}
		_, err := tx.ChangeID()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if newID == id {
		t.Fatal("id did not change")
	}
	if _, ok := m.Find(id); ok {
		t.Fatal("old id still found")
	}
	s2, ok := m.Find(newID)
	if !ok || s2 != s {
		t.Fatal("new id does not find the same session")
	}
	if got := s.LastAccessedTime(); !got.Equal(clock.Now()) {
		t.Fatalf("accessed %v, want %v", got, clock.Now())
	}
	if _, err := request(t, m, newID, clock.Now(), func(tx *Txn) error {
		tx.Open(false)
		return tx.Invalidate()
	}); err != nil {
		t.Fatal(err)
	}
	if m.Len() != 0 || s.Valid() {
		t.Fatalf("after invalidate: len %d valid %v", m.Len(), s.Valid())
	}
	if len(l.created) != 1 || len(l.destroyed) != 1 || l.destroyed[0] != newID+" expired=false" {
		t.Fatalf("listener: %v %v", l.created, l.destroyed)
	}
}

func TestExpiry(t *testing.T) {
	l := &recListener{}
	m, clock := newTestManager(t, Config{MaxInactiveInterval: time.Minute, Listener: l})
	id, err := request(t, m, "", clock.Now(), func(tx *Txn) error { _, err := tx.Open(true); return err })
	if err != nil {
		t.Fatal(err)
	}
	keep, _ := request(t, m, "", clock.Now(), func(tx *Txn) error {
		tx.Open(true)
		return tx.SetMaxInactiveInterval(-1)
	})
	clock.Add(59 * time.Second)
	if _, ok := m.Find(id); !ok {
		t.Fatal("expired too early")
	}
	clock.Add(2 * time.Second)
	if n := m.Expire(clock.Now()); n != 1 {
		t.Fatalf("expired %d sessions, want 1", n)
	}
	if _, ok := m.Find(id); ok {
		t.Fatal("expired session found")
	}
	if _, ok := m.Find(keep); !ok {
		t.Fatal("never-expiring session expired")
	}
	if len(l.destroyed) != 1 || l.destroyed[0] != id+" expired=true" {
		t.Fatalf("destroyed: %v", l.destroyed)
	}
}

func TestBackgroundExpiry(t *testing.T) {
	m, err := NewStandardManager(Config{MaxInactiveInterval: time.Second, ExpireInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var tx Txn
	tx.Reset(m, m.Limits(), "", time.Now().Add(-2*time.Second))
	tx.Open(true)
	if err := m.Commit(tx.Delta()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("background expiry did not remove an idle session")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMaxActiveSessions(t *testing.T) {
	m, clock := newTestManager(t, Config{MaxActiveSessions: 2})
	for i := range 3 {
		_, err := request(t, m, "", clock.Now(), func(tx *Txn) error { _, err := tx.Open(true); return err })
		if i < 2 && err != nil {
			t.Fatal(err)
		}
		if i == 2 && !errors.Is(err, ErrTooManySessions) {
			t.Fatalf("third session: %v, want ErrTooManySessions", err)
		}
	}
}

func TestTxnKeysAndLimits(t *testing.T) {
	m, clock := newTestManager(t, Config{Limits: Limits{MaxValueBytes: 8, MaxAttributes: 3}})
	id, _ := request(t, m, "", clock.Now(), func(tx *Txn) error {
		tx.Open(true)
		tx.Set("b", []byte("2"))
		tx.Set("a", []byte("1"))
		return nil
	})
	var tx Txn
	tx.Reset(m, m.Limits(), id, clock.Now())
	tx.Open(false)
	tx.Remove("a")
	tx.Set("c", []byte("3"))
	if got := fmt.Sprint(tx.Keys()); got != "[b c]" {
		t.Fatalf("keys %s", got)
	}
	if err := tx.Set("d", []byte("123456789")); !errors.Is(err, ErrAttributeTooLarge) {
		t.Fatalf("oversized value: %v", err)
	}
	if err := tx.Set("d", []byte("4")); err != nil {
		t.Fatalf("third attribute: %v", err)
	}
	if err := tx.Set("e", []byte("5")); !errors.Is(err, ErrTooManyAttributes) {
		t.Fatalf("fourth attribute: %v", err)
	}
	if err := m.Commit(tx.Delta()); err != nil {
		t.Fatal(err)
	}
	s, _ := m.Find(id)
	if got := fmt.Sprint(s.Keys()); got != "[b c d]" {
		t.Fatalf("committed keys %s", got)
	}
}

func TestNoSessionWithoutOpen(t *testing.T) {
	m, clock := newTestManager(t, Config{})
	var tx Txn
	tx.Reset(m, m.Limits(), "NOPE", clock.Now())
	if tx.Exists() || tx.Delta() != nil {
		t.Fatal("unknown id opened a session")
	}
	if err := tx.Set("a", nil); !errors.Is(err, ErrNoSession) {
		t.Fatalf("set without session: %v", err)
	}
}

func TestCodecRoundTrip(t *testing.T) {
	st := State{ID: "ABC.n1", Created: 1, Accessed: 2, MaxInactive: 1800, Attrs: []Attr{{"a", []byte("x")}, {"b", []byte{0, 1, 2}}}}
	b, _ := st.AppendBinary(nil)
	got, err := UnmarshalState(b, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(st) {
		t.Fatalf("got %+v, want %+v", got, st)
	}
	d := Delta{ID: "A", NewID: "B", Created: true, CreationTime: 5, Accessed: 6, MaxInactive: -1, MaxInactiveSet: true, Invalidated: true,
		Ops: []Op{{OpSet, "k", []byte("v")}, {OpRemove, "k", nil}}}
	b, _ = d.AppendBinary(nil)
	var d2 Delta
	if err := UnmarshalDelta(b, &d2, Limits{}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(d2) != fmt.Sprint(d) {
		t.Fatalf("got %+v, want %+v", d2, d)
	}
	// Limits are enforced.
	if err := UnmarshalDelta(b, &d2, Limits{MaxKeyBytes: 1, MaxValueBytes: 0, MaxAttributes: 1}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("over limits: %v", err)
	}
}

func FuzzUnmarshalState(f *testing.F) {
	st := State{ID: "ABC.n1", Created: 1, Accessed: 2, MaxInactive: 1800, Attrs: []Attr{{"a", []byte("x")}}}
	b, _ := st.AppendBinary(nil)
	f.Add(b)
	f.Add([]byte{1})
	lim := Limits{MaxKeyBytes: 64, MaxValueBytes: 1024, MaxAttributes: 16, MaxIDBytes: 64, MaxEncodedSize: 4096}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := UnmarshalState(b, lim)
		if err != nil {
			return
		}
		again, _ := st.AppendBinary(nil)
		st2, err := UnmarshalState(again, lim)
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		again2, _ := st2.AppendBinary(nil)
		if !bytes.Equal(again, again2) {
			t.Fatal("encoding not stable")
		}
		st.Session() // must not panic
	})
}

func FuzzUnmarshalDelta(f *testing.F) {
	d := Delta{ID: "A", NewID: "B", Created: true, Accessed: 6, MaxInactiveSet: true, Ops: []Op{{OpSet, "k", []byte("v")}, {OpRemove, "k", nil}}}
	b, _ := d.AppendBinary(nil)
	f.Add(b)
	f.Add([]byte{1, 0, 0, 0, 0})
	lim := Limits{MaxKeyBytes: 64, MaxValueBytes: 1024, MaxAttributes: 16, MaxIDBytes: 64, MaxEncodedSize: 4096}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Delta
		if err := UnmarshalDelta(b, &d, lim); err != nil {
			return
		}
		again, _ := d.AppendBinary(nil)
		var d2 Delta
		if err := UnmarshalDelta(again, &d2, lim); err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		again2, _ := d2.AppendBinary(nil)
		if !bytes.Equal(again, again2) {
			t.Fatal("encoding not stable")
		}
		s := (&State{ID: "A"}).Session()
		d.Apply(s) // must not panic
	})
}

// TestSessionOverhead measures the memory of 10,000 idle sessions holding
// one small attribute and checks the overhead beyond attribute bytes stays
// under 300 bytes per session (the target).
func TestSessionOverhead(t *testing.T) {
	const n = 10000
	m, clock := newTestManager(t, Config{JvmRoute: "jvm_a"})
	attrBytes := len("counter") + len("12345")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var tx Txn
	for range n {
		tx.Reset(m, m.Limits(), "", clock.Now())
		tx.Open(true)
		tx.Set("counter", []byte("12345"))
		if err := m.Commit(tx.Delta()); err != nil {
			t.Fatal(err)
		}
	}
	tx = Txn{}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc)/n - float64(attrBytes)
	t.Logf("%d idle sessions: %.0f bytes of overhead per session beyond %d attribute bytes (id %d bytes included)", n, per, attrBytes, len("0123456789ABCDEF0123456789ABCDEF.jvm_a"))
	if per > 300 {
		t.Errorf("overhead %.0f bytes per session, want <= 300", per)
	}
	runtime.KeepAlive(m)
}

func BenchmarkCodec(b *testing.B) {
	d := Delta{ID: "0123456789ABCDEF0123456789ABCDEF.jvm_a", Accessed: 1_700_000_000_000, Ops: []Op{{OpSet, "counter", []byte("12345")}}}
	b.Run("AppendDelta", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 256)
		for b.Loop() {
			buf, _ = d.AppendBinary(buf[:0])
		}
	})
	enc, _ := d.AppendBinary(nil)
	b.Run("UnmarshalDelta", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		var d2 Delta
		for b.Loop() {
			if err := UnmarshalDelta(enc, &d2, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	st := State{ID: d.ID, Created: 1, Accessed: 2, MaxInactive: 1800, Attrs: []Attr{{"counter", []byte("12345")}, {"cart", make([]byte, 1024)}}}
	senc, _ := st.AppendBinary(nil)
	b.Run("UnmarshalState", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(senc)))
		for b.Loop() {
			if _, err := UnmarshalState(senc, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestAppendDeltaNoAlloc(t *testing.T) {
	d := Delta{ID: "0123456789ABCDEF.jvm_a", Accessed: 1, Ops: []Op{{OpSet, "counter", []byte("1")}}}
	buf := make([]byte, 0, 256)
	r := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = d.AppendBinary(buf[:0])
		}
	})
	if r.AllocsPerOp() != 0 {
		t.Fatalf("AppendBinary allocates %d times per op", r.AllocsPerOp())
	}
}

// TestTxnReuseKeepsCommittedValues: a Txn reused for the next request
// writes its values into the buffer the previous request's delta used;
// what the previous request committed must not change with them, and a
// repeated request allocates only the session's own copy of the value.
func TestTxnReuseKeepsCommittedValues(t *testing.T) {
	m, clock := newTestManager(t, Config{})
	var tx Txn
	commit := func(id, value string) string {
		tx.Reset(m, m.Limits(), id, clock.Now())
		if ok, err := tx.Open(true); !ok || err != nil {
			t.Fatalf("open: %v %v", ok, err)
		}
		if err := tx.Set("a", []byte(value)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Set("b", []byte(value+value)); err != nil {
			t.Fatal(err)
		}
		d := tx.Delta()
		if err := m.Commit(d); err != nil {
			t.Fatal(err)
		}
		return d.FinalID()
	}
	first := commit("", "one")
	second := commit("", "TWO")
	for _, c := range []struct{ id, a, b string }{{first, "one", "oneone"}, {second, "TWO", "TWOTWO"}} {
		s, ok := m.Find(c.id)
		if !ok {
			t.Fatalf("session %s not found", c.id)
		}
		a, _ := s.Get("a")
		b, _ := s.Get("b")
		if string(a) != c.a || string(b) != c.b {
			t.Errorf("session %s: a=%q b=%q, want %q %q", c.id, a, b, c.a, c.b)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { commit(first, "one") }); allocs > 2 {
		t.Errorf("%v allocations per request setting two attributes, want at most 2 (the session's copies)", allocs)
	}
}

// BenchmarkApplyRemote measures a member applying a counter delta that
// another member sent: decoding it and applying it to the session, with
// UnmarshalDelta and ApplyRemote, and with ApplyEncoded.
func BenchmarkApplyRemote(b *testing.B) {
	m, _ := newTestManager(b, Config{})
	d := Delta{ID: "0123456789ABCDEF0123456789ABCDEF.jvm_a", Created: true, CreationTime: 1, Accessed: 1,
		Ops: []Op{{OpSet, "counter", []byte("12345")}}}
	enc, _ := d.AppendBinary(nil)
	if _, err := m.ApplyEncoded(enc, Limits{}); err != nil {
		b.Fatal(err)
	}
	d.Created = false
	enc, _ = d.AppendBinary(enc[:0])
	b.Run("Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			var d2 Delta
			if err := UnmarshalDelta(enc, &d2, Limits{}); err != nil {
				b.Fatal(err)
			}
			if _, err := m.ApplyRemote(&d2); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Encoded", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := m.ApplyEncoded(enc, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// dump encodes every session of m, ordered by id: a deep copy of m's
// state to compare.
func dump(m *StandardManager) []byte {
	var all []State
	m.Range(func(s *Session) bool { all = append(all, s.Snapshot()); return true })
	slices.SortFunc(all, func(a, b State) int { return strings.Compare(a.ID, b.ID) })
	var out []byte
	for _, st := range all {
		out, _ = st.AppendBinary(out)
	}
	return out
}

// FuzzApplyEncoded: ApplyEncoded does what UnmarshalDelta and ApplyRemote
// do, and what it stored stays the same when the caller reuses the bytes
// (it keeps copies, nothing of b).
func FuzzApplyEncoded(f *testing.F) {
	for _, d := range []Delta{
		{ID: "A", Accessed: 7, Ops: []Op{{OpSet, "k", []byte("v2")}, {OpSet, "new", []byte("x")}}},
		{ID: "A", NewID: "B", Accessed: 8, MaxInactiveSet: true, MaxInactive: 60, Ops: []Op{{OpRemove, "k", nil}}},
		{ID: "C", Created: true, CreationTime: 5, Accessed: 6, Ops: []Op{{OpSet, "k", []byte("v")}, {OpSet, "e", []byte{}}}},
		{ID: "A", Invalidated: true},
		{ID: "gone", Accessed: 9},
	} {
		b, _ := d.AppendBinary(nil)
		f.Add(b)
	}
	f.Add([]byte{1, 0, 0, 0, 0})
	lim := Limits{MaxKeyBytes: 64, MaxValueBytes: 1024, MaxAttributes: 16, MaxIDBytes: 64, MaxEncodedSize: 4096}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ms [2]*StandardManager
		for i := range ms {
			ms[i], _ = newTestManager(t, Config{Limits: lim})
			seed := Delta{ID: "A", Created: true, CreationTime: 1, Accessed: 1, Ops: []Op{{OpSet, "k", []byte("v1")}}}
			if _, err := ms[i].ApplyRemote(&seed); err != nil {
				t.Fatal(err)
			}
		}
		var d Delta
		var want ReplicaEvent
		wantErr := UnmarshalDelta(b, &d, lim)
		if wantErr == nil {
			want, wantErr = ms[0].ApplyRemote(&d)
		}
		b2 := slices.Clone(b)
		got, err := ms[1].ApplyEncoded(b2, lim)
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
			t.Fatalf("ApplyEncoded: %v; UnmarshalDelta and ApplyRemote: %v", err, wantErr)
		}
		if (got.Created == nil) != (want.Created == nil) || (got.Destroyed == nil) != (want.Destroyed == nil) ||
			got.OldID != want.OldID || got.Accessed != want.Accessed {
			t.Fatalf("event %+v, want %+v", got, want)
		}
		after := dump(ms[1])
		if !bytes.Equal(after, dump(ms[0])) {
			t.Fatalf("ApplyEncoded left\n%q\nApplyRemote\n%q", after, dump(ms[0]))
		}
		for i := range b2 {
			b2[i] = '#'
		}
		if again := dump(ms[1]); !bytes.Equal(again, after) {
			t.Fatalf("the sessions changed with the bytes of the message:\n%q\nbefore:\n%q", again, after)
		}
	})
}

// TestApplyEncodedAllocs: an update of a session the member holds
// allocates only the copy of the value it sets.
func TestApplyEncodedAllocs(t *testing.T) {
	m, _ := newTestManager(t, Config{})
	d := Delta{ID: "0123456789ABCDEF.jvm_a", Created: true, CreationTime: 1, Accessed: 1, Ops: []Op{{OpSet, "counter", []byte("1")}}}
	enc, _ := d.AppendBinary(nil)
	if _, err := m.ApplyEncoded(enc, Limits{}); err != nil {
		t.Fatal(err)
	}
	d.Created = false
	enc, _ = d.AppendBinary(enc[:0])
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := m.ApplyEncoded(enc, Limits{}); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Fatalf("ApplyEncoded allocates %v times per update, want 1 (the value)", n)
	}
}

// TestReplicaUntilServedHere: a session that came from another member
// (ApplyRemote, ApplyEncoded, Put) is a replica, which expires after twice
// its idle limit, until a request commits it here; a change from another
// member makes it a replica again.
func TestReplicaUntilServedHere(t *testing.T) {
	m, clock := newTestManager(t, Config{MaxInactiveInterval: time.Minute})
	now := clock.Now().UnixMilli()
	if _, err := m.ApplyRemote(&Delta{ID: "R.a", Created: true, CreationTime: now, Accessed: now}); err != nil {
		t.Fatal(err)
	}
	enc, _ := (&Delta{ID: "E.a", Created: true, CreationTime: now, Accessed: now}).AppendBinary(nil)
	if _, err := m.ApplyEncoded(enc, Limits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Put(State{ID: "P.a", Created: now, Accessed: now, MaxInactive: 60}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"R.a", "E.a", "P.a"} {
		if s, _ := m.Peek(id); !s.Replica() {
			t.Fatalf("%s is not a replica", id)
		}
	}
	if _, err := request(t, m, "R.a", clock.Now(), func(tx *Txn) error { tx.Open(false); return nil }); err != nil {
		t.Fatal(err)
	}
	if s, _ := m.Peek("R.a"); s.Replica() {
		t.Fatal("R.a is still a replica after a request committed it here")
	}
	clock.Add(90 * time.Second)
	if n := m.Expire(clock.Now()); n != 1 {
		t.Fatalf("after 1.5 limits: %d expired, want 1 (R.a, served here)", n)
	}
	if m.Len() != 2 {
		t.Fatalf("%d sessions left, want the replicas E.a and P.a", m.Len())
	}
	// Another member served E.a: a replica again.
	if _, err := request(t, m, "E.a", clock.Now(), func(tx *Txn) error { tx.Open(false); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ApplyRemote(&Delta{ID: "E.a", Accessed: clock.Now().UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	clock.Add(31 * time.Second)
	if n := m.Expire(clock.Now()); n != 1 {
		t.Fatalf("after 2 limits and 1 s: %d expired, want 1 (P.a)", n)
	}
	clock.Add(60 * time.Second)
	if _, ok := m.Find("E.a"); !ok {
		t.Fatal("E.a expired 91 s after another member's request: it is a replica")
	}
}

// replicaListener records, for each expired session, whether it expired
// as a replica.
type replicaListener struct {
	mu  sync.Mutex
	got []string
}

func (l *replicaListener) SessionCreated(*Session) {}

func (l *replicaListener) SessionDestroyed(s *Session, expired bool) {
	l.mu.Lock()
	l.got = append(l.got, fmt.Sprintf("%s expired=%v replica=%v", s.ID(), expired, s.Replica()))
	l.mu.Unlock()
}

// TestExpiredReplicaIsReported: the listener of an expiry learns whether
// the session expired as a replica, as Config.Backup decided when it has
// one, so that a replicating manager does not tell the others.
func TestExpiredReplicaIsReported(t *testing.T) {
	l := &replicaListener{}
	m, clock := newTestManager(t, Config{MaxInactiveInterval: time.Minute, Listener: l,
		Backup: func(id string) bool { return strings.HasSuffix(id, ".b") }})
	now := clock.Now().UnixMilli()
	for _, id := range []string{"X.a", "Y.b"} {
		if _, err := m.ApplyRemote(&Delta{ID: id, Created: true, CreationTime: now, Accessed: now}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Add(90 * time.Second)
	m.Expire(clock.Now())
	clock.Add(60 * time.Second)
	if _, ok := m.Find("Y.b"); ok {
		t.Fatal("Y.b outlived twice its limit")
	}
	want := []string{"X.a expired=true replica=false", "Y.b expired=true replica=true"}
	if !slices.Equal(l.got, want) {
		t.Fatalf("destroyed %q, want %q", l.got, want)
	}
}

// TestCommitFollowsIDChange: a request's delta applies to the session it
// opened though another request changed its id meanwhile; the delta then
// carries the change, which a member holding the session under either id
// applies.
func TestCommitFollowsIDChange(t *testing.T) {
	m, clock := newTestManager(t, Config{JvmRoute: "a"})
	id, err := request(t, m, "", clock.Now(), func(tx *Txn) error { _, err := tx.Open(true); return err })
	if err != nil {
		t.Fatal(err)
	}
	// Two members' copies of the session: one under the old id, one that
	// got the other request's id change first.
	oldCopy, _ := newTestManager(t, Config{})
	newCopy, _ := newTestManager(t, Config{})
	st := State{ID: id, Created: clock.Now().UnixMilli(), Accessed: clock.Now().UnixMilli(), MaxInactive: 1800}
	oldCopy.Put(st)
	var tx Txn
	tx.Reset(m, m.Limits(), id, clock.Now())
	tx.Open(false)
	tx.Set("cart", []byte("3 items"))
	newID, err := m.ChangeID(id) // another request's
	if err != nil {
		t.Fatal(err)
	}
	st.ID = newID
	newCopy.Put(st)
	d := tx.Delta()
	if err := m.Commit(d); err != nil {
		t.Fatalf("commit after the id changed: %v", err)
	}
	if d.ID != id || d.NewID != newID {
		t.Fatalf("delta ids %q → %q, want %q → %q", d.ID, d.NewID, id, newID)
	}
	for name, mm := range map[string]*StandardManager{"local": m, "old copy": oldCopy, "new copy": newCopy} {
		if name != "local" {
			enc, _ := d.AppendBinary(nil)
			if _, err := mm.ApplyEncoded(enc, Limits{}); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		s, ok := mm.Peek(newID)
		if !ok || mm.Len() != 1 {
			t.Fatalf("%s: %s held %v, %d sessions", name, newID, ok, mm.Len())
		}
		if v, _ := s.Get("cart"); string(v) != "3 items" {
			t.Fatalf("%s: cart %q", name, v)
		}
	}
	// A delta whose session is gone still fails.
	tx.Reset(m, m.Limits(), newID, clock.Now())
	tx.Open(false)
	m.Invalidate(newID)
	if err := m.Commit(tx.Delta()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("commit on an invalidated session: %v, want ErrNotFound", err)
	}
}
