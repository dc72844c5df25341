package tribesconfig

import (
	"github.com/wasmfarm/wasmfarm/internal/serverxml"
	"github.com/wasmfarm/wasmfarm/tribes"
)

// Socket options of Tomcat's receiver and sender that wasmfarm leaves to
// the operating system.
var socketOptions = []string{"rxBufSize", "txBufSize", "udpRxBufSize", "udpTxBufSize", "soKeepAlive",
	"soLingerOn", "soLingerTime", "soReuseAddress", "soTrafficClass", "tcpNoDelay", "ooBInline"}

// nioReceiver maps NioReceiver (and the old BioReceiver) to
// tribes.ReceiverConfig.
func nioReceiver(b *serverxml.Binder, bd *Build) error {
	if bd.Class == BioReceiver {
		b.Warn("className", "the blocking BioReceiver (removed in Tomcat 9) is read as the NioReceiver; the wire format is the same")
	}
	r := &bd.Config.Receiver
	b.String("address", &r.Address)
	var port int
	if b.Int("port", &port) {
		switch {
		case port == 0:
			r.Port = tribes.AnyPort // Java binds a free port for port 0, as AnyPort does
		case port < 0 || port > 65535:
			b.Fail("port", nil, "port %d out of range 0..65535", port)
		default:
			r.Port = port
		}
	}
	if b.Int("autoBind", &r.AutoBind) && r.AutoBind <= 0 {
		r.AutoBind = 1 // as ReceiverBase.setAutoBind does
	}
	atLeast(b, "maxThreads", 1, &r.MaxThreads)
	for _, p := range []struct{ name, why string }{
		{"securePort", "TLS between members is not supported: no secure port is opened and -1 is advertised"},
		{"udpPort", "UDP is not supported: no UDP port is opened and -1 is advertised, so other members send to this one by TCP"},
	} {
		var v int
		if b.Int(p.name, &v) && v != -1 {
			b.Warn(p.name, "%s", p.why)
		}
	}
	b.Ignore("the receiver runs on an epoll reactor with its own timeouts", "selectorTimeout", "timeout", "maxIdleTime")
	b.Ignore("the receiver has a fixed pool of maxThreads workers", "minThreads", "maxTasks")
	b.Ignore("buffers always come from wasmfarm's pool", "direct", "useBufferPool")
	b.Ignore("socket options are left to the operating system", socketOptions...)
	return nil
}

// replicationTransmitter maps ReplicationTransmitter and reads its
// <Transport> child; without one, the PooledParallelSender defaults apply.
func replicationTransmitter(b *serverxml.Binder, bd *Build) error {
	t := b.Child(KindTransport)
	if t == nil {
		return nil
	}
	tb := t.Bind()
	f, class, err := bd.Registry.Bind(tb, KindTransport, PooledParallelSender)
	if err == nil {
		sub := *bd
		sub.Class = class
		err = f(tb, &sub)
	}
	ws, derr := tb.Done()
	b.AddWarnings(ws...)
	b.AddError(derr)
	return err
}

// pooledParallelSender maps PooledParallelSender (and the old
// PooledMultiSender) to tribes.SenderConfig.
func pooledParallelSender(b *serverxml.Binder, bd *Build) error {
	if bd.Class == PooledMultiSender {
		b.Warn("className", "the blocking PooledMultiSender (removed in Tomcat 9) is read as the PooledParallelSender; the wire format is the same")
	}
	s := &bd.Config.Sender
	positive(b, "timeout", ms, &s.Timeout)
	var retries int
	if atLeast(b, "maxRetryAttempts", 0, &retries) {
		if retries == 0 {
			s.MaxRetryAttempts = -1 // never; 0 means the default in SenderConfig
		} else {
			s.MaxRetryAttempts = retries
		}
	}
	atLeast(b, "poolSize", 1, &s.PoolSize)
	positive(b, "maxWait", ms, &s.MaxWait)
	b.Bool("pooledAcks", &s.PooledAcks) // wasmfarm's: see tribes.SenderConfig.PooledAcks
	throw := true
	if b.Bool("throwOnFailedAck", &throw) && !throw {
		b.Warn("throwOnFailedAck", `"false" is not supported: a FAIL_ACK fails the send (after one resend); ignored`)
	}
	udp := false
	if b.Bool("udpBased", &udp) && udp {
		b.Warn("udpBased", `"true" is not supported: messages are sent by TCP; ignored`)
	}
	b.Ignore("connections stay open as long as the member is in the membership", "keepAliveCount", "keepAliveTime")
	b.Ignore("buffers always come from wasmfarm's pool", "directBuffer")
	b.Ignore("socket options are left to the operating system", socketOptions...)
	return nil
}
