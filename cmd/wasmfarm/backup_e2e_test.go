package main

import (
	"encoding/json"
	"net/http"
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

// TestDrain drains a member behind the balancer: new clients go to the
// other member without an error, the drained member's sessions move on,
// and after it stops every session continues.
func TestDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes; skipped with -short")
	}
	const token = "drain-token"
	args := append(clusterArgs(t), "-manager", "backup", "-admin-token", token, "-log-level", "warn")
	a := startClusterNode(t, "jvm_a", args...)
	b := startClusterNode(t, "jvm_b", args...)
	waitFor(t, "A sees B", 5*time.Second, func() bool { return len(a.status(t).Members) == 1 })
	front := startBalance(t, a, b)
	var onA []string
	for len(onA) < 3 {
		j, _ := getThrough(t, front, "")
		if j.Node == "jvm_a" {
			onA = append(onA, j.Session)
		}
	}
	req, _ := http.NewRequest("POST", a.admin+"/drain", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("drain: %v %v", err, resp)
	}
	resp.Body.Close()
	if r, _ := http.Get(a.admin + "/ready"); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a draining member reports ready: %d", r.StatusCode)
	}
	for range 6 {
		if j, _ := getThrough(t, front, ""); j.Node != "jvm_b" {
			t.Fatalf("a new client went to the draining member: %+v", j)
		}
	}
	a.stop(t)
	for _, id := range onA {
		if j, _ := getThrough(t, front, id); j.Counter != 2 || j.Node != "jvm_b" {
			t.Fatalf("session %s after the drained member stopped: %+v", id, j)
		}
	}
}

// getThrough requests /counter/json through the balancer.
func getThrough(t *testing.T, front, id string) (counterState, int) {
	t.Helper()
	req, _ := http.NewRequest("GET", front+"/counter/json", nil)
	if id != "" {
		req.Header.Set("Cookie", "JSESSIONID="+id)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st counterState
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Fatalf("through the balancer: %s", resp.Status)
	}
	return st, resp.StatusCode
}
