package monitor_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/wasmfarm/wasmfarm/host/cluster"
	"github.com/wasmfarm/wasmfarm/host/monitor"
)

// A node hands the handler a function that describes it; Prometheus and
// the dashboard read the same snapshot.
func ExampleNewHandler() {
	started := time.Now()
	snapshot := func() monitor.Snapshot {
		return monitor.Snapshot{
			Time: time.Now(),
			Node: monitor.Node{JvmRoute: "node1", Member: "tcp://127.0.0.1:4000", Ready: true, StartedAt: started},
			Apps: []monitor.App{{Path: "/counter", ActiveSessions: 3, Manager: &cluster.ManagerStats{
				Kind: cluster.KindDelta, SessionsCreated: 5, Replicated: 12, Received: 7}}},
		}
	}
	h := monitor.NewHandler(monitor.HandlerConfig{Snapshot: snapshot})

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(w.Body.String(), "\n") {
		if strings.HasPrefix(line, "wasmfarm_sessions") || strings.HasPrefix(line, "wasmfarm_replication_messages") {
			fmt.Println(line)
		}
	}
	// Output:
	// wasmfarm_replication_messages_total{app="/counter",direction="received"} 7
	// wasmfarm_replication_messages_total{app="/counter",direction="sent"} 12
	// wasmfarm_sessions_active{app="/counter"} 3
	// wasmfarm_sessions_created_total{app="/counter"} 5
	// wasmfarm_sessions_expired_total{app="/counter"} 0
}
