package tribes

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var loopback = netip.AddrFrom4([4]byte{127, 0, 0, 1})

func testMember(port int) *Member {
	return &Member{Host: loopback, Port: port, SecurePort: -1, UDPPort: -1, UniqueID: NewUniqueID()}
}

// collector is a ReceiveFunc that keeps copies of what it receives.
type collector struct {
	mu   sync.Mutex
	msgs []Message
	fail atomic.Int32 // fail this many calls with an error
	seen chan struct{}
}

func newCollector() *collector { return &collector{seen: make(chan struct{}, 1<<16)} }

func (c *collector) receive(m *Message) error {
	if c.fail.Add(-1) >= 0 {
		return errors.New("listener refused the message")
	}
	cp := *m
	cp.Data = bytes.Clone(m.Data)
	cp.Source = m.Source.Clone()
	c.mu.Lock()
	c.msgs = append(c.msgs, cp)
	c.mu.Unlock()
	c.seen <- struct{}{}
	return nil
}

func (c *collector) wait(t *testing.T, n int) []Message {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for range n {
		select {
		case <-c.seen:
		case <-timeout:
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("got %d of %d messages", len(c.msgs), n)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.msgs...)
}

func startReceiver(t *testing.T, cfg ReceiverConfig, f ReceiveFunc) (*Receiver, *Member) {
	t.Helper()
	cfg.Address = "127.0.0.1"
	if cfg.Port == 0 {
		cfg.Port = AnyPort
	}
	r, err := NewReceiver(cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, testMember(int(r.Addr().Port()))
}

func startSender(t *testing.T, cfg SenderConfig) (*Sender, *Member) {
	t.Helper()
	local := testMember(4999)
	local.Domain = []byte("test")
	s, err := NewSender(cfg, local)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, local
}

func TestSendModes(t *testing.T) {
	modes := []struct {
		name string
		opts Options
	}{
		{"no ack", OptByteMessage},
		{"ack", OptByteMessage | OptUseAck},
		{"sync ack", OptByteMessage | OptUseAck | OptSynchronizedAck},
		{"async", OptByteMessage | OptAsynchronous},
		{"async ack", OptByteMessage | OptAsynchronous | OptUseAck},
	}
	sizes := []int{0, 1, 100, 1 << 10, smallFrame, smallFrame + 1, 1 << 20}
	for _, inline := range []bool{false, true} {
		for _, pooled := range []bool{false, true} {
			t.Run(fmt.Sprintf("inline=%v,pooledAcks=%v", inline, pooled), func(t *testing.T) { testSendModes(t, inline, pooled, modes, sizes) })
		}
	}
}

func testSendModes(t *testing.T, inline, pooledAcks bool, modes []struct {
	name string
	opts Options
}, sizes []int) {
	col := newCollector()
	_, to := startReceiver(t, ReceiverConfig{Inline: inline}, col.receive)
	s, local := startSender(t, SenderConfig{PooledAcks: pooledAcks})
	want := 0
	for _, mode := range modes {
		for _, size := range sizes {
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(i*7 + size)
			}
			msg := &Message{Options: mode.opts, Data: data}
			if err := s.Send(context.Background(), []*Member{to}, msg); err != nil {
				t.Fatalf("%s %d B: %v", mode.name, size, err)
			}
			want++
			got := col.wait(t, 1)
			m := got[len(got)-1]
			if m.Options != mode.opts || !bytes.Equal(m.Data, data) || m.UniqueID != msg.UniqueID || m.Timestamp != msg.Timestamp {
				t.Fatalf("%s %d B: got options %v, %d bytes, id %v; want %v, %d bytes, id %v",
					mode.name, size, m.Options, len(m.Data), m.UniqueID, mode.opts, size, msg.UniqueID)
			}
			if m.Source.Key() != local.Key() || string(m.Source.Domain) != "test" {
				t.Fatalf("%s: source %v, want %v", mode.name, m.Source, local)
			}
		}
	}
	st := s.Stats()
	if st.Frames != int64(want) || st.Failures != 0 {
		t.Fatalf("sender stats %+v, want %d frames and no failures", st, want)
	}
	if pipelined := st.AckFrames > 0; pipelined == pooledAcks {
		t.Fatalf("sender stats %+v: %d pipelined acknowledged frames with PooledAcks %v", st, st.AckFrames, pooledAcks)
	}
}

func TestAsyncStreamKeepsOrderAndLosesNothing(t *testing.T) {
	const n = 20000
	col := newCollector()
	_, to := startReceiver(t, ReceiverConfig{}, col.receive)
	s, _ := startSender(t, SenderConfig{MaxAsyncBytes: 64 << 10})
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		data := make([]byte, 4+rng.IntN(2000))
		data[0], data[1], data[2], data[3] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		if err := s.Send(context.Background(), []*Member{to}, &Message{Options: OptAsynchronous, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	got := col.wait(t, n)
	for i, m := range got {
		seq := int(m.Data[0])<<24 | int(m.Data[1])<<16 | int(m.Data[2])<<8 | int(m.Data[3])
		if seq != i {
			t.Fatalf("message %d carries sequence %d: order lost", i, seq)
		}
	}
	if st := s.Stats(); st.AsyncBatches >= n || st.AsyncFrames != n || st.AsyncLost != 0 {
		t.Fatalf("stats %+v: want %d frames in fewer writes (batching) and nothing lost", st, n)
	}
}

func TestFailAckIsResentOnceThenReported(t *testing.T) {
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) { testFailAck(t, inline) })
	}
}

func testFailAck(t *testing.T, inline bool) {
	col := newCollector()
	col.fail.Store(2)
	r, to := startReceiver(t, ReceiverConfig{Inline: inline}, col.receive)
	s, _ := startSender(t, SenderConfig{})
	err := s.Send(context.Background(), []*Member{to}, &Message{Options: OptUseAck | OptSynchronizedAck, Data: []byte("x")})
	var se *SendError
	if !errors.As(err, &se) || !errors.Is(err, ErrFailAck) || len(se.Failed) != 1 || se.Failed[0].Member != to {
		t.Fatalf("err = %v, want a SendError naming %v with ErrFailAck", err, to)
	}
	if st := r.Stats(); st.FailAcks != 2 || st.HandlerErrors != 2 {
		t.Fatalf("receiver stats %+v: want the message and its one resend refused", st)
	}
	// The next one goes through (a failure once, then success on the resend).
	col.fail.Store(1)
	msg := &Message{Options: OptUseAck | OptSynchronizedAck, Data: []byte("y")}
	if err := s.Send(context.Background(), []*Member{to}, msg); err != nil {
		t.Fatal(err)
	}
	if got := col.wait(t, 1); got[0].UniqueID != msg.UniqueID {
		t.Fatal("resent message lost its UniqueID")
	}
}

func TestHandlerPanicAnswersFailAck(t *testing.T) {
	_, to := startReceiver(t, ReceiverConfig{}, func(*Message) error { panic("boom") })
	s, _ := startSender(t, SenderConfig{MaxRetryAttempts: -1})
	err := s.Send(context.Background(), []*Member{to}, &Message{Options: OptUseAck | OptSynchronizedAck, Data: []byte("x")})
	if !errors.Is(err, ErrFailAck) {
		t.Fatalf("err = %v, want ErrFailAck", err)
	}
}

func TestParallelSendNamesTheFailedMember(t *testing.T) {
	col1, col2 := newCollector(), newCollector()
	_, m1 := startReceiver(t, ReceiverConfig{}, col1.receive)
	r2, m2 := startReceiver(t, ReceiverConfig{}, col2.receive)
	s, _ := startSender(t, SenderConfig{Timeout: time.Second})
	for _, opts := range []Options{OptUseAck, OptUseAck | OptSynchronizedAck, 0} {
		if err := s.Send(context.Background(), []*Member{m1, m2}, &Message{Options: opts, Data: []byte("both")}); err != nil {
			t.Fatal(err)
		}
	}
	col1.wait(t, 3)
	col2.wait(t, 3)
	r2.Close()
	err := s.Send(context.Background(), []*Member{m1, m2}, &Message{Options: OptUseAck, Data: []byte("one")})
	var se *SendError
	if !errors.As(err, &se) || len(se.Failed) != 1 || se.Failed[0].Member != m2 {
		t.Fatalf("err = %v, want a SendError naming only %v", err, m2)
	}
	if !strings.Contains(err.Error(), m2.AddrPort().String()) {
		t.Fatalf("error %q does not name the member", err)
	}
	col1.wait(t, 1)
}

func TestAckTimeout(t *testing.T) {
	// A peer that accepts and reads but never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
		}
	}()
	to := testMember(l.Addr().(*net.TCPAddr).Port)
	s, _ := startSender(t, SenderConfig{Timeout: 200 * time.Millisecond})
	err = s.Send(context.Background(), []*Member{to}, &Message{Options: OptUseAck, Data: []byte("x")})
	if !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("err = %v, want ErrAckTimeout", err)
	}
}

func TestSendTooLarge(t *testing.T) {
	s, _ := startSender(t, SenderConfig{MaxMessageSize: 100})
	err := s.Send(context.Background(), []*Member{testMember(1)}, &Message{Data: make([]byte, 101)})
	if !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("err = %v, want ErrMessageTooLarge", err)
	}
	if err := s.Send(context.Background(), nil, &Message{}); !errors.Is(err, ErrNoMember) {
		t.Fatalf("err = %v, want ErrNoMember", err)
	}
}

// TestJavaFrame feeds the receiver the frame of spec section 13, written by
// a Tribes 10.1 node, one byte at a time, and expects Java's ACK back.
func TestJavaFrame(t *testing.T) {
	col := newCollector()
	r, _ := startReceiver(t, ReceiverConfig{}, col.receive)
	member := "5452494245532d420100000000350000000000001388" + "00000fa0ffffffffffffffff04c0a80114000000000000000" +
		"0a0a1a2a3a4a546a788a9aaabacadaeaf000000005452494245532d450100"
	frame, err := hex.DecodeString("464c543230303200000077000000030000019b76daa80000000010101112131415161718191a1b1c1d1e1f0000004d" +
		member + "000000026869544c4632303033")
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range frame {
		if _, err := c.Write(frame[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	var ack [21]byte
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		t.Fatal(err)
	}
	if ack != ackFrame {
		t.Fatalf("ack = %x, want %x", ack, ackFrame)
	}
	m := col.wait(t, 1)[0]
	if string(m.Data) != "hi" || m.Options != OptByteMessage|OptUseAck || m.Timestamp != 1767225600000 ||
		m.Source.Host != netip.MustParseAddr("192.168.1.20") || m.Source.Port != 4000 {
		t.Fatalf("got %+v from %v", m, m.Source)
	}
}

// TestBadInputClosesOnlyThatConnection sends garbage, an oversized frame and
// a bad member record, each on its own connection, while a good sender keeps
// working.
func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	col := newCollector()
	r, to := startReceiver(t, ReceiverConfig{MaxMessageSize: 1 << 16}, col.receive)
	s, _ := startSender(t, SenderConfig{})
	badEnd := appendFrame(nil, make([]byte, 30))
	badEnd[len(badEnd)-1] = 'X'
	bad := [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		append([]byte("FLT2002\x7f\xff\xff\xff"), make([]byte, 64)...),
		appendFrame(nil, []byte("not a channel data record at all")),
		badEnd,
	}
	for i, b := range bad {
		c, err := net.Dial("tcp", r.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(b)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("bad input %d: connection still open", i)
		}
		c.Close()
		if err := s.Send(context.Background(), []*Member{to}, &Message{Options: OptUseAck, Data: []byte("ok")}); err != nil {
			t.Fatalf("after bad input %d: %v", i, err)
		}
	}
	col.wait(t, len(bad))
	if st := r.Stats(); st.BadFrames != int64(len(bad)) {
		t.Fatalf("BadFrames = %d, want %d", st.BadFrames, len(bad))
	}
}

func TestProbeIsDropped(t *testing.T) {
	col := newCollector()
	r, to := startReceiver(t, ReceiverConfig{}, col.receive)
	s, _ := startSender(t, SenderConfig{})
	if err := s.Send(context.Background(), []*Member{to}, &Message{Options: OptByteMessage | OptUseAck, Data: tcpFailDetect[:]}); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), []*Member{to}, &Message{Options: OptUseAck, Data: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	if got := col.wait(t, 1); string(got[0].Data) != "after" {
		t.Fatalf("got %q, want the probe dropped", got[0].Data)
	}
	if st := r.Stats(); st.Probes != 1 {
		t.Fatalf("Probes = %d, want 1", st.Probes)
	}
}

func TestConcurrentSenders(t *testing.T) {
	var count atomic.Int64
	_, to := startReceiver(t, ReceiverConfig{}, func(m *Message) error { count.Add(1); return nil })
	s, _ := startSender(t, SenderConfig{PoolSize: 4})
	const goroutines, each = 8, 200
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts := []Options{OptUseAck, OptUseAck | OptSynchronizedAck, OptAsynchronous, 0}[g%4]
			for i := range each {
				if err := s.Send(context.Background(), []*Member{to}, &Message{Options: opts, Data: fmt.Appendf(nil, "%d-%d", g, i)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for count.Load() < goroutines*each && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := count.Load(); n != goroutines*each {
		t.Fatalf("received %d of %d", n, goroutines*each)
	}
}

func TestAutoBind(t *testing.T) {
	first, err := NewReceiver(ReceiverConfig{Address: "127.0.0.1", Port: AnyPort}, func(*Message) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	port := int(first.Addr().Port())
	second, err := NewReceiver(ReceiverConfig{Address: "127.0.0.1", Port: port, AutoBind: 10}, func(*Message) error { return nil })
	if err != nil {
		t.Fatalf("autoBind from a busy port: %v", err)
	}
	defer second.Close()
	if p := int(second.Addr().Port()); p <= port || p >= port+10 {
		t.Fatalf("bound %d, want in (%d, %d)", p, port, port+10)
	}
	if _, err := NewReceiver(ReceiverConfig{Address: "127.0.0.1", Port: port, AutoBind: 1}, func(*Message) error { return nil }); err == nil {
		t.Fatal("autoBind=1 on a busy port succeeded")
	}
}

// TestReceivePathAllocations checks that decoding, queueing and processing
// a batch of frames allocates nothing in steady state.
func TestReceivePathAllocations(t *testing.T) {
	if transportRace {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items)")
	}
	r := &Receiver{recv: func(*Message) error { return nil }, work: make(chan *rconn, 1)}
	r.cfg.setDefaults()
	rc := &rconn{r: r, c: discardConn{}}
	local := testMember(4000)
	rec, _ := local.AppendBinary(nil)
	var stream []byte
	for i := range 16 {
		opts := []Options{OptByteMessage, OptUseAck, OptUseAck | OptSynchronizedAck, OptAsynchronous}[i%4]
		stream = appendMessageHeader(stream, opts, 1, make([]byte, 16), rec, 1024)
		stream = append(stream, make([]byte, 1024)...)
		stream = append(stream, frameEnd[:]...)
	}
	run := func() {
		n, err := rc.onData(stream)
		if err != nil || n != len(stream) {
			t.Fatalf("onData = %d, %v", n, err)
		}
		(<-r.work).drain()
	}
	run()
	if a := testing.AllocsPerRun(100, run); a != 0 {
		t.Fatalf("receive path: %.1f allocations per 16 frames, want 0", a)
	}
	// Inline: processed on the loop, no queue, no copy.
	r.cfg.Inline = true
	inline := func() {
		if n, err := rc.onData(stream); err != nil || n != len(stream) {
			t.Fatalf("onData = %d, %v", n, err)
		}
	}
	inline()
	if a := testing.AllocsPerRun(100, inline); a != 0 {
		t.Fatalf("inline receive path: %.1f allocations per 16 frames, want 0", a)
	}
}

type discardConn struct{}

func (discardConn) Write(b []byte) (int, error) { return len(b), nil }
func (discardConn) Pause()                      {}
func (discardConn) Resume()                     {}
func (discardConn) Expect(int)                  {}

func TestSendAfterClose(t *testing.T) {
	_, m1 := startReceiver(t, ReceiverConfig{}, func(*Message) error { return nil })
	_, m2 := startReceiver(t, ReceiverConfig{}, func(*Message) error { return nil })
	s, _ := startSender(t, SenderConfig{})
	if err := s.Send(context.Background(), []*Member{m1, m2}, &Message{Options: OptUseAck, Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, opts := range []Options{OptUseAck, OptAsynchronous, 0} {
		err := s.Send(context.Background(), []*Member{m1, m2}, &Message{Options: opts, Data: []byte("x")})
		if !errors.Is(err, ErrSenderClosed) {
			t.Fatalf("options %v after Close: %v, want ErrSenderClosed", opts, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
