package bench

import (
	"context"
	"log/slog"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// With TransportOptions.Channel the benchmark runs through full channels:
// the sender and every receiver are tribes.Channels with the default stack
// (asynchronous dispatch, TCP failure detector) plus, when given, the
// interceptors of ExtraInterceptors, over the same NioTransport the bare
// cases use. The members are given to Send directly, so no membership
// traffic runs beside the measurement.

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

// ExtraInterceptors, when set, returns interceptors added below the default
// stack of channel cases (e.g. a throughput counter).
var ExtraInterceptors func() []tribes.Interceptor

// benchChannel starts a channel on loopback for the benchmark.
func benchChannel(ctx context.Context, recv tribes.MessageListener) (*tribes.Channel, error) {
	cfg := tribes.LocalConfig()
	cfg.Membership = noMembership{}
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Interceptors = tribes.DefaultInterceptors()
	if ExtraInterceptors != nil {
		cfg.Interceptors = append(cfg.Interceptors, ExtraInterceptors()...)
	}
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
