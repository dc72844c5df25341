package interceptors_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
)

// pipe is a channel with the given stack whose transport discards what it
// sends, and whose listener checks what it receives, for benchmarks and
// allocation tests. recv hands a message to the bottom of the stack.
type pipe struct {
	ch   *tribes.Channel
	tr   *memTransport
	to   []*tribes.Member
	last int // length of the last message sent or received
	got  int // messages that reached the listener
}

func newPipe(t testing.TB, ics ...tribes.Interceptor) *pipe {
	t.Helper()
	net := newMemNet()
	p := &pipe{tr: net.transport()}
	p.tr.sink = func(m *tribes.Message) { p.last = len(m.Data) }
	ch, err := tribes.New(tribes.Config{Transport: p.tr, Membership: newFakeMembership(), Interceptors: ics, HeartbeatInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ch.AddMessageListener(tribes.ListenerFunc(func(m *tribes.Message) error {
		p.last = len(m.Data)
		p.got++
		return nil
	}))
	if err := ch.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Stop(context.Background()) })
	p.ch = ch
	p.to = []*tribes.Member{{Host: hostOf(200), Port: 4000, SecurePort: -1, UDPPort: -1}}
	return p
}

func (p *pipe) send(tb testing.TB, data []byte, opts tribes.Options) {
	if err := p.ch.Send(context.Background(), p.to, data, opts); err != nil {
		tb.Fatal(err)
	}
}

func (p *pipe) recv(tb testing.TB, m *tribes.Message) {
	if err := p.tr.deliver(m); err != nil {
		tb.Fatal(err)
	}
}

// requireNoAllocs fails when fn allocates in steady state.
func requireNoAllocs(t *testing.T, fn func(tb testing.TB)) {
	t.Helper()
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector (it allocates, and sync.Pool drops items)")
	}
	for range 10 {
		fn(t) // fill the pools
	}
	// 100 ms per run (testing.Benchmark's 1 s default would make this test
	// slow) unless -test.benchtime was given.
	if fl := flag.Lookup("test.benchtime"); fl != nil && fl.Value.String() == fl.DefValue {
		fl.Value.Set("100ms")
		defer fl.Value.Set(fl.DefValue)
	}
	var failed testing.TB
	r := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fn(b)
		}
		if b.Failed() {
			failed = b
		}
	})
	if failed != nil {
		t.Fatal("the benchmarked function failed")
	}
	if a := r.AllocsPerOp(); a != 0 {
		t.Fatalf("%d allocations per call (%d B), want 0", a, r.AllocedBytesPerOp())
	}
}

func TestZeroAllocs(t *testing.T) {
	payload := bytes.Repeat([]byte("session attribute data "), 200) // 4.6 KB
	src := &tribes.Member{Host: hostOf(100), Port: 4000, SecurePort: -1, UDPPort: -1}

	t.Run("gzip send", func(t *testing.T) {
		p := newPipe(t, mustGzip(t, interceptors.GzipConfig{}))
		requireNoAllocs(t, func(tb testing.TB) { p.send(tb, payload, 0) })
	})
	t.Run("gzip receive", func(t *testing.T) {
		p := newPipe(t, mustGzip(t, interceptors.GzipConfig{}))
		m := msgFrom(src, tribes.DefaultGzipFlag, gzipBytes(t, payload))
		requireNoAllocs(t, func(tb testing.TB) {
			p.recv(tb, m)
			if p.last != len(payload) {
				tb.Fatalf("received %d bytes", p.last)
			}
		})
	})
	t.Run("encrypt send", func(t *testing.T) {
		p := newPipe(t, mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: key128}))
		requireNoAllocs(t, func(tb testing.TB) { p.send(tb, payload, 0) })
	})
	t.Run("encrypt seal and receive", func(t *testing.T) {
		e := mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: key128})
		p := newPipe(t, e)
		m := msgFrom(src, 0, make([]byte, len(payload)+interceptors.EncryptOverhead))
		sealed := m.Data
		requireNoAllocs(t, func(tb testing.TB) {
			if err := interceptors.EncryptSeal(e, sealed, time.Now().UnixMilli(), payload); err != nil {
				tb.Fatal(err)
			}
			m.Data = sealed
			p.recv(tb, m)
			if p.last != len(payload) {
				tb.Fatalf("received %d bytes", p.last)
			}
		})
	})
	t.Run("order send", func(t *testing.T) {
		p := newPipe(t, interceptors.NewOrder(interceptors.OrderConfig{}))
		requireNoAllocs(t, func(tb testing.TB) { p.send(tb, payload, 0) })
	})
	t.Run("order receive in order", func(t *testing.T) {
		p := newPipe(t, interceptors.NewOrder(interceptors.OrderConfig{}))
		m := msgFrom(src, 0, interceptors.AppendSeq(bytes.Clone(payload), 0))
		data := m.Data
		seq := uint32(0)
		requireNoAllocs(t, func(tb testing.TB) {
			seq++
			binary.BigEndian.PutUint32(data[len(payload):], seq)
			p.recv(tb, m)
			if p.last != len(payload) {
				tb.Fatalf("received %d bytes", p.last)
			}
		})
	})
	t.Run("fragmentation send whole", func(t *testing.T) {
		p := newPipe(t, interceptors.NewFragmentation(interceptors.FragmentationConfig{}))
		requireNoAllocs(t, func(tb testing.TB) { p.send(tb, payload, 0) })
	})
	t.Run("fragmentation send split", func(t *testing.T) {
		p := newPipe(t, interceptors.NewFragmentation(interceptors.FragmentationConfig{MaxSize: 1000}))
		requireNoAllocs(t, func(tb testing.TB) { p.send(tb, payload, 0) })
	})
	t.Run("fragmentation receive whole", func(t *testing.T) {
		p := newPipe(t, interceptors.NewFragmentation(interceptors.FragmentationConfig{}))
		m := msgFrom(src, 0, append(bytes.Clone(payload), 0))
		requireNoAllocs(t, func(tb testing.TB) { p.recv(tb, m) })
	})
	t.Run("pass-through receive", func(t *testing.T) {
		static, err := interceptors.NewStaticMembership(interceptors.StaticMembershipConfig{})
		if err != nil {
			t.Fatal(err)
		}
		df, err := interceptors.NewDomainFilter(interceptors.DomainFilterConfig{})
		if err != nil {
			t.Fatal(err)
		}
		p := newPipe(t, interceptors.NewThroughput(interceptors.ThroughputConfig{}), df,
			interceptors.NewTCPPing(interceptors.TCPPingConfig{}), static)
		m := msgFrom(src, 0, payload)
		requireNoAllocs(t, func(tb testing.TB) {
			p.got = 0
			p.recv(tb, m)
			if p.got != 1 {
				tb.Fatal("the message did not reach the listener")
			}
		})
	})
	t.Run("full stack send", func(t *testing.T) {
		p := newPipe(t, fullStack(t)...)
		requireNoAllocs(t, func(tb testing.TB) { p.send(tb, payload, 0) })
	})
}

// fullStack is every byte-changing interceptor, in Tomcat's documented
// order, plus the pass-through ones.
func fullStack(t testing.TB) []tribes.Interceptor {
	df, err := interceptors.NewDomainFilter(interceptors.DomainFilterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return []tribes.Interceptor{
		interceptors.NewThroughput(interceptors.ThroughputConfig{}),
		df,
		interceptors.NewOrder(interceptors.OrderConfig{}),
		interceptors.NewFragmentation(interceptors.FragmentationConfig{}),
		mustGzip(t, interceptors.GzipConfig{}),
		mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: key128}),
		interceptors.NewTCPPing(interceptors.TCPPingConfig{}),
	}
}
