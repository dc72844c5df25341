package main

import (
	"testing"
	"time"
)

// TestBackupManagerTwoFailures runs three members with the BackupManager:
// sessions created on A survive A's death and then the death of the
// member that took them over.
func TestBackupManagerTwoFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes; skipped with -short")
	}
	args := append(clusterArgs(t), "-manager", "backup", "-log-level", "warn")
	a := startClusterNode(t, "jvm_a", args...)
	b := startClusterNode(t, "jvm_b", args...)
	c := startClusterNode(t, "jvm_c", args...)
	waitFor(t, "A sees both members", 5*time.Second, func() bool {
		return len(a.status(t).Members) == 2
	})
	const n = 10
	ids := make([]string, n)
	for i := range ids {
		_, ids[i] = a.counter(t, "json", "")
		a.counter(t, "json", ids[i])
	}
	// Each session lives on A and on exactly one backup (mapSendOptions 6:
	// the response waited for it).
	if got := b.activeSessions(t) + c.activeSessions(t); got != n {
		t.Fatalf("%d backup copies on B and C, want %d", got, n)
	}

	a.kill(t) // first failure: the backups are promoted
	for i, id := range ids {
		j, set := b.counter(t, "json", id)
		if j.Counter != 3 {
			t.Fatalf("session %d on B after A died: %+v", i, j)
		}
		ids[i] = set // B took it over: .jvm_b
	}
	waitFor(t, "C backs up every session B now serves", 5*time.Second, func() bool { return c.activeSessions(t) == n })

	b.kill(t) // second failure: C holds every session
	for i, id := range ids {
		if j, _ := c.counter(t, "json", id); j.Counter != 4 {
			t.Fatalf("session %d on C after B died: %+v", i, j)
		}
	}
}
