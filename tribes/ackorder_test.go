package tribes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitUntil polls cond until it holds, failing the test after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestReceiverAnswersInMessageOrder: on one connection the receiver
// answers messages in their order (spec section 4), whatever their ACK
// kinds: a plain ACK, or a probe's, behind a synchronized ACK still owed
// waits for it, as in Tribes, whose NioReplicationTask writes a plain ACK
// just before processing its message, after the messages before it. A
// pipelining sender hands the answers to its messages in that order.
//
// The frames go in one write: P1 plain ACK, S synchronized ACK whose
// listener holds until released and then fails, a probe with a
// synchronized ACK, P2 plain ACK, N without ACK, P3 plain ACK, Z
// synchronized ACK. Without Inline, S is released once the loop decoded
// the frames behind it.
func TestReceiverAnswersInMessageOrder(t *testing.T) {
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) { testAnswerOrder(t, inline) })
	}
}

func testAnswerOrder(t *testing.T, inline bool) {
	sIn, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex // the answers come over TCP: no happens-before for the race detector
	var order []string
	r, _ := startReceiver(t, ReceiverConfig{Inline: inline}, func(m *Message) error {
		mu.Lock()
		order = append(order, string(m.Data))
		mu.Unlock()
		if string(m.Data) == "S" {
			close(sIn)
			<-release
			return errors.New("S fails")
		}
		return nil
	})
	rec, err := testMember(4999).AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	var stream []byte
	frame := func(opts Options, data []byte) {
		stream = appendMessageHeader(stream, opts, 1, make([]byte, 16), rec, len(data))
		stream = append(stream, data...)
		stream = append(stream, frameEnd[:]...)
	}
	frame(OptUseAck, []byte("P1"))
	frame(OptUseAck|OptSynchronizedAck, []byte("S"))
	frame(OptUseAck|OptSynchronizedAck, tcpFailDetect[:])
	frame(OptUseAck, []byte("P2"))
	frame(0, []byte("N"))
	frame(OptUseAck, []byte("P3"))
	frame(OptUseAck|OptSynchronizedAck, []byte("Z")) // answered once all before it are processed
	const want = "[ACK FAIL_ACK ACK ACK ACK ACK]"    // P1, S, the probe, P2, P3, Z

	c, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(stream); err != nil {
		t.Fatal(err)
	}
	<-sIn
	if !inline { // inline, S holds the loop: nothing behind it is decoded yet
		waitUntil(t, "the frames behind S are decoded", func() bool {
			st := r.Stats()
			return st.Messages == 6 && st.Probes == 1
		})
	}
	close(release)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]string, 6)
	for i := range got {
		var a [len(ackFrame)]byte
		if _, err := io.ReadFull(c, a[:]); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		switch a {
		case ackFrame:
			got[i] = "ACK"
		case failAckFrame:
			got[i] = "FAIL_ACK"
		default:
			got[i] = fmt.Sprintf("%x", a)
		}
	}
	if fmt.Sprint(got) != want {
		t.Fatalf("answers %v, want %s (P1, S, the probe, P2, P3, Z)", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(order) != "[P1 S P2 N P3 Z]" {
		t.Errorf("processed %v, want [P1 S P2 N P3 Z]", order)
	}
	if st := r.Stats(); st.Acks != 5 || st.FailAcks != 1 {
		t.Errorf("receiver stats %+v: want 5 ACKs and 1 FAIL_ACK", st)
	}
}

// TestMixedAckModesOnThePipe: a synchronized-ACK send (A) and a plain-ACK
// send (B) to one member share its pipelined connection. A's send must end
// with A's own answer, after its listener ran (FAIL_ACK here, so A is
// resent once and fails), and B's with B's ACK, which comes after A's
// answer: B is delivered once. It used to be the other way round: the
// receiver wrote B's ACK at once, ahead of A's FAIL_ACK; A's send took it
// and succeeded while A's listener still ran, and B's send took A's
// FAIL_ACK and resent B.
func TestMixedAckModesOnThePipe(t *testing.T) {
	aIn, release := make(chan struct{}), make(chan struct{})
	var aCalls, bCalls, cCalls atomic.Int32
	var aRan atomic.Bool // A's listener returned once
	r, to := startReceiver(t, ReceiverConfig{}, func(m *Message) error {
		switch string(m.Data) {
		case "A":
			if aCalls.Add(1) == 1 {
				close(aIn)
				<-release
			}
			aRan.Store(true)
			return errors.New("A fails")
		case "B":
			bCalls.Add(1)
		case "C":
			cCalls.Add(1)
		}
		return nil
	})
	s, _ := startSender(t, SenderConfig{})
	ctx, members := context.Background(), []*Member{to}
	aErr, bErr := make(chan error, 1), make(chan error, 1)
	go func() {
		err := s.Send(ctx, members, &Message{Options: OptUseAck | OptSynchronizedAck, Data: []byte("A")})
		if !aRan.Load() {
			err = fmt.Errorf("returned (%v) while A's listener still ran", err)
		}
		aErr <- err
	}()
	<-aIn
	go func() { bErr <- s.Send(ctx, members, &Message{Options: OptUseAck, Data: []byte("B")}) }()
	waitUntil(t, "the receiver decoded B", func() bool { return r.Stats().Messages == 2 })
	if st := r.Stats(); st.Acks+st.FailAcks != 0 {
		t.Errorf("receiver stats %+v: it answered B while A, before B on the connection, is unanswered", st)
	}
	close(release)
	if err := <-aErr; !errors.Is(err, ErrFailAck) {
		t.Errorf("send of A: %v, want ErrFailAck", err)
	}
	if err := <-bErr; err != nil {
		t.Errorf("send of B: %v", err)
	}
	// C, synchronous on the same connection, is processed after whatever
	// was sent before it there, a resend of B included.
	if err := s.Send(ctx, members, &Message{Options: OptUseAck | OptSynchronizedAck, Data: []byte("C")}); err != nil {
		t.Fatal(err)
	}
	if a, b, c := aCalls.Load(), bCalls.Load(), cCalls.Load(); a != 2 || b != 1 || c != 1 {
		t.Errorf("A delivered %d times (want 2: FAIL_ACK, one resend), B %d times, C %d times (want 1)", a, b, c)
	}
	if st := s.Stats(); st.Dials != 1 {
		t.Errorf("sender stats %+v: want one connection", st)
	}
}

// TestMixedAckModesConcurrently: concurrent plain-ACK and
// synchronized-ACK sends to one member, on its pipelined connection, each
// get their own answer: a synchronized send whose listener fails gets
// ErrFailAck (after one resend), every other send succeeds, and nothing
// else is delivered twice.
func TestMixedAckModesConcurrently(t *testing.T) {
	const senders, each = 8, 100
	var mu sync.Mutex
	seen := map[string]int{}
	_, to := startReceiver(t, ReceiverConfig{}, func(m *Message) error {
		mu.Lock()
		seen[string(m.Data)]++
		mu.Unlock()
		if m.Data[0] == 'f' {
			return errors.New("refused")
		}
		return nil
	})
	s, _ := startSender(t, SenderConfig{})
	errs := concurrently(senders, func(g int) error {
		for i := range each {
			opts, data := OptUseAck, fmt.Sprintf("plain-%d-%d", g, i)
			switch (g + i) % 4 {
			case 1:
				opts, data = OptUseAck|OptSynchronizedAck, fmt.Sprintf("sync-%d-%d", g, i)
			case 3:
				opts, data = OptUseAck|OptSynchronizedAck, fmt.Sprintf("fail-%d-%d", g, i)
			}
			err := s.Send(context.Background(), []*Member{to}, &Message{Options: opts, Data: []byte(data)})
			if fails := data[0] == 'f'; fails != errors.Is(err, ErrFailAck) || (!fails && err != nil) {
				return fmt.Errorf("send of %s: %v", data, err)
			}
		}
		return nil
	})()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// Plain sends end before their messages are processed: one more
	// synchronized send on the connection waits for them.
	if err := s.Send(context.Background(), []*Member{to}, &Message{Options: OptUseAck | OptSynchronizedAck, Data: []byte("last")}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for data, n := range seen {
		want := 1
		if data[0] == 'f' {
			want = 2 // and the resend
		}
		if n != want {
			t.Errorf("%s delivered %d times, want %d", data, n, want)
		}
	}
	if len(seen) != senders*each+1 {
		t.Errorf("%d distinct messages delivered, want %d", len(seen), senders*each+1)
	}
}
