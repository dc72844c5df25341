package monitor

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzSnapshotJSON feeds arbitrary bytes to Snapshot's decoder (a status
// document from another member is input like any other): it must not
// panic, and what it accepts must survive a second round trip unchanged.
// Callers bound the size of what they read (e.g. io.LimitReader).
func FuzzSnapshotJSON(f *testing.F) {
	for _, s := range []Snapshot{fakeSnapshot(0), standaloneSnapshot(), {}} {
		b, err := json.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"apps":[{"manager":{"kind":"delta","stateTransferNanos":-1}}],"replicationValve":{"timeNanos":1}}`))
	f.Add([]byte(`{"cluster":null,"deployer":{},"channel":{"interceptors":null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s1 Snapshot
		if err := json.Unmarshal(data, &s1); err != nil {
			return
		}
		b1, err := json.Marshal(s1)
		if err != nil {
			return // e.g. a time beyond year 9999, which Go reads but does not write
		}
		var s2 Snapshot
		if err := json.Unmarshal(b1, &s2); err != nil {
			t.Fatalf("re-reading %s: %v", b1, err)
		}
		b2, err := json.Marshal(s2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("round trip changed:\n%s\n%s", b1, b2)
		}
	})
}
