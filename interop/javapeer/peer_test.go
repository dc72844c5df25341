package javapeer

import (
	"bytes"
	"context"
	"net/netip"
	"testing"
	"time"
)

// TestPeerToPeer drives two Tribes nodes against each other: it checks
// the harness itself (commands, events, payload kinds, FAIL_ACK, members,
// stop) with no Go transport involved.
func TestPeerToPeer(t *testing.T) {
	tc := Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := Config{Toolchain: tc, Interceptors: DefaultStack(), HexLimit: 1024}
	a := StartT(t, cfg)
	b := StartT(t, cfg)
	if a.TribesVersion() == "" || a.JavaVersion() == "" {
		t.Errorf("versions not reported: tribes %q java %q", a.TribesVersion(), a.JavaVersion())
	}
	t.Logf("Tribes %s on Java %s; a = %v, b = %v", a.TribesVersion(), a.JavaVersion(), a.Local(), b.Local())
	if a.Local().Same(b.Local()) || a.Local().Port == b.Local().Port {
		t.Fatalf("both peers are %v", a.Local())
	}

	tests := []struct {
		name      string
		options   uint32
		payload   Payload
		want      []byte
		kind      string
		class     string
		wireFlags uint32 // the options expected on the wire
	}{
		{"byte message, no ack", 0, Bytes([]byte("hello")), []byte("hello"), "bytes", "org.apache.catalina.tribes.ByteMessage", 1},
		{"byte message, sync ack", 6, Bytes([]byte{0, 1, 2}), []byte{0, 1, 2}, "bytes", "org.apache.catalina.tribes.ByteMessage", 7},
		{"empty byte message", 2, Bytes(nil), []byte{}, "bytes", "org.apache.catalina.tribes.ByteMessage", 3},
		{"large pattern", 2, Pattern(5000), PatternBytes(5000), "bytes", "org.apache.catalina.tribes.ByteMessage", 3},
		{"string", 2, JavaString("héllo"), []byte("héllo"), "object", "java.lang.String", 2},
		{"byte array", 2, JavaByteArray([]byte{9, 8}), []byte{9, 8}, "object", "[B", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := a.Send(ctx, b.Local(), tc.options, tc.payload)
			if err != nil {
				t.Fatal(err)
			}
			if !res.OK {
				t.Fatalf("Java send failed: %s", res.Error)
			}
			m, err := b.WaitMessage(10 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if !m.Is(tc.want) || m.Kind != tc.kind || m.Class != tc.class {
				t.Errorf("got %s %s of %d bytes, want %s %s %x", m.Kind, m.Class, m.Length, tc.kind, tc.class, tc.want)
			}
			if m.WireOptions != tc.wireFlags || m.Options != tc.wireFlags {
				t.Errorf("options %d, wire %d, want %d", m.Options, m.WireOptions, tc.wireFlags)
			}
			if !m.Source.Same(a.Local()) {
				t.Errorf("source %v, want %v", m.Source, a.Local())
			}
			if !bytes.Equal(m.MsgID, res.MsgID) {
				t.Errorf("msgId %x, send returned %x", m.MsgID, res.MsgID)
			}
			if len(tc.want) <= 1024 && m.Payload == nil {
				t.Errorf("payload of %d bytes not reported", len(tc.want))
			}
			if tc.class == "java.lang.String" && m.Text != string(tc.want) {
				t.Errorf("text %q", m.Text)
			}
		})
	}

	t.Run("burst async", func(t *testing.T) {
		res, err := a.Burst(ctx, b.Local(), 8, 50, 3, Bytes([]byte("x")))
		if err != nil || !res.OK || res.Sent != 50 {
			t.Fatalf("burst: %+v, %v", res, err)
		}
		ar, err := a.WaitAsync(ctx, res.Cmd)
		if err != nil || !ar.OK {
			t.Fatalf("async outcome: %+v, %v", ar, err)
		}
		seen := make(map[uint32]bool)
		for range 50 {
			m, err := b.WaitMessage(10 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if m.Length != 5 || m.Payload[4] != 'x' || m.WireOptions != 9 {
				t.Fatalf("burst message %+v", m)
			}
			seen[uint32(m.Payload[0])<<24|uint32(m.Payload[1])<<16|uint32(m.Payload[2])<<8|uint32(m.Payload[3])] = true
		}
		if len(seen) != 50 {
			t.Errorf("%d distinct messages of 50", len(seen))
		}
	})

	t.Run("fail ack", func(t *testing.T) {
		if err := b.SetThrow(ctx, true); err != nil {
			t.Fatal(err)
		}
		defer b.SetThrow(ctx, false)
		res, err := a.Send(ctx, b.Local(), 6, Bytes([]byte("boom")))
		if err != nil {
			t.Fatal(err)
		}
		if res.OK {
			t.Fatal("send to a throwing listener succeeded")
		}
		// Java resends once after FAIL_ACK (maxRetryAttempts=1).
		for i := range 2 {
			m, err := b.WaitMessage(10 * time.Second)
			if err != nil {
				t.Fatalf("delivery %d: %v", i+1, err)
			}
			if !m.Threw || !m.Is([]byte("boom")) {
				t.Errorf("delivery %d: %+v", i+1, m)
			}
		}
		t.Logf("Java's error: %s", res.Error)
	})

	t.Run("commands", func(t *testing.T) {
		if err := a.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Members(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := a.do(ctx, "bogus"); err == nil {
			t.Fatal("unknown command accepted")
		}
		if _, err := a.Burst(ctx, b.Local(), 8, 1, 1, JavaString("x")); err == nil {
			t.Fatal("burst with a String tail accepted")
		}
	})

	if m, ok := b.TryMessage(); ok {
		t.Errorf("unexpected extra message %+v", m)
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	default:
		t.Fatal("Stop returned before the JVM exited")
	}
	if _, err := a.Send(ctx, b.Local(), 0, Bytes(nil)); err == nil {
		t.Fatal("send on a stopped peer succeeded")
	}
	if _, err := a.WaitMessage(time.Second); err == nil {
		t.Fatal("WaitMessage on a stopped peer succeeded")
	}
}

// TestStartFailure checks that a harness that cannot start (a bad flag)
// is reported with Java's reason, not as a timeout.
func TestStartFailure(t *testing.T) {
	tc := Require(t)
	_, err := Start(context.Background(), Config{Toolchain: tc, Interceptors: []Interceptor{{Name: "nosuch"}}})
	if err == nil {
		t.Fatal("started with an unknown interceptor")
	}
	t.Log(err)
}

// TestPeerStaticEncrypted runs two Tribes nodes that know each other
// through StaticMembershipInterceptor (no multicast) and encrypt their
// traffic with EncryptInterceptor: the harness features channel-level
// interop tests build on.
func TestPeerStaticEncrypted(t *testing.T) {
	tc := Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var ports [2]int
	for i := range ports {
		p, err := freePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	members := [2]Member{
		{Host: netip.MustParseAddr("127.0.0.1"), Port: ports[0], UniqueID: [16]byte{0: 0xa, 15: 1}},
		{Host: netip.MustParseAddr("127.0.0.1"), Port: ports[1], UniqueID: [16]byte{0: 0xb, 15: 2}},
	}
	const key = "000102030405060708090a0b0c0d0e0f"
	cfg := func(self, other Member) Config {
		return Config{
			Toolchain: tc, Port: self.Port, AutoBind: 1,
			Interceptors: []Interceptor{
				{Name: Encrypt, Props: map[string]string{"encryptionKey": key}},
				{Name: FailureDetector},
				{Name: StaticMembership},
			},
			LocalMember:   &Member{UniqueID: self.UniqueID},
			StaticMembers: []Member{other},
			Properties:    []Property{{"channel", "heartbeatSleeptime", "500"}},
		}
	}
	a := StartT(t, cfg(members[0], members[1]))
	b := StartT(t, cfg(members[1], members[0]))
	if !a.Local().Same(members[0]) || !b.Local().Same(members[1]) {
		t.Fatalf("local members %v and %v, want %v and %v", a.Local(), b.Local(), members[0], members[1])
	}
	for _, w := range []struct {
		p    *Peer
		want Member
	}{{a, members[1]}, {b, members[0]}} {
		m, err := w.p.WaitMemberAdded(20 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !m.Same(w.want) {
			t.Errorf("memberAdded %v, want %v", m, w.want)
		}
	}

	res, err := a.Send(ctx, b.Local(), 6, Bytes([]byte("secret")))
	if err != nil || !res.OK {
		t.Fatalf("send: %+v, %v", res, err)
	}
	m, err := b.WaitMessage(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// AES-GCM: 12-byte IV, 8-byte timestamp, the message, 16-byte tag.
	if !m.Is([]byte("secret")) || m.WireLength != 12+8+6+16 || m.WireOptions != 7 {
		t.Errorf("got %q (wire %d bytes, options %d)", m.Payload, m.WireLength, m.WireOptions)
	}

	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	gone, err := b.WaitMemberDisappeared(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !gone.Same(members[0]) {
		t.Errorf("memberDisappeared %v, want %v", gone, members[0])
	}
}
