package tribestest_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
)

// TestChannelsWithDefaultStack runs three channels with the default
// interceptors (failure detector, async dispatch) on the in-memory network,
// on synctest's clock: join (after the failure detector's probe), messages
// with each kind of ACK, a FAIL_ACK, a partition and a crash.
func TestChannelsWithDefaultStack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := tribestest.NewNetwork()
		type node struct {
			nd  *tribestest.Node
			ch  *tribes.Channel
			mu  sync.Mutex
			got []string
		}
		var nodes []*node
		for _, name := range []string{"a", "b", "c"} {
			n := &node{nd: net.NewNode()}
			ch, err := tribes.New(tribes.Config{Transport: n.nd.Transport(), Membership: n.nd.Membership(), Payload: []byte(name)})
			if err != nil {
				t.Fatal(err)
			}
			n.ch = ch
			ch.AddMessageListener(tribes.ListenerFunc(func(m *tribes.Message) error {
				n.mu.Lock()
				n.got = append(n.got, string(m.Data))
				n.mu.Unlock()
				if string(m.Data) == "fail" {
					return errors.New("refused")
				}
				return nil
			}))
			if err := ch.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			defer ch.Stop(context.Background())
			nodes = append(nodes, n)
		}
		synctest.Wait()
		names := func(n *node) []string {
			var s []string
			for _, m := range n.ch.Members() {
				s = append(s, string(m.Payload))
			}
			slices.Sort(s)
			return s
		}
		for i, want := range [][]string{{"b", "c"}, {"a", "c"}, {"a", "b"}} {
			if got := names(nodes[i]); !slices.Equal(got, want) {
				t.Fatalf("node %d members %v, want %v", i, got, want)
			}
		}
		a := nodes[0].ch
		for _, opts := range []tribes.Options{0, tribes.OptAsynchronous, tribes.OptUseAck, tribes.OptUseAck | tribes.OptSynchronizedAck} {
			if err := a.Send(t.Context(), nil, []byte(opts.String()), opts); err != nil {
				t.Fatalf("send with %v: %v", opts, err)
			}
		}
		err := a.Send(t.Context(), nil, []byte("fail"), tribes.OptUseAck|tribes.OptSynchronizedAck)
		if !errors.Is(err, tribes.ErrFailAck) {
			t.Fatalf("send to refusing listeners: %v", err)
		}
		synctest.Wait()
		want := []string{"0", "asynchronous", "use_ack", "use_ack|synchronized_ack", "fail", "fail"}
		for _, n := range nodes[1:] {
			n.mu.Lock()
			if !slices.Equal(n.got, want) {
				t.Fatalf("received %q, want %q", n.got, want)
			}
			n.mu.Unlock()
		}

		// Partition a from b: both sides drop the other.
		net.Partition(nodes[0].nd, nodes[1].nd)
		time.Sleep(5 * time.Second) // probes over the cut link time out
		synctest.Wait()
		if got := names(nodes[0]); !slices.Equal(got, []string{"c"}) {
			t.Fatalf("a's members during the partition: %v", got)
		}
		net.Heal(nodes[0].nd, nodes[1].nd)
		synctest.Wait()
		if got := names(nodes[0]); !slices.Equal(got, []string{"b", "c"}) {
			t.Fatalf("a's members after healing: %v", got)
		}

		// Crash c.
		nodes[2].nd.Crash()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if got := names(nodes[0]); !slices.Equal(got, []string{"b"}) {
			t.Fatalf("a's members after c crashed: %v", got)
		}
		if err := a.Send(t.Context(), nil, []byte("after crash"), tribes.OptUseAck); err != nil {
			t.Fatalf("send after the crash: %v", err)
		}
	})
}
