package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// ReceiverMain is the receiver process of the transport benchmark. It runs
// a Tribes receiver and a raw TCP server on loopback, prints their
// addresses as one JSON line, then answers commands read from in, one per
// line, with one JSON line each:
//
//	reset   zero the counters                 -> {}
//	stats   messages, bytes, last receive time -> {"msgs":..,"bytes":..,"last_ns":..,"mallocs":..}
//
// It returns when in ends or ctx is done.
//
// With channel set it receives through a tribes.Channel with the default
// stack instead of a bare Receiver.
//
// With inline set the messages are processed on the network loops
// (tribes.ReceiverConfig.Inline).
func ReceiverMain(ctx context.Context, in io.Reader, out io.Writer, channel, inline bool) error {
	var (
		msgs, byteCount, lastNs atomic.Int64
		mallocsAtReset          atomic.Uint64
	)
	codec := &tribes.Gzip{}
	scratch := sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}
	handle := func(m *tribes.Message) error {
		n := len(m.Data)
		if m.Options.Has(tribes.DefaultGzipFlag) {
			bp := scratch.Get().(*[]byte)
			b, err := codec.Decompress((*bp)[:0], m.Data)
			*bp = b
			n = len(b)
			scratch.Put(bp)
			if err != nil {
				return err
			}
		}
		byteCount.Add(int64(n))
		lastNs.Store(time.Now().UnixNano())
		msgs.Add(1)
		return nil
	}
	var addr string
	if channel {
		ch, err := benchChannel(ctx, tribes.ListenerFunc(handle), inline)
		if err != nil {
			return err
		}
		defer ch.Stop(context.Background())
		addr = ch.LocalMember().AddrPort().String()
	} else {
		recv, err := tribes.NewReceiver(tribes.ReceiverConfig{Address: "127.0.0.1", Port: tribes.AnyPort, Inline: inline}, handle)
		if err != nil {
			return err
		}
		defer recv.Close()
		addr = recv.Addr().String()
	}

	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer raw.Close()
	go serveRaw(raw)

	enc := json.NewEncoder(out)
	if err := enc.Encode(receiverHello{Tribes: addr, Raw: raw.Addr().String()}); err != nil {
		return err
	}
	mallocs := func() uint64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.Mallocs
	}
	lines := bufio.NewScanner(in)
	for lines.Scan() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch lines.Text() {
		case "reset":
			msgs.Store(0)
			byteCount.Store(0)
			lastNs.Store(0)
			mallocsAtReset.Store(mallocs())
			err = enc.Encode(struct{}{})
		case "stats":
			err = enc.Encode(receiverStats{
				Msgs: msgs.Load(), Bytes: byteCount.Load(), LastNs: lastNs.Load(),
				Mallocs: int64(mallocs() - mallocsAtReset.Load()),
			})
		default:
			err = fmt.Errorf("bench receiver: unknown command %q", lines.Text())
		}
		if err != nil {
			return err
		}
	}
	return lines.Err()
}

// serveRaw serves the raw TCP baseline (see rawThroughput).
func serveRaw(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			var hdr [5]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return
			}
			size := int(binary.BigEndian.Uint32(hdr[1:]))
			if size <= 0 || size > 64<<20 {
				return
			}
			switch hdr[0] {
			case 'S':
				buf := make([]byte, 256<<10)
				var n, last int64
				for {
					k, err := c.Read(buf)
					if k > 0 {
						n += int64(k)
						last = time.Now().UnixNano()
					}
					if err != nil {
						break
					}
				}
				var reply [16]byte
				binary.BigEndian.PutUint64(reply[:8], uint64(n))
				binary.BigEndian.PutUint64(reply[8:], uint64(last))
				c.Write(reply[:])
			case 'P':
				buf := make([]byte, size)
				var ack [rawAckLen]byte
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					if _, err := c.Write(ack[:]); err != nil {
						return
					}
				}
			}
		}()
	}
}
