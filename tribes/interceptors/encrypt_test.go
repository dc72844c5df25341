package interceptors_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
)

const key128 = "000102030405060708090a0b0c0d0e0f"

// vectorTime is the timestamp of the spec §13 vector, 2026-01-01T00:00Z.
var vectorTime = time.UnixMilli(1767225600000)

func mustEncrypt(t testing.TB, cfg interceptors.EncryptConfig) *interceptors.Encrypt {
	t.Helper()
	e, err := interceptors.NewEncrypt(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// encryptNode returns a started node whose only interceptor is e, with e's
// clock set to clk.
func encryptNode(t testing.TB, net *memNet, e *interceptors.Encrypt, clk *fakeClock, ics ...tribes.Interceptor) *node {
	t.Helper()
	interceptors.SetEncryptClock(e, clk.Now)
	return newNode(t, net, nil, append(ics, e)...)
}

func TestEncryptSpecVector(t *testing.T) {
	want, _ := hex.DecodeString("000102030405060708090a0b" + "936ca65510c15f5423bba1f66aa92d8ccfa52fa9ea4947d743a8")
	clk := newFakeClock(vectorTime)
	net := newMemNet()
	ea := mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: key128})
	interceptors.SetEncryptRand(ea, bytes.NewReader(want[:12])) // the vector's IV
	a := encryptNode(t, net, ea, clk)
	eb := mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: key128})
	b := encryptNode(t, net, eb, clk)
	tap := tapOf(a.tr)

	msg := &tribes.Message{Options: tribes.OptByteMessage, Timestamp: vectorTime.UnixMilli(), Data: []byte("hi")}
	if err := a.ch.SendMessage(t.Context(), []*tribes.Member{b.local()}, msg); err != nil {
		t.Fatal(err)
	}
	w := tap.all()[0]
	if !bytes.Equal(w.Data, want) {
		t.Fatalf("message field\n got % x\nwant % x", w.Data, want)
	}
	if len(w.Data) != 12+8+2+16 || w.Options != tribes.OptByteMessage || w.Timestamp != vectorTime.UnixMilli() {
		t.Fatalf("options %v timestamp %d length %d", w.Options, w.Timestamp, len(w.Data))
	}
	if got := b.received(); len(got) != 1 || got[0] != "hi" {
		t.Fatalf("B received %q", got)
	}

	// Java's bytes (the vector) decrypt on a third node.
	c := encryptNode(t, net, mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: key128}), clk)
	if err := c.tr.inject(msgFrom(a.local(), tribes.OptByteMessage, want)); err != nil {
		t.Fatal(err)
	}
	if got := c.received(); len(got) != 1 || got[0] != "hi" {
		t.Fatalf("C received %q from the Java vector", got)
	}
}

// TestEncryptMatchesStdlibGCM checks the layout against crypto/cipher
// directly: IV ‖ Seal(ts ‖ msg), no additional data.
func TestEncryptMatchesStdlibGCM(t *testing.T) {
	for _, keyHex := range []string{key128, strings.Repeat("ab", 24), strings.Repeat("cd", 32)} {
		t.Run(fmt.Sprintf("AES-%d", len(keyHex)*4), func(t *testing.T) {
			key, _ := hex.DecodeString(keyHex)
			e := mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: keyHex})
			iv := bytes.Repeat([]byte{7}, 12)
			interceptors.SetEncryptRand(e, bytes.NewReader(iv))
			msg := []byte("the message")
			out := make([]byte, len(msg)+interceptors.EncryptOverhead)
			if err := interceptors.EncryptSeal(e, out, 42, msg); err != nil {
				t.Fatal(err)
			}
			block, _ := aes.NewCipher(key)
			gcm, _ := cipher.NewGCM(block)
			pt := binary.BigEndian.AppendUint64(nil, 42)
			want := append(bytes.Clone(iv), gcm.Seal(nil, iv, append(pt, msg...), nil)...)
			if !bytes.Equal(out, want) {
				t.Fatalf("got % x\nwant % x", out, want)
			}
		})
	}
}

func TestEncryptRoundTripWithGzipAbove(t *testing.T) {
	key := strings.Repeat("5a", 32) // AES-256
	clk := newFakeClock(time.Now())
	net := newMemNet()
	a := encryptNode(t, net, mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: key}), clk, mustGzip(t, interceptors.GzipConfig{}))
	b := encryptNode(t, net, mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: key}), clk, mustGzip(t, interceptors.GzipConfig{}))
	tap := tapOf(a.tr)
	data := bytes.Repeat([]byte("compressible "), 100)
	a.mustSend(t, data, tribes.OptUseAck|tribes.OptSynchronizedAck, b.local())
	w := tap.all()[0]
	if !w.Options.Has(tribes.DefaultGzipFlag) || len(w.Data) >= len(data) {
		t.Fatalf("expected a compressed then encrypted message: options %v, %d bytes", w.Options, len(w.Data))
	}
	if bytes.Contains(w.Data, []byte{0x1f, 0x8b, 0x08}) && bytes.HasPrefix(w.Data, []byte{0x1f, 0x8b}) {
		t.Fatal("wire bytes are plain gzip")
	}
	if got := b.received(); len(got) != 1 || got[0] != string(data) {
		t.Fatal("round trip failed")
	}
}

func TestEncryptDrops(t *testing.T) {
	clk := newFakeClock(vectorTime)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	net := newMemNet()
	ea := mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: key128})
	a := encryptNode(t, net, ea, clk)
	eb := mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: key128, Logger: log})
	b := encryptNode(t, net, eb, clk)
	other := mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: strings.Repeat("ff", 16)})
	interceptors.SetEncryptClock(other, clk.Now)
	tap := tapOf(a.tr)
	opts := tribes.OptUseAck | tribes.OptSynchronizedAck

	a.mustSend(t, []byte("one"), opts, b.local())
	good := tap.all()[0].Data
	seal := func(e *interceptors.Encrypt, ts time.Time, msg string) []byte {
		out := make([]byte, len(msg)+interceptors.EncryptOverhead)
		if err := interceptors.EncryptSeal(e, out, ts.UnixMilli(), []byte(msg)); err != nil {
			t.Fatal(err)
		}
		return out
	}
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)-1] ^= 1

	tests := []struct {
		name  string
		data  []byte
		check func(s interceptors.EncryptStats) bool
	}{
		{"replayed frame", good, func(s interceptors.EncryptStats) bool { return s.Replays == 1 }},
		{"wrong key", seal(other, clk.Now(), "x"), func(s interceptors.EncryptStats) bool { return s.DecryptFailures == 1 }},
		{"corrupted tag", corrupt, func(s interceptors.EncryptStats) bool { return s.DecryptFailures == 2 }},
		{"too short", make([]byte, interceptors.EncryptOverhead-1), func(s interceptors.EncryptStats) bool { return s.DecryptFailures == 3 }},
		{"empty", nil, func(s interceptors.EncryptStats) bool { return s.DecryptFailures == 4 }},
		{"clock 11 s ahead", seal(ea, clk.Now().Add(11*time.Second), "x"), func(s interceptors.EncryptStats) bool { return s.Skewed == 1 }},
		{"clock 11 s behind", seal(ea, clk.Now().Add(-11*time.Second), "x"), func(s interceptors.EncryptStats) bool { return s.Skewed == 2 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b.reset()
			if err := b.tr.inject(msgFrom(a.local(), opts, tc.data)); err != nil {
				t.Fatalf("dropped message answered with an error (FAIL_ACK): %v", err)
			}
			if got := b.received(); len(got) != 0 {
				t.Fatalf("delivered %q", got)
			}
			if s := eb.Stats(); !tc.check(s) {
				t.Fatalf("stats %+v", s)
			}
		})
	}
	// Within the window both ways is fine.
	for _, d := range []time.Duration{9 * time.Second, -9 * time.Second} {
		b.reset()
		b.tr.inject(msgFrom(a.local(), 0, seal(ea, clk.Now().Add(d), "skewed but ok")))
		if got := b.received(); len(got) != 1 {
			t.Fatalf("skew %v: received %q", d, got)
		}
	}
	// The warnings are rate limited: one line for all the drops above.
	if n := strings.Count(logs.String(), "dropping a received message"); n != 1 {
		t.Fatalf("%d warnings logged, want 1 (rate limited)", n)
	}
}

func TestEncryptReplayWindowEviction(t *testing.T) {
	clk := newFakeClock(vectorTime)
	net := newMemNet()
	ea := mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: key128})
	interceptors.SetEncryptClock(ea, clk.Now)
	eb := mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: key128, ReplayWindowMessageCount: 2})
	b := encryptNode(t, net, eb, clk)
	src := &tribes.Member{Host: netipAddr(1), Port: 4000, SecurePort: -1, UDPPort: -1}
	seal := func(ts int64, s string) []byte {
		out := make([]byte, len(s)+interceptors.EncryptOverhead)
		interceptors.EncryptSeal(ea, out, ts, []byte(s))
		return out
	}
	t0 := clk.Now().UnixMilli()
	m1, m2, m3 := seal(t0, "1"), seal(t0+1, "2"), seal(t0+2, "3")
	for _, m := range [][]byte{m1, m2, m3} {
		b.tr.inject(msgFrom(src, 0, m))
	}
	if got := b.received(); len(got) != 3 {
		t.Fatalf("received %q", got)
	}
	// m1 was evicted (count 2): its replay is refused by the
	// lastRemovedTimestamp rule, and so is any message stamped t0.
	b.tr.inject(msgFrom(src, 0, m1))
	b.tr.inject(msgFrom(src, 0, seal(t0, "fresh IV, old stamp")))
	// m3 is still in the window: refused as a repeated IV.
	b.tr.inject(msgFrom(src, 0, m3))
	if got := b.received(); len(got) != 3 {
		t.Fatalf("received %q after replays", got)
	}
	if s := eb.Stats(); s.Replays != 3 {
		t.Fatalf("stats %+v, want 3 replays", s)
	}
	// A newer message is fine.
	b.tr.inject(msgFrom(src, 0, seal(t0+3, "4")))
	if got := b.received(); len(got) != 4 {
		t.Fatalf("received %q", got)
	}
}

func TestEncryptStartResetsWindow(t *testing.T) {
	clk := newFakeClock(vectorTime)
	ea := mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: key128})
	interceptors.SetEncryptClock(ea, clk.Now)
	eb := mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: key128, ReplayWindowTime: time.Minute})
	clk.Advance(-30 * time.Second) // stamped 30 s before B starts
	old := make([]byte, 1+interceptors.EncryptOverhead)
	interceptors.EncryptSeal(ea, old, clk.Now().UnixMilli(), []byte("o"))
	clk.Advance(30 * time.Second)
	net := newMemNet()
	b := encryptNode(t, net, eb, clk)
	// Within the 60 s window of B's clock, and after start-60 s: accepted.
	b.tr.inject(msgFrom(b.local(), 0, old))
	if got := b.received(); len(got) != 1 {
		t.Fatalf("received %q", got)
	}
}

func TestEncryptTimestampFilledIn(t *testing.T) {
	clk := newFakeClock(vectorTime)
	net := newMemNet()
	a := encryptNode(t, net, mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: key128}), clk)
	b := encryptNode(t, net, mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: key128}), clk)
	tap := tapOf(a.tr)
	msg := &tribes.Message{Timestamp: -5, Data: []byte("x")}
	if err := a.ch.SendMessage(t.Context(), []*tribes.Member{b.local()}, msg); err != nil {
		t.Fatal(err)
	}
	if w := tap.all()[0]; w.Timestamp != vectorTime.UnixMilli() || msg.Timestamp != vectorTime.UnixMilli() {
		t.Fatalf("timestamp on the wire %d, in the message %d, want %d", w.Timestamp, msg.Timestamp, vectorTime.UnixMilli())
	}
	if got := b.received(); len(got) != 1 {
		t.Fatalf("received %q", got)
	}
}

func TestEncryptIgnoresProbe(t *testing.T) {
	clk := newFakeClock(vectorTime)
	e := mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: key128})
	b := encryptNode(t, newMemNet(), e, clk)
	b.tr.inject(msgFrom(b.local(), tribes.OptByteMessage, interceptors.TCPFailDetect[:]))
	if got := b.received(); len(got) != 0 {
		t.Fatalf("probe delivered: %q", got)
	}
	if s := e.Stats(); s != (interceptors.EncryptStats{}) {
		t.Fatalf("probe counted: %+v", s)
	}
}

func TestEncryptConfig(t *testing.T) {
	t.Setenv("WASMFARM_TEST_CLUSTER_KEY", key128)
	t.Setenv("WASMFARM_TEST_EMPTY_KEY", "")
	tests := []struct {
		name string
		cfg  interceptors.EncryptConfig
		err  error
	}{
		{"hex key", interceptors.EncryptConfig{EncryptionKey: key128}, nil},
		{"upper-case hex, AES-192", interceptors.EncryptConfig{EncryptionKey: strings.Repeat("AB", 24)}, nil},
		{"key from the environment", interceptors.EncryptConfig{KeyEnv: "WASMFARM_TEST_CLUSTER_KEY"}, nil},
		{"explicit GCM, any case", interceptors.EncryptConfig{EncryptionKey: key128, EncryptionAlgorithm: "aes/gcm/nopadding"}, nil},
		{"no key", interceptors.EncryptConfig{}, interceptors.ErrBadKey},
		{"both keys", interceptors.EncryptConfig{EncryptionKey: key128, KeyEnv: "WASMFARM_TEST_CLUSTER_KEY"}, interceptors.ErrBadKey},
		{"unset variable", interceptors.EncryptConfig{KeyEnv: "WASMFARM_TEST_NO_SUCH_KEY"}, interceptors.ErrBadKey},
		{"empty variable", interceptors.EncryptConfig{KeyEnv: "WASMFARM_TEST_EMPTY_KEY"}, interceptors.ErrBadKey},
		{"not hex", interceptors.EncryptConfig{EncryptionKey: strings.Repeat("zz", 16)}, interceptors.ErrBadKey},
		{"15 bytes", interceptors.EncryptConfig{EncryptionKey: strings.Repeat("00", 15)}, interceptors.ErrBadKey},
		{"CBC", interceptors.EncryptConfig{EncryptionKey: key128, EncryptionAlgorithm: "AES/CBC/PKCS5Padding"}, interceptors.ErrUnsupportedAlgorithm},
		{"ECB", interceptors.EncryptConfig{EncryptionKey: key128, EncryptionAlgorithm: "AES/ECB/PKCS5Padding"}, interceptors.ErrUnsupportedAlgorithm},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := interceptors.NewEncrypt(tc.cfg)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil && strings.Contains(strings.ToLower(err.Error()), strings.ToLower(strings.Repeat("zz", 16))) {
				t.Fatalf("error quotes the key: %v", err)
			}
		})
	}
}
