package interceptors_test

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
)

func TestIsPing(t *testing.T) {
	// spec §9, TCP_PING_DATA.
	want, _ := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "").Replace(`4fa77348 79df43c9 9f6f8980 a15b0714 7dd9525b ebdf439a b77ebe8f 81671eb6
3715be87 45214ca8 bf0a4d13 53381532 55f694b7 3adf2178 91047dd7 7284c0d5`))
	if len(want) != 64 || !interceptors.IsPing(want) || !bytes.Equal(interceptors.TCPPingData[:], want) {
		t.Fatalf("TCP_PING_DATA differs from the spec: % x", interceptors.TCPPingData)
	}
	for _, b := range [][]byte{nil, want[:63], append(bytes.Clone(want), 0), interceptors.TCPFailDetect[:]} {
		if interceptors.IsPing(b) {
			t.Fatalf("IsPing(% x) = true", b)
		}
	}
}

func TestTCPPingOnHeartbeat(t *testing.T) {
	net := newMemNet()
	pa := interceptors.NewTCPPing(interceptors.TCPPingConfig{OptionFlag: 0x800})
	a := newNode(t, net, nil, pa)
	pb := interceptors.NewTCPPing(interceptors.TCPPingConfig{OptionFlag: 0x800})
	b := newNode(t, net, nil, pb)
	c := newNode(t, net, nil, interceptors.NewTCPPing(interceptors.TCPPingConfig{OptionFlag: 0x800}))
	tap := tapOf(a.tr)

	a.heartbeat() // no members: nothing to ping
	if len(tap.all()) != 0 || pa.Stats().Rounds != 0 {
		t.Fatal("pinged without members")
	}
	a.see(b.local())
	a.see(c.local())
	a.heartbeat()
	w := tap.all()
	if len(w) != 2 {
		t.Fatalf("%d pings, want one per member", len(w))
	}
	for _, m := range w {
		if m.Options != 0x800 || !interceptors.IsPing(m.Data) {
			t.Fatalf("ping with options %v, data % x", m.Options, m.Data)
		}
	}
	if got := b.received(); len(got) != 0 {
		t.Fatalf("ping reached B's listeners: %q", got)
	}
	if s := pb.Stats(); s.PingsReceived != 1 {
		t.Fatalf("B stats %+v", s)
	}
	if s := pa.Stats(); s.Rounds != 1 || s.Pings != 2 || s.Failures != 0 {
		t.Fatalf("A stats %+v", s)
	}
	// A ping payload without the gating flag is not a ping: it passes.
	b.tr.inject(msgFrom(a.local(), 0, interceptors.TCPPingData[:]))
	if got := b.received(); len(got) != 1 {
		t.Fatalf("ungated ping payload: received %d", len(got))
	}
	// A member that does not answer is a failure, and the others are
	// still pinged.
	c.tr.Close()
	a.heartbeat()
	if s := pa.Stats(); s.Failures != 1 || s.Pings != 4 {
		t.Fatalf("A stats %+v", s)
	}
}

func TestTCPPingThroughEncrypt(t *testing.T) {
	// Pings travel through the rest of the stack below: encrypted here.
	clk := newFakeClock(time.Now())
	stack := func() []tribes.Interceptor {
		e := mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: key128})
		interceptors.SetEncryptClock(e, clk.Now)
		return []tribes.Interceptor{interceptors.NewTCPPing(interceptors.TCPPingConfig{}), e}
	}
	net := newMemNet()
	a := newNode(t, net, nil, stack()...)
	pb := interceptors.NewTCPPing(interceptors.TCPPingConfig{})
	b := newNode(t, net, nil, append([]tribes.Interceptor{pb}, stack()[1])...)
	tap := tapOf(a.tr)
	a.see(b.local())
	a.heartbeat()
	if w := tap.all(); len(w) != 1 || len(w[0].Data) != 64+interceptors.EncryptOverhead {
		t.Fatalf("wire: %v", w)
	}
	if pb.Stats().PingsReceived != 1 || len(b.received()) != 0 {
		t.Fatal("encrypted ping not recognised after decryption")
	}
}

func TestTCPPingStaticOnly(t *testing.T) {
	net := newMemNet()
	b := newNode(t, net, nil, interceptors.NewTCPPing(interceptors.TCPPingConfig{}))
	c := newNode(t, net, nil, interceptors.NewTCPPing(interceptors.TCPPingConfig{}))
	static, err := interceptors.NewStaticMembership(interceptors.StaticMembershipConfig{Members: []*tribes.Member{b.local()}})
	if err != nil {
		t.Fatal(err)
	}
	pa := interceptors.NewTCPPing(interceptors.TCPPingConfig{StaticOnly: true})
	a := newNode(t, net, nil, pa, static)
	a.see(c.local()) // a dynamic member: not pinged
	tap := tapOf(a.tr)
	a.heartbeat()
	var pinged []string
	msgs, to := tap.sent()
	for i, w := range msgs {
		if interceptors.IsPing(w.Data) {
			pinged = append(pinged, to[i].String())
		}
	}
	if len(pinged) != 1 || pinged[0] != b.local().String() {
		t.Fatalf("pinged %v, want only the static member %v", pinged, b.local())
	}
}

func TestTCPPingUseThread(t *testing.T) {
	net := newMemNet()
	b := newNode(t, net, nil, interceptors.NewTCPPing(interceptors.TCPPingConfig{}))
	pa := interceptors.NewTCPPing(interceptors.TCPPingConfig{UseThread: true, Interval: 5 * time.Millisecond})
	a := newNode(t, net, nil, pa)
	a.see(b.local())
	deadline := time.Now().Add(10 * time.Second)
	for pa.Stats().Rounds < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v after 10 s", pa.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.heartbeat() // with UseThread the heartbeat does not ping
	if err := a.ch.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	n := pa.Stats().Rounds
	time.Sleep(30 * time.Millisecond)
	if pa.Stats().Rounds != n {
		t.Fatal("pings continued after Stop")
	}
}

func TestFailDetectConstant(t *testing.T) {
	// spec §9, TCP_FAIL_DETECT: the probe payload the decoders ignore.
	want, _ := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "").Replace(`4fa77348 798243c9 9f6f8980 a15b0714 7dd9525b ebf1439a b77ebe8f 81671eb6
3715be87 457e4ca8 bf0a4d13 53381532 55f694b7 3afa4078 91047dd7 7284c0d5`))
	if len(want) != 64 || !bytes.Equal(interceptors.TCPFailDetect[:], want) {
		t.Fatalf("TCP_FAIL_DETECT differs from the spec: % x", interceptors.TCPFailDetect)
	}
}
