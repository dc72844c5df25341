package nio

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// funcHandler is a Handler made of optional funcs (a fake, not a mock).
type funcHandler struct {
	open  func(c *Conn)
	data  func(c *Conn, data []byte) (int, error)
	close func(c *Conn, err error)
}

func (h *funcHandler) OnOpen(c *Conn) {
	if h.open != nil {
		h.open(c)
	}
}

func (h *funcHandler) OnData(c *Conn, data []byte) (int, error) {
	if h.data != nil {
		return h.data(c, data)
	}
	return len(data), nil
}

func (h *funcHandler) OnClose(c *Conn, err error) {
	if h.close != nil {
		h.close(c, err)
	}
}

// echo writes every byte back.
func echo(c *Conn, data []byte) (int, error) {
	if _, err := c.Write(data); err != nil {
		return 0, err
	}
	return len(data), nil
}

// testConfig is a small configuration for tests: two loops, so both the
// local and the task-queue registration paths run.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Loops = 2
	return cfg
}

func listen(t testing.TB, cfg Config, h Handler) *Server {
	t.Helper()
	srv, err := Listen("tcp", "127.0.0.1:0", cfg, h)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func dial(t testing.TB, srv *Server) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Toy framing: a 4-byte big-endian length, then the payload.

func appendFrame(dst, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// nextFrame returns the first complete frame in data and the bytes it takes.
func nextFrame(data []byte) (payload []byte, n int, ok bool) {
	if len(data) < 4 {
		return nil, 0, false
	}
	size := int(binary.BigEndian.Uint32(data))
	if len(data) < 4+size {
		return nil, 0, false
	}
	return data[4 : 4+size], 4 + size, true
}

func TestEcho(t *testing.T) {
	closed := make(chan error, 1)
	srv := listen(t, testConfig(), &funcHandler{
		data:  echo,
		close: func(c *Conn, err error) { closed <- err },
	})
	c := dial(t, srv)
	buf := make([]byte, 64)
	for i := range 10 {
		msg := fmt.Appendf(nil, "hello %d", i)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:len(msg)]); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:len(msg)], msg) {
			t.Fatalf("echo %q, want %q", buf[:len(msg)], msg)
		}
	}
	c.Close()
	select {
	case err := <-closed:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("OnClose error %v, want io.EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnClose did not run")
	}
	st := srv.Stats()
	if st.Accepted != 1 || st.Closed != 1 || st.Open != 0 || st.BytesRead != st.BytesWritten || st.BytesRead == 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestManyClientsFramed has 64 clients send frames split at random points;
// the server checks every frame and acks it with the client id and sequence.
func TestManyClientsFramed(t *testing.T) {
	clients, frames := 64, 200
	if testing.Short() {
		frames = 40
	}
	var bad atomic.Int64
	var framesSeen atomic.Int64
	srv := listen(t, testConfig(), &funcHandler{
		open: func(c *Conn) { c.SetContext(new(uint32)) }, // next expected sequence
		data: func(c *Conn, data []byte) (int, error) {
			next := c.Context().(*uint32)
			consumed := 0
			for {
				p, n, ok := nextFrame(data[consumed:])
				if !ok {
					return consumed, nil
				}
				consumed += n
				id, seq := binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:])
				if seq != *next || !bytes.Equal(p, framePayload(id, seq)) {
					bad.Add(1)
					return consumed, fmt.Errorf("bad frame id %d seq %d (want seq %d)", id, seq, *next)
				}
				*next++
				framesSeen.Add(1)
				if _, err := c.Write(p[:8]); err != nil {
					return consumed, err
				}
			}
		},
	})
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- runFramedClient(srv, uint32(id), frames)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if bad.Load() != 0 {
		t.Fatalf("%d bad frames", bad.Load())
	}
	if got := framesSeen.Load(); got != int64(clients*frames) {
		t.Fatalf("server saw %d frames, want %d", got, clients*frames)
	}
}

// framePayload is the deterministic payload of frame seq of client id:
// id, seq, then bytes mixed from both, of a pseudo-random length.
func framePayload(id, seq uint32) []byte {
	r := rand.New(rand.NewPCG(uint64(id), uint64(seq)))
	p := make([]byte, 8+r.IntN(6000))
	binary.BigEndian.PutUint32(p, id)
	binary.BigEndian.PutUint32(p[4:], seq)
	mix := id*2654435761 ^ seq*40503
	for i := 8; i < len(p); i++ {
		p[i] = byte(uint32(i)*2246822519 ^ mix)
	}
	return p
}

func runFramedClient(srv *Server, id uint32, frames int) error {
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var stream []byte
	for seq := range uint32(frames) {
		stream = appendFrame(stream, framePayload(id, seq))
	}
	ackErr := make(chan error, 1)
	go func() {
		ack := make([]byte, 8)
		for seq := range uint32(frames) {
			if _, err := io.ReadFull(c, ack); err != nil {
				ackErr <- fmt.Errorf("client %d: reading ack %d: %w", id, seq, err)
				return
			}
			if gid, gseq := binary.BigEndian.Uint32(ack), binary.BigEndian.Uint32(ack[4:]); gid != id || gseq != seq {
				ackErr <- fmt.Errorf("client %d: ack (%d, %d), want (%d, %d)", id, gid, gseq, id, seq)
				return
			}
		}
		ackErr <- nil
	}()
	r := rand.New(rand.NewPCG(uint64(id), 99))
	for len(stream) > 0 {
		n := min(len(stream), 1+r.IntN(3000))
		if _, err := c.Write(stream[:n]); err != nil {
			return fmt.Errorf("client %d: %w", id, err)
		}
		stream = stream[n:]
		if r.IntN(8) == 0 {
			time.Sleep(time.Duration(r.IntN(200)) * time.Microsecond)
		}
	}
	return <-ackErr
}

// TestLeftovers sends an 8 MiB frame in small pieces, followed by small
// frames that share reads with its tail; the handler consumes only complete
// frames and answers each with its SHA-256.
func TestLeftovers(t *testing.T) {
	var calls atomic.Int64
	srv := listen(t, testConfig(), &funcHandler{
		data: func(c *Conn, data []byte) (int, error) {
			calls.Add(1)
			consumed := 0
			for {
				p, n, ok := nextFrame(data[consumed:])
				if !ok {
					return consumed, nil
				}
				sum := sha256.Sum256(p)
				if _, err := c.Write(sum[:]); err != nil {
					return 0, err
				}
				consumed += n
			}
		},
	})
	c := dial(t, srv)
	c.SetNoDelay(true)
	big := make([]byte, 8<<20)
	for i := range big {
		big[i] = byte(i * 7 / 3)
	}
	msgs := [][]byte{big, []byte("small"), {}, []byte("tail")}
	var stream []byte
	for _, m := range msgs {
		stream = appendFrame(stream, m)
	}
	go func() {
		s := stream
		for len(s) > 0 {
			n := min(len(s), 1000)
			if _, err := c.Write(s[:n]); err != nil {
				return
			}
			s = s[n:]
		}
	}()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	got := make([]byte, sha256.Size)
	for i, m := range msgs {
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("reading answer %d: %v", i, err)
		}
		if want := sha256.Sum256(m); !bytes.Equal(got, want[:]) {
			t.Fatalf("answer %d: digest mismatch", i)
		}
	}
	if calls.Load() < 10 {
		t.Fatalf("OnData ran %d times; the 8 MiB frame should arrive in many pieces", calls.Load())
	}
}

// TestConcurrentWrite writes frames from another goroutine while the loop
// echoes the client's frames on the same connection; every frame of both
// streams must arrive intact and in order.
func TestConcurrentWrite(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 500
	}
	srv := listen(t, testConfig(), &funcHandler{
		open: func(c *Conn) {
			go func() {
				for i := range n {
					p := fmt.Appendf(nil, "S%06d", i)
					if _, err := c.Write(appendFrame(nil, p)); err != nil {
						return
					}
				}
			}()
		},
		data: func(c *Conn, data []byte) (int, error) {
			consumed := 0
			for {
				_, k, ok := nextFrame(data[consumed:])
				if !ok {
					return consumed, nil
				}
				if _, err := c.Write(data[consumed : consumed+k]); err != nil {
					return 0, err
				}
				consumed += k
			}
		},
	})
	c := dial(t, srv)
	go func() {
		for i := range n {
			if _, err := c.Write(appendFrame(nil, fmt.Appendf(nil, "C%06d", i))); err != nil {
				return
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var nextS, nextC int
	hdr := make([]byte, 4)
	for nextS < n || nextC < n {
		if _, err := io.ReadFull(c, hdr); err != nil {
			t.Fatalf("after S%d C%d: %v", nextS, nextC, err)
		}
		p := make([]byte, binary.BigEndian.Uint32(hdr))
		if _, err := io.ReadFull(c, p); err != nil {
			t.Fatal(err)
		}
		var want string
		switch p[0] {
		case 'S':
			want = fmt.Sprintf("S%06d", nextS)
			nextS++
		case 'C':
			want = fmt.Sprintf("C%06d", nextC)
			nextC++
		}
		if string(p) != want {
			t.Fatalf("frame %q, want %q", p, want)
		}
	}
}

// TestWriteLimit: a peer that does not read makes Write queue up to
// MaxPendingWrite and then fail with ErrWriteLimit, without hanging.
func TestWriteLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxPendingWrite = 256 << 10
	conns := make(chan *Conn, 1)
	closed := make(chan error, 1)
	srv := listen(t, cfg, &funcHandler{
		open:  func(c *Conn) { conns <- c },
		close: func(c *Conn, err error) { closed <- err },
	})
	client := dial(t, srv)
	client.SetReadBuffer(16 << 10)
	c := <-conns
	chunk := make([]byte, 64<<10)
	total := 0
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for total < 1<<30 && time.Now().Before(deadline) {
		var n int
		n, err = c.Write(chunk)
		total += n
		if err != nil {
			break
		}
	}
	if !errors.Is(err, ErrWriteLimit) {
		t.Fatalf("after %d bytes Write returned %v, want ErrWriteLimit", total, err)
	}
	select {
	case err := <-closed:
		if !errors.Is(err, ErrWriteLimit) {
			t.Fatalf("OnClose error %v, want ErrWriteLimit", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnClose did not run")
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after close: %v, want ErrClosed", err)
	}
	if st := srv.Stats(); st.WriteLimit != 1 {
		t.Fatalf("stats %+v, want WriteLimit 1", st)
	}
}

// TestPauseResume: after Pause no OnData runs even though data arrives;
// Resume presents the leftover and the new bytes.
func TestPauseResume(t *testing.T) {
	var mu sync.Mutex
	var got []byte
	var calls int
	conns := make(chan *Conn, 1)
	srv := listen(t, testConfig(), &funcHandler{
		data: func(c *Conn, data []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls == 1 {
				// Consume two bytes, keep the rest, and pause.
				got = append(got, data[:2]...)
				c.Pause()
				conns <- c
				return 2, nil
			}
			got = append(got, data...)
			return len(data), nil
		},
	})
	client := dial(t, srv)
	client.Write([]byte("abcd"))
	c := <-conns
	client.Write([]byte("efgh"))
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	if calls != 1 {
		mu.Unlock()
		t.Fatalf("OnData ran %d times while paused", calls)
	}
	mu.Unlock()
	c.Resume()
	client.Write([]byte("ijkl"))
	waitFor(t, "all data after Resume", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return string(got) == "abcdefghijkl"
	})
	c.Resume() // not paused: no effect
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if string(got) != "abcdefghijkl" {
		t.Fatalf("got %q", got)
	}
}

// TestResumeDeliversLeftovers: Resume alone (no new bytes) presents the
// leftover again.
func TestResumeDeliversLeftovers(t *testing.T) {
	conns := make(chan *Conn, 1)
	seen := make(chan string, 4)
	var calls atomic.Int64
	srv := listen(t, testConfig(), &funcHandler{
		data: func(c *Conn, data []byte) (int, error) {
			seen <- string(data)
			if calls.Add(1) == 1 {
				c.Pause()
				conns <- c
				return 0, nil
			}
			return len(data), nil
		},
	})
	client := dial(t, srv)
	client.Write([]byte("xyz"))
	c := <-conns
	if s := <-seen; s != "xyz" {
		t.Fatalf("first OnData %q", s)
	}
	c.Resume()
	select {
	case s := <-seen:
		if s != "xyz" {
			t.Fatalf("after Resume OnData got %q, want the leftover %q", s, "xyz")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Resume did not present the leftover")
	}
}

// TestMaxBuffered: a connection whose handler never consumes is closed with
// ErrBufferLimit; another connection keeps working.
func TestMaxBuffered(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBuffered = 64 << 10
	closed := make(chan error, 2)
	srv := listen(t, cfg, &funcHandler{
		data: func(c *Conn, data []byte) (int, error) {
			if data[0] == 'X' {
				return 0, nil // hoard
			}
			return echo(c, data)
		},
		close: func(c *Conn, err error) { closed <- err },
	})
	good := dial(t, srv)
	roundTrip := func() {
		t.Helper()
		good.SetDeadline(time.Now().Add(5 * time.Second))
		good.Write([]byte("ping"))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(good, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo on the good connection: %q, %v", buf, err)
		}
	}
	roundTrip()
	bad := dial(t, srv)
	junk := bytes.Repeat([]byte("X"), 200<<10)
	go bad.Write(junk)
	select {
	case err := <-closed:
		if !errors.Is(err, ErrBufferLimit) {
			t.Fatalf("OnClose error %v, want ErrBufferLimit", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the hoarding connection was not closed")
	}
	bad.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := bad.Read(make([]byte, 1)); err == nil {
		t.Fatal("the hoarding connection is still readable")
	}
	roundTrip()
	if st := srv.Stats(); st.BufferLimit != 1 || st.Open != 1 {
		t.Fatalf("stats %+v, want BufferLimit 1, Open 1", st)
	}
}

// TestServerClose closes a server with open connections: OnClose runs for
// each with ErrServerClosed, the clients see the end of stream, and no
// goroutine is left behind.
func TestServerClose(t *testing.T) {
	before := runtime.NumGoroutine()
	const n = 10
	var opened, closedCount atomic.Int64
	var badErr atomic.Value
	cfg := testConfig()
	cfg.Loops = 3
	srv, err := Listen("tcp", "127.0.0.1:0", cfg, &funcHandler{
		open: func(c *Conn) { opened.Add(1) },
		close: func(c *Conn, err error) {
			if !errors.Is(err, ErrServerClosed) {
				badErr.Store(fmt.Sprint(err))
			}
			closedCount.Add(1)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var clients []net.Conn
	for range n {
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	waitFor(t, "OnOpen for every client", 5*time.Second, func() bool { return opened.Load() == n })
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if got := closedCount.Load(); got != n {
		t.Fatalf("OnClose ran %d times, want %d", got, n)
	}
	if v := badErr.Load(); v != nil {
		t.Fatalf("OnClose error %v, want ErrServerClosed", v)
	}
	for _, c := range clients {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a client can still read after Close")
		}
		c.Close()
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := net.Dial("tcp", srv.Addr().String()); err == nil {
		t.Fatal("the server still accepts after Close")
	}
	if st := srv.Stats(); st.Open != 0 || st.Accepted != n || st.Closed != n {
		t.Fatalf("stats %+v", st)
	}
	waitFor(t, "goroutines to exit", 5*time.Second, func() bool { return runtime.NumGoroutine() <= before })
}

func TestAddrInUse(t *testing.T) {
	srv := listen(t, testConfig(), BaseHandler{})
	_, err := Listen("tcp", srv.Addr().String(), testConfig(), BaseHandler{})
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second Listen on %s: %v, want EADDRINUSE", srv.Addr(), err)
	}
}

func TestListenErrors(t *testing.T) {
	bad := func(f func(*Config)) Config {
		cfg := DefaultConfig()
		f(&cfg)
		return cfg
	}
	tests := []struct {
		name    string
		network string
		address string
		cfg     Config
		h       Handler
	}{
		{"nil handler", "tcp", "127.0.0.1:0", Config{}, nil},
		{"udp", "udp", "127.0.0.1:0", Config{}, BaseHandler{}},
		{"bad address", "tcp", "127.0.0.1:notaport", Config{}, BaseHandler{}},
		{"negative loops", "tcp", "127.0.0.1:0", bad(func(c *Config) { c.Loops = -1 }), BaseHandler{}},
		{"negative buffer", "tcp", "127.0.0.1:0", bad(func(c *Config) { c.MaxBuffered = -1 }), BaseHandler{}},
		{"tcp6 with v4 address", "tcp6", "127.0.0.1:0", Config{}, BaseHandler{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := Listen(tc.network, tc.address, tc.cfg, tc.h)
			if err == nil {
				srv.Close()
				t.Fatal("Listen succeeded")
			}
		})
	}
}

func TestListenNetworks(t *testing.T) {
	tests := []struct {
		name    string
		network string
		address string
		dial    string // network to dial
	}{
		{"tcp4 loopback", "tcp4", "127.0.0.1:0", "tcp4"},
		{"tcp loopback", "tcp", "127.0.0.1:0", "tcp4"},
		{"tcp6 loopback", "tcp6", "[::1]:0", "tcp6"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := Listen(tc.network, tc.address, Config{Loops: 1}, &funcHandler{data: echo})
			if err != nil {
				if tc.network == "tcp6" {
					t.Skipf("no IPv6 loopback here: %v", err)
				}
				t.Fatal(err)
			}
			defer srv.Close()
			port := srv.Addr().(*net.TCPAddr).Port
			host := "127.0.0.1"
			if tc.dial == "tcp6" {
				host = "::1"
			}
			c, err := net.Dial(tc.dial, net.JoinHostPort(host, fmt.Sprint(port)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write([]byte("hi"))
			buf := make([]byte, 2)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
				t.Fatalf("echo %q, %v", buf, err)
			}
		})
	}
}

// TestFairness: on a single loop, a connection that streams without pause
// does not starve a connection that asks for echoes.
func TestFairness(t *testing.T) {
	cfg := testConfig()
	cfg.Loops = 1
	cfg.MaxReadPerWake = 256 << 10
	srv := listen(t, cfg, &funcHandler{
		data: func(c *Conn, data []byte) (int, error) {
			if data[0] == 'P' {
				return echo(c, data)
			}
			// The streamer: a slow consumer, so its socket never runs dry
			// and only the read budget lets the loop turn to the pinger.
			time.Sleep(200 * time.Microsecond)
			return len(data), nil
		},
	})
	streamer := dial(t, srv)
	stop := make(chan struct{})
	var streamed atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		chunk := bytes.Repeat([]byte("s"), 256<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, err := streamer.Write(chunk)
			streamed.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); streamer.Close(); wg.Wait() }()
	waitFor(t, "the stream to start", 5*time.Second, func() bool { return streamed.Load() > 2<<20 })
	pinger := dial(t, srv)
	buf := make([]byte, 1)
	var worst time.Duration
	for range 20 {
		start := time.Now()
		pinger.SetDeadline(start.Add(2 * time.Second))
		if _, err := pinger.Write([]byte("P")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(pinger, buf); err != nil {
			t.Fatalf("ping starved: %v (streamed %d bytes)", err, streamed.Load())
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("worst ping %v while %d bytes streamed", worst, streamed.Load())
}

// TestReadBudgetKeepsEdge: a connection whose data exceeds MaxReadPerWake in
// one burst is read to the end without a new event from the socket.
func TestReadBudgetKeepsEdge(t *testing.T) {
	cfg := testConfig()
	cfg.Loops = 1
	cfg.ReadBufferSize = 1 << 10
	cfg.MaxReadPerWake = 4 << 10
	var got atomic.Int64
	srv := listen(t, cfg, &funcHandler{
		data: func(c *Conn, data []byte) (int, error) {
			got.Add(int64(len(data)))
			return len(data), nil
		},
	})
	c := dial(t, srv)
	const total = 1 << 20
	if _, err := c.Write(make([]byte, total)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "all bytes", 10*time.Second, func() bool { return got.Load() == total })
}

func TestConnCloseFromOtherGoroutine(t *testing.T) {
	conns := make(chan *Conn, 1)
	closed := make(chan error, 1)
	srv := listen(t, testConfig(), &funcHandler{
		open:  func(c *Conn) { conns <- c },
		close: func(c *Conn, err error) { closed <- err },
	})
	client := dial(t, srv)
	c := <-conns
	if _, err := c.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("OnClose error %v, want nil after Close", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v, want ErrClosed", err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(client)
	if string(b) != "bye" {
		t.Fatalf("client read %q, %v; want %q then the end", b, err, "bye")
	}
}

func TestOnDataErrors(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		data    func(c *Conn, data []byte) (int, error)
		wantErr error
	}{
		{"handler error", func(*Conn, []byte) (int, error) { return 0, boom }, boom},
		{"consumed too many", func(_ *Conn, d []byte) (int, error) { return len(d) + 1, nil }, ErrBadConsume},
		{"consumed negative", func(*Conn, []byte) (int, error) { return -1, nil }, ErrBadConsume},
		{"close in OnData", func(c *Conn, d []byte) (int, error) { c.Close(); return len(d), nil }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			closed := make(chan error, 1)
			var after atomic.Int64
			var calls atomic.Int64
			srv := listen(t, testConfig(), &funcHandler{
				data: func(c *Conn, d []byte) (int, error) {
					if calls.Add(1) > 1 {
						after.Add(1)
					}
					return tc.data(c, d)
				},
				close: func(c *Conn, err error) { closed <- err },
			})
			client := dial(t, srv)
			client.Write([]byte("data"))
			select {
			case err := <-closed:
				if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
					t.Fatalf("OnClose error %v, want %v", err, tc.wantErr)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("connection not closed")
			}
			client.Write([]byte("more"))
			time.Sleep(10 * time.Millisecond)
			if after.Load() != 0 {
				t.Fatal("OnData ran after the connection was closed")
			}
		})
	}
}

func TestContextAndAddrs(t *testing.T) {
	type state struct{ remote string }
	type report struct {
		state *state
		local net.Addr
	}
	reports := make(chan report, 1)
	srv := listen(t, testConfig(), &funcHandler{
		open: func(c *Conn) {
			before := c.Context()
			c.SetContext(&state{remote: c.RemoteAddr().String()})
			c.SetContext(before) // replaced below; exercises a nil store
			c.SetContext(&state{remote: c.RemoteAddr().String()})
		},
		data: func(c *Conn, d []byte) (int, error) {
			st, _ := c.Context().(*state)
			reports <- report{state: st, local: c.LocalAddr()}
			return len(d), nil
		},
	})
	client := dial(t, srv)
	client.Write([]byte("x"))
	r := <-reports
	if r.state == nil {
		t.Fatal("context lost between OnOpen and OnData")
	}
	if r.state.remote != client.LocalAddr().String() {
		t.Fatalf("RemoteAddr %s, want the client's %s", r.state.remote, client.LocalAddr())
	}
	if r.local.String() != client.RemoteAddr().String() {
		t.Fatalf("LocalAddr %s, want %s", r.local, client.RemoteAddr())
	}
	if srv.Addr().String() != client.RemoteAddr().String() {
		t.Fatalf("Server.Addr %s, want %s", srv.Addr(), client.RemoteAddr())
	}
}

// TestCallbacksNeverOverlap checks the ordering guarantee under load: for
// each connection OnOpen comes first, OnClose last and exactly once, and no
// two callbacks of one connection run at the same time.
func TestCallbacksNeverOverlap(t *testing.T) {
	type track struct {
		busy   atomic.Int32
		opened bool
		closed int
	}
	var violations atomic.Int64
	enter := func(c *Conn) *track {
		tr := c.Context().(*track)
		if tr.busy.Add(1) != 1 {
			violations.Add(1)
		}
		return tr
	}
	var closes atomic.Int64
	srv := listen(t, testConfig(), &funcHandler{
		open: func(c *Conn) {
			tr := &track{}
			c.SetContext(tr)
			enter(c)
			tr.opened = true
			tr.busy.Add(-1)
		},
		data: func(c *Conn, d []byte) (int, error) {
			tr := enter(c)
			defer tr.busy.Add(-1)
			if !tr.opened || tr.closed != 0 {
				violations.Add(1)
			}
			b := []byte{d[0]} // d is only valid during OnData
			go c.Write(b)     // a write from elsewhere, racing the loop
			if d[len(d)-1] == 'q' {
				go c.Close()
			}
			return len(d), nil
		},
		close: func(c *Conn, err error) {
			tr := enter(c)
			defer tr.busy.Add(-1)
			tr.closed++
			if tr.closed != 1 {
				violations.Add(1)
			}
			closes.Add(1)
		},
	})
	const clients = 16
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", srv.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			go io.Copy(io.Discard, c)
			for j := range 200 {
				msg := "abc"
				if i%2 == 0 && j == 150 {
					msg = "abq" // the server closes this one
				}
				if _, err := c.Write([]byte(msg)); err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, "every OnClose", 10*time.Second, func() bool { return closes.Load() == clients })
	if v := violations.Load(); v != 0 {
		t.Fatalf("%d ordering violations", v)
	}
}

// TestPauseInOnOpen: a connection paused before its first byte gets no
// OnData until Resume, then everything that arrived.
func TestPauseInOnOpen(t *testing.T) {
	conns := make(chan *Conn, 1)
	var got atomic.Value
	got.Store("")
	srv := listen(t, testConfig(), &funcHandler{
		open: func(c *Conn) {
			c.Pause()
			conns <- c
		},
		data: func(c *Conn, d []byte) (int, error) {
			got.Store(got.Load().(string) + string(d))
			return len(d), nil
		},
	})
	client := dial(t, srv)
	c := <-conns
	client.Write([]byte("early"))
	time.Sleep(50 * time.Millisecond)
	if s := got.Load().(string); s != "" {
		t.Fatalf("OnData ran while paused: %q", s)
	}
	c.Resume()
	waitFor(t, "data after Resume", 5*time.Second, func() bool { return got.Load().(string) == "early" })
}

// TestQueuedWritesFlush: a peer that reads late still gets every byte, in
// order: what the socket does not take is queued and flushed by the loop
// when the socket becomes writable.
func TestQueuedWritesFlush(t *testing.T) {
	const total = 24 << 20
	cfg := testConfig()
	cfg.MaxPendingWrite = 64 << 20
	writeErr := make(chan error, 1)
	srv := listen(t, cfg, &funcHandler{
		open: func(c *Conn) {
			go func() {
				chunk := make([]byte, 256<<10)
				for off := 0; off < total; off += len(chunk) {
					for i := range chunk {
						chunk[i] = byte((off + i) % 251)
					}
					if _, err := c.Write(chunk); err != nil {
						writeErr <- err
						return
					}
				}
				writeErr <- nil
			}()
		},
	})
	client := dial(t, srv)
	if err := <-writeErr; err != nil { // all queued while the client reads nothing
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 1<<20)
	for off := 0; off < total; {
		n, err := client.Read(buf)
		for i := range n {
			if buf[i] != byte((off+i)%251) {
				t.Fatalf("byte %d = %d, want %d", off+i, buf[i], byte((off+i)%251))
			}
		}
		off += n
		if err != nil {
			t.Fatalf("after %d bytes: %v", off, err)
		}
	}
	waitFor(t, "BytesWritten to count everything", 5*time.Second, func() bool { return srv.Stats().BytesWritten == total })
}

// TestWriteAfterPeerReset: once the peer resets the connection, Write fails
// with an error matching ErrClosed (the socket's error, or ErrClosed itself
// if the loop noticed first), and OnClose runs once.
func TestWriteAfterPeerReset(t *testing.T) {
	conns := make(chan *Conn, 1)
	var closes atomic.Int64
	srv := listen(t, testConfig(), &funcHandler{
		open:  func(c *Conn) { conns <- c },
		close: func(*Conn, error) { closes.Add(1) },
	})
	client := dial(t, srv)
	c := <-conns
	client.SetLinger(0)
	client.Close() // RST
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		_, err = c.Write([]byte("hello?"))
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after reset: %v, want an error matching ErrClosed", err)
	}
	waitFor(t, "OnClose", 5*time.Second, func() bool { return closes.Load() == 1 })
	time.Sleep(10 * time.Millisecond)
	if n := closes.Load(); n != 1 {
		t.Fatalf("OnClose ran %d times", n)
	}
}

// TestExpect sends an 8 MiB frame in small writes to a handler that calls
// Expect with the frame's size: OnData must not run again before the whole
// frame is held, and the frame must arrive intact.
func TestExpect(t *testing.T) {
	var calls, early atomic.Int64
	srv := listen(t, testConfig(), &funcHandler{
		data: func(c *Conn, data []byte) (int, error) {
			calls.Add(1)
			consumed := 0
			for {
				p, n, ok := nextFrame(data[consumed:])
				if !ok {
					break
				}
				sum := sha256.Sum256(p)
				if _, err := c.Write(sum[:]); err != nil {
					return 0, err
				}
				consumed += n
			}
			if rest := data[consumed:]; len(rest) >= 4 {
				need := 4 + int(binary.BigEndian.Uint32(rest))
				if calls.Load() > 1 && len(rest) < need && len(rest) > 4 {
					early.Add(1) // called again before the expected bytes were held
				}
				c.Expect(need)
			}
			return consumed, nil
		},
	})
	c := dial(t, srv)
	big := make([]byte, 8<<20)
	for i := range big {
		big[i] = byte(i * 5 / 3)
	}
	stream := appendFrame(appendFrame(nil, big), []byte("after"))
	go func() {
		for s := stream; len(s) > 0; {
			n := min(len(s), 1000)
			if _, err := c.Write(s[:n]); err != nil {
				return
			}
			s = s[n:]
		}
	}()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	got := make([]byte, sha256.Size)
	for i, m := range [][]byte{big, []byte("after")} {
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("reading answer %d: %v", i, err)
		}
		if want := sha256.Sum256(m); !bytes.Equal(got, want[:]) {
			t.Fatalf("answer %d: digest mismatch", i)
		}
	}
	if early.Load() != 0 {
		t.Fatalf("OnData ran %d times before the expected bytes were held", early.Load())
	}
	if calls.Load() > 16 {
		t.Fatalf("OnData ran %d times for two frames; Expect should make it a handful", calls.Load())
	}
}

// TestExpectOverLimit: a handler expecting more than MaxBuffered closes the
// connection with ErrBufferLimit.
func TestExpectOverLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBuffered = 1 << 16
	closed := make(chan error, 1)
	srv := listen(t, cfg, &funcHandler{
		data:  func(c *Conn, data []byte) (int, error) { c.Expect(1 << 20); return 0, nil },
		close: func(c *Conn, err error) { closed <- err },
	})
	c := dial(t, srv)
	c.Write([]byte("header"))
	select {
	case err := <-closed:
		if !errors.Is(err, ErrBufferLimit) {
			t.Fatalf("OnClose got %v, want ErrBufferLimit", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("connection not closed")
	}
}
