package cluster_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/wasmfarm/wasmfarm/host/cluster"
	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
)

// FuzzMessage feeds arbitrary bytes to a cluster with a delta manager and
// one with a backup manager: every message is applied or dropped and
// counted, never a panic.
func FuzzMessage(f *testing.F) {
	for _, s := range cluster.SeedMessages() {
		f.Add(s)
	}
	f.Add([]byte("WFS1"))
	f.Add([]byte("WFD1 farm message"))
	var clusters []*cluster.Cluster
	for _, kind := range []cluster.Kind{cluster.KindDelta, cluster.KindBackup} {
		// A network each: on one, the two clusters would exchange messages
		// of their own while a fuzz input is counted.
		nd := tribestest.NewNetwork().NewNode()
		ch, err := tribes.New(tribes.Config{Transport: nd.Transport(), Membership: nd.Membership(), Interceptors: []tribes.Interceptor{}})
		if err != nil {
			f.Fatal(err)
		}
		if err := ch.Start(context.Background()); err != nil {
			f.Fatal(err)
		}
		defer ch.Stop(context.Background())
		c, err := cluster.New(cluster.Config{Channel: ch, JvmRoute: "jvm_a", Manager: cluster.DefaultManagerConfig(kind)})
		if err != nil {
			f.Fatal(err)
		}
		defer c.Close()
		scfg := session.DefaultConfig()
		scfg.ExpireInterval = -1
		m, err := c.NewManager("/x", scfg)
		if err != nil {
			f.Fatal(err)
		}
		defer m.Close()
		clusters = append(clusters, c)
	}
	src := &tribes.Member{Host: netip.MustParseAddr("127.0.0.1"), Port: 1, SecurePort: -1, UDPPort: -1}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range clusters {
			before := c.Stats()
			msg := &tribes.Message{Source: src, Data: data}
			c.MessageReceived(msg) // an error is a FAIL_ACK, not a crash
			after := c.Stats()
			if len(data) >= 4 && string(data[:4]) == cluster.Magic && after.Received != before.Received+1 {
				t.Fatalf("message not counted: %+v -> %+v", before, after)
			}
		}
	})
}
