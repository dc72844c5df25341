package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host/cluster"
	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
)

// putSessions commits sessions id0.a, id1.a, ... on m, each holding one
// value of the given size.
func putSessions(t *testing.T, m session.Manager, prefix string, n, size int) {
	t.Helper()
	val := bytes.Repeat([]byte{'v'}, size)
	for i := range n {
		d := &session.Delta{ID: fmt.Sprintf("%s%d.a", prefix, i), Created: true, CreationTime: 1, Accessed: time.Now().UnixMilli(),
			Ops: []session.Op{{Kind: session.OpSet, Key: "v", Value: val}}}
		if err := m.Commit(d); err != nil {
			t.Fatal(err)
		}
	}
}

// stateCluster starts a cluster with a delta manager config whose state
// transfer gives up after a few seconds (the tests' joiners never wait
// that long when the transfer works).
func stateCluster(t *testing.T, ch *tribes.Channel, route string) *cluster.Cluster {
	t.Helper()
	mc := cluster.DefaultManagerConfig(cluster.KindDelta)
	mc.StateTransferTimeout = 2 * time.Second
	c, err := cluster.New(cluster.Config{Channel: ch, JvmRoute: route, Manager: mc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newManager(t *testing.T, c *cluster.Cluster, cfg session.Config) session.Manager {
	t.Helper()
	cfg.ExpireInterval = -1
	m, err := c.NewManager("/x", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func stats(m session.Manager) cluster.ManagerStats {
	return m.(interface{ Stats() cluster.ManagerStats }).Stats()
}

// TestStateTransferBlocksFitTheChannel: a state-transfer block that would
// pass the channel's message limit is cut into smaller ones, though each
// session is within the session limits; the joiner gets every session.
// (The sender used to give up with a SizeError, untold, and the joiner
// waited StateTransferTimeout and started without the sessions.)
func TestStateTransferBlocksFitTheChannel(t *testing.T) {
	net := tribestest.New(tribestest.Config{MaxMessageSize: 1 << 20})
	cha, chb := startChannel(t, net.NewNode()), startChannel(t, net.NewNode())
	eventually(t, "the channels meet", func() bool { return len(cha.Members()) == 1 && len(chb.Members()) == 1 })
	ca, cb := stateCluster(t, cha, "a"), stateCluster(t, chb, "b")
	ma := newManager(t, ca, session.Config{JvmRoute: "a"})
	putSessions(t, ma, "S", 9, 200<<10) // 1.8 MiB in all
	mb := newManager(t, cb, session.Config{JvmRoute: "b"})
	if st := stats(mb); mb.Len() != 9 || !st.StateComplete {
		t.Fatalf("joiner holds %d of 9 sessions, state transfer complete: %v", mb.Len(), st.StateComplete)
	}
}

// TestStateTransferBlocksCutBySize: blocks stay within the size bound
// (the cluster decoder's limit, lowered here), and a session that alone
// passes it is left out rather than stopping the transfer.
func TestStateTransferBlocksCutBySize(t *testing.T) {
	defer cluster.SetStateBlockBytes(700 << 10)()
	net := tribestest.NewNetwork()
	cha, chb := startChannel(t, net.NewNode()), startChannel(t, net.NewNode())
	eventually(t, "the channels meet", func() bool { return len(cha.Members()) == 1 && len(chb.Members()) == 1 })
	ca, cb := stateCluster(t, cha, "a"), stateCluster(t, chb, "b")
	ma := newManager(t, ca, session.Config{JvmRoute: "a"})
	putSessions(t, ma, "S", 9, 200<<10) // three fit in a block
	putSessions(t, ma, "Big", 1, 800<<10)
	mb := newManager(t, cb, session.Config{JvmRoute: "b"})
	if st := stats(mb); mb.Len() != 9 || !st.StateComplete {
		t.Fatalf("joiner holds %d sessions, want the 9 small ones; state transfer complete: %v", mb.Len(), st.StateComplete)
	}
	if _, ok := mb.Find("Big0.a"); ok {
		t.Fatal("the session over the bound was sent")
	}
	// Blocks of at most 3 sessions (a counts a block after its ack, which
	// may come after the joiner finished).
	eventually(t, "a counts 3 blocks or more", func() bool { return stats(ma).Replicated >= 3 })
}

// TestStateTransferMovesOnAfterFailedBlock: when the joiner cannot store
// what the oldest member sends (here a session beyond its own limits), it
// asks the next member at once instead of waiting StateTransferTimeout.
func TestStateTransferMovesOnAfterFailedBlock(t *testing.T) {
	net := tribestest.NewNetwork()
	cha := startChannel(t, net.NewNode())
	chc := startChannel(t, net.NewNode())
	eventually(t, "a and c meet", func() bool { return len(cha.Members()) == 1 && len(chc.Members()) == 1 })
	ca, cc := stateCluster(t, cha, "a"), stateCluster(t, chc, "c")
	ma, mc := newManager(t, ca, session.Config{JvmRoute: "a"}), newManager(t, cc, session.Config{JvmRoute: "c"})
	putSessions(t, ma, "S", 3, 10) // on a only (not replicated)
	putSessions(t, ma, "Big", 1, 4<<10)
	putSessions(t, mc, "T", 5, 10) // on c only
	chb := startChannel(t, net.NewNode())
	eventually(t, "b meets a and c", func() bool { return len(chb.Members()) == 2 })
	// a counts a block after its ack, which may come after the joiner
	// finished: wait for the count of c's state transfer.
	eventually(t, "a counts c's block", func() bool { return stats(ma).Replicated == 1 })
	cb := stateCluster(t, chb, "b")
	mb := newManager(t, cb, session.Config{JvmRoute: "b", Limits: session.Limits{MaxValueBytes: 1 << 10}})
	eventually(t, "b asked a, the oldest, first", func() bool { return stats(ma).Replicated == 2 })
	if st := stats(mb); !st.StateComplete || mb.Len() < 5 {
		t.Fatalf("joiner holds %d sessions, state transfer complete: %v; want c's 5 and complete", mb.Len(), st.StateComplete)
	}
	for i := range 5 {
		if _, ok := mb.Find(fmt.Sprintf("T%d.a", i)); !ok {
			t.Fatalf("c's session T%d.a missing on b", i)
		}
	}
}

// TestCloseEndsStateTransferWait: the only other member never answers the
// joiner's request for sessions (its reply is held). Closing the joiner's
// cluster (a node stopping while it starts) must end NewManager's wait
// instead of leaving it to StateTransferTimeout (a minute here).
func TestCloseEndsStateTransferWait(t *testing.T) {
	const typeAllData byte = 5
	hold := newHoldOne(typeAllData, true)
	defer close(hold.release)
	net := tribestest.NewNetwork()
	na := net.NewNode()
	cha, err := tribes.New(tribes.Config{Transport: na.Transport(), Membership: na.Membership(), Interceptors: []tribes.Interceptor{hold}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cha.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cha.Stop(context.Background()) })
	chb := startChannel(t, net.NewNode())
	eventually(t, "the channels meet", func() bool { return len(cha.Members()) == 1 && len(chb.Members()) == 1 })
	ca := stateCluster(t, cha, "a")
	newManager(t, ca, session.Config{JvmRoute: "a"})
	mc := cluster.DefaultManagerConfig(cluster.KindDelta)
	mc.StateTransferTimeout = time.Minute
	cb, err := cluster.New(cluster.Config{Channel: chb, JvmRoute: "b", Manager: mc})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "b knows a runs /x", func() bool {
		p := cb.Peers()
		return len(p) == 1 && len(p[0].Contexts) == 1
	})
	hold.armed.Store(true)
	returned := make(chan error, 1)
	go func() {
		m, err := cb.NewManager("/x", session.Config{JvmRoute: "b", ExpireInterval: -1})
		if err == nil {
			m.Close()
		}
		returned <- err
	}()
	waitClosed(hold.held) // a's answer is on hold: b waits
	cb.Close()
	select {
	case <-returned:
	case <-time.After(20 * time.Second): // far less than StateTransferTimeout, far more than it takes
		t.Fatal("NewManager still waits for the state transfer 20 s after Close")
	}
}
