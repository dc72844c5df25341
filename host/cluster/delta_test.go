package cluster_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host/cluster"
	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
)

// clockStart is the fake clock's start in the tests of this file.
var clockStart = time.Now().Truncate(time.Second)

// deltaPair is two members, a and b, running the app /x with delta
// managers, synchronous sends (a Replicate returns after the other member
// applied the delta), a 40 s idle limit, no background expiry and a fake
// clock (now, unix ms) shared by both.
type deltaPair struct {
	ra, rb cluster.Replicator
	nda    *tribestest.Node
	ca, cb *cluster.Cluster
	now    *atomic.Int64
}

// startDeltaPair starts the pair with the jvmRoutes given (which may be
// empty: no route).
func startDeltaPair(t *testing.T, routeA, routeB string) *deltaPair {
	t.Helper()
	net := tribestest.NewNetwork()
	p := &deltaPair{nda: net.NewNode(), now: new(atomic.Int64)}
	cha, chb := startChannel(t, p.nda), startChannel(t, net.NewNode())
	eventually(t, "the channels meet", func() bool { return len(cha.Members()) == 1 && len(chb.Members()) == 1 })
	mc := cluster.DefaultManagerConfig(cluster.KindDelta)
	mc.SendOptions = cluster.SyncOptions
	var err error
	if p.ca, err = cluster.New(cluster.Config{Channel: cha, JvmRoute: routeA, Manager: mc}); err != nil {
		t.Fatal(err)
	}
	if p.cb, err = cluster.New(cluster.Config{Channel: chb, JvmRoute: routeB, Manager: mc}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.ca.Close(); p.cb.Close() })
	p.now.Store(clockStart.UnixMilli())
	cfg := func(route string) session.Config {
		return session.Config{JvmRoute: route, MaxInactiveInterval: 40 * time.Second, ExpireInterval: -1,
			Now: func() time.Time { return time.UnixMilli(p.now.Load()) }}
	}
	ma, err := p.ca.NewManager("/x", cfg(routeA))
	if err != nil {
		t.Fatal(err)
	}
	mb, err := p.cb.NewManager("/x", cfg(routeB))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "each hears the other", func() bool { return len(p.ca.Peers()) == 1 && len(p.cb.Peers()) == 1 })
	p.ra, p.rb = ma.(cluster.Replicator), mb.(cluster.Replicator)
	return p
}

// at returns the fake clock's start plus sec seconds, in unix ms.
func at(sec int) int64 { return clockStart.Add(time.Duration(sec) * time.Second).UnixMilli() }

// request commits d on r as a request would, then replicates it as the
// ReplicationValve does when repl (false: a path the valve filters), and
// returns the session's id.
func request(t *testing.T, r cluster.Replicator, d *session.Delta, repl bool) string {
	t.Helper()
	if err := r.Commit(d); err != nil {
		t.Fatal(err)
	}
	if repl {
		if _, err := r.Replicate(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	return d.FinalID()
}

// TestDeltaFailedOverReplicaKeepsTwiceTheLimit: the other members' copies
// of a session may be up to a quarter of its idle limit behind (a request
// that only reads it replicates its access time at most that often), so
// they stay replicas, expiring after twice the limit, until a request is
// served on them, also after the member that served the session left (it
// used to count one limit from the stale time as soon as the session's
// route was dead, or always without jvmRoutes).
func TestDeltaFailedOverReplicaKeepsTwiceTheLimit(t *testing.T) {
	for _, tc := range []struct{ name, routeA, routeB, id string }{
		{"jvmRoutes", "a", "b", "S.a"},
		{"no jvmRoute", "", "", "S"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startDeltaPair(t, tc.routeA, tc.routeB)
			id := request(t, p.ra, &session.Delta{ID: tc.id, Created: true, CreationTime: at(0), Accessed: at(0)}, true)
			// A read on a 9 s later: within the access interval (10 s), not sent.
			request(t, p.ra, &session.Delta{ID: id, Accessed: at(9)}, true)
			if st := p.ra.(interface{ Stats() cluster.ManagerStats }).Stats(); st.Skipped != 1 {
				t.Fatalf("a's read was not skipped: %+v", st)
			}
			p.now.Store(at(9 + 35)) // 35 s after the client's last request, 44 s after b's copy's time
			if _, ok := p.rb.Find(id); !ok {
				t.Fatal("b's copy expired while a serves the session")
			}
			p.nda.Crash()
			eventually(t, "b sees a leave", func() bool { return len(p.cb.Peers()) == 0 })
			if _, ok := p.rb.Find(id); !ok {
				t.Fatal("failed-over session expired on b 35 s after its last request (limit 40 s)")
			}
			p.now.Store(at(81))
			if _, ok := p.rb.Find(id); ok {
				t.Fatal("b's replica outlived twice its idle limit")
			}
		})
	}
}

// TestDeltaRequestOnReplicaIsReplicated: the first request served on a
// member's replica makes that copy the primary and is sent even when it
// only reads the session, so that the former primary holds its copy as a
// replica from then on and does not expire it (and tell the others) one
// limit after its own, older, access time.
func TestDeltaRequestOnReplicaIsReplicated(t *testing.T) {
	p := startDeltaPair(t, "a", "b")
	id := request(t, p.ra, &session.Delta{ID: "S.a", Created: true, CreationTime: at(0), Accessed: at(0)}, true)
	// The balancer sends the client to b (no binder here): a read, 5 s later.
	request(t, p.rb, &session.Delta{ID: id, Accessed: at(5)}, true)
	if st := p.rb.(interface{ Stats() cluster.ManagerStats }).Stats(); st.Replicated != 1 {
		t.Fatalf("b's first request on its replica was not sent: %+v", st)
	}
	// And the next read on b, 4 s later, within the access interval, is not.
	request(t, p.rb, &session.Delta{ID: id, Accessed: at(9)}, true)
	if st := p.rb.(interface{ Stats() cluster.ManagerStats }).Stats(); st.Replicated != 1 || st.Skipped != 1 {
		t.Fatalf("b's second read: %+v", st)
	}
	p.now.Store(at(44))
	if n := p.ra.Expire(time.UnixMilli(p.now.Load())); n != 0 {
		t.Fatalf("a expired %d sessions 44 s after its own last request: its copy should be a replica", n)
	}
	if _, ok := p.rb.Find(id); !ok {
		t.Fatal("b lost the session it serves, 35 s after its last request")
	}
}

// TestDeltaReplicaExpiryStaysLocal: a replica that expires (twice its idle
// limit without news) is removed on its member only, as Tomcat's
// DeltaSession expires a non-primary copy without telling the cluster:
// the member serving the session may have served it all along through
// requests whose access the ReplicationValve filters (it used to tell the
// others, and the serving member dropped a session last used 11 s before).
func TestDeltaReplicaExpiryStaysLocal(t *testing.T) {
	p := startDeltaPair(t, "a", "b")
	id := request(t, p.ra, &session.Delta{ID: "S.a", Created: true, CreationTime: at(0), Accessed: at(0)}, true)
	for s := 10; s <= 70; s += 10 { // requests on paths the ReplicationValve filters
		request(t, p.ra, &session.Delta{ID: id, Accessed: at(s)}, false)
	}
	p.now.Store(at(81))
	if n := p.rb.Expire(time.UnixMilli(p.now.Load())); n != 1 { // b's copy: idle 81 s > 2 × 40 s
		t.Fatalf("b expired %d sessions, want its replica", n)
	}
	if _, ok := p.ra.Find(id); !ok {
		t.Fatal("a lost a session idle 11 s: b's replica expiry removed it")
	}
	if st := p.rb.(interface{ Stats() cluster.ManagerStats }).Stats(); st.SessionsExpired != 1 {
		t.Fatalf("b's stats: %+v", st)
	}
	// a's own expiries, one limit after the last request, are told to b
	// (synchronously here), which drops its replica of U.a.
	request(t, p.ra, &session.Delta{ID: "U.a", Created: true, CreationTime: at(81), Accessed: at(81)}, true)
	p.now.Store(at(122))
	if n := p.ra.Expire(time.UnixMilli(p.now.Load())); n != 2 {
		t.Fatalf("a expired %d sessions, want 2", n)
	}
	if n := p.rb.Len(); n != 0 {
		t.Fatalf("b holds %d sessions after a's expiries, want 0", n)
	}
}

// TestDeltaReplicaExpiryDropsIdleSession is the seed documents' step 9: a
// session created on b and idle everywhere expires on a, which holds a
// replica (after twice its limit), and b drops it too, although b does not
// expire sessions itself. The expiry is sent synchronously here, so b has
// applied it when Expire returns.
func TestDeltaReplicaExpiryDropsIdleSession(t *testing.T) {
	p := startDeltaPair(t, "a", "b")
	id := request(t, p.rb, &session.Delta{ID: "S2.b", Created: true, CreationTime: at(0), Accessed: at(0)}, true)
	if n := p.ra.Len(); n != 1 {
		t.Fatalf("a holds %d sessions, want S2", n)
	}
	p.now.Store(at(79))
	if n := p.ra.Expire(time.UnixMilli(p.now.Load())); n != 0 {
		t.Fatalf("a expired %d sessions within twice the limit of its replica", n)
	}
	p.now.Store(at(81))
	if n := p.ra.Expire(time.UnixMilli(p.now.Load())); n != 1 {
		t.Fatalf("a expired %d sessions, want its replica of %s", n, id)
	}
	if n := p.rb.Len(); n != 0 {
		t.Fatalf("b holds %d sessions after a's replica of %s, idle on b too, expired", n, id)
	}
}

// TestDeltaCommitAfterRenameKeepsUpdate: a request that opened a session
// before another request's binder (or ChangeID) renamed it still commits
// its changes, to the renamed session, and they reach the other members
// under the new id; the request's client gets the new id. (Its commit
// used to fail with ErrNotFound, and the host answered 200 without
// applying or replicating the change.)
func TestDeltaCommitAfterRenameKeepsUpdate(t *testing.T) {
	p := startDeltaPair(t, "a", "b")
	id := request(t, p.ra, &session.Delta{ID: "S.x", Created: true, CreationTime: at(0), Accessed: at(0)}, true)
	var txn session.Txn
	txn.Reset(p.ra, session.Limits{}, id, time.UnixMilli(at(1)))
	if ok, err := txn.Open(false); !ok || err != nil {
		t.Fatalf("open: %v %v", ok, err)
	}
	if err := txn.Set("cart", []byte("3 items")); err != nil {
		t.Fatal(err)
	}
	rn := p.ra.(interface {
		Rename(context.Context, string, string) error
	})
	if err := rn.Rename(context.Background(), id, "S.a"); err != nil { // another request's
		t.Fatal(err)
	}
	d := txn.Delta()
	request(t, p.ra, d, true)
	if got := d.FinalID(); got != "S.a" {
		t.Fatalf("the delta's final id is %q, want S.a (the cookie the client gets)", got)
	}
	for name, r := range map[string]cluster.Replicator{"a": p.ra, "b": p.rb} {
		s, ok := r.Find("S.a")
		if !ok {
			t.Fatalf("%s does not hold S.a", name)
		}
		if v, _ := s.Get("cart"); string(v) != "3 items" {
			t.Fatalf("%s: cart = %q, want the in-flight request's update", name, v)
		}
		if n := r.Len(); n != 1 {
			t.Fatalf("%s holds %d sessions, want 1", name, n)
		}
	}
}
