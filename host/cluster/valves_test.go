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

// TestJvmRouteBinderFollowsEarlierRewrite: after the binder rewrote a
// failed-over session's id, a request still carrying the former id (sent
// in parallel, or before the client stored the new cookie) is served with
// the rewritten session and gets its cookie, as Tomcat's handleJvmRoute
// looks the rewritten id up (it used to get a new, empty session whose
// cookie replaced the client's).
func TestJvmRouteBinderFollowsEarlierRewrite(t *testing.T) {
	net := tribestest.NewNetwork()
	mc := cluster.DefaultManagerConfig(cluster.KindDelta)
	mc.SendOptions = cluster.SyncOptions
	a := startNode(t, net, "jvm_a", mc)
	b := startNode(t, net, "jvm_b", mc)
	id := a.session(t)
	a.nd.Crash()
	j1, newID := b.get(t, "/counter/json", id)
	if want := strings.TrimSuffix(id, ".jvm_a") + ".jvm_b"; j1.Counter != 3 || newID != want {
		t.Fatalf("failover: %+v, cookie %q (want counter 3, cookie %s)", j1, newID, want)
	}
	j2, cookie := b.get(t, "/counter/json", id) // the former id again
	if j2.Counter != 4 || j2.Session != newID || cookie != newID {
		t.Fatalf("request with the former id: %+v, cookie %q (want session %s, counter 4, its cookie)", j2, cookie, newID)
	}
	if n := b.manager(t).Len(); n != 1 {
		t.Fatalf("b holds %d sessions, want 1", n)
	}
	if got := b.m.Binder.Rewrites(); got != 1 {
		t.Fatalf("binder rewrites %d, want 1", got)
	}
}
