package interceptors

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// DefaultPingInterval is how often a [TCPPing] with UseThread pings
// (Tribes' interval).
const DefaultPingInterval = 1000 * time.Millisecond

// tcpPingData is the payload of TcpPingInterceptor's messages (spec §9).
var tcpPingData = [64]byte{
	0x4f, 0xa7, 0x73, 0x48, 0x79, 0xdf, 0x43, 0xc9, 0x9f, 0x6f, 0x89, 0x80, 0xa1, 0x5b, 0x07, 0x14,
	0x7d, 0xd9, 0x52, 0x5b, 0xeb, 0xdf, 0x43, 0x9a, 0xb7, 0x7e, 0xbe, 0x8f, 0x81, 0x67, 0x1e, 0xb6,
	0x37, 0x15, 0xbe, 0x87, 0x45, 0x21, 0x4c, 0xa8, 0xbf, 0x0a, 0x4d, 0x13, 0x53, 0x38, 0x15, 0x32,
	0x55, 0xf6, 0x94, 0xb7, 0x3a, 0xdf, 0x21, 0x78, 0x91, 0x04, 0x7d, 0xd7, 0x72, 0x84, 0xc0, 0xd5,
}

// IsPing reports whether b is the 64-byte TCP_PING_DATA payload that
// TcpPingInterceptor sends (spec §9), which receivers drop.
func IsPing(b []byte) bool { return bytes.Equal(b, tcpPingData[:]) }

// TCPPingConfig configures a [TCPPing] interceptor. The zero value of every
// field means its default.
type TCPPingConfig struct {
	// OptionFlag is both the options of the pings and the gate for
	// recognising received ones (optionFlag, default 0: no byte-message
	// flag, no ACK; every message is checked).
	OptionFlag tribes.Options
	// UseThread pings every Interval from a goroutine of its own instead
	// of at every channel heartbeat (useThread).
	UseThread bool
	// Interval is the ping period with UseThread (interval, default 1 s).
	Interval time.Duration
	// StaticOnly pings only the configured members of a [StaticMembership]
	// below this interceptor, but those that sent MEMBER_STOP (staticOnly).
	StaticOnly bool
	// Logger receives the logs; nil means the channel's logger.
	Logger *slog.Logger
}

// TCPPingStats are a [TCPPing] interceptor's counters.
type TCPPingStats struct {
	Rounds        int64 // ping rounds that had members to ping
	Pings         int64 // ping messages, one per member
	Failures      int64 // rounds whose send failed for some member
	PingsReceived int64 // received pings dropped
}

// TCPPing is Tribes' TcpPingInterceptor: it keeps TCP traffic flowing to
// every member so that a dead one is noticed even without heartbeats
// (static membership). At every channel heartbeat (or every Interval with
// UseThread) it sends each member, as one message through the rest of the
// stack below it (so gzipped or encrypted if those sit below), the 64-byte
// TCP_PING_DATA with options OptionFlag. A failed send to a member makes a
// [tribes.FailureDetector] below probe it and drop it if it is gone; Java
// instead asks its TcpFailureDetector for a forced check, which the
// FailureDetector's API does not offer, with the same outcome.
//
// Received pings (checked when OptionFlag gates the message in) are dropped
// here, so place it above the interceptors that transform the bytes on
// every node; the receiver still acknowledges them as their options ask.
type TCPPing struct {
	tribes.BaseInterceptor
	cfg  TCPPingConfig
	run  stopper
	data [64]byte // this interceptor's copy of the payload
	warn rateLimit

	rounds, pings, failures, received atomic.Int64
}

var (
	_ tribes.Interceptor = (*TCPPing)(nil)
	_ tribes.Starter     = (*TCPPing)(nil)
)

// NewTCPPing returns a ping interceptor.
func NewTCPPing(cfg TCPPingConfig) *TCPPing {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultPingInterval
	}
	return &TCPPing{cfg: cfg, data: tcpPingData, warn: rateLimit{period: dropLogPeriod}}
}

// Stats returns the counters.
func (p *TCPPing) Stats() TCPPingStats {
	return TCPPingStats{Rounds: p.rounds.Load(), Pings: p.pings.Load(), Failures: p.failures.Load(),
		PingsReceived: p.received.Load()}
}

// Start starts the ping goroutine with UseThread.
func (p *TCPPing) Start(ctx context.Context) error {
	if p.cfg.UseThread {
		p.run.goFn(func(ctx context.Context) {
			t := time.NewTicker(p.cfg.Interval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					p.Ping(ctx)
				}
			}
		})
	}
	return nil
}

// Stop stops the ping goroutine and waits for a round in progress.
func (p *TCPPing) Stop(ctx context.Context) error { return p.run.stop(ctx) }

// Heartbeat passes the heartbeat down, then pings (unless UseThread).
func (p *TCPPing) Heartbeat() {
	p.Next().Heartbeat()
	if !p.cfg.UseThread {
		p.Ping(p.run.context())
	}
}

// Ping sends one round of pings now: to the members the interceptors
// below see (or the static members below, with StaticOnly).
func (p *TCPPing) Ping(ctx context.Context) {
	ch := p.Channel()
	if ch == nil {
		return
	}
	var members []*tribes.Member
	if p.cfg.StaticOnly {
		ics := ch.Interceptors()
		i := slices.Index(ics, tribes.Interceptor(p))
		for _, ic := range ics[i+1:] {
			if s, ok := ic.(*StaticMembership); ok {
				members = s.configured()
				break
			}
		}
	} else {
		members = membersBelow(p, ch)
	}
	if len(members) == 0 {
		return
	}
	p.rounds.Add(1)
	p.pings.Add(int64(len(members)))
	msg := &tribes.Message{Options: p.cfg.OptionFlag, Timestamp: time.Now().UnixMilli(), UniqueID: tribes.NewUniqueID()}
	msg.Data = p.data[:]
	if err := p.Next().SendMessage(ctx, members, msg); err != nil {
		p.failures.Add(1)
		p.warn.warn(p.log(), "tribes ping: send failed", "err", err)
	}
}

// MessageReceived drops pings and passes everything else up.
func (p *TCPPing) MessageReceived(msg *tribes.Message) error {
	if tribes.Gated(p.cfg.OptionFlag, msg.Options) && IsPing(msg.Data) {
		p.received.Add(1)
		return nil
	}
	return p.Previous().MessageReceived(msg)
}

func (p *TCPPing) log() *slog.Logger { return logger(p.cfg.Logger, &p.BaseInterceptor) }
