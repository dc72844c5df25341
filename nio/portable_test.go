//go:build !linux || nio_portable

package nio

import (
	"net"
	"testing"
	"time"
)

// TestCloseWithBlockedWriter: Conn.Close while the writer goroutine is
// blocked writing to a peer that reads nothing. The flush gives up at the
// write deadline Close sets (gracefulWrite); the socket must then close, so
// that the reader blocked in Read returns, OnClose runs with nil and
// Server.Close returns.
func TestCloseWithBlockedWriter(t *testing.T) {
	const size = 4 << 20 // far more than the small socket buffers below hold
	cfg := testConfig()
	cfg.MaxPendingWrite = size
	conns, closed := make(chan *Conn, 1), make(chan error, 1)
	srv, err := Listen("tcp", "127.0.0.1:0", cfg, &funcHandler{
		open: func(c *Conn) {
			c.nc.(*net.TCPConn).SetWriteBuffer(64 << 10)
			conns <- c
		},
		close: func(c *Conn, err error) { closed <- err },
	})
	if err != nil {
		t.Fatal(err)
	}
	// Not listen's cleanup: with the bug, Server.Close would hang the test.
	client := dial(t, srv) // a peer that neither reads nor writes
	client.SetReadBuffer(64 << 10)
	c := <-conns
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	// Once the writer has taken the queue, it is in drain on its wsig branch
	// and cannot finish the batch: it blocks in nc.Write.
	waitFor(t, "the writer to take the queue", 5*time.Second, func() bool {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		return c.writerPending > 0
	})
	c.Close()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("OnClose error %v, want nil (Conn.Close)", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("OnClose not run 5 s after Conn.Close (gracefulWrite is 1 s)")
	}
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Server.Close hangs")
	}
}
