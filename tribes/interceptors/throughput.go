package interceptors

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// DefaultThroughputInterval is how many messages a [Throughput] reports
// once for (Tribes' interval).
const DefaultThroughputInterval = 10000

// ThroughputConfig configures a [Throughput] interceptor. The zero value of
// every field means its default.
type ThroughputConfig struct {
	// Interval: a report is logged every Interval messages sent, and every
	// Interval messages received (interval, default 10000).
	Interval int
	// ReportEvery also logs a report at the first heartbeat after this
	// much time since the last report; 0 means only by message count.
	ReportEvery time.Duration
	// Logger receives the reports (at INFO); nil means the channel's
	// logger.
	Logger *slog.Logger
}

// ThroughputStats are a [Throughput] interceptor's counters. Bytes are
// message bytes as they pass this interceptor (below Gzip: compressed),
// without frame headers.
type ThroughputStats struct {
	TxMessages int64         // messages sent (passed down)
	TxErrors   int64         // sends that failed
	TxBytes    int64         // bytes sent, times the number of destinations
	TxAppBytes int64         // bytes sent, once per message
	TxTime     time.Duration // time spent sending (in the layers below)
	RxMessages int64
	RxBytes    int64
	RxStart    time.Time // first message received (zero before)
}

// TxMBps returns the send throughput in MiB/s of time spent sending.
func (s ThroughputStats) TxMBps() float64 { return mbps(s.TxBytes, s.TxTime) }

// RxMBps returns the receive throughput in MiB/s since the first message
// received, as of now.
func (s ThroughputStats) RxMBps(now time.Time) float64 {
	if s.RxStart.IsZero() {
		return 0
	}
	return mbps(s.RxBytes, now.Sub(s.RxStart))
}

func mbps(b int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(b) / (1 << 20) / d.Seconds()
}

// Throughput is Tribes' ThroughputInterceptor: it changes nothing on the
// wire, counts the messages and bytes passing through it in both
// directions and the time the sends below it take, and logs a report
// (messages, MiB, MiB/s) every Interval messages, or every ReportEvery.
// [Throughput.Stats] returns the counters.
type Throughput struct {
	tribes.BaseInterceptor
	cfg ThroughputConfig
	now func() time.Time

	txMsgs, txErrs, txBytes, txApp, txNanos atomic.Int64
	rxMsgs, rxBytes, rxStart                atomic.Int64
	lastReport                              atomic.Int64 // unix nanoseconds
}

var _ tribes.Interceptor = (*Throughput)(nil)

// NewThroughput returns a throughput interceptor.
func NewThroughput(cfg ThroughputConfig) *Throughput {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultThroughputInterval
	}
	t := &Throughput{cfg: cfg, now: time.Now}
	t.lastReport.Store(t.now().UnixNano())
	return t
}

// Stats returns the counters.
func (t *Throughput) Stats() ThroughputStats {
	s := ThroughputStats{
		TxMessages: t.txMsgs.Load(), TxErrors: t.txErrs.Load(), TxBytes: t.txBytes.Load(),
		TxAppBytes: t.txApp.Load(), TxTime: time.Duration(t.txNanos.Load()),
		RxMessages: t.rxMsgs.Load(), RxBytes: t.rxBytes.Load(),
	}
	if ns := t.rxStart.Load(); ns != 0 {
		s.RxStart = time.Unix(0, ns)
	}
	return s
}

// SendMessage times the send below and counts it.
func (t *Throughput) SendMessage(ctx context.Context, to []*tribes.Member, msg *tribes.Message) error {
	n := int64(len(msg.Data))
	start := t.now()
	err := t.Next().SendMessage(ctx, to, msg)
	t.txNanos.Add(int64(t.now().Sub(start)))
	t.txBytes.Add(n * int64(len(to)))
	t.txApp.Add(n)
	if err != nil {
		t.txErrs.Add(1)
	}
	if t.txMsgs.Add(1)%int64(t.cfg.Interval) == 0 {
		t.report()
	}
	return err
}

// MessageReceived counts msg and passes it up.
func (t *Throughput) MessageReceived(msg *tribes.Message) error {
	if t.rxStart.Load() == 0 {
		t.rxStart.CompareAndSwap(0, t.now().UnixNano())
	}
	t.rxBytes.Add(int64(len(msg.Data)))
	if t.rxMsgs.Add(1)%int64(t.cfg.Interval) == 0 {
		t.report()
	}
	return t.Previous().MessageReceived(msg)
}

// Heartbeat logs a report when ReportEvery has passed, then passes the
// heartbeat down.
func (t *Throughput) Heartbeat() {
	if t.cfg.ReportEvery > 0 && t.now().UnixNano()-t.lastReport.Load() >= int64(t.cfg.ReportEvery) {
		t.report()
	}
	t.Next().Heartbeat()
}

// report logs the counters.
func (t *Throughput) report() {
	now := t.now()
	t.lastReport.Store(now.UnixNano())
	s := t.Stats()
	const mib = 1 << 20
	logger(t.cfg.Logger, &t.BaseInterceptor).Info("tribes throughput",
		"tx_msgs", s.TxMessages, "tx_mb", float64(s.TxBytes)/mib, "tx_app_mb", float64(s.TxAppBytes)/mib,
		"tx_seconds", s.TxTime.Seconds(), "tx_mb_s", s.TxMBps(), "tx_errors", s.TxErrors,
		"rx_msgs", s.RxMessages, "rx_mb", float64(s.RxBytes)/mib, "rx_mb_s", s.RxMBps(now))
}
