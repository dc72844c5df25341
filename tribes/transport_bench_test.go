package tribes

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkSendReceive measures the in-process send/receive path over
// loopback TCP: one Sender, one Receiver, the modes of "wasmfarm bench
// transport". Allocations are those of both sides together.
func BenchmarkSendReceive(b *testing.B) {
	modes := []struct {
		name string
		opts Options
	}{
		{"async", OptByteMessage | OptAsynchronous},
		{"ack", OptByteMessage | OptUseAck},
		{"sync", OptByteMessage | OptUseAck | OptSynchronizedAck},
	}
	for _, mode := range modes {
		for _, size := range []int{100, 1 << 10, 64 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("%s/%d", mode.name, size), func(b *testing.B) {
				got, to := countingReceiver(b)
				s, err := NewSender(SenderConfig{}, testMember(1))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				msg := &Message{Options: mode.opts, Data: make([]byte, size)}
				ctx := context.Background()
				for range 100 { // warm up connections and pools
					msg.UniqueID, msg.Timestamp = UniqueID{}, 0
					if err := s.Send(ctx, to, msg); err != nil {
						b.Fatal(err)
					}
				}
				for got.Load() < 100 {
					time.Sleep(time.Millisecond)
				}
				got.Store(0)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					msg.UniqueID, msg.Timestamp = UniqueID{}, 0
					if err := s.Send(ctx, to, msg); err != nil {
						b.Fatal(err)
					}
				}
				for got.Load() < int64(b.N) {
					time.Sleep(50 * time.Microsecond)
				}
			})
		}
	}
}

// BenchmarkRawTCPRoundTrip is the physical limit of BenchmarkSendReceive's
// ack mode: a 1 KiB write answered by 21 bytes over plain net.Conns.
func BenchmarkRawTCPRoundTrip(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 1024)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(ackFrame[:]); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg, ack := make([]byte, 1024), make([]byte, len(ackFrame))
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c.Write(msg)
		if _, err := io.ReadFull(c, ack); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendParallel sends 100-byte messages from GOMAXPROCS goroutines
// at once through one NioTransport to one member, as the request
// goroutines of a host replicate: what the sends share (the transport, the
// sender's destinations, their counters) is contended here.
func BenchmarkSendParallel(b *testing.B) {
	for _, mode := range []struct {
		name string
		opts Options
	}{
		{"async", OptByteMessage | OptAsynchronous},
		{"sync", OptByteMessage | OptUseAck | OptSynchronizedAck},
	} {
		b.Run(mode.name, func(b *testing.B) {
			got, to := countingReceiver(b)
			t := NewNioTransport(ReceiverConfig{}, SenderConfig{})
			if err := t.SetLocalMember(testMember(1)); err != nil {
				b.Fatal(err)
			}
			defer t.Close()
			ctx := context.Background()
			if err := t.Send(ctx, to, &Message{Options: mode.opts, Data: make([]byte, 100)}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				msg := &Message{Options: mode.opts, Data: make([]byte, 100)}
				for pb.Next() {
					msg.UniqueID, msg.Timestamp = UniqueID{}, 0
					if err := t.Send(ctx, to, msg); err != nil {
						b.Error(err)
						return
					}
				}
			})
			for got.Load() < int64(b.N)+1 {
				time.Sleep(50 * time.Microsecond)
			}
		})
	}
}

// countingReceiver starts a receiver on loopback that counts the messages
// it gets, closed when b ends, and returns the count and the member to
// send to.
func countingReceiver(b *testing.B) (*atomic.Int64, []*Member) {
	b.Helper()
	got := new(atomic.Int64)
	r, err := NewReceiver(ReceiverConfig{Address: "127.0.0.1", Port: AnyPort}, func(*Message) error {
		got.Add(1)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return got, []*Member{testMember(int(r.Addr().Port()))}
}
