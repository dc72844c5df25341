package interceptors_test

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
)

// slowInterceptor makes every send below it take d on the clock.
type slowInterceptor struct {
	tribes.BaseInterceptor
	clk *fakeClock
	d   time.Duration
}

func (s *slowInterceptor) SendMessage(ctx context.Context, to []*tribes.Member, msg *tribes.Message) error {
	s.clk.Advance(s.d)
	return s.Next().SendMessage(ctx, to, msg)
}

func TestThroughput(t *testing.T) {
	var logs bytes.Buffer
	clk := newFakeClock(time.Unix(1000, 0))
	ta := interceptors.NewThroughput(interceptors.ThroughputConfig{Interval: 2, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	interceptors.SetThroughputClock(ta, clk.Now)
	tb := interceptors.NewThroughput(interceptors.ThroughputConfig{})
	interceptors.SetThroughputClock(tb, clk.Now)
	net := newMemNet()
	a := newNode(t, net, nil, ta, &slowInterceptor{clk: clk, d: 250 * time.Millisecond})
	b := newNode(t, net, nil, tb)
	c := newNode(t, net, nil)

	mib := make([]byte, 1<<20)
	a.mustSend(t, mib, 0, b.local(), c.local())
	a.mustSend(t, mib, 0, b.local())
	if err := a.send(t, []byte("x"), 0, &tribes.Member{Host: netipAddr(7), Port: 1, SecurePort: -1, UDPPort: -1}); err == nil {
		t.Fatal("send to an unknown member succeeded")
	}
	s := ta.Stats()
	want := interceptors.ThroughputStats{TxMessages: 3, TxErrors: 1, TxBytes: 3<<20 + 1, TxAppBytes: 2<<20 + 1, TxTime: 750 * time.Millisecond}
	if s != want {
		t.Fatalf("sender stats\n got %+v\nwant %+v", s, want)
	}
	if got := s.TxMBps(); math.Abs(got-4) > 0.01 {
		t.Fatalf("TxMBps = %v, want 4 (3 MiB in 0.75 s)", got)
	}
	rs := tb.Stats()
	if rs.RxMessages != 2 || rs.RxBytes != 2<<20 || !rs.RxStart.Equal(time.Unix(1000, 0).Add(250*time.Millisecond)) {
		t.Fatalf("receiver stats %+v", rs)
	}
	clk.Advance(500 * time.Millisecond)
	if got := rs.RxMBps(clk.Now()); math.Abs(got-2/(1.0)) > 0.01 {
		t.Fatalf("RxMBps = %v, want 2", got)
	}
	if n := strings.Count(logs.String(), "tribes throughput"); n != 1 {
		t.Fatalf("%d reports after 3 messages with interval 2:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "tx_msgs=2") {
		t.Fatalf("report: %s", logs.String())
	}
}

func TestThroughputReportEvery(t *testing.T) {
	var logs bytes.Buffer
	clk := newFakeClock(time.Unix(1000, 0))
	tp := interceptors.NewThroughput(interceptors.ThroughputConfig{ReportEvery: time.Minute, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	interceptors.SetThroughputClock(tp, clk.Now)
	a := newNode(t, newMemNet(), nil, tp)
	a.heartbeat()
	clk.Advance(59 * time.Second)
	a.heartbeat()
	if logs.Len() != 0 {
		t.Fatalf("report before a minute: %s", logs.String())
	}
	clk.Advance(time.Second)
	a.heartbeat()
	a.heartbeat()
	if n := strings.Count(logs.String(), "tribes throughput"); n != 1 {
		t.Fatalf("%d reports, want 1", n)
	}
}
