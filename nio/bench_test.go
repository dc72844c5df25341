package nio

import (
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// frameCounter consumes complete 1 KiB toy frames and signals done when the
// count reaches target.
type frameCounter struct {
	BaseHandler
	frames atomic.Int64
	target atomic.Int64
	done   chan struct{}
}

func (h *frameCounter) OnData(_ *Conn, data []byte) (int, error) {
	consumed := 0
	var n int64
	for {
		_, k, ok := nextFrame(data[consumed:])
		if !ok {
			break
		}
		consumed += k
		n++
	}
	if n > 0 {
		if total := h.frames.Add(n); total >= h.target.Load() && total-n < h.target.Load() {
			h.done <- struct{}{}
		}
	}
	return consumed, nil
}

const benchFrame = 1 << 10

// benchReadPath streams b.N frames of 1 KiB (a 4-byte length and 1020 bytes)
// from one client, 64 frames per write, to a handler that consumes them.
// The client's frames are sent at random-looking boundaries of the server's
// reads, so leftovers are copied as in real traffic.
func benchReadPath(b *testing.B) {
	h := &frameCounter{done: make(chan struct{}, 1)}
	cfg := DefaultConfig()
	cfg.Loops = 1
	srv, err := Listen("tcp", "127.0.0.1:0", cfg, h)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	nc, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	const batch = 64
	buf := make([]byte, 0, batch*benchFrame)
	for range batch {
		buf = binary.BigEndian.AppendUint32(buf, benchFrame-4)
		buf = append(buf, make([]byte, benchFrame-4)...)
	}
	send := func(frames int) {
		h.target.Store(h.frames.Load() + int64(frames))
		for frames > 0 {
			k := min(frames, batch)
			if _, err := nc.Write(buf[:k*benchFrame]); err != nil {
				b.Fatal(err)
			}
			frames -= k
		}
		select {
		case <-h.done:
		case <-time.After(30 * time.Second):
			b.Fatalf("the server saw %d of %d frames", h.frames.Load(), h.target.Load())
		}
	}
	send(4096) // warm up the pool and the connection
	b.SetBytes(benchFrame)
	b.ReportAllocs()
	b.ResetTimer()
	send(b.N)
	b.StopTimer()
}

func BenchmarkReadPath(b *testing.B) { benchReadPath(b) }

// TestReadPathZeroAlloc requires the read path (socket to OnData, with
// leftovers between reads) to allocate nothing per message in steady state.
// The client writing in the same process is counted too; it does not
// allocate either.
func TestReadPathZeroAlloc(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a one-second benchmark; skipped in -short")
	}
	res := testing.Benchmark(benchReadPath)
	if res.N < 10000 {
		t.Fatalf("benchmark ran only %d frames: %v", res.N, res)
	}
	if a := res.AllocsPerOp(); a != 0 {
		t.Fatalf("read path: %d allocs per message (%d allocs over %d messages), want 0", a, res.MemAllocs, res.N)
	}
	t.Logf("%v %v", res, res.MemString())
}
