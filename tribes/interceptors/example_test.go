package interceptors_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
)

// sizeMeter is an interceptor of our own: it prints the size of every
// message it passes down, at its place in the stack.
type sizeMeter struct {
	tribes.BaseInterceptor
	where string
}

func (s *sizeMeter) SendMessage(ctx context.Context, to []*tribes.Member, msg *tribes.Message) error {
	fmt.Printf("%s: %d bytes\n", s.where, len(msg.Data))
	return s.Next().SendMessage(ctx, to, msg)
}

// Two members on the in-memory network, both compressing and encrypting;
// the sender measures its messages above and below those two layers.
func Example() {
	ctx := context.Background()
	net := tribestest.NewNetwork()
	stack := func(extra ...tribes.Interceptor) []tribes.Interceptor {
		gz, err := interceptors.NewGzip(interceptors.GzipConfig{})
		if err != nil {
			panic(err)
		}
		enc, err := interceptors.NewEncrypt(interceptors.EncryptConfig{EncryptionKey: "000102030405060708090a0b0c0d0e0f"})
		if err != nil {
			panic(err)
		}
		return append([]tribes.Interceptor{gz, enc}, extra...)
	}
	start := func(ics []tribes.Interceptor) *tribes.Channel {
		nd := net.NewNode()
		ch, err := tribes.New(tribes.Config{Transport: nd.Transport(), Membership: nd.Membership(), Interceptors: ics})
		if err != nil {
			panic(err)
		}
		if err := ch.Start(ctx); err != nil {
			panic(err)
		}
		return ch
	}

	a := start(append([]tribes.Interceptor{&sizeMeter{where: "application"}}, stack(&sizeMeter{where: "wire"})...))
	defer a.Stop(ctx)
	b := start(stack())
	defer b.Stop(ctx)
	b.AddMessageListener(tribes.ListenerFunc(func(m *tribes.Message) error {
		fmt.Printf("b got %d bytes: %.16q...\n", len(m.Data), m.Data)
		return nil
	}))

	msg := bytes.Repeat([]byte("hello, cluster! "), 64)
	if err := a.Send(ctx, nil, msg, tribes.OptUseAck|tribes.OptSynchronizedAck); err != nil {
		panic(err)
	}
	// Output:
	// application: 1024 bytes
	// wire: 81 bytes
	// b got 1024 bytes: "hello, cluster! "...
}
