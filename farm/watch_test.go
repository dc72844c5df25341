package farm

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
)

// TestUndeployKeepsOtherAppsWatchedModule: in the watch dir, shop.wasm
// serves /store and x.wasm serves /shop (by their manifests). Undeploying
// /shop removes x.wasm, not shop.wasm: /store keeps serving everywhere,
// and the watch does not bring /shop back.
func TestUndeployKeepsOtherAppsWatchedModule(t *testing.T) {
	net := tribestest.NewNetwork()
	ha, hb := &fakeHost{}, &fakeHost{}
	a := newHostMember(t, net, "a", ha, func(c *Config) {
		c.WatchEnabled, c.ProcessDeployFrequency = true, 20*time.Millisecond
		os.MkdirAll(c.WatchDir, 0o755)
		os.WriteFile(filepath.Join(c.WatchDir, "shop.wasm"), bytes.Repeat([]byte{1}, 1000), 0o644)
		os.WriteFile(filepath.Join(c.WatchDir, "shop.wasm.json"), []byte(`{"path": "/store"}`), 0o644)
		os.WriteFile(filepath.Join(c.WatchDir, "x.wasm"), bytes.Repeat([]byte{2}, 1000), 0o644)
		os.WriteFile(filepath.Join(c.WatchDir, "x.wasm.json"), []byte(`{"path": "/shop"}`), 0o644)
	})
	b := newHostMember(t, net, "b", hb, nil)
	await(t, 1, a, b)
	waitFor(t, "watch deploys", func() bool { return hb.digestOf("/store") != "" && hb.digestOf("/shop") != "" })
	if rep, err := a.d.Undeploy(t.Context(), "/shop"); err != nil {
		t.Fatalf("undeploy: %v %s", err, reportString(rep))
	}
	// Two scans that started after the undeploy: the watch saw the dir as
	// the undeploy left it.
	n := a.d.w.scans.Load()
	waitFor(t, "two scans", func() bool { return a.d.w.scans.Load() >= n+2 })
	watch := a.d.cfg.WatchDir
	if _, err := os.Stat(filepath.Join(watch, "shop.wasm")); err != nil {
		t.Errorf("undeploy of /shop deleted the module of /store: %v", err)
	}
	if _, err := os.Stat(filepath.Join(watch, "x.wasm")); err == nil {
		t.Errorf("undeploy of /shop kept its module x.wasm in the watch dir")
	}
	for name, h := range map[string]*fakeHost{"a": ha, "b": hb} {
		if h.digestOf("/store") == "" {
			t.Errorf("%s: /store undeployed by an undeploy of /shop", name)
		}
		if h.digestOf("/shop") != "" {
			t.Errorf("%s: /shop still served", name)
		}
	}
}
