package monitor

import (
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/farm"
	"github.com/wasmfarm/wasmfarm/host/cluster"
)

// fakeNode hands out snapshots of a two-app cluster member whose clock
// moves one second and whose counters grow on every call, as a busy node's
// would.
type fakeNode struct {
	calls atomic.Int64
}

var fakeStart = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// Snapshot returns the next snapshot (the first has call number 0).
func (f *fakeNode) Snapshot() Snapshot {
	return fakeSnapshot(f.calls.Add(1) - 1)
}

// fakeSnapshot is the snapshot of call number n.
func fakeSnapshot(n int64) Snapshot {
	return Snapshot{
		Time: fakeStart.Add(time.Hour + time.Duration(n)*time.Second),
		Node: Node{JvmRoute: "node1", Member: "tcp://127.0.0.1:4000", Ready: true, StartedAt: fakeStart, BadRequests: 3 + n, SlowClients: 1 + n},
		Members: []Member{
			{Name: "tcp://127.0.0.1:4001", JvmRoute: "node2", Apps: []string{"/cart", "/counter"}},
			{Name: "tcp://127.0.0.1:4002", JvmRoute: "node3", Apps: []string{"/counter"}},
		},
		Apps: []App{
			{Path: "/cart", Digest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", ActiveSessions: 17, Manager: &cluster.ManagerStats{
				Kind: cluster.KindBackup, ActiveSessions: 17, PrimarySessions: 9, Proxies: 4,
				SessionsCreated: 40 + n, SessionsExpired: 23, Replicated: 100 + 10*n, ReplicatedBytes: 64000 + 6400*n,
				Received: 50 + 5*n, ReceivedBytes: 32000 + 3200*n, Missing: 1, SendErrors: 2, Skipped: 3,
				Fetched: 4, Promoted: 5, StateTransferred: 1234, StateTransfer: 1500 * time.Millisecond,
				StateComplete: true, Ready: true,
			}},
			{Path: "/counter", Digest: "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752", ActiveSessions: 342, Manager: &cluster.ManagerStats{
				Kind: cluster.KindDelta, ActiveSessions: 342, PrimarySessions: 342,
				SessionsCreated: 400 + 2*n, SessionsExpired: 58, Replicated: 2000 + 20*n, ReplicatedBytes: 256000 + 2560*n,
				Received: 3000 + 30*n, ReceivedBytes: 384000 + 3840*n, StateTransfer: 250 * time.Millisecond,
				StateComplete: true, Ready: true,
			}},
			{Path: "/static", Digest: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", ActiveSessions: 0},
		},
		Valve: &ValveStatus{
			ValveStats: cluster.ValveStats{Requests: 5000 + 40*n, Filtered: 700, Replications: 4300 + 30*n, Failures: 2,
				Bytes: 550000 + 9000*n, Time: 2500 * time.Millisecond},
			Filter: `.*\.(gif|jpg|png|css|js)$`, JvmRouteRewrites: 6,
		},
		Cluster: &cluster.Stats{Received: 3100 + 35*n, Bad: 1, Ignored: 7, SendErrors: 3},
		Channel: &ChannelStatus{
			Interceptors: []string{"interceptors.Throughput", "interceptors.TcpFailureDetector", "interceptors.MessageDispatch"},
			Throughput:   true,
			TxMessages:   5000 + 30*n, TxBytes: 900000 + 9000*n, RxMessages: 4000 + 35*n, RxBytes: 700000 + 7000*n,
		},
		Deployer: &farm.Stats{Received: 80, Ignored: 2, DecodeErrors: 1, Unauthenticated: 1, Refused: 3,
			ChunksReceived: 40, BytesReceived: 3 << 20, TransfersCompleted: 3, TransfersCorrupt: 1, TransfersExpired: 1,
			Deploys: 4, DeployFailures: 1, Undeploys: 1, BytesSent: 2 << 20, WatchDeploys: 1, ManifestErrors: 1, SyncFetches: 2},
	}
}

// standaloneSnapshot is a node that is not a cluster member.
func standaloneSnapshot() Snapshot {
	return Snapshot{
		Time: fakeStart.Add(time.Minute),
		Node: Node{JvmRoute: "", Ready: true, StartedAt: fakeStart},
		Apps: []App{{Path: "/hello", Digest: "abcdef0123456789", ActiveSessions: 2}},
	}
}
