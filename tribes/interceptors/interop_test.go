package interceptors_test

// Channel-level wire interop of the optional interceptors with a real
// Apache Tribes 10.1 node (spec section 14, scenarios 9, 10 and 16): a Go
// tribes.Channel with Gzip, Encrypt, StaticMembership and TCPPing from this
// package against a Java GroupChannel with GzipInterceptor,
// EncryptInterceptor, StaticMembershipInterceptor and TcpPingInterceptor,
// run by the TribesPeer harness of package interop (interop/javapeer).
//
// The multicast scenarios use a group and port of the test's own on the
// loopback interface (tribestest.McastConfig: bind 127.0.0.1, TTL 0; the
// Java side bind=127.0.0.1, ttl=0, -Djava.net.preferIPv4Stack=true), with
// Tomcat's timing (heartbeat 500 ms, drop time 3 s). The static scenario
// uses no multicast at all.
//
// The tests skip under -short, when java, javac or the Tribes jars are
// missing (Debian: apt-get install -y default-jdk-headless
// libtomcat10-java), and when multicast on lo does not work here. They
// assert behaviour; the latencies they observe are logged.

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/interop/javapeer"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
)

const (
	iopWait     = 10 * time.Second // something the other side must do at once
	iopJoinWait = 20 * time.Second // a join, with a failed first probe retried
)

// iopTCPFailDetect is TcpFailureDetector's probe payload (spec §9).
var iopTCPFailDetect = []byte{
	0x4f, 0xa7, 0x73, 0x48, 0x79, 0x82, 0x43, 0xc9, 0x9f, 0x6f, 0x89, 0x80, 0xa1, 0x5b, 0x07, 0x14,
	0x7d, 0xd9, 0x52, 0x5b, 0xeb, 0xf1, 0x43, 0x9a, 0xb7, 0x7e, 0xbe, 0x8f, 0x81, 0x67, 0x1e, 0xb6,
	0x37, 0x15, 0xbe, 0x87, 0x45, 0x7e, 0x4c, 0xa8, 0xbf, 0x0a, 0x4d, 0x13, 0x53, 0x38, 0x15, 0x32,
	0x55, 0xf6, 0x94, 0xb7, 0x3a, 0xfa, 0x40, 0x78, 0x91, 0x04, 0x7d, 0xd7, 0x72, 0x84, 0xc0, 0xd5,
}

// iopToolchain skips the test unless it may start a JVM running Tribes.
func iopToolchain(t *testing.T) *javapeer.Toolchain {
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

// iopEnv is one test's Java toolchain and multicast group.
type iopEnv struct {
	t  *testing.T
	tc *javapeer.Toolchain
	mc tribes.McastConfig
}

func newIopEnv(t *testing.T) *iopEnv {
	t.Helper()
	tc := iopToolchain(t)
	mc := tribestest.McastConfig(t)
	mc.Frequency = 500 * time.Millisecond
	mc.DropTime = 3 * time.Second
	if mc.Bind != "127.0.0.1" || mc.TTL != 0 {
		t.Fatal("interop tests must multicast on lo only (bind 127.0.0.1, TTL 0)")
	}
	t.Logf("multicast group %s:%d on lo", mc.Address, mc.Port)
	return &iopEnv{t: t, tc: tc, mc: mc}
}

// startJava starts a Java node; with mcast it joins the test's group.
func (e *iopEnv) startJava(cfg javapeer.Config, mcast bool) *javapeer.Peer {
	e.t.Helper()
	cfg.Toolchain = e.tc
	if mcast {
		cfg.Membership = &javapeer.Membership{
			Address: e.mc.Address, Port: e.mc.Port, Bind: "127.0.0.1",
			Frequency: e.mc.Frequency, DropTime: e.mc.DropTime,
		}
		cfg.Properties = append([]javapeer.Property{{Target: "mcast", Name: "ttl", Value: "0"}}, cfg.Properties...)
	}
	t0 := time.Now()
	p := javapeer.StartT(e.t, cfg)
	e.t.Logf("Java node %v started in %v (Tribes %s)", p.Local(), time.Since(t0).Round(time.Millisecond), p.TribesVersion())
	return p
}

// iopNode is a Go channel whose listeners keep what they get.
type iopNode struct {
	ch    *tribes.Channel
	msgs  chan tribes.Message
	added chan *tribes.Member
	gone  chan *tribes.Member

	mu       sync.Mutex
	addedAll []*tribes.Member // every member added, in order
}

// everAdded returns every member the listener was told of as added.
func (n *iopNode) everAdded() []*tribes.Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.addedAll)
}

// startGo starts a Go channel with the given stack, in the test's group
// unless mutate changes the membership.
func (e *iopEnv) startGo(stack []tribes.Interceptor, mutate func(*tribes.Config)) *iopNode {
	e.t.Helper()
	cfg := tribes.LocalConfig()
	cfg.Mcast = e.mc
	cfg.Interceptors = stack
	if mutate != nil {
		mutate(&cfg)
	}
	ch, err := tribes.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	n := &iopNode{ch: ch, msgs: make(chan tribes.Message, 256),
		added: make(chan *tribes.Member, 64), gone: make(chan *tribes.Member, 64)}
	ch.AddMessageListener(tribes.ListenerFunc(func(m *tribes.Message) error {
		n.msgs <- tribes.Message{Options: m.Options, Timestamp: m.Timestamp, UniqueID: m.UniqueID,
			Source: m.Source.Clone(), Data: bytes.Clone(m.Data)}
		return nil
	}))
	ch.AddMembershipListener(tribes.MembershipFuncs{
		Added: func(m *tribes.Member) {
			n.mu.Lock()
			n.addedAll = append(n.addedAll, m.Clone())
			n.mu.Unlock()
			n.added <- m.Clone()
		},
		Disappeared: func(m *tribes.Member) { n.gone <- m.Clone() },
	})
	if err := ch.Start(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ch.Stop(ctx)
	})
	return n
}

// iopWaitMember waits on events (n.added or n.gone) for the member with the
// Java node's identity; events for other members are skipped.
func iopWaitMember(t *testing.T, events chan *tribes.Member, want javapeer.Member, timeout time.Duration) *tribes.Member {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-events:
			if m.Host == want.Host && m.Port == want.Port && m.UniqueID == tribes.UniqueID(want.UniqueID) {
				return m
			}
		case <-deadline:
			t.Fatalf("no membership event for the Java node %v within %v", want, timeout)
			return nil
		}
	}
}

// member returns the Go channel's member that is the Java node.
func (n *iopNode) member(t *testing.T, p *javapeer.Peer) *tribes.Member {
	t.Helper()
	for _, m := range n.ch.Members() {
		if m.Host == p.Local().Host && m.Port == p.Local().Port && m.UniqueID == tribes.UniqueID(p.Local().UniqueID) {
			return m
		}
	}
	t.Fatalf("the Go channel's members %v lack the Java node %v", n.ch.Members(), p.Local())
	return nil
}

func (n *iopNode) waitMessage(t *testing.T) tribes.Message {
	t.Helper()
	select {
	case m := <-n.msgs:
		return m
	case <-time.After(iopWait):
		t.Fatalf("the Go listener got no message within %v", iopWait)
		return tribes.Message{}
	}
}

func (n *iopNode) expectNoMessage(t *testing.T) {
	t.Helper()
	select {
	case m := <-n.msgs:
		t.Errorf("unexpected message at the Go listener: options %v, %d bytes %.40x", m.Options, len(m.Data), m.Data)
	default:
	}
}

// iopGoMember is the Java harness's view of a Go member.
func iopGoMember(m *tribes.Member) javapeer.Member {
	return javapeer.Member{Host: m.Host, Port: m.Port, UniqueID: m.UniqueID}
}

// iopJavaWaitAdded waits for Java's memberAdded for the Go member want,
// skipping others.
func iopJavaWaitAdded(t *testing.T, p *javapeer.Peer, want *tribes.Member, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m, err := p.WaitMemberAdded(time.Until(deadline))
		if err != nil {
			t.Fatalf("Java never added the Go node %v: %v", want, err)
		}
		if m.Same(iopGoMember(want)) {
			return
		}
	}
}

// iopJavaWaitDropped returns the next message the Java channel dropped that
// is not a failure-detector probe.
func iopJavaWaitDropped(t *testing.T, p *javapeer.Peer) javapeer.Message {
	t.Helper()
	deadline := time.Now().Add(iopWait)
	for {
		d, err := p.WaitDropped(time.Until(deadline))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(d.WirePayload, iopTCPFailDetect) {
			return d
		}
	}
}

// iopJavaNoDrops fails on a dropped message that is not a probe.
func iopJavaNoDrops(t *testing.T, p *javapeer.Peer) {
	t.Helper()
	for {
		d, ok := p.TryDropped()
		if !ok {
			return
		}
		if !bytes.Equal(d.WirePayload, iopTCPFailDetect) {
			t.Errorf("Java dropped a message: options %d, %d bytes from %v", d.WireOptions, d.WireLength, d.Source)
		}
	}
}

// iopJavaLogs returns the lines of Java's log that start with prefix
// ("SEVERE:", "WARNING:"), joined by " | ".
func iopJavaLogs(p *javapeer.Peer, prefix string) string {
	var out []string
	for _, l := range strings.Split(p.Stderr(), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out, " | ")
}

// iopCompressible returns a message that gzip shrinks a lot.
func iopCompressible(tag string) []byte {
	return []byte(strings.Repeat("wasmfarm tribes interop "+tag+" ", 100))
}

// iopOptions are the send options exercised both ways.
var iopOptions = []struct {
	name  string
	opts  tribes.Options
	async bool
}{
	{"async", tribes.OptAsynchronous, true},
	{"use_ack", tribes.OptUseAck, false},
	{"sync_ack", tribes.OptUseAck | tribes.OptSynchronizedAck, false},
}

// iopExchange sends payloads both ways between the Go node n and the Java
// node p with each of iopOptions, and checks that each side's listener
// gets the same bytes from the other with the options sent (plus
// BYTE_MESSAGE and extra, the option bits the stack adds). wire checks
// Java's view of a Go message as it came off the wire.
func iopExchange(t *testing.T, n *iopNode, p *javapeer.Peer, extra tribes.Options, wire func(t *testing.T, m javapeer.Message, plain []byte)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	javaM := n.member(t, p)
	local := n.ch.LocalMember()
	for _, tc := range iopOptions {
		want := tc.opts | tribes.OptByteMessage | extra
		t.Run("go to java "+tc.name, func(t *testing.T) {
			payload := iopCompressible("go->java " + tc.name)
			if err := n.ch.Send(ctx, []*tribes.Member{javaM}, payload, tc.opts); err != nil {
				t.Fatal(err)
			}
			m, err := p.WaitMessage(iopWait)
			if err != nil {
				t.Fatal(err)
			}
			if m.Kind != "bytes" || !m.Is(payload) {
				t.Errorf("Java got %s %q, want the bytes %q", m.Kind, m.Payload, payload)
			}
			if m.Options != uint32(want) || m.WireOptions != uint32(want) {
				t.Errorf("Java saw options %#x (wire %#x), want %#x", m.Options, m.WireOptions, want)
			}
			if !m.Source.Same(iopGoMember(local)) {
				t.Errorf("Java saw source %v, want the Go node %v", m.Source, local)
			}
			if wire != nil {
				wire(t, m, payload)
			}
		})
		t.Run("java to go "+tc.name, func(t *testing.T) {
			payload := iopCompressible("java->go " + tc.name)
			res, err := p.Send(ctx, iopGoMember(local), uint32(tc.opts), javapeer.Bytes(payload))
			if err != nil || !res.OK {
				t.Fatalf("Java's send: %+v, %v", res, err)
			}
			if tc.async {
				if ar, err := p.WaitAsync(ctx, res.Cmd); err != nil || !ar.OK {
					t.Fatalf("Java's asynchronous send: %+v, %v", ar, err)
				}
			}
			m := n.waitMessage(t)
			if !bytes.Equal(m.Data, payload) || m.Options != want {
				t.Errorf("Go got options %#x %q, want %#x %q", m.Options, m.Data, want, payload)
			}
			if m.Source == nil || m.Source.Key() != javaM.Key() {
				t.Errorf("Go saw source %v, want the Java node %v", m.Source, javaM)
			}
			if !bytes.Equal(m.UniqueID[:], res.MsgID) {
				t.Errorf("message id %x, Java sent %x", m.UniqueID[:], res.MsgID)
			}
		})
	}
}

// iopJoinBoth waits until the Go node and the Java node have added each other.
func iopJoinBoth(t *testing.T, n *iopNode, p *javapeer.Peer) {
	t.Helper()
	t0 := time.Now()
	iopWaitMember(t, n.added, p.Local(), iopJoinWait)
	goSaw := time.Since(t0)
	iopJavaWaitAdded(t, p, n.ch.LocalMember(), iopJoinWait)
	t.Logf("join: Go saw Java after %v, Java saw Go by %v", goSaw.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
}

// TestInteropGzipChannel: GzipInterceptor (flag 0x100, compressionMinSize
// 0) on both sides, byte messages both ways (§7, §14.9).
func TestInteropGzipChannel(t *testing.T) {
	e := newIopEnv(t)
	java := e.startJava(javapeer.Config{Interceptors: []javapeer.Interceptor{
		{Name: javapeer.Dispatch}, {Name: javapeer.Gzip}, {Name: javapeer.FailureDetector},
	}}, true)
	gz, err := interceptors.NewGzip(interceptors.GzipConfig{})
	if err != nil {
		t.Fatal(err)
	}
	n := e.startGo([]tribes.Interceptor{
		tribes.NewMessageDispatcher(tribes.DispatcherConfig{}), gz, tribes.NewFailureDetector(tribes.FailureDetectorConfig{}),
	}, nil)
	iopJoinBoth(t, n, java)
	iopExchange(t, n, java, tribes.DefaultGzipFlag, func(t *testing.T, m javapeer.Message, plain []byte) {
		if m.WireLength >= len(plain)/4 {
			t.Errorf("Java received %d wire bytes for %d compressible bytes", m.WireLength, len(plain))
		}
	})
	st := gz.Stats()
	t.Logf("Go gzip stats %+v", st)
	if st.TxCompressed != int64(len(iopOptions)) || st.RxCompressed != int64(len(iopOptions)) || st.RxFailures != 0 {
		t.Errorf("Go gzip stats %+v: want %d messages compressed each way, no failures", st, len(iopOptions))
	}
	n.expectNoMessage(t)
	iopJavaNoDrops(t, java)
	if l := iopJavaLogs(java, "SEVERE:"); l != "" {
		t.Errorf("Java logged errors: %s", l)
	}
}

// TestInteropEncryptChannel: GzipInterceptor above EncryptInterceptor on
// both sides with the same AES-128 or AES-256 key, in the multicast group
// with TcpFailureDetector below: the probes (unencrypted) still work, byte
// messages go both ways; a Go node with another key joins (membership and
// probes are in clear) but its messages and Java's to it are dropped,
// counted, and ACKed normally (§8, §14.10).
func TestInteropEncryptChannel(t *testing.T) {
	for _, tc := range []struct {
		name, key, wrong string
	}{
		{"AES-128-GCM", "000102030405060708090a0b0c0d0e0f", "0f0e0d0c0b0a09080706050403020100"},
		{"AES-256-GCM", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
			"1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newIopEnv(t)
			java := e.startJava(javapeer.Config{Interceptors: []javapeer.Interceptor{
				{Name: javapeer.Dispatch}, {Name: javapeer.Gzip},
				{Name: javapeer.Encrypt, Props: map[string]string{"encryptionKey": tc.key}},
				{Name: javapeer.FailureDetector},
			}}, true)
			stack := func(key string) ([]tribes.Interceptor, *interceptors.Encrypt) {
				gz, err := interceptors.NewGzip(interceptors.GzipConfig{})
				if err != nil {
					t.Fatal(err)
				}
				enc, err := interceptors.NewEncrypt(interceptors.EncryptConfig{EncryptionKey: key})
				if err != nil {
					t.Fatal(err)
				}
				return []tribes.Interceptor{tribes.NewMessageDispatcher(tribes.DispatcherConfig{}), gz, enc,
					tribes.NewFailureDetector(tribes.FailureDetectorConfig{})}, enc
			}
			goodStack, goodEnc := stack(tc.key)
			good := e.startGo(goodStack, nil)
			iopJoinBoth(t, good, java)
			iopExchange(t, good, java, tribes.DefaultGzipFlag, func(t *testing.T, m javapeer.Message, plain []byte) {
				// IV 12 + timestamp 8 + gzip + tag 16: far less than the plain text.
				if m.WireLength < interceptors.EncryptOverhead || m.WireLength >= len(plain)/4 {
					t.Errorf("Java received %d wire bytes for %d compressible bytes", m.WireLength, len(plain))
				}
			})
			st := goodEnc.Stats()
			t.Logf("Go encrypt stats %+v", st)
			if st.Encrypted != int64(len(iopOptions)) || st.Decrypted != int64(len(iopOptions)) ||
				st.DecryptFailures != 0 || st.Replays != 0 || st.Skewed != 0 {
				t.Errorf("Go encrypt stats %+v: want %d messages each way, no failures", st, len(iopOptions))
			}
			good.expectNoMessage(t)
			iopJavaNoDrops(t, java)
			if l := iopJavaLogs(java, "SEVERE:"); l != "" {
				t.Errorf("Java logged errors: %s", l)
			}

			badStack, badEnc := stack(tc.wrong)
			bad := e.startGo(badStack, nil)
			iopJoinBoth(t, bad, java)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()

			t.Run("java to go with the wrong key", func(t *testing.T) {
				before := badEnc.Stats()
				res, err := java.Send(ctx, iopGoMember(bad.ch.LocalMember()), 6, javapeer.Bytes([]byte("for the right key only")))
				if err != nil {
					t.Fatal(err)
				}
				if !res.OK {
					t.Errorf("Java's send with options 6 failed: %s (the Go receiver must ACK a message it cannot decrypt)", res.Error)
				}
				// With options 6 the ACK comes after processing: the
				// failure is counted by the time Java's send returns.
				after := badEnc.Stats()
				if after.DecryptFailures != before.DecryptFailures+1 || after.Decrypted != before.Decrypted {
					t.Errorf("Go encrypt stats %+v -> %+v: want one decrypt failure", before, after)
				}
				bad.expectNoMessage(t)
			})

			t.Run("go to java with the wrong key", func(t *testing.T) {
				javaM := bad.member(t, java)
				payload := []byte("sealed with the wrong key")
				if err := bad.ch.Send(ctx, []*tribes.Member{javaM}, payload, tribes.OptUseAck|tribes.OptSynchronizedAck); err != nil {
					t.Errorf("Send with the wrong key: %v (Java must ACK a message it cannot decrypt)", err)
				}
				d := iopJavaWaitDropped(t, java)
				if !d.Source.Same(iopGoMember(bad.ch.LocalMember())) || d.WireOptions != uint32(tribes.OptByteMessage|tribes.OptUseAck|tribes.OptSynchronizedAck|tribes.DefaultGzipFlag) {
					t.Errorf("Java dropped options %#x from %v, want the wrong-key node's message", d.WireOptions, d.Source)
				}
				if m, ok := java.TryMessage(); ok {
					t.Errorf("Java's listener got %q from %v", m.Payload, m.Source)
				}
				t.Logf("Java logged: %s", iopJavaLogs(java, "SEVERE:"))
			})
			good.expectNoMessage(t)
		})
	}
}

// TestInteropDomainFilterChannel: the Go DomainFilter (domain A) between
// a Go node and two Java nodes of domains A and B in one multicast group:
// Go reports only the domain A node as a member and delivers only its
// messages; the other's are dropped, counted, and still ACKed (§11,
// §14.13 the other way).
func TestInteropDomainFilterChannel(t *testing.T) {
	e := newIopEnv(t)
	javaA := e.startJava(javapeer.Config{Domain: "A", Interceptors: javapeer.DefaultStack()}, true)
	javaB := e.startJava(javapeer.Config{Domain: "B", Interceptors: javapeer.DefaultStack()}, true)
	df, err := interceptors.NewDomainFilter(interceptors.DomainFilterConfig{Domain: "A"})
	if err != nil {
		t.Fatal(err)
	}
	n := e.startGo([]tribes.Interceptor{
		tribes.NewMessageDispatcher(tribes.DispatcherConfig{}), df, tribes.NewFailureDetector(tribes.FailureDetectorConfig{}),
	}, func(c *tribes.Config) { c.Domain = []byte("A") })
	iopJoinBoth(t, n, javaA)
	// Java B has no filter: it adds the Go node. The Go node must not add
	// Java B, whose heartbeats it has been hearing as long as A's.
	iopJavaWaitAdded(t, javaB, n.ch.LocalMember(), iopJoinWait)
	time.Sleep(2 * time.Second)
	for _, m := range n.everAdded() {
		if string(m.Domain) != "A" {
			t.Errorf("the Go node added %v (domain %q); only domain A may be admitted", m, m.Domain)
		}
	}
	if ms := n.ch.Members(); len(ms) != 1 || string(ms[0].Domain) != "A" || ms[0].Port != javaA.Local().Port {
		t.Errorf("Go members %v, want the domain A Java node only", ms)
	}
	if st := df.Stats(); st.RefusedMembers == 0 {
		t.Errorf("domain filter stats %+v: want the domain B member refused", st)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	local := iopGoMember(n.ch.LocalMember())
	before := df.Stats()
	res, err := javaB.Send(ctx, local, 6, javapeer.Bytes([]byte("from B")))
	if err != nil || !res.OK {
		t.Fatalf("Java B's send with options 6: %+v, %v (the Go receiver ACKs messages its filter drops)", res, err)
	}
	if after := df.Stats(); after.Refused != before.Refused+1 {
		t.Errorf("domain filter stats %+v -> %+v: want Java B's message refused", before, after)
	}
	n.expectNoMessage(t)
	res, err = javaA.Send(ctx, local, 6, javapeer.Bytes([]byte("from A")))
	if err != nil || !res.OK {
		t.Fatalf("Java A's send: %+v, %v", res, err)
	}
	if m := n.waitMessage(t); string(m.Data) != "from A" || m.Source == nil || string(m.Source.Domain) != "A" {
		t.Errorf("Go got %q from %v, want \"from A\" from the domain A node", m.Data, m.Source)
	}
}

// TestInteropStaticChannel: no multicast. The Java node runs
// TcpFailureDetector, TcpPingInterceptor and StaticMembershipInterceptor
// naming the Go node's host, port and unique id; the Go node runs
// FailureDetector, TCPPing and StaticMembership naming the Java node's.
// They add each other (probe, MEMBER_START), exchange messages, drop each
// other's pings, and remove each other on MEMBER_STOP (§10, §14.16).
func TestInteropStaticChannel(t *testing.T) {
	tc := iopToolchain(t)
	e := &iopEnv{t: t, tc: tc}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	goPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	goID := tribes.NewUniqueID()
	goStatic := javapeer.Member{Host: netip.MustParseAddr("127.0.0.1"), Port: goPort, UniqueID: goID}
	javaID := tribes.NewUniqueID()
	java := e.startJava(javapeer.Config{
		Interceptors: []javapeer.Interceptor{
			{Name: javapeer.Dispatch}, {Name: javapeer.FailureDetector}, {Name: javapeer.Ping}, {Name: javapeer.StaticMembership},
		},
		LocalMember:   &javapeer.Member{UniqueID: javaID},
		StaticMembers: []javapeer.Member{goStatic},
		Properties:    []javapeer.Property{{Target: "channel", Name: "heartbeatSleeptime", Value: "500"}},
	}, false)
	jl := java.Local()
	if jl.UniqueID != javaID {
		t.Fatalf("the Java node's unique id is %x, want the configured %x", jl.UniqueID, javaID)
	}
	javaStatic := &tribes.Member{Host: jl.Host, Port: jl.Port, SecurePort: -1, UDPPort: -1, UniqueID: tribes.UniqueID(jl.UniqueID)}

	type goStack struct {
		fd     *tribes.FailureDetector
		ping   *interceptors.TCPPing
		static *interceptors.StaticMembership
	}
	start := func() (*iopNode, goStack) {
		var s goStack
		s.fd = tribes.NewFailureDetector(tribes.FailureDetectorConfig{})
		s.ping = interceptors.NewTCPPing(interceptors.TCPPingConfig{})
		s.static, err = interceptors.NewStaticMembership(interceptors.StaticMembershipConfig{Members: []*tribes.Member{javaStatic}})
		if err != nil {
			t.Fatal(err)
		}
		n := e.startGo([]tribes.Interceptor{tribes.NewMessageDispatcher(tribes.DispatcherConfig{}), s.fd, s.ping, s.static},
			func(c *tribes.Config) {
				c.Membership = tribes.Merge() // no multicast
				c.Receiver.Port, c.Receiver.AutoBind = goPort, 1
				c.UniqueID = goID
				c.HeartbeatInterval = 500 * time.Millisecond
			})
		if k := n.ch.LocalMember().Key(); k != (tribes.MemberKey{Host: goStatic.Host, Port: goPort, ID: goID}) {
			t.Fatalf("the Go node is %v, not the member Java was configured with", n.ch.LocalMember())
		}
		return n, s
	}

	t0 := time.Now()
	n, s := start()
	iopWaitMember(t, n.added, jl, iopJoinWait)
	goSaw := time.Since(t0)
	iopJavaWaitAdded(t, java, n.ch.LocalMember(), iopJoinWait)
	t.Logf("static join: Go saw Java after %v, Java saw Go by %v", goSaw.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))

	t.Run("control messages", func(t *testing.T) {
		// Java pings every heartbeat (500 ms) and Go every heartbeat; each
		// side drops the other's pings; MEMBER_START went both ways.
		deadline := time.Now().Add(iopWait)
		for s.ping.Stats().PingsReceived == 0 || s.static.Stats().StartsSent == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("after %v: ping stats %+v, static stats %+v", iopWait, s.ping.Stats(), s.static.Stats())
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("Go ping stats %+v; static membership stats %+v; failure detector %+v", s.ping.Stats(), s.static.Stats(), s.fd.Stats())
		if st := s.static.Stats(); st.StartsReceived == 0 {
			t.Logf("Java sent no MEMBER_START (it added the Go node by its own probe)")
		} else if st.Unknown != 0 {
			t.Errorf("static stats %+v: control messages from unknown members", st)
		}
		// What Java's listener did not get: Go's probes, pings and
		// MEMBER_START, all consumed by Java's interceptors.
		pings, starts := 0, 0
		for {
			d, ok := java.TryDropped()
			if !ok {
				break
			}
			if !d.Source.Same(goStatic) {
				t.Errorf("Java dropped a message from %v, not from the Go node", d.Source)
			}
			switch {
			case bytes.Equal(d.WirePayload, iopTCPFailDetect):
			case d.WireLength == 64 && d.WireOptions == 0:
				pings++ // TCP_PING_DATA, dropped by TcpPingInterceptor
			case string(d.WirePayload) == "Local StaticMember Notification Data" && d.WireOptions == 0:
				starts++ // MEMBER_START, consumed by StaticMembershipInterceptor
			default:
				t.Errorf("Java dropped options %d %q", d.WireOptions, d.WirePayload)
			}
		}
		t.Logf("Java consumed %d ping(s) and %d MEMBER_START from Go", pings, starts)
		if starts != 1 {
			t.Errorf("Java consumed %d MEMBER_START messages, want 1", starts)
		}
		if pings == 0 {
			// The Go node may not have had a heartbeat since it added Java.
			deadline := time.Now().Add(iopWait)
			for pings == 0 && time.Now().Before(deadline) {
				if d, err := java.WaitDropped(time.Until(deadline)); err == nil && d.WireLength == 64 && d.WireOptions == 0 {
					pings++
				}
			}
			if pings == 0 {
				t.Errorf("Java dropped none of Go's pings (%d sent)", s.ping.Stats().Pings)
			}
		}
		n.expectNoMessage(t)
		if m, ok := java.TryMessage(); ok {
			t.Errorf("Java's listener got %q from %v", m.Payload, m.Source)
		}
	})

	t.Run("messages", func(t *testing.T) {
		iopExchange(t, n, java, 0, nil)
	})

	t.Logf("Java's warnings and errors so far: %s", iopJavaLogs(java, "WARNING:")+" "+iopJavaLogs(java, "SEVERE:"))

	t.Run("go stops", func(t *testing.T) {
		t0 := time.Now()
		if err := n.ch.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		m, err := java.WaitMemberDisappeared(iopJoinWait)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("Java's memberDisappeared %v after the Go channel's Stop (MEMBER_STOP sent: %d)", time.Since(t0).Round(time.Millisecond), s.static.Stats().StopsSent)
		if !m.Same(goStatic) {
			t.Errorf("Java removed %v, want the Go node %v", m, goStatic)
		}
		if s.static.Stats().StopsSent == 0 {
			t.Errorf("the Go node sent no MEMBER_STOP")
		}
	})

	t.Run("go restarts, java stops", func(t *testing.T) {
		t0 := time.Now()
		n, s := start()
		iopWaitMember(t, n.added, jl, iopJoinWait)
		iopJavaWaitAdded(t, java, n.ch.LocalMember(), iopJoinWait)
		t.Logf("static rejoin with the same identity: both sides added each other within %v", time.Since(t0).Round(time.Millisecond))
		before := s.static.Stats()
		t0 = time.Now()
		if err := java.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		m := iopWaitMember(t, n.gone, jl, iopJoinWait)
		after := s.static.Stats()
		t.Logf("Go's MemberDisappeared %v after Java's stop (command %q; static stats %+v)", time.Since(t0).Round(time.Millisecond), m.Command, after)
		if after.StopsReceived != before.StopsReceived+1 {
			t.Errorf("static stats %+v -> %+v: want Java's MEMBER_STOP", before, after)
		}
		if len(n.ch.Members()) != 0 {
			t.Errorf("Go still lists %v", n.ch.Members())
		}
	})
}
