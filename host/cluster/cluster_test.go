package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/host/cluster"
	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/internal/syncbuf"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// node is one clustered host on the in-memory network.
type node struct {
	route string
	nd    *tribestest.Node
	ch    *tribes.Channel
	m     *cluster.Member
}

type counterJSON struct {
	Session string `json:"session"`
	Node    string `json:"node"`
	Counter int    `json:"counter"`
}

func cacheDir() string { return filepath.Join(os.TempDir(), "wasmfarm-test-cache") }

// startNode starts a member with the counter app at /counter.
func startNode(t testing.TB, net *tribestest.Network, route string, mc cluster.ManagerConfig) *node {
	t.Helper()
	return startNodeWith(t, net, route, mc, nil, nil)
}

func startNodeWithFilter(t testing.TB, net *tribestest.Network, route string, mc cluster.ManagerConfig, filter string) *node {
	t.Helper()
	return startNodeWith(t, net, route, mc, &cluster.ReplicationValveConfig{Filter: filter}, nil)
}

func startNodeWithValves(t testing.TB, net *tribestest.Network, route string, mc cluster.ManagerConfig, valves ...host.Valve) *node {
	t.Helper()
	return startNodeFull(t, net, route, mc, nil, nil, valves)
}

func startNodeWith(t testing.TB, net *tribestest.Network, route string, mc cluster.ManagerConfig,
	rv *cluster.ReplicationValveConfig, bc *cluster.JvmRouteBinderConfig) *node {
	t.Helper()
	return startNodeFull(t, net, route, mc, rv, bc, nil)
}

// startNodeWithInterceptors starts a member with the counter app at
// /counter whose channel has the interceptors ics.
func startNodeWithInterceptors(t testing.TB, net *tribestest.Network, route string, mc cluster.ManagerConfig, ics ...tribes.Interceptor) *node {
	t.Helper()
	return startNodeFull(t, net, route, mc, nil, nil, nil, ics...)
}

func startNodeFull(t testing.TB, net *tribestest.Network, route string, mc cluster.ManagerConfig,
	rv *cluster.ReplicationValveConfig, bc *cluster.JvmRouteBinderConfig, valves []host.Valve, ics ...tribes.Interceptor) *node {
	t.Helper()
	n := &node{route: route, nd: net.NewNode()}
	// Exactly ics: a nil list would mean the channel's default interceptors.
	ch, err := tribes.New(tribes.Config{Transport: n.nd.Transport(), Membership: n.nd.Membership(), Interceptors: append([]tribes.Interceptor{}, ics...)})
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.ch = ch
	hc := host.DefaultConfig()
	hc.JvmRoute = route
	hc.CacheDir = cacheDir()
	hc.PoolSize = 2
	hc.Valves = valves
	m, err := cluster.NewMember(cluster.MemberConfig{Host: hc, Cluster: cluster.Config{Channel: ch, Manager: mc},
		ReplicationValve: rv, JvmRouteBinder: bc})
	if err != nil {
		t.Fatal(err)
	}
	n.m = m
	if err := m.Server.Deploy(context.Background(), "/counter", wasmapps.Counter()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.stop() })
	return n
}

func (n *node) stop() {
	n.m.Server.Shutdown(context.Background())
	n.m.Cluster.Close()
	n.ch.Stop(context.Background())
}

// get requests /counter/json with the cookie and returns the answer and
// the session cookie set, if any.
func (n *node) get(t testing.TB, path, cookie string) (counterJSON, string) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", "JSESSIONID="+cookie)
	}
	rec := httptest.NewRecorder()
	n.m.Server.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("%s %s: %d %s", n.route, path, rec.Code, rec.Body)
	}
	var set string
	for _, c := range rec.Result().Cookies() {
		if c.Name == "JSESSIONID" {
			set = c.Value
		}
	}
	var out counterJSON
	if strings.HasSuffix(path, "/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s: %v: %s", path, err, rec.Body)
		}
	}
	return out, set
}

// session starts a session on n with two requests (counter 2) and
// returns its id.
func (n *node) session(t testing.TB) string {
	t.Helper()
	_, id := n.get(t, "/counter/json", "")
	n.get(t, "/counter/json", id)
	return id
}

// sessions starts k sessions on n as session does.
func (n *node) sessions(t testing.TB, k int) []string {
	t.Helper()
	ids := make([]string, k)
	for i := range ids {
		ids[i] = n.session(t)
	}
	return ids
}

func (n *node) manager(t testing.TB) cluster.Replicator {
	t.Helper()
	c, ok := n.m.Server.Engine().Context("/counter")
	if !ok {
		t.Fatal("no /counter")
	}
	return c.Manager().(cluster.Replicator)
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func counterOn(t *testing.T, n *node, id string) (int, bool) {
	s, ok := n.manager(t).Find(id)
	if !ok {
		return 0, false
	}
	v, ok := s.Get("counter")
	if !ok {
		return 0, true
	}
	var c int
	fmt.Sscan(string(v), &c)
	return c, true
}

func TestDeltaManagerReplicatesAndFailsOver(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts tribes.Options
	}{{"async", cluster.AsyncOptions}, {"sync", cluster.SyncOptions}} {
		t.Run(tc.name, func(t *testing.T) {
			net := tribestest.NewNetwork()
			mc := cluster.DefaultManagerConfig(cluster.KindDelta)
			mc.SendOptions = tc.opts
			a := startNode(t, net, "jvm_a", mc)
			b := startNode(t, net, "jvm_b", mc)

			j, id := a.get(t, "/counter/json", "")
			if j.Counter != 1 || !strings.HasSuffix(id, ".jvm_a") {
				t.Fatalf("first request: %+v cookie %q", j, id)
			}
			a.get(t, "/counter/json", id)
			a.get(t, "/counter/json", id)
			check := func() bool { c, ok := counterOn(t, b, id); return ok && c == 3 }
			if tc.opts == cluster.SyncOptions && !check() {
				t.Fatal("synchronous replication: b does not hold the update when the response is written")
			}
			eventually(t, "b holds the session with counter 3", check)

			// A dies; B serves the session with its state and rewrites its route.
			a.nd.Crash()
			j, newID := b.get(t, "/counter/json", id)
			if j.Counter != 4 || j.Node != "jvm_b" {
				t.Fatalf("after failover: %+v", j)
			}
			if want := strings.TrimSuffix(id, ".jvm_a") + ".jvm_b"; newID != want {
				t.Fatalf("cookie after failover %q, want %q", newID, want)
			}
			if got := b.m.Binder.Rewrites(); got != 1 {
				t.Fatalf("binder rewrites %d", got)
			}
			if j, again := b.get(t, "/counter/json", newID); j.Counter != 5 || again != "" {
				t.Fatalf("next request: %+v, cookie %q", j, again)
			}
		})
	}
}

func TestDeltaManagerStateTransferAndInvalidate(t *testing.T) {
	net := tribestest.NewNetwork()
	mc := cluster.DefaultManagerConfig(cluster.KindDelta)
	mc.SendAllSessionsSize = 7 // several blocks
	a := startNode(t, net, "jvm_a", mc)
	ids := a.sessions(t, 30)
	b := startNode(t, net, "jvm_b", mc) // Deploy returns after the state transfer
	if got := b.manager(t).Len(); got != 30 {
		t.Fatalf("joiner holds %d sessions, want 30", got)
	}
	st := b.m.Cluster.Managers()["/counter"]
	if !st.StateComplete || st.StateTransferred != 30 || !b.m.Cluster.Ready() {
		t.Fatalf("joiner stats %+v ready %v", st, b.m.Cluster.Ready())
	}
	if c, _ := counterOn(t, b, ids[0]); c != 2 {
		t.Fatalf("transferred counter %d, want 2", c)
	}
	// Invalidation on A removes the session on B.
	a.get(t, "/counter/invalidate", ids[0])
	eventually(t, "b drops the invalidated session", func() bool { _, ok := b.manager(t).Find(ids[0]); return !ok })
	// A session created on B reaches A.
	_, s2 := b.get(t, "/counter/json", "")
	eventually(t, "a holds b's new session", func() bool { _, ok := counterOn(t, a, s2); return ok })
}

// TestDeltaCreatedAndInvalidatedInOneRequest: a request that made a
// session and invalidated it sends a delta with both; the other member,
// which never held the session, keeps nothing and answers the synchronous
// send without an error (it used to panic on the missing session).
func TestDeltaCreatedAndInvalidatedInOneRequest(t *testing.T) {
	net := tribestest.NewNetwork()
	mc := cluster.DefaultManagerConfig(cluster.KindDelta)
	mc.SendOptions = cluster.SyncOptions
	a := startNode(t, net, "jvm_a", mc)
	b := startNode(t, net, "jvm_b", mc)
	eventually(t, "a knows b runs /counter", func() bool { return len(a.m.Cluster.Peers()) == 1 })
	now := time.Now().UnixMilli()
	d := session.Delta{ID: "0123456789ABCDEF.jvm_a", Created: true, CreationTime: now, Accessed: now, Invalidated: true,
		Ops: []session.Op{{Kind: session.OpSet, Key: "user", Value: []byte("x")}}}
	if _, err := a.manager(t).Replicate(context.Background(), &d); err != nil {
		t.Fatalf("replicating a session created and invalidated by one request: %v", err)
	}
	if n := b.manager(t).Len(); n != 0 {
		t.Fatalf("b holds %d sessions, want 0", n)
	}
	// Replication goes on.
	_, id := a.get(t, "/counter/json", "")
	if c, ok := counterOn(t, b, id); !ok || c != 1 {
		t.Fatalf("b: counter %d (held %v), want 1", c, ok)
	}
}

func TestDeltaManagerExpiryIsReplicated(t *testing.T) {
	net := tribestest.NewNetwork()
	mc := cluster.DefaultManagerConfig(cluster.KindDelta)
	a := startNode(t, net, "jvm_a", mc)
	b := startNode(t, net, "jvm_b", mc)
	_, id := b.get(t, "/counter/json", "")
	eventually(t, "a holds the session", func() bool { _, ok := counterOn(t, a, id); return ok })
	// A holds a replica: it expires after twice the idle limit, and only
	// there (see TestDeltaReplicaExpiryStaysLocal).
	created, _ := a.manager(t).Find(id)
	idle := created.MaxInactiveInterval()
	if n := a.manager(t).Expire(time.Now().Add(idle + time.Second)); n != 0 {
		t.Fatalf("replica expired after one idle limit (%d)", n)
	}
	// B serves the session: its expiry after one limit is told to A.
	if n := b.manager(t).Expire(time.Now().Add(idle + time.Second)); n != 1 {
		t.Fatalf("b did not expire the session it serves after its idle limit (%d)", n)
	}
	eventually(t, "a drops the session b expired", func() bool { return a.manager(t).Len() == 0 })
	if st := b.m.Cluster.Managers()["/counter"]; st.SessionsExpired != 1 {
		t.Fatalf("b's stats %+v", st)
	}
}

func TestBackupManagerSurvivesTwoFailures(t *testing.T) {
	net := tribestest.NewNetwork()
	mc := cluster.DefaultManagerConfig(cluster.KindBackup)
	nodes := []*node{
		startNode(t, net, "jvm_a", mc),
		startNode(t, net, "jvm_b", mc),
		startNode(t, net, "jvm_c", mc),
	}
	a := nodes[0]
	ids := a.sessions(t, 20)
	// Synchronous mapSendOptions: each session is on A and exactly one other.
	copies := 0
	for _, n := range nodes[1:] {
		copies += n.manager(t).Len()
	}
	if copies != 20 {
		t.Fatalf("%d backup copies, want 20", copies)
	}
	eventually(t, "every member knows every session", func() bool {
		for _, n := range nodes[1:] {
			st := n.m.Cluster.Managers()["/counter"]
			if st.ActiveSessions+st.Proxies != 20 {
				return false
			}
		}
		return true
	})
	// A dies: backups are promoted and get new backups.
	a.nd.Crash()
	b, c := nodes[1], nodes[2]
	eventually(t, "b and c hold two copies of every session", func() bool {
		return b.manager(t).Len() == 20 && c.manager(t).Len() == 20
	})
	// A request on C for a session (whatever C's role) works and continues.
	j, newID := c.get(t, "/counter/json", ids[0])
	if j.Counter != 3 || !strings.HasSuffix(newID, ".jvm_c") {
		t.Fatalf("after the first failure: %+v cookie %q", j, newID)
	}
	ids[0] = newID
	// The new primary of each session dies too: nothing is lost.
	c.nd.Crash()
	for i, id := range ids {
		want := 3
		if i == 0 {
			want = 4
		}
		j, _ := b.get(t, "/counter/json", id)
		if j.Counter != want {
			t.Fatalf("session %d after the second failure: counter %d, want %d", i, j.Counter, want)
		}
	}
}

func TestBackupManagerFetchesOnThirdMember(t *testing.T) {
	_, _, third, id := startPrimaryBackupOther(t, "jvm_a", "jvm_b", "jvm_c")
	j, _ := third.get(t, "/counter/json", id)
	if j.Counter != 3 {
		t.Fatalf("fetched session: %+v", j)
	}
	if st := third.m.Cluster.Managers()["/counter"]; st.Fetched != 1 || st.PrimarySessions != 1 {
		t.Fatalf("third member stats %+v", st)
	}
}

// TestBackupManagerHandOff: a drained member hands its sessions on, then
// stops; the others serve every session with its state.
func TestBackupManagerHandOff(t *testing.T) {
	net := tribestest.NewNetwork()
	mc := cluster.DefaultManagerConfig(cluster.KindBackup)
	nodes := []*node{startNode(t, net, "jvm_a", mc), startNode(t, net, "jvm_b", mc), startNode(t, net, "jvm_c", mc)}
	a := nodes[0]
	ids := a.sessions(t, 10)
	a.m.Server.SetDraining(true)
	n, err := a.m.Cluster.HandOff(context.Background())
	if err != nil || n != 10 {
		t.Fatalf("HandOff: %d, %v", n, err)
	}
	if st := a.m.Cluster.Managers()["/counter"]; st.PrimarySessions != 0 {
		t.Fatalf("a still serves %d sessions after the hand-off", st.PrimarySessions)
	}
	// A new session is refused while draining.
	req := httptest.NewRequest("GET", "/counter/json", nil)
	rec := httptest.NewRecorder()
	a.m.Server.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get(host.DrainingHeader) == "" {
		t.Fatalf("new session on a draining member: %d %v", rec.Code, rec.Header())
	}
	a.nd.Crash()
	for i, id := range ids {
		j, _ := nodes[1+i%2].get(t, "/counter/json", id)
		if j.Counter != 3 {
			t.Fatalf("session %d after the drained member stopped: %+v", i, j)
		}
	}
}

// TestExpireSessionsOnShutdown: with the option, a member that stops
// expires its sessions everywhere; without it, the others keep them.
func TestExpireSessionsOnShutdown(t *testing.T) {
	for _, expire := range []bool{false, true} {
		t.Run(fmt.Sprint(expire), func(t *testing.T) {
			net := tribestest.NewNetwork()
			mc := cluster.DefaultManagerConfig(cluster.KindDelta)
			mc.SendOptions = cluster.SyncOptions
			mc.ExpireSessionsOnShutdown = expire
			a := startNode(t, net, "jvm_a", mc)
			b := startNode(t, net, "jvm_b", mc)
			_, id := a.get(t, "/counter/json", "")
			if _, ok := counterOn(t, b, id); !ok {
				t.Fatal("b lacks the session")
			}
			a.m.Server.Shutdown(context.Background()) // closes the managers
			if expire {
				eventually(t, "b drops a's session", func() bool { _, ok := b.manager(t).Find(id); return !ok })
			} else if _, ok := counterOn(t, b, id); !ok {
				t.Fatal("b dropped the session although expireSessionsOnShutdown is false")
			}
		})
	}
}

// TestJvmRouteBinderKeepsOriginalID: after a failover the request carries
// the id the client sent in the SessionIDAttribute request attribute.
func TestJvmRouteBinderKeepsOriginalID(t *testing.T) {
	net := tribestest.NewNetwork()
	mc := cluster.DefaultManagerConfig(cluster.KindDelta)
	mc.SendOptions = cluster.SyncOptions
	a := startNode(t, net, "jvm_a", mc)
	var seen string
	b := startNodeWithValves(t, net, "jvm_b", mc, host.ValveFunc(func(x *host.Exchange, next host.Invoker) {
		seen = x.Attributes[cluster.DefaultSessionIDAttribute]
		next.Invoke(x)
	}))
	_, id := a.get(t, "/counter/json", "")
	b.get(t, "/counter/json", id)
	if seen != id {
		t.Fatalf("%s = %q, want the original id %q", cluster.DefaultSessionIDAttribute, seen, id)
	}
}

// startChannel starts a bare channel on the in-memory network.
func startChannel(t *testing.T, nd *tribestest.Node) *tribes.Channel {
	t.Helper()
	ch, err := tribes.New(tribes.Config{Transport: nd.Transport(), Membership: nd.Membership(), Interceptors: []tribes.Interceptor{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Stop(context.Background()) })
	return ch
}

func newCluster(t *testing.T, ch *tribes.Channel, route string) *cluster.Cluster {
	t.Helper()
	c, err := cluster.New(cluster.Config{Channel: ch, JvmRoute: route})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func peerRoutes(c *cluster.Cluster) string {
	var rs []string
	for _, p := range c.Peers() {
		rs = append(rs, p.JvmRoute)
	}
	return strings.Join(rs, ",")
}

// TestClusterGreetsMembersPresentAtStart: the channels started (and met)
// before their clusters were created, as "wasmfarm node" does, and no app
// announces anything: each cluster still learns the other's route.
func TestClusterGreetsMembersPresentAtStart(t *testing.T) {
	net := tribestest.NewNetwork()
	cha, chb := startChannel(t, net.NewNode()), startChannel(t, net.NewNode())
	eventually(t, "the channels meet", func() bool { return len(cha.Members()) == 1 && len(chb.Members()) == 1 })
	a := newCluster(t, cha, "jvm_a")
	b := newCluster(t, chb, "jvm_b")
	eventually(t, "each knows the other's route", func() bool { return peerRoutes(a) == "jvm_b" && peerRoutes(b) == "jvm_a" })
}

// TestClusterAppRemovalAsksNoAnswer: a member announces a new app asking
// the others for their hellos, and an app it no longer runs without: it is
// usually leaving, and answers would reach it after its channel stopped.
func TestClusterAppRemovalAsksNoAnswer(t *testing.T) {
	net := tribestest.NewNetwork()
	a := startNode(t, net, "jvm_a", cluster.ManagerConfig{})
	b := startNode(t, net, "jvm_b", cluster.ManagerConfig{})
	type seen struct {
		wantReply bool
		contexts  string
	}
	var mu sync.Mutex
	var fromB []seen
	a.ch.AddMessageListener(tribes.ListenerFunc(func(m *tribes.Message) error {
		if want, route, ctxs, ok := cluster.DecodeHello(m.Data); ok && route == "jvm_b" {
			mu.Lock()
			fromB = append(fromB, seen{want, strings.Join(ctxs, ",")})
			mu.Unlock()
		}
		return nil
	}))
	last := func() (seen, bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(fromB) == 0 {
			return seen{}, false
		}
		return fromB[len(fromB)-1], true
	}
	if err := b.m.Server.Deploy(context.Background(), "/second", wasmapps.Counter()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B's hello with /second", func() bool { h, ok := last(); return ok && h.contexts == "/counter,/second" })
	if h, _ := last(); !h.wantReply {
		t.Error("B announced a new app without asking for answers")
	}
	if err := b.m.Server.Undeploy(context.Background(), "/second"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B's hello without /second", func() bool { h, ok := last(); return ok && h.contexts == "/counter" })
	if h, _ := last(); h.wantReply {
		t.Error("B asked for answers when it announced that it stopped an app")
	}
}

// TestClusterRepeatsLostHello: the hellos both ways are lost (messages
// dropped, membership intact) while B joins; once the link carries
// messages again, the repeated hellos make the members known to each
// other, and replication between them works.
func TestClusterRepeatsLostHello(t *testing.T) {
	net := tribestest.NewNetwork()
	a := startNode(t, net, "jvm_a", cluster.ManagerConfig{})
	nb := net.NewNode()
	net.DropMessages(a.nd, nb, true)
	net.DropMessages(nb, a.nd, true)
	chb := startChannel(t, nb)
	b := newCluster(t, chb, "jvm_b")
	eventually(t, "the channels meet", func() bool { return len(a.ch.Members()) == 1 && len(chb.Members()) == 1 })
	time.Sleep(100 * time.Millisecond) // the first hellos are sent, and lost
	if got := peerRoutes(b); got != "" {
		t.Fatalf("B knows %q through a link that drops every message", got)
	}
	net.DropMessages(a.nd, nb, false)
	net.DropMessages(nb, a.nd, false)
	eventually(t, "each knows the other's route", func() bool {
		return peerRoutes(a.m.Cluster) == "jvm_b" && peerRoutes(b) == "jvm_a"
	})
	if a.m.Cluster.Stats().HelloRetries+b.Stats().HelloRetries == 0 {
		t.Error("no hello was repeated")
	}
	if got := strings.Join(b.Peers()[0].Contexts, ","); got != "/counter" {
		t.Errorf("B learned A's apps %q, want /counter", got)
	}
}

// TestClusterGivesUpGreetingWithWarning: a member that never answers (all
// messages to and from it lost) is greeted as often as there are pauses,
// then a warning says that nothing is replicated with it.
func TestClusterGivesUpGreetingWithWarning(t *testing.T) {
	defer cluster.SetGreetPauses([]time.Duration{time.Millisecond, time.Millisecond, time.Millisecond})()
	net := tribestest.NewNetwork()
	na, nb := net.NewNode(), net.NewNode()
	net.DropMessages(na, nb, true)
	net.DropMessages(nb, na, true)
	var logs syncbuf.Buffer
	cha := startChannel(t, na)
	a, err := cluster.New(cluster.Config{Channel: cha, JvmRoute: "jvm_a", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	startChannel(t, nb)
	eventually(t, "the warning", func() bool { return strings.Contains(logs.String(), "never answered this member's hellos") })
	if got := a.Stats().HelloRetries; got != 2 {
		t.Errorf("%d hellos repeated, want 2 (three pauses)", got)
	}
	if got := peerRoutes(a); got != "" {
		t.Errorf("A knows %q", got)
	}
}

// TestBackupManagerPassesOverDeadBackup: a member that died but is still
// in the membership (kill -9, before the failure detector noticed) cannot
// be a session's only backup. B takes A's sessions over and would prefer
// A, their former primary, as backup; A takes nothing, so C gets them;
// then B crashes and C continues every session.
func TestBackupManagerPassesOverDeadBackup(t *testing.T) {
	net := tribestest.NewNetwork()
	mc := cluster.DefaultManagerConfig(cluster.KindBackup)
	a, b, c := startNode(t, net, "jvm_a", mc), startNode(t, net, "jvm_b", mc), startNode(t, net, "jvm_c", mc)
	ids := a.sessions(t, 20)
	eventually(t, "B and C know every session", func() bool {
		for _, n := range []*node{b, c} {
			st := n.m.Cluster.Managers()["/counter"]
			if st.ActiveSessions+st.Proxies != 20 {
				return false
			}
		}
		return true
	})
	a.nd.Transport().Close() // A's process is gone; its membership lingers
	for i, id := range ids {
		j, set := b.get(t, "/counter/json", id)
		if j.Counter != 3 {
			t.Fatalf("session %d on B: counter %d, want 3", i, j.Counter)
		}
		if set != "" {
			ids[i] = set
		}
	}
	b.nd.Crash()
	for i, id := range ids {
		if j, _ := c.get(t, "/counter/json", id); j.Counter != 4 {
			t.Fatalf("session %d on C after B crashed: counter %d, want 4 (lost with B: its backup was the dead A)", i, j.Counter)
		}
	}
}

// TestBackupManagerReplacesDeadBackupOnDelta: when a session's backup
// member died but is still in the membership, the primary's next change
// goes, with the whole session, to another member; the primary's death
// then loses nothing.
func TestBackupManagerReplacesDeadBackupOnDelta(t *testing.T) {
	net := tribestest.NewNetwork()
	mc := cluster.DefaultManagerConfig(cluster.KindBackup)
	a, b, c := startNode(t, net, "jvm_a", mc), startNode(t, net, "jvm_b", mc), startNode(t, net, "jvm_c", mc)
	var onB []string // sessions of A backed up on B
	for len(onB) < 5 {
		_, id := a.get(t, "/counter/json", "")
		if _, ok := b.manager(t).Find(id); ok {
			onB = append(onB, id)
		}
	}
	b.nd.Transport().Close() // B's process is gone; its membership lingers
	for _, id := range onB {
		if j, _ := a.get(t, "/counter/json", id); j.Counter != 2 {
			t.Fatalf("second request on A: counter %d", j.Counter)
		}
	}
	a.nd.Crash()
	b.nd.Crash()
	for i, id := range onB {
		if j, _ := c.get(t, "/counter/json", id); j.Counter != 3 {
			t.Fatalf("session %d on C after A and B crashed: counter %d, want 3", i, j.Counter)
		}
	}
}

// TestClusterHellosKeepTheirOrder: A's answer to B's hello is built (with
// A's apps then) and held on its way out while A deploys another app and
// announces it. B must end up knowing both of A's apps: the older hello
// must not overtake the newer one, or B believes the new app does not run
// on A (no replication of it with A; a BackupManager never picks A).
func TestClusterHellosKeepTheirOrder(t *testing.T) {
	const typeHello byte = 1
	net := tribestest.NewNetwork()
	hold := newHoldOne(typeHello, false)
	a := startNodeWithInterceptors(t, net, "jvm_a", cluster.ManagerConfig{}, hold)
	b := startNode(t, net, "jvm_b", cluster.ManagerConfig{})
	eventually(t, "the members know each other", func() bool {
		return peerRoutes(a.m.Cluster) == "jvm_b" && peerRoutes(b.m.Cluster) == "jvm_a"
	})
	var fromA atomic.Int32
	b.ch.AddMessageListener(tribes.ListenerFunc(func(m *tribes.Message) error {
		if _, route, _, ok := cluster.DecodeHello(m.Data); ok && route == "jvm_a" {
			fromA.Add(1)
		}
		return nil
	}))
	hold.armed.Store(true)
	if err := b.m.Server.Deploy(context.Background(), "/second", wasmapps.Counter()); err != nil {
		t.Fatal(err)
	}
	waitClosed(hold.held) // A's answer, listing /counter
	deployed := make(chan error, 1)
	go func() { deployed <- a.m.Server.Deploy(context.Background(), "/third", wasmapps.Counter()) }()
	passed := make(chan struct{}) // A's announcement of /third reached B
	go func() {
		for fromA.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		close(passed)
	}()
	hold.released(passed)
	if err := <-deployed; err != nil {
		t.Fatal(err)
	}
	eventually(t, "both of A's hellos reach B", func() bool { return fromA.Load() >= 2 })
	t.Logf("hellos from A: %d", fromA.Load())
	if got := strings.Join(b.m.Cluster.Peers()[0].Contexts, ","); got != "/counter,/third" {
		t.Fatalf("B believes A runs %q, want /counter,/third", got)
	}
}
