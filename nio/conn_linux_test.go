//go:build linux && !nio_portable

package nio

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/bufpool"
	"golang.org/x/sys/unix"
)

// TestWriteRacingDrainIsFlushed: a Write from a goroutine other than the
// loop's fills the socket (EAGAIN) and queues the rest while the peer is
// reading. The peer can make room, and the socket raise its one
// edge-triggered EPOLLOUT, before the Write has published its queue; the
// queued bytes must still reach the peer without it sending anything.
//
// Each round is one chance for that race. A small send buffer (fixed, so not
// autotuned) lets the peer make room quickly compared with the time the Write
// takes to copy the rest into the queue, and a pool that retains nothing makes
// that copy allocate every round (with the defaults the race is rare). The
// code before the fix stalled within the first 40 rounds in each of 30 runs.
func TestWriteRacingDrainIsFlushed(t *testing.T) {
	const (
		size   = 512 << 10
		rounds = 200
	)
	cfg := testConfig()
	cfg.Pool = bufpool.New(1) // retains nothing: every queued chunk is allocated
	conns := make(chan *Conn, 1)
	srv := listen(t, cfg, &funcHandler{open: func(c *Conn) {
		if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 64<<10); err != nil {
			t.Error(err)
		}
		conns <- c
	}})
	client := dial(t, srv)
	c := <-conns
	msg := make([]byte, size)
	buf := make([]byte, size)
	writeErr := make(chan error, 1)
	for r := range rounds {
		for i := range msg {
			msg[i] = byte(r + i/4096)
		}
		go func() {
			_, err := c.Write(msg) // not from the loop, as a receiver's worker does
			writeErr <- err
		}()
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := io.ReadFull(client, buf)
		if err != nil {
			t.Fatalf("round %d: stalled after %d of %d bytes (%v); still queued: %d",
				r, n, size, err, c.wpending.Load())
		}
		if err := <-writeErr; err != nil {
			t.Fatalf("round %d: Write: %v", r, err)
		}
		if !bytes.Equal(buf, msg) {
			t.Fatalf("round %d: the peer received other bytes than were written", r)
		}
	}
}
