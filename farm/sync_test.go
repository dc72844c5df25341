package farm

import (
	"os"
	"path/filepath"
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
