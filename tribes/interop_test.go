package tribes

// Transport-level wire interop with a real Apache Tribes 10.1 node (spec
// section 14, scenarios 4-7, 9 and 17). The Java node is the TribesPeer
// harness of package interop, run by interop/javapeer; it sends to and
// receives from our Receiver and Sender without any membership, so these
// tests need neither multicast nor a Go channel.
//
// The tests skip under -short and when java, javac or the Tribes jars are
// missing (Debian: apt-get install -y default-jdk-headless libtomcat10-java).
// Each test starts one JVM and runs its cases against it.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/interop/javapeer"
)

// interopWait bounds every wait for something the other side must do.
const interopWait = 10 * time.Second

// interopToolchain skips the test unless it may start a JVM running Tribes.
func interopToolchain(t *testing.T) *javapeer.Toolchain {
	t.Helper()
	if testing.Short() {
		t.Skip("interop: skipped with -short (starts a JVM running Apache Tribes)")
	}
	tc, err := javapeer.FindToolchain()
	if nf := (*javapeer.NotFoundError)(nil); errors.As(err, &nf) {
		t.Skip("interop: java or catalina-tribes.jar not found: " + nf.Details())
	}
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// interopNode is the Go side: a Receiver that keeps copies of what it gets
// and a Sender, both on 127.0.0.1 and named by one local member.
type interopNode struct {
	recv    *Receiver
	sender  *Sender
	local   *Member
	got     chan Message
	handler atomic.Pointer[func(*Message) error] // optional, run before a message is queued
}

func newInteropNode(t *testing.T) *interopNode {
	t.Helper()
	n := &interopNode{got: make(chan Message, 4096)}
	r, err := NewReceiver(ReceiverConfig{Address: "127.0.0.1", Port: AnyPort}, n.receive)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	n.recv = r
	n.local = &Member{
		Host: r.Addr().Addr(), Port: int(r.Addr().Port()), SecurePort: -1, UDPPort: -1,
		UniqueID: NewUniqueID(),
	}
	s, err := NewSender(SenderConfig{}, n.local)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	n.sender = s
	return n
}

func (n *interopNode) receive(m *Message) error {
	cp := *m
	cp.Data = bytes.Clone(m.Data)
	cp.Source = m.Source.Clone()
	var err error
	if h := n.handler.Load(); h != nil {
		err = (*h)(&cp)
	}
	n.got <- cp
	return err
}

// setHandler installs h for the rest of the test (nil removes it).
func (n *interopNode) setHandler(t *testing.T, h func(*Message) error) {
	if h == nil {
		n.handler.Store(nil)
		return
	}
	n.handler.Store(&h)
	t.Cleanup(func() { n.handler.Store(nil) })
}

func (n *interopNode) wait(t *testing.T) Message {
	t.Helper()
	select {
	case m := <-n.got:
		return m
	case <-time.After(interopWait):
		t.Fatalf("the Go receiver got no message within %v", interopWait)
		return Message{}
	}
}

// expectNoMore fails if a message is queued that nobody asked for.
func (n *interopNode) expectNoMore(t *testing.T) {
	t.Helper()
	select {
	case m := <-n.got:
		t.Errorf("unexpected extra message: options %v, %d bytes %.40x", m.Options, len(m.Data), m.Data)
	default:
	}
}

// javaMember is our view of the Java node's member.
func javaMember(p *javapeer.Peer) *Member {
	l := p.Local()
	return &Member{Host: l.Host, Port: l.Port, SecurePort: -1, UDPPort: -1, UniqueID: l.UniqueID}
}

// peerMember is the Java harness's view of a Go member.
func peerMember(m *Member) javapeer.Member {
	return javapeer.Member{Host: m.Host, Port: m.Port, UniqueID: m.UniqueID}
}

func startJava(t *testing.T, cfg javapeer.Config) (*javapeer.Peer, context.Context) {
	t.Helper()
	cfg.Toolchain = interopToolchain(t)
	p := javapeer.StartT(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	t.Logf("Java node: Tribes %s on Java %s at %v", p.TribesVersion(), p.JavaVersion(), p.Local())
	return p, ctx
}

// checkSourceIsJava checks that a message received by Go names the Java
// node as its source, as its ChannelData member record says.
func checkSourceIsJava(t *testing.T, m *Message, p *javapeer.Peer) {
	t.Helper()
	want := p.Local()
	if m.Source == nil || m.Source.Host != want.Host || m.Source.Port != want.Port || m.Source.UniqueID != want.UniqueID {
		t.Errorf("source %v, want the Java node %v", m.Source, want)
		return
	}
	if m.Source.SecurePort != -1 || m.Source.UDPPort != -1 || len(m.Source.Command) != 0 || len(m.Source.Domain) != 0 {
		t.Errorf("source record %+v: want securePort/udpPort -1, no command, no domain", m.Source)
	}
}

// checkSourceIsGo checks that a message received by Java names the Go node.
func checkSourceIsGo(t *testing.T, m javapeer.Message, n *interopNode) {
	t.Helper()
	if !m.Source.Same(peerMember(n.local)) {
		t.Errorf("Java saw source %v, want the Go node %v", m.Source, peerMember(n.local))
	}
}

func binaryPayload(prefix string) []byte {
	b := []byte(prefix)
	for i := range 256 {
		b = append(b, byte(i))
	}
	return b
}

// TestInteropJavaToGo: a Java node sends byte messages and serialised
// objects to the Go receiver (spec §14 scenarios 4, 6 and 7 one way, 17).
func TestInteropJavaToGo(t *testing.T) {
	n := newInteropNode(t)
	java, ctx := startJava(t, javapeer.Config{Interceptors: javapeer.DefaultStack()})
	goM := peerMember(n.local)

	// Scenario 4: options 0, 2, 6, 8 arrive with bit 0 set (1, 3, 7, 9);
	// Go acknowledges 3 and 7 (Java's send returns normally only then)
	// and writes nothing for 1 and 9.
	for _, tc := range []struct {
		name       string
		options    uint32
		wire       Options
		acks       int64
		javaWaitOn bool // asynchronous: Java reports the outcome later
	}{
		{"options 0 no ack", 0, OptByteMessage, 0, false},
		{"options 2 use_ack", 2, OptByteMessage | OptUseAck, 1, false},
		{"options 6 use_ack sync", 6, OptByteMessage | OptUseAck | OptSynchronizedAck, 1, false},
		{"options 8 async", 8, OptByteMessage | OptAsynchronous, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := binaryPayload(tc.name)
			before := n.recv.Stats()
			res, err := java.Send(ctx, goM, tc.options, javapeer.Bytes(payload))
			if err != nil {
				t.Fatal(err)
			}
			if !res.OK {
				t.Fatalf("Java's send failed: %s", res.Error)
			}
			if tc.javaWaitOn {
				ar, err := java.WaitAsync(ctx, res.Cmd)
				if err != nil || !ar.OK {
					t.Fatalf("Java's asynchronous send: %+v, %v", ar, err)
				}
			}
			m := n.wait(t)
			if !bytes.Equal(m.Data, payload) {
				t.Errorf("data %x, want %x", m.Data, payload)
			}
			if m.Options != tc.wire {
				t.Errorf("options %v, want %v", m.Options, tc.wire)
			}
			if !bytes.Equal(m.UniqueID[:], res.MsgID) {
				t.Errorf("message id %x, Java sent %x", m.UniqueID[:], res.MsgID)
			}
			if m.Timestamp <= 0 {
				t.Errorf("timestamp %d", m.Timestamp)
			}
			checkSourceIsJava(t, &m, java)
			after := n.recv.Stats()
			if got := after.Acks - before.Acks; got != tc.acks {
				t.Errorf("Go wrote %d ACKs, want %d", got, tc.acks)
			}
			if after.FailAcks != before.FailAcks || after.BadFrames != before.BadFrames {
				t.Errorf("stats moved: before %+v, after %+v", before, after)
			}
		})
	}

	// With USE_ACK alone Go acknowledges on receipt: Java's send returns
	// while the Go handler is still busy with the message.
	t.Run("use_ack acks before processing", func(t *testing.T) {
		entered, gate := make(chan struct{}, 1), make(chan struct{})
		defer close(gate)
		n.setHandler(t, func(m *Message) error {
			if string(m.Data) == "gated" {
				entered <- struct{}{}
				<-gate
			}
			return nil
		})
		res, err := java.Send(ctx, goM, 2, javapeer.Bytes([]byte("gated")))
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK {
			t.Fatalf("Java's send did not complete while the Go handler was blocked: %s", res.Error)
		}
		select {
		case <-entered:
		case <-time.After(interopWait):
			t.Fatal("the Go handler never saw the message")
		}
	})
	n.wait(t)

	// With SYNCHRONIZED_ACK Go acknowledges after processing: Java's send
	// cannot return while the handler is blocked.
	t.Run("sync ack acks after processing", func(t *testing.T) {
		entered, gate := make(chan struct{}, 1), make(chan struct{})
		n.setHandler(t, func(m *Message) error {
			if string(m.Data) == "gated" {
				entered <- struct{}{}
				<-gate
			}
			return nil
		})
		type result struct {
			res javapeer.SendResult
			err error
		}
		done := make(chan result, 1)
		go func() {
			res, err := java.Send(ctx, goM, 6, javapeer.Bytes([]byte("gated")))
			done <- result{res, err}
		}()
		select {
		case <-entered:
		case <-time.After(interopWait):
			close(gate)
			t.Fatal("the Go handler never saw the message")
		}
		// Give a wrongly early ACK time to reach Java and be reported.
		time.Sleep(300 * time.Millisecond)
		select {
		case r := <-done:
			close(gate)
			t.Fatalf("Java's send returned before the Go handler finished: %+v %v", r.res, r.err)
		default:
		}
		close(gate)
		r := <-done
		if r.err != nil || !r.res.OK {
			t.Fatalf("Java's send: %+v, %v", r.res, r.err)
		}
	})
	n.wait(t)

	// Scenario 6, Java -> Go: a Go handler error answers FAIL_ACK; Java
	// resends once on a new connection, then reports the failure.
	t.Run("fail_ack to java", func(t *testing.T) {
		var calls atomic.Int32
		n.setHandler(t, func(m *Message) error {
			if string(m.Data) == "refuse me" {
				calls.Add(1)
				return errors.New("refused by the test")
			}
			return nil
		})
		before := n.recv.Stats()
		res, err := java.Send(ctx, goM, 6, javapeer.Bytes([]byte("refuse me")))
		if err != nil {
			t.Fatal(err)
		}
		if res.OK {
			t.Fatal("Java's send succeeded although Go answered FAIL_ACK")
		}
		t.Logf("Java reported: %s", res.Error)
		first, second := n.wait(t), n.wait(t)
		// Java's send threw, so it reported no id: the two copies must agree.
		if first.UniqueID != second.UniqueID || !bytes.Equal(first.Data, second.Data) {
			t.Errorf("the resend has id %x, the first %x", second.UniqueID[:], first.UniqueID[:])
		}
		after := n.recv.Stats()
		if calls.Load() != 2 || after.FailAcks-before.FailAcks != 2 {
			t.Errorf("handler ran %d times, %d FAIL_ACKs written; want 2 and 2", calls.Load(), after.FailAcks-before.FailAcks)
		}
		if after.Connections == before.Connections {
			t.Errorf("Java resent without opening a new connection")
		}
	})

	// Scenario 17: serialised objects arrive with bit 0 clear, as Java
	// serialisation streams.
	t.Run("serialised objects", func(t *testing.T) {
		res, err := java.Send(ctx, goM, 2, javapeer.JavaString("héllo"))
		if err != nil || !res.OK {
			t.Fatalf("send String: %+v, %v", res, err)
		}
		m := n.wait(t)
		// TC_STRING (0x74), a 2-byte length and modified UTF-8.
		want := append([]byte{0xac, 0xed, 0x00, 0x05, 0x74, 0x00, 0x06}, "héllo"...)
		if m.Options != OptUseAck || !bytes.Equal(m.Data, want) {
			t.Errorf("String: options %v data %x, want %v %x", m.Options, m.Data, OptUseAck, want)
		}
		checkSourceIsJava(t, &m, java)

		body := []byte{1, 2, 3, 0xff}
		res, err = java.Send(ctx, goM, 2, javapeer.JavaByteArray(body))
		if err != nil || !res.OK {
			t.Fatalf("send byte[]: %+v, %v", res, err)
		}
		m = n.wait(t)
		prefix, _ := hex.DecodeString("aced0005757200025b42acf317f8060854e0020000787000000004")
		if m.Options != OptUseAck || !bytes.Equal(m.Data, append(prefix, body...)) {
			t.Errorf("byte[]: options %v data %x, want %v %x%x", m.Options, m.Data, OptUseAck, prefix, body)
		}
	})

	// Scenario 7: 1000 asynchronous messages back to back, from Java's
	// dispatcher threads over pooled connections, all arrive intact.
	t.Run("async flood", func(t *testing.T) {
		const count = 1000
		tail := javapeer.PatternBytes(200)
		res, err := java.Burst(ctx, goM, 8, count, 1, javapeer.Pattern(len(tail)))
		if err != nil || !res.OK || res.Sent != count {
			t.Fatalf("burst: %+v, %v", res, err)
		}
		if ar, err := java.WaitAsync(ctx, res.Cmd); err != nil || !ar.OK {
			t.Fatalf("Java's asynchronous sends: %+v, %v", ar, err)
		}
		checkBurst(t, n, count, tail, OptByteMessage|OptAsynchronous)
	})

	// Scenario 7: several Java connections at once. Four handler calls
	// wait for each other; as Go processes one connection's messages one at
	// a time, they can only all run if Java used at least four connections.
	t.Run("parallel connections", func(t *testing.T) {
		const count, barrier = 64, 4
		var arrived atomic.Int32
		all := make(chan struct{})
		var once sync.Once
		n.setHandler(t, func(m *Message) error {
			if arrived.Add(1) > barrier {
				return nil
			}
			if arrived.Load() >= barrier {
				once.Do(func() { close(all) })
			}
			select {
			case <-all:
				return nil
			case <-time.After(interopWait):
				return errors.New("fewer than 4 messages in parallel")
			}
		})
		tail := []byte("parallel")
		res, err := java.Burst(ctx, goM, 6, count, 8, javapeer.Bytes(tail))
		if err != nil || !res.OK || res.Sent != count {
			t.Fatalf("burst: %+v, %v", res, err)
		}
		checkBurst(t, n, count, tail, OptByteMessage|OptUseAck|OptSynchronizedAck)
	})
	n.expectNoMore(t)
}

// checkBurst takes count messages of a javapeer burst (a 4-byte index,
// then tail) and checks each index came once, intact.
func checkBurst(t *testing.T, n *interopNode, count int, tail []byte, opts Options) {
	t.Helper()
	seen := make([]bool, count)
	for range count {
		m := n.wait(t)
		if len(m.Data) != 4+len(tail) || !bytes.Equal(m.Data[4:], tail) || m.Options != opts {
			t.Fatalf("burst message damaged: options %v, %d bytes %.64x", m.Options, len(m.Data), m.Data)
		}
		k := binary.BigEndian.Uint32(m.Data)
		if int(k) >= count || seen[k] {
			t.Fatalf("burst message %d out of range or repeated", k)
		}
		seen[k] = true
	}
}

// TestInteropGoToJava: the Go sender sends to a Java node (spec §14
// scenarios 5, 6 and 7 the other way).
func TestInteropGoToJava(t *testing.T) {
	n := newInteropNode(t)
	java, ctx := startJava(t, javapeer.Config{Interceptors: javapeer.DefaultStack()})
	javaM := javaMember(java)
	to := []*Member{javaM}

	// Scenario 5: options 1, 3, 7 (and 9): Java's listener gets a
	// ByteMessage with the same bytes from the Go member; Go's send
	// returns only after the ACK for 3 and 7.
	for _, opts := range []Options{
		OptByteMessage,
		OptByteMessage | OptUseAck,
		OptByteMessage | OptUseAck | OptSynchronizedAck,
		OptByteMessage | OptAsynchronous,
	} {
		t.Run(fmt.Sprintf("options %d", opts), func(t *testing.T) {
			payload := binaryPayload("go->java " + opts.String())
			msg := &Message{Options: opts, Data: payload}
			if err := n.sender.Send(ctx, to, msg); err != nil {
				t.Fatal(err)
			}
			m, err := java.WaitMessage(interopWait)
			if err != nil {
				t.Fatal(err)
			}
			if !m.Is(payload) || string(m.Payload) != string(payload) || m.Kind != "bytes" {
				t.Errorf("Java got %s %q, want the bytes %x", m.Kind, m.Payload, payload)
			}
			if m.Options != uint32(opts) || m.WireOptions != uint32(opts) {
				t.Errorf("Java saw options %d (wire %d), want %d", m.Options, m.WireOptions, opts)
			}
			if !bytes.Equal(m.MsgID, msg.UniqueID[:]) || m.Timestamp != msg.Timestamp {
				t.Errorf("Java saw id %x ts %d, Go sent %x %d", m.MsgID, m.Timestamp, msg.UniqueID[:], msg.Timestamp)
			}
			checkSourceIsGo(t, m, n)
		})
	}

	// Scenario 6, Go -> Java: a throwing Java listener answers FAIL_ACK to
	// options 7; Go resends once, as Java would, and reports ErrFailAck.
	t.Run("fail_ack from java", func(t *testing.T) {
		if err := java.SetThrow(ctx, true); err != nil {
			t.Fatal(err)
		}
		defer java.SetThrow(ctx, false)
		before := n.sender.Stats()
		msg := &Message{Options: OptByteMessage | OptUseAck | OptSynchronizedAck, Data: []byte("throw")}
		err := n.sender.Send(ctx, to, msg)
		if !errors.Is(err, ErrFailAck) {
			t.Fatalf("Send: %v, want ErrFailAck", err)
		}
		var se *SendError
		if !errors.As(err, &se) || len(se.Failed) != 1 || se.Failed[0].Member.Key() != javaM.Key() {
			t.Errorf("Send error %#v does not name the Java member", err)
		}
		for i := range 2 {
			m, err := java.WaitMessage(interopWait)
			if err != nil {
				t.Fatalf("delivery %d: %v", i+1, err)
			}
			if !m.Threw || !m.Is([]byte("throw")) || !bytes.Equal(m.MsgID, msg.UniqueID[:]) {
				t.Errorf("delivery %d: %+v", i+1, m)
			}
		}
		if r := n.sender.Stats().Retries - before.Retries; r != 1 {
			t.Errorf("%d resends, want 1", r)
		}
		// With USE_ACK alone Java acknowledges before its listener runs,
		// so the throw does not reach the sender.
		if err := n.sender.Send(ctx, to, &Message{Options: OptByteMessage | OptUseAck, Data: []byte("throw")}); err != nil {
			t.Errorf("use_ack to a throwing listener: %v", err)
		}
		if _, err := java.WaitMessage(interopWait); err != nil {
			t.Fatal(err)
		}
	})

	// Scenario 7: a 10 MiB message.
	t.Run("10 MiB", func(t *testing.T) {
		big := make([]byte, 10<<20)
		rand.Read(big)
		if err := n.sender.Send(ctx, to, &Message{Options: OptByteMessage | OptUseAck, Data: big}); err != nil {
			t.Fatal(err)
		}
		m, err := java.WaitMessage(interopWait)
		if err != nil {
			t.Fatal(err)
		}
		if !m.Is(big) || m.WireLength != len(big) {
			t.Errorf("Java got %d bytes (wire %d), not the 10 MiB sent", m.Length, m.WireLength)
		}
	})

	// Scenario 7: asynchronous messages back to back (the Go sender packs
	// queued frames into shared writes) all arrive intact.
	t.Run("async flood", func(t *testing.T) {
		const count = 1000
		for k := range count {
			data := binary.BigEndian.AppendUint32(nil, uint32(k))
			data = append(data, "flood"...)
			if err := n.sender.Send(ctx, to, &Message{Options: OptByteMessage | OptAsynchronous, Data: data}); err != nil {
				t.Fatal(err)
			}
		}
		seen := make([]bool, count)
		for range count {
			m, err := java.WaitMessage(interopWait)
			if err != nil {
				t.Fatal(err)
			}
			if m.Length != 9 || string(m.Payload[4:]) != "flood" {
				t.Fatalf("damaged: %+v", m)
			}
			k := binary.BigEndian.Uint32(m.Payload)
			if int(k) >= count || seen[k] {
				t.Fatalf("message %d out of range or repeated", k)
			}
			seen[k] = true
		}
	})

	// Scenario 7, hand-made streams: several frames in one write, and one
	// frame written a byte at a time, are parsed by Java; Java's ACK is
	// exactly the 21-byte frame of spec §4.
	t.Run("raw framing", func(t *testing.T) {
		c, err := net.Dial("tcp", javaM.AddrPort().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		frame := func(opts Options, data string) []byte {
			rec, err := n.local.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			id := NewUniqueID()
			cd := channelData{options: opts, timestamp: time.Now().UnixMilli(), uniqueID: id[:], member: rec, message: []byte(data)}
			return appendFrame(nil, appendChannelData(nil, &cd))
		}
		var batch []byte
		for i := range 3 {
			batch = append(batch, frame(OptByteMessage, fmt.Sprintf("batched %d", i))...)
		}
		if _, err := c.Write(batch); err != nil {
			t.Fatal(err)
		}
		for _, b := range frame(OptByteMessage|OptUseAck, "dribbled") {
			if _, err := c.Write([]byte{b}); err != nil {
				t.Fatal(err)
			}
		}
		// Java does not keep the order here: NioReplicationTask registers
		// the connection for reading again before it processes what it
		// read, so the dribbled frame can overtake the batch on another
		// thread. Check the set, log the order.
		want := map[string]bool{"batched 0": true, "batched 1": true, "batched 2": true, "dribbled": true}
		var order []string
		for range len(want) {
			m, err := java.WaitMessage(interopWait)
			if err != nil {
				t.Fatal(err)
			}
			if !want[string(m.Payload)] {
				t.Errorf("Java got %q, not one of the frames sent or twice", m.Payload)
			}
			delete(want, string(m.Payload))
			order = append(order, string(m.Payload))
			checkSourceIsGo(t, m, n)
		}
		t.Logf("Java delivered %q", order)
		c.SetReadDeadline(time.Now().Add(interopWait))
		ack := make([]byte, len(ackFrame))
		if _, err := io.ReadFull(c, ack); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ack, ackFrame[:]) {
			t.Errorf("Java's ACK %x, want %x", ack, ackFrame)
		}
		// Nothing else may follow: no ACK for the three no-ACK frames.
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		k, err := c.Read(ack)
		var ne net.Error
		if k != 0 || !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("after the ACK Java wrote %d more bytes %x (err %v)", k, ack[:k], err)
		}
	})

	if m, ok := java.TryMessage(); ok {
		t.Errorf("Java got an unexpected message %+v", m)
	}
	if d, ok := java.TryDropped(); ok {
		t.Errorf("Java dropped a message: %+v", d)
	}
}

// TestInteropGzip: Java's GzipInterceptor (flag 0x100,
// compressionMinSize 100) against tribes.Gzip used by hand (spec §7, §14
// scenario 9).
func TestInteropGzip(t *testing.T) {
	n := newInteropNode(t)
	java, ctx := startJava(t, javapeer.Config{Interceptors: []javapeer.Interceptor{
		{Name: javapeer.Dispatch},
		{Name: javapeer.Gzip, Props: map[string]string{"compressionMinSize": "100"}},
		{Name: javapeer.FailureDetector},
	}})
	goM := peerMember(n.local)
	to := []*Member{javaMember(java)}
	var gz Gzip
	syncAck := OptByteMessage | OptUseAck | OptSynchronizedAck

	// Java compresses messages longer than compressionMinSize and sets the
	// flag; shorter ones go as they are, flag clear.
	for _, size := range []int{50, 100, 101, 5000} {
		t.Run(fmt.Sprintf("java to go %d bytes", size), func(t *testing.T) {
			res, err := java.Send(ctx, goM, 6, javapeer.Pattern(size))
			if err != nil || !res.OK {
				t.Fatalf("Java's send: %+v, %v", res, err)
			}
			m := n.wait(t)
			want := javapeer.PatternBytes(size)
			compressed := size > 100
			if gz.IsCompressed(m.Options) != compressed || m.Options&^DefaultGzipFlag != syncAck {
				t.Fatalf("options %v for %d bytes, want the gzip flag %v", m.Options, size, compressed)
			}
			data := m.Data
			if compressed {
				// GZIPOutputStream's header: no name, mtime 0, OS 255.
				if hdr := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}; !bytes.HasPrefix(data, hdr) {
					t.Errorf("gzip header %x, want %x", data[:min(10, len(data))], hdr)
				}
				if data, err = gz.Decompress(nil, m.Data); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(data, want) {
				t.Errorf("got %d bytes %.32x, want the %d-byte pattern", len(data), data, size)
			}
			checkSourceIsJava(t, &m, java)
		})
	}

	// Go compresses as GzipInterceptor would; Java gunzips by the flag and
	// does not clear it.
	for _, size := range []int{50, 100, 101, 5000} {
		t.Run(fmt.Sprintf("go to java %d bytes", size), func(t *testing.T) {
			plain := javapeer.PatternBytes(size)
			g := Gzip{MinSize: 100}
			opts, data := syncAck, plain
			if g.ShouldCompress(len(plain)) {
				var err error
				if data, err = g.Compress(nil, plain); err != nil {
					t.Fatal(err)
				}
				opts |= g.OptionFlag()
			}
			if err := n.sender.Send(ctx, to, &Message{Options: opts, Data: data}); err != nil {
				t.Fatal(err)
			}
			m, err := java.WaitMessage(interopWait)
			if err != nil {
				t.Fatal(err)
			}
			if !m.Is(plain) || m.Options != uint32(opts) || m.WireOptions != uint32(opts) || m.WireLength != len(data) {
				t.Errorf("Java got %d bytes, options %#x (wire %#x, %d bytes); sent %d bytes as %d with %#x",
					m.Length, m.Options, m.WireOptions, m.WireLength, size, len(data), opts)
			}
			checkSourceIsGo(t, m, n)
		})
	}

	// A flagged message that is not gzip: Java drops it, and still ACKs.
	t.Run("corrupt gzip from go", func(t *testing.T) {
		opts := syncAck | DefaultGzipFlag
		if err := n.sender.Send(ctx, to, &Message{Options: opts, Data: []byte("not gzip at all")}); err != nil {
			t.Fatalf("Send: %v (Java should ACK a message its gzip interceptor drops)", err)
		}
		d, err := java.WaitDropped(interopWait)
		if err != nil {
			t.Fatal(err)
		}
		if d.WireOptions != uint32(opts) || string(d.WirePayload) != "not gzip at all" {
			t.Errorf("dropped %+v", d)
		}
		if m, ok := java.TryMessage(); ok {
			t.Errorf("the listener got the corrupt message: %+v", m)
		}
	})
	n.expectNoMore(t)
}
