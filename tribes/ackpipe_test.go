package tribes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAckPipelineSharesOneConnection: concurrent synchronous sends to one
// member share one connection, each gets its own answer, and every
// message arrives once.
func TestAckPipelineSharesOneConnection(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	release := make(chan struct{})
	var first atomic.Bool
	_, to := startReceiver(t, ReceiverConfig{}, func(m *Message) error {
		if first.CompareAndSwap(false, true) {
			<-release // hold the first answer while the others queue up
		}
		mu.Lock()
		seen[string(m.Data)]++
		mu.Unlock()
		if string(m.Data[:4]) == "fail" {
			return errors.New("refused")
		}
		return nil
	})
	s, _ := startSender(t, SenderConfig{MaxRetryAttempts: -1})
	const n = 32
	wait := concurrently(n, func(i int) error {
		data := fmt.Sprintf("msg-%d", i)
		if i%8 == 5 {
			data = fmt.Sprintf("fail-%d", i)
		}
		return s.Send(context.Background(), []*Member{to}, &Message{Options: OptUseAck | OptSynchronizedAck, Data: []byte(data)})
	})
	time.Sleep(50 * time.Millisecond)
	close(release)
	errs := wait()
	for i, err := range errs {
		if want := i%8 == 5; want != errors.Is(err, ErrFailAck) || (!want && err != nil) {
			t.Errorf("send %d: %v (want FAIL_ACK: %v)", i, err, want)
		}
	}
	mu.Lock() // the answers came over TCP: no happens-before for the race detector
	defer mu.Unlock()
	for k, c := range seen {
		if c != 1 {
			t.Errorf("%s received %d times", k, c)
		}
	}
	if len(seen) != n {
		t.Errorf("received %d distinct messages, want %d", len(seen), n)
	}
	st := s.Stats()
	if st.Dials != 1 || st.AckFrames != n || st.AckBatches < 1 || st.AckBatches > n {
		t.Errorf("stats %+v: want one connection carrying %d frames", st, n)
	}
	t.Logf("%d frames in %d writes", st.AckFrames, st.AckBatches)
}

// ackPeer is a raw member that answers each frame with an ACK unless told
// to keep quiet, and counts its connections.
type ackPeer struct {
	l     net.Listener
	quiet atomic.Bool
	conns atomic.Int32
}

func startAckPeer(t *testing.T) (*ackPeer, *Member) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &ackPeer{l: l}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.conns.Add(1)
			go p.serve(c)
		}
	}()
	return p, testMember(l.Addr().(*net.TCPAddr).Port)
}

func (p *ackPeer) serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 0, 1<<16)
	tmp := make([]byte, 4096)
	for {
		k, err := c.Read(tmp)
		if err != nil {
			return
		}
		buf = append(buf, tmp[:k]...)
		for {
			_, n, err := parseFrame(buf, 1<<16)
			if err != nil {
				return
			}
			if n == 0 {
				break
			}
			buf = buf[:copy(buf, buf[n:])]
			if !p.quiet.Load() {
				c.Write(ackFrame[:])
			}
		}
	}
}

// TestAckPipelineTimeoutBreaksTheConnection: a send whose ACK does not
// come in time fails with ErrAckTimeout and breaks the connection, so
// that the next send, on a fresh one, does not take the late answer of
// the one that gave up.
func TestAckPipelineTimeoutBreaksTheConnection(t *testing.T) {
	peer, to := startAckPeer(t)
	s, _ := startSender(t, SenderConfig{Timeout: 200 * time.Millisecond, MaxRetryAttempts: -1})
	send := func(data string) error {
		return s.Send(context.Background(), []*Member{to}, &Message{Options: OptUseAck, Data: []byte(data)})
	}
	if err := send("a"); err != nil {
		t.Fatal(err)
	}
	peer.quiet.Store(true)
	if err := send("b"); !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("unanswered send: %v, want ErrAckTimeout", err)
	}
	peer.quiet.Store(false)
	for i := range 3 {
		if err := send(fmt.Sprint("c", i)); err != nil {
			t.Fatalf("send after the timeout: %v", err)
		}
	}
	if st := s.Stats(); st.Dials != 2 || peer.conns.Load() != 2 {
		t.Fatalf("dials %d, peer connections %d: want 2 (the timeout broke the first)", st.Dials, peer.conns.Load())
	}
}

// TestAckPipelineResendsAfterTheConnectionDrops: senders waiting on a
// connection that closes are resent on a fresh one.
func TestAckPipelineResendsAfterTheConnectionDrops(t *testing.T) {
	peer, to := startAckPeer(t)
	s, _ := startSender(t, SenderConfig{Timeout: 2 * time.Second})
	peer.quiet.Store(true)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Send(context.Background(), []*Member{to}, &Message{Options: OptUseAck, Data: []byte("x")})
		}()
	}
	// Once the frames are in flight, drop the connection and answer again.
	for s.Stats().AckFrames < int64(len(errs)) {
		time.Sleep(time.Millisecond)
	}
	s.mu.RLock()
	d := s.dests[to.Key()]
	s.mu.RUnlock()
	d.pipe.mu.Lock()
	c := d.pipe.conn
	d.pipe.mu.Unlock()
	peer.quiet.Store(false)
	c.c.Close() // as if the network dropped it
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("send %d: %v", i, err)
		}
	}
	if st := s.Stats(); st.Retries != int64(len(errs)) || st.Dials != 2 {
		t.Errorf("stats %+v: want %d resends on a second connection", st, len(errs))
	}
}

// TestAckPipelineSurvivesDisconnect: Disconnect (a member left, or came
// back) during acknowledged sends to it does not fail them, nor deliver
// them twice: those written finish on their connection, the others go on
// a fresh one, as on the pooled connections.
func TestAckPipelineSurvivesDisconnect(t *testing.T) {
	for _, pooled := range []bool{false, true} {
		t.Run(fmt.Sprintf("pooledAcks=%v", pooled), func(t *testing.T) { testSurvivesDisconnect(t, pooled) })
	}
}

func testSurvivesDisconnect(t *testing.T, pooledAcks bool) {
	var count atomic.Int64
	_, to := startReceiver(t, ReceiverConfig{}, func(*Message) error { count.Add(1); return nil })
	s, _ := startSender(t, SenderConfig{PooledAcks: pooledAcks})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				s.Disconnect(to)
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
	const senders, each = 4, 100
	errs := make(chan error, senders*each)
	var sw sync.WaitGroup
	for range senders {
		sw.Add(1)
		go func() {
			defer sw.Done()
			for range each {
				errs <- s.Send(context.Background(), []*Member{to}, &Message{Options: OptUseAck | OptSynchronizedAck, Data: []byte("x")})
			}
		}()
	}
	sw.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Synchronous: each was processed before its send returned. Exactly
	// once: Disconnect lets the sends written on a connection finish
	// rather than resending them.
	if n := count.Load(); n != senders*each {
		t.Fatalf("received %d messages, want %d", n, senders*each)
	}
}

// TestAckPipelineSeveralMembers: a synchronous send to several members
// queues the frame on every member's connection before it waits for the
// first answer (member a answers only once b has the message, which
// deadlocks a sender that waits for a before writing to b), uses no
// helper goroutine, and reports each member's failure as that member's:
// b refuses some messages and nothing listens at dead's address.
func TestAckPipelineSeveralMembers(t *testing.T) {
	var mu sync.Mutex
	got := map[string][]string{}
	arrived := map[string]chan struct{}{}
	arrival := func(data string) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		c, ok := arrived[data]
		if !ok {
			c = make(chan struct{})
			arrived[data] = c
		}
		return c
	}
	record := func(who string, m *Message) {
		mu.Lock()
		got[string(m.Data)] = append(got[string(m.Data)], who)
		mu.Unlock()
	}
	_, a := startReceiver(t, ReceiverConfig{}, func(m *Message) error {
		record("a", m)
		select {
		case <-arrival(string(m.Data)):
			return nil
		case <-time.After(5 * time.Second):
			return errors.New("b never received the message: the sender waited for a before writing to b")
		}
	})
	_, b := startReceiver(t, ReceiverConfig{}, func(m *Message) error {
		record("b", m)
		close(arrival(string(m.Data)))
		if string(m.Data[:4]) == "fail" {
			return errors.New("refused")
		}
		return nil
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := testMember(l.Addr().(*net.TCPAddr).Port)
	l.Close()

	s, _ := startSender(t, SenderConfig{MaxRetryAttempts: -1, Timeout: 10 * time.Second})
	const n = 24
	errs := concurrently(n, func(i int) error {
		data := fmt.Sprintf("msg-%02d", i)
		to := []*Member{a, b}
		if i%6 == 1 {
			data = fmt.Sprintf("fail-%02d", i)
		}
		if i%6 == 2 {
			to = []*Member{a, dead, b}
		}
		return s.Send(context.Background(), to, &Message{Options: OptUseAck | OptSynchronizedAck, Data: []byte(data)})
	})()
	for i, err := range errs {
		var se *SendError
		switch i % 6 {
		case 1, 2:
			want := b
			if i%6 == 2 {
				want = dead
			}
			if !errors.As(err, &se) || len(se.Failed) != 1 || se.Failed[0].Member != want {
				t.Errorf("send %d: %v, want a failure for %v alone", i, err, want.AddrPort())
			} else if i%6 == 1 && !errors.Is(err, ErrFailAck) {
				t.Errorf("send %d: %v, want FAIL_ACK", i, err)
			}
		default:
			if err != nil {
				t.Errorf("send %d: %v", i, err)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n {
		t.Errorf("%d distinct messages received, want %d", len(got), n)
	}
	for data, who := range got {
		if len(who) != 2 || who[0] == who[1] {
			t.Errorf("%s received by %v, want a and b once each", data, who)
		}
	}
	if h := s.helpers.Load(); h != 0 {
		t.Errorf("%d helper goroutines started, want none", h)
	}
}

// concurrently runs f(0) ... f(n-1) on goroutines of their own; the
// function it returns waits for them and returns their errors by index.
func concurrently(n int, f func(i int) error) (wait func() []error) {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i)
		}()
	}
	return func() []error {
		wg.Wait()
		return errs
	}
}
