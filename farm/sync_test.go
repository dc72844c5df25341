package farm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
)

// TestSyncColdStartKeepsModules restarts a whole cluster: every member
// has shop.wasm in its deploy dir and none has synced yet. No member may
// take another's (empty, not yet synced) list for the cluster's: each
// keeps its module and serves it.
func TestSyncColdStartKeepsModules(t *testing.T) {
	mod := counterModule(0, 1)
	_, ms := newCluster(t, 2, func(_ string, c *Config) {
		os.MkdirAll(c.DeployDir, 0o755)
		os.WriteFile(filepath.Join(c.DeployDir, "shop.wasm"), mod, 0o644)
	})
	for _, m := range ms {
		if err := m.d.Sync(t.Context()); err != nil {
			t.Fatalf("%s: sync: %v", m.name, err)
		}
	}
	for _, m := range ms {
		if got := m.digestAt("/shop"); got != hexDigest(mod) {
			t.Errorf("%s: serves /shop %q after Sync, want %.12s", m.name, got, hexDigest(mod))
		}
		if _, err := os.Stat(filepath.Join(m.d.cfg.DeployDir, "shop.wasm")); err != nil {
			t.Errorf("%s: module gone from the deploy dir: %v", m.name, err)
		}
	}
}

// TestSyncSkipsUnsyncedMember: a joiner asks the oldest member first; that
// one has started but not synced (it serves nothing yet), so the joiner
// asks the next, synced, member and keeps the module the cluster farms.
func TestSyncSkipsUnsyncedMember(t *testing.T) {
	net := tribestest.NewNetwork()
	mod := counterModule(0, 1)
	withShop := func(c *Config) {
		os.MkdirAll(c.DeployDir, 0o755)
		os.WriteFile(filepath.Join(c.DeployDir, "shop.wasm"), mod, 0o644)
	}
	a := newMember(t, net, "a", nil) // restarting: not synced yet
	b := newMember(t, net, "b", withShop)
	await(t, 1, a, b)
	if err := b.d.Sync(t.Context()); err != nil { // a is not synced: b keeps its module
		t.Fatalf("b: sync: %v", err)
	}
	c := newMember(t, net, "c", withShop)
	await(t, 2, a, b, c)
	if first := c.ch.Members()[0]; first.Key() != a.ch.LocalMember().Key() {
		t.Fatalf("c asks %v first, want a", first)
	}
	if err := c.d.Sync(t.Context()); err != nil {
		t.Fatalf("c: sync: %v", err)
	}
	for _, m := range []*member{b, c} {
		if got := m.digestAt("/shop"); got != hexDigest(mod) {
			t.Errorf("%s: serves /shop %q after Sync, want %.12s", m.name, got, hexDigest(mod))
		}
		if _, err := os.Stat(filepath.Join(m.d.cfg.DeployDir, "shop.wasm")); err != nil {
			t.Errorf("%s: module gone from the deploy dir: %v", m.name, err)
		}
	}
	if st := c.d.Stats(); st.SyncLocalReused != 1 {
		t.Errorf("c did not catch up from b: stats %+v", st)
	}
}

// syncedPair starts p (the oldest member) on a gateHost and o on a
// fakeHost, syncs both as nodes do, and farms v1 at /shop from o.
func syncedPair(t *testing.T, v1 []byte) (net *tribestest.Network, p, o *member, gp *gateHost) {
	t.Helper()
	net = tribestest.NewNetwork()
	gp = &gateHost{}
	p = newHostMember(t, net, "p", gp, nil)
	o = newHostMember(t, net, "o", &fakeHost{}, nil)
	await(t, 1, p, o)
	for _, m := range []*member{p, o} {
		if err := m.d.Sync(t.Context()); err != nil {
			t.Fatalf("%s: sync: %v", m.name, err)
		}
	}
	if rep, err := o.d.Deploy(t.Context(), "/shop", bytes.NewReader(v1), DeployOptions{}); err != nil {
		t.Fatalf("v1: %v %s", err, reportString(rep))
	}
	return net, p, o, gp
}

type deployed struct {
	rep *Report
	err error
}

// TestSyncKeepsVersionDeployedSinceStart: j starts (not synced yet) while
// /shop is at v1; o deploys v2 and j applies it while p, the member j asks
// at Sync, still compiles v2 and lists v1. Sync must not take j back to
// v1: the deploy j received since Start is newer than p's list.
func TestSyncKeepsVersionDeployedSinceStart(t *testing.T) {
	v1, v2 := bytes.Repeat([]byte{1}, 100<<10), bytes.Repeat([]byte{2}, 100<<10)
	net, p, o, gp := syncedPair(t, v1)
	hj := &fakeHost{}
	j := newHostMember(t, net, "j", hj, nil) // started, not synced yet
	await(t, 2, p, o, j)
	if first := j.ch.Members()[0]; first.Key() != p.ch.LocalMember().Key() {
		t.Fatalf("j asks %v first, want p", first)
	}
	gp.block(hexDigest(v2))
	done := make(chan deployed, 1)
	go func() {
		r, err := o.d.Deploy(context.Background(), "/shop", bytes.NewReader(v2), DeployOptions{})
		done <- deployed{r, err}
	}()
	<-gp.entered // p is compiling v2 and still lists v1
	waitFor(t, "j on v2", func() bool { return hj.digestOf("/shop") == hexDigest(v2) })
	if err := j.d.Sync(t.Context()); err != nil {
		t.Fatalf("sync: %v", err)
	}
	close(gp.release)
	r := <-done
	if r.err != nil {
		t.Fatalf("v2: %v %s", r.err, reportString(r.rep))
	}
	if got := hj.digestOf("/shop"); got != hexDigest(v2) {
		t.Errorf("j serves %.12s after Sync, want v2 %.12s (v1 is %.12s); o's report: %s",
			got, hexDigest(v2), hexDigest(v1), reportString(r.rep))
	}
	if _, dg, err := hashFile(filepath.Join(j.d.cfg.DeployDir, "shop.wasm")); err != nil || dg.String() != hexDigest(v2) {
		t.Errorf("j's deploy dir holds %.12s (%v), want v2", dg, err)
	}
}

// TestDeployReachesMemberJoiningMidDeploy: j joins after o sent v2 to the
// members it knew, and syncs from p while p still compiles v2 (so j
// catches up with v1). o's deploy must reach j too, and its report must
// name j.
func TestDeployReachesMemberJoiningMidDeploy(t *testing.T) {
	v1, v2 := bytes.Repeat([]byte{1}, 100<<10), bytes.Repeat([]byte{2}, 100<<10)
	net, p, o, gp := syncedPair(t, v1)
	gp.block(hexDigest(v2))
	done := make(chan deployed, 1)
	go func() {
		r, err := o.d.Deploy(context.Background(), "/shop", bytes.NewReader(v2), DeployOptions{})
		done <- deployed{r, err}
	}()
	<-gp.entered // o sent v2 to p, its only member then
	hj := &fakeHost{}
	j := newHostMember(t, net, "j", hj, nil)
	await(t, 2, p, o, j)
	if first := j.ch.Members()[0]; first.Key() != p.ch.LocalMember().Key() {
		t.Fatalf("j asks %v first, want p", first)
	}
	if err := j.d.Sync(t.Context()); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if got := hj.digestOf("/shop"); got != hexDigest(v1) {
		t.Fatalf("j caught up with %.12s, want v1 %.12s (p lists v1 while it compiles v2)", got, hexDigest(v1))
	}
	close(gp.release)
	r := <-done
	if r.err != nil {
		t.Fatalf("v2: %v %s", r.err, reportString(r.rep))
	}
	if got := hj.digestOf("/shop"); got != hexDigest(v2) {
		t.Errorf("j serves %.12s after the deploy, want v2 %.12s; o's report: %s", got, hexDigest(v2), reportString(r.rep))
	}
	if rs := reportString(r.rep); !strings.Contains(rs, " j=ok") {
		t.Errorf("o's report does not name j: %s", rs)
	}
}

// withModule returns a Config edit that puts mod in the deploy dir as
// file.
func withModule(file string, mod []byte) func(*Config) {
	return func(c *Config) {
		os.MkdirAll(c.DeployDir, 0o755)
		os.WriteFile(filepath.Join(c.DeployDir, file), mod, 0o644)
	}
}

// mustKeep checks that m serves mod at path and still has file in its
// deploy dir.
func mustKeep(t *testing.T, m *member, path, file string, mod []byte) {
	t.Helper()
	if got := m.digestAt(path); got != hexDigest(mod) {
		t.Errorf("%s: serves %s %q after Sync, want %.12s", m.name, path, got, hexDigest(mod))
	}
	if _, err := os.Stat(filepath.Join(m.d.cfg.DeployDir, file)); err != nil {
		t.Errorf("%s: module gone from the deploy dir: %v", m.name, err)
	}
}

// TestSyncColdStartEmptyMember restarts a whole cluster in which x has an
// empty deploy dir (a new machine) and y has shop.wasm, and x is the first
// to finish Sync: with y up but not synced yet, or alone. x's list comes
// from its empty deploy dir, not from the cluster's history: y must not
// take it as "the cluster dropped /shop", and keeps and serves its module.
func TestSyncColdStartEmptyMember(t *testing.T) {
	mod := counterModule(0, 1)
	t.Run("together", func(t *testing.T) {
		net := tribestest.NewNetwork()
		x := newMember(t, net, "x", nil)
		y := newMember(t, net, "y", withModule("shop.wasm", mod))
		await(t, 1, x, y)
		if err := x.d.Sync(t.Context()); err != nil { // y has not synced: x deploys its (empty) dir
			t.Fatalf("x: sync: %v", err)
		}
		if err := y.d.Sync(t.Context()); err != nil {
			t.Fatalf("y: sync: %v", err)
		}
		mustKeep(t, y, "/shop", "shop.wasm", mod)
	})
	t.Run("first alone", func(t *testing.T) {
		net := tribestest.NewNetwork()
		x := newMember(t, net, "x", nil)
		if err := x.d.Sync(t.Context()); err != nil { // no other member up
			t.Fatalf("x: sync: %v", err)
		}
		y := newMember(t, net, "y", withModule("shop.wasm", mod))
		await(t, 1, x, y)
		if err := y.d.Sync(t.Context()); err != nil {
			t.Fatalf("y: sync: %v", err)
		}
		mustKeep(t, y, "/shop", "shop.wasm", mod)
		// A third member, also down at the restart, follows y or x: it
		// keeps its own module too.
		z := newMember(t, net, "z", withModule("cart.wasm", counterModule(0, 2)))
		await(t, 2, x, y, z)
		if err := z.d.Sync(t.Context()); err != nil {
			t.Fatalf("z: sync: %v", err)
		}
		mustKeep(t, z, "/cart", "cart.wasm", counterModule(0, 2))
	})
}

// TestSyncRemovesUndeployed: a farms /old and undeploys it while k is
// down. j, which never had /old, catches up from a, and a leaves. k
// rejoins with old.wasm and can only follow j, which is cold (it followed
// a, which synced alone) but learned from a that the cluster undeployed
// /old: k removes it. mine.wasm, which k has and no one undeployed, stays.
// A later deploy of /old, even one j refuses, takes /old off j's list of
// undeployed apps. The cluster view does not show undeployed apps as
// served.
func TestSyncRemovesUndeployed(t *testing.T) {
	net := tribestest.NewNetwork()
	old, mine := counterModule(0, 1), counterModule(0, 2)
	a := newMember(t, net, "a", nil)
	if err := a.d.Sync(t.Context()); err != nil {
		t.Fatalf("a: sync: %v", err)
	}
	if _, err := a.d.Deploy(t.Context(), "/old", bytes.NewReader(old), DeployOptions{}); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if _, err := a.d.Undeploy(t.Context(), "/old"); err != nil {
		t.Fatalf("undeploy: %v", err)
	}
	j := newMember(t, net, "j", nil)
	await(t, 1, a, j)
	if err := j.d.Sync(t.Context()); err != nil {
		t.Fatalf("j: sync: %v", err)
	}
	a.d.Close()
	a.ch.Stop(t.Context())
	waitFor(t, "a gone", func() bool { return len(j.ch.Members()) == 0 })
	k := newMember(t, net, "k", func(c *Config) {
		withModule("old.wasm", old)(c)
		withModule("mine.wasm", mine)(c)
	})
	await(t, 1, j, k)
	if err := k.d.Sync(t.Context()); err != nil {
		t.Fatalf("k: sync: %v", err)
	}
	if got := k.digestAt("/old"); got != "" {
		t.Errorf("k serves the undeployed /old (%.12s)", got)
	}
	if _, err := os.Stat(filepath.Join(k.d.cfg.DeployDir, "old.wasm")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("k kept the undeployed module: %v", err)
	}
	mustKeep(t, k, "/mine", "mine.wasm", mine)

	undeployed := func(m *member) bool {
		for _, e := range m.d.listMessage(newID()).Apps {
			if e.Path == "/old" && e.Undeployed {
				return true
			}
		}
		return false
	}
	if !undeployed(j) || !undeployed(k) {
		t.Fatalf("/old not listed as undeployed: j %v, k %v", undeployed(j), undeployed(k))
	}
	apps, err := k.d.ClusterApps(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range apps.Apps {
		if a.Path == "/old" {
			t.Errorf("the cluster view lists the undeployed /old: %+v", a)
		}
	}
	bad := []byte("not wasm")
	if res := sendRaw(t, k, "/old", len(bad), sha256.Sum256(bad), bad); len(res) != 1 || res[0].OK() {
		t.Fatalf("j took a module that is not wasm: %+v", res)
	}
	if undeployed(j) {
		t.Errorf("j still lists /old as undeployed after a deploy of it")
	}
}

// makeWarm makes m answer list requests as a synced member that is not
// cold: as a member of an older version does (which does not mark its
// list), or one that followed such a member. A cluster of members of this
// version has none: its first member up follows no one.
func makeWarm(m *member) {
	m.d.mu.Lock()
	m.d.cold = false
	m.d.mu.Unlock()
}

// TestSyncAfterFailedFetch: j catches up from a, which is not cold, but
// fails to fetch /shop (a lost its module file), so j's list lacks /shop.
// a leaves; k, which had /shop before it went down, joins and can only
// follow j. /shop is missing from j's list because j's fetch failed, not
// because the cluster dropped it: k keeps and serves it.
func TestSyncAfterFailedFetch(t *testing.T) {
	net := tribestest.NewNetwork()
	mod := counterModule(0, 1)
	a := newMember(t, net, "a", nil)
	if err := a.d.Sync(t.Context()); err != nil {
		t.Fatalf("a: sync: %v", err)
	}
	makeWarm(a)
	if _, err := a.d.Deploy(t.Context(), "/shop", bytes.NewReader(mod), DeployOptions{}); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	if err := os.Remove(filepath.Join(a.d.cfg.DeployDir, "shop.wasm")); err != nil {
		t.Fatal(err)
	}
	j := newMember(t, net, "j", nil)
	await(t, 1, a, j)
	if err := j.d.Sync(t.Context()); err == nil || !strings.Contains(err.Error(), "catching up /shop") {
		t.Fatalf("j: sync: %v, want the failed fetch of /shop", err)
	}
	a.d.Close()
	a.ch.Stop(t.Context())
	waitFor(t, "a gone", func() bool { return len(j.ch.Members()) == 0 })
	k := newMember(t, net, "k", withModule("shop.wasm", mod))
	await(t, 1, j, k)
	if err := k.d.Sync(t.Context()); err != nil {
		t.Fatalf("k: sync: %v", err)
	}
	mustKeep(t, k, "/shop", "shop.wasm", mod)
}
