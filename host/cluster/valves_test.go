package cluster_test

import (
	"strings"
	"testing"

	"github.com/wasmfarm/wasmfarm/host/cluster"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
)

func TestParseFilter(t *testing.T) {
	for _, tc := range []struct {
		name, filter string
		match, miss  []string
	}{
		{"empty", "", nil, []string{"/a.gif"}},
		{"tomcat 7 regex", `.*\.gif|.*\.js|.*\.jpeg|.*\.jpg|.*\.png|.*\.htm|.*\.html|.*\.css|.*\.txt`,
			[]string{"/static/a.gif", "/x.css", "/r.txt"}, []string{"/counter/json", "/a.gifx"}},
		{"tomcat 5 semicolons", `.*\.gif;.*\.js;.*\.jpg;.*\.htm;.*\.html;.*\.txt;`,
			[]string{"/a.gif", "/b.html"}, []string{"/counter/", "/a.css"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			re, err := cluster.ParseFilter(tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tc.match {
				if re == nil || !re.MatchString(p) {
					t.Errorf("%q should match", p)
				}
			}
			for _, p := range tc.miss {
				if re != nil && re.MatchString(p) {
					t.Errorf("%q should not match", p)
				}
			}
		})
	}
	if _, err := cluster.ParseFilter("(unclosed"); err == nil || !strings.Contains(err.Error(), "(unclosed") {
		t.Fatalf("bad filter error %v", err)
	}
}

// TestReplicationValveFilter: a filtered path does not replicate a mere
// access, but a change on it still replicates.
func TestReplicationValveFilterAndStats(t *testing.T) {
	net := tribestest.NewNetwork()
	mc := cluster.DefaultManagerConfig(cluster.KindDelta)
	mc.SendOptions = cluster.SyncOptions
	mc.AccessReplicateInterval = 1 // every access would replicate, unless filtered
	a := startNodeWithFilter(t, net, "jvm_a", mc, `.*\.txt|.*/json`)
	b := startNode(t, net, "jvm_b", mc)
	_, id := a.get(t, "/counter/json", "") // creates: replicated although filtered
	if _, ok := counterOn(t, b, id); !ok {
		t.Fatal("a change on a filtered path was not replicated")
	}
	st := a.m.Replication.Stats()
	if st.Requests != 1 || st.Replications != 1 || st.Bytes == 0 || st.Filtered != 0 {
		t.Fatalf("valve stats %+v", st)
	}
	a.get(t, "/counter/json", id) // the counter changes again: replicated
	if st := a.m.Replication.Stats(); st.Replications != 2 {
		t.Fatalf("valve stats %+v", st)
	}
}

func TestJvmRouteBinderDisabled(t *testing.T) {
	net := tribestest.NewNetwork()
	mc := cluster.DefaultManagerConfig(cluster.KindDelta)
	mc.SendOptions = cluster.SyncOptions
	a := startNode(t, net, "jvm_a", mc)
	b := startNodeWith(t, net, "jvm_b", mc, nil, &cluster.JvmRouteBinderConfig{Disabled: true})
	_, id := a.get(t, "/counter/json", "")
	j, set := b.get(t, "/counter/json", id)
	if j.Counter != 2 || set != "" || b.m.Binder.Rewrites() != 0 {
		t.Fatalf("disabled binder: %+v cookie %q rewrites %d", j, set, b.m.Binder.Rewrites())
	}
}
