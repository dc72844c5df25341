package monitor

import (
	"bytes"
	"context"
	"reflect"
	"testing"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
)

// Two members on the in-memory network: a message from a to b shows up
// as sent in a's ChannelStatus and as received in b's.
func TestNewChannelStatus(t *testing.T) {
	ctx := context.Background()
	net := tribestest.NewNetwork()
	start := func(ics ...tribes.Interceptor) *tribes.Channel {
		nd := net.NewNode()
		ch, err := tribes.New(tribes.Config{Transport: nd.Transport(), Membership: nd.Membership(), Interceptors: ics})
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ch.Stop(ctx) })
		return ch
	}
	gz, err := interceptors.NewGzip(interceptors.GzipConfig{})
	if err != nil {
		t.Fatal(err)
	}
	a := start(interceptors.NewThroughput(interceptors.ThroughputConfig{}), gz)
	gzb, err := interceptors.NewGzip(interceptors.GzipConfig{})
	if err != nil {
		t.Fatal(err)
	}
	b := start(gzb, interceptors.NewThroughput(interceptors.ThroughputConfig{}))
	plain := start() // none configured: the default stack

	msg := bytes.Repeat([]byte("session delta "), 100)
	if err := a.Send(ctx, []*tribes.Member{b.LocalMember()}, msg, tribes.OptUseAck|tribes.OptSynchronizedAck); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		ch   *tribes.Channel
		want ChannelStatus
	}{
		{"sender", a, ChannelStatus{Interceptors: []string{"interceptors.Throughput", "interceptors.Gzip"}, Throughput: true,
			TxMessages: 1, TxBytes: int64(len(msg))}},
		// Below the gzip layer, b's Throughput counts the compressed size.
		{"receiver", b, ChannelStatus{Interceptors: []string{"interceptors.Gzip", "interceptors.Throughput"}, Throughput: true,
			RxMessages: 1, RxBytes: -1}},
		{"default stack", plain, ChannelStatus{Interceptors: []string{"tribes.MessageDispatcher", "tribes.FailureDetector"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := *NewChannelStatus(tc.ch.Interceptors())
			if tc.want.RxBytes == -1 {
				if got.RxBytes <= 0 || got.RxBytes >= int64(len(msg)) {
					t.Errorf("RxBytes = %d, want the compressed size, under %d", got.RxBytes, len(msg))
				}
				tc.want.RxBytes = got.RxBytes
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
