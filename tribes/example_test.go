package tribes_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
)

// ExampleChannel runs two members on an in-memory network: b's listener
// answers a synchronous message from a.
func ExampleChannel() {
	ctx := context.Background()
	net := tribestest.NewNetwork()
	nodeA, nodeB := net.NewNode(), net.NewNode()
	a, _ := tribes.New(tribes.Config{Transport: nodeA.Transport(), Membership: nodeA.Membership()})
	b, _ := tribes.New(tribes.Config{Transport: nodeB.Transport(), Membership: nodeB.Membership()})

	b.AddMessageListener(tribes.ListenerFunc(func(m *tribes.Message) error {
		fmt.Printf("b got %q with options %v\n", m.Data, m.Options)
		return nil
	}))
	a.Start(ctx)
	b.Start(ctx)
	defer a.Stop(ctx)
	defer b.Stop(ctx)
	a.AwaitMembers(ctx, 1) // b, once the failure detector has probed it

	err := a.Send(ctx, nil, []byte("hello"), tribes.OptUseAck|tribes.OptSynchronizedAck)
	fmt.Println("a's send returned", err, "after b processed it")
	// Output:
	// b got "hello" with options byte_message|use_ack|synchronized_ack
	// a's send returned <nil> after b processed it
}

// Counter is a user's own interceptor: it counts the messages going down
// and coming up its channel's stack, and passes them on.
type Counter struct {
	tribes.BaseInterceptor
	sent, received atomic.Int64
}

func (c *Counter) SendMessage(ctx context.Context, to []*tribes.Member, msg *tribes.Message) error {
	c.sent.Add(1)
	return c.Next().SendMessage(ctx, to, msg)
}

func (c *Counter) MessageReceived(msg *tribes.Message) error {
	c.received.Add(1)
	return c.Previous().MessageReceived(msg)
}

// ExampleInterceptor puts a user's interceptor on top of the default stack.
func ExampleInterceptor() {
	ctx := context.Background()
	net := tribestest.NewNetwork()
	counters := map[string]*Counter{"a": {}, "b": {}}
	channels := map[string]*tribes.Channel{}
	for _, name := range []string{"a", "b"} {
		node := net.NewNode()
		ch, err := tribes.New(tribes.Config{
			Transport:    node.Transport(),
			Membership:   node.Membership(),
			Interceptors: append([]tribes.Interceptor{counters[name]}, tribes.DefaultInterceptors()...),
		})
		if err != nil {
			panic(err)
		}
		channels[name] = ch
	}
	var wg sync.WaitGroup
	wg.Add(3)
	channels["b"].AddMessageListener(tribes.ListenerFunc(func(*tribes.Message) error { wg.Done(); return nil }))
	for _, ch := range channels {
		ch.Start(ctx)
		defer ch.Stop(ctx)
	}
	channels["a"].AwaitMembers(ctx, 1)
	for range 3 {
		channels["a"].Send(ctx, nil, []byte("tick"), tribes.OptUseAck)
	}
	wg.Wait()
	fmt.Println("a sent", counters["a"].sent.Load(), "and received", counters["a"].received.Load())
	fmt.Println("b sent", counters["b"].sent.Load(), "and received", counters["b"].received.Load())
	// Output:
	// a sent 3 and received 0
	// b sent 0 and received 3
}
