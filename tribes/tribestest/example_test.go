package tribestest_test

import (
	"context"
	"fmt"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
)

// Two channels on the in-memory network: a sends to b with a synchronized
// ACK, then b crashes.
func Example() {
	ctx := context.Background()
	net := tribestest.NewNetwork()
	var chans []*tribes.Channel
	for _, name := range []string{"a", "b"} {
		nd := net.NewNode()
		ch, err := tribes.New(tribes.Config{
			Transport:    nd.Transport(),
			Membership:   nd.Membership(),
			Interceptors: []tribes.Interceptor{}, // no failure detector: events pass at once
			Payload:      []byte(name),
		})
		if err != nil {
			panic(err)
		}
		ch.AddMessageListener(tribes.ListenerFunc(func(m *tribes.Message) error {
			fmt.Printf("%s got %q from %s\n", name, m.Data, m.Source.Payload)
			return nil
		}))
		ch.AddMembershipListener(tribes.MembershipFuncs{
			Added:       func(m *tribes.Member) { fmt.Printf("%s: %s joined\n", name, m.Payload) },
			Disappeared: func(m *tribes.Member) { fmt.Printf("%s: %s left\n", name, m.Payload) },
		})
		if err := ch.Start(ctx); err != nil {
			panic(err)
		}
		defer ch.Stop(ctx)
		chans = append(chans, ch)
	}
	err := chans[0].Send(ctx, nil, []byte("hello"), tribes.OptUseAck|tribes.OptSynchronizedAck)
	fmt.Println("send:", err)
	net.Nodes()[1].Crash()
	fmt.Println("a knows", len(chans[0].Members()), "member(s)")
	// Output:
	// a: b joined
	// b: a joined
	// b got "hello" from a
	// send: <nil>
	// a: b left
	// a knows 0 member(s)
}
