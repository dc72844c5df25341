package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host/cluster"
	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
)

// BenchmarkReplicate measures the request-side cost of replicating one
// counter delta (a set of a short value) to one other member, asynchronous
// and synchronous, on the in-memory network; the other member applies it.
func BenchmarkReplicate(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts cluster.ManagerConfig
	}{
		{"async", cluster.DefaultManagerConfig(cluster.KindDelta)},
		{"sync", func() cluster.ManagerConfig {
			c := cluster.DefaultManagerConfig(cluster.KindDelta)
			c.SendOptions = cluster.SyncOptions
			return c
		}()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			net := tribestest.NewNetwork()
			a := startNode(b, net, "jvm_a", tc.opts)
			other := startNode(b, net, "jvm_b", tc.opts)
			_, id := a.get(b, "/counter/json", "")
			m := a.manager(b)
			d := session.Delta{ID: id, Ops: []session.Op{{Kind: session.OpSet, Key: "counter", Value: []byte("12345")}}}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				d.Accessed = time.Now().UnixMilli()
				if _, err := m.Replicate(ctx, &d); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			_ = other
		})
	}
}
