package bench

import (
	"context"
	"log/slog"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
)

// With TransportOptions.Channel the benchmark runs through full channels:
// the sender and every receiver are tribes.Channels with the stack of the
// seed configurations (asynchronous dispatch, TCP failure detector,
// throughput counter) over the same NioTransport the bare cases use. The
// members are given to Send directly, so no membership traffic runs beside
// the measurement.

// sendFunc sends one message to the receivers.
type sendFunc func(ctx context.Context, to []*tribes.Member, msg *tribes.Message) error

// noMembership is a Membership with no members: the benchmark names the
// destinations itself.
type noMembership struct{}

func (noMembership) Start(context.Context, *tribes.Member, func(tribes.MemberEvent)) error {
	return nil
}
func (noMembership) Stop(context.Context) error { return nil }
func (noMembership) Members() []*tribes.Member  { return nil }

// benchChannel starts a channel on loopback for the benchmark.
func benchChannel(ctx context.Context, recv tribes.MessageListener, inline bool) (*tribes.Channel, error) {
	cfg := tribes.LocalConfig()
	cfg.Receiver.Inline = inline
	cfg.Membership = noMembership{}
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Interceptors = append(tribes.DefaultInterceptors(), interceptors.NewThroughput(interceptors.ThroughputConfig{}))
	ch, err := tribes.New(cfg)
	if err != nil {
		return nil, err
	}
	if recv != nil {
		ch.AddMessageListener(recv)
	}
	if err := ch.Start(ctx); err != nil {
		return nil, err
	}
	return ch, nil
}
