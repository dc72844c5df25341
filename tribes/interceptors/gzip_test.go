package interceptors_test

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
)

func mustGzip(t testing.TB, cfg interceptors.GzipConfig) *interceptors.Gzip {
	t.Helper()
	g, err := interceptors.NewGzip(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v (% x)", err, b)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGzipWireFormat(t *testing.T) {
	net := newMemNet()
	ga := mustGzip(t, interceptors.GzipConfig{})
	a := newNode(t, net, nil, ga)
	gb := mustGzip(t, interceptors.GzipConfig{})
	b := newNode(t, net, nil, gb)
	tap := tapOf(a.tr)

	data := []byte("hello hello hello")
	a.mustSend(t, data, tribes.OptUseAck, b.local())
	wire := tap.all()
	if len(wire) != 1 {
		t.Fatalf("%d messages on the wire", len(wire))
	}
	w := wire[0]
	if w.Options != tribes.OptByteMessage|tribes.OptUseAck|tribes.DefaultGzipFlag {
		t.Fatalf("wire options %v, want byte_message|use_ack|0x100", w.Options)
	}
	if !bytes.HasPrefix(w.Data, []byte{0x1f, 0x8b, 0x08}) || !bytes.Equal(gunzip(t, w.Data), data) {
		t.Fatalf("wire bytes % x are not gzip of %q", w.Data, data)
	}
	if got := b.received(); len(got) != 1 || got[0] != string(data) {
		t.Fatalf("B received %q", got)
	}
	if m := b.messages()[0]; !m.Options.Has(tribes.DefaultGzipFlag) {
		t.Fatalf("the flag was cleared on receive (options %v); Java keeps it", m.Options)
	}
	if s := ga.Stats(); s.TxCompressed != 1 || s.TxBytesIn != int64(len(data)) || s.TxBytesOut != int64(len(w.Data)) {
		t.Fatalf("sender stats %+v", s)
	}
	if s := gb.Stats(); s.RxCompressed != 1 || s.RxBytesOut != int64(len(data)) {
		t.Fatalf("receiver stats %+v", s)
	}
}

func TestGzipJavaVector(t *testing.T) {
	// spec §13: GZIPOutputStream of "hello hello hello".
	java, _ := hex.DecodeString("1f8b08000000000000ffcb48cdc9c957c84090008088f9e511000000")
	net := newMemNet()
	b := newNode(t, net, nil, mustGzip(t, interceptors.GzipConfig{}))
	src := net.transport() // a peer that only sends raw frames
	src.SetLocalMember(&tribes.Member{Host: src.addr.Addr(), Port: 4000, SecurePort: -1, UDPPort: -1})
	if err := b.tr.inject(msgFrom(src.Local(), tribes.OptByteMessage|tribes.DefaultGzipFlag, java)); err != nil {
		t.Fatal(err)
	}
	if got := b.received(); len(got) != 1 || got[0] != "hello hello hello" {
		t.Fatalf("received %q", got)
	}
}

func TestGzipCompressionMinSize(t *testing.T) {
	tests := []struct {
		name       string
		minSize    int
		data       string
		opts       tribes.Options
		compressed bool
	}{
		{"default compresses everything", 0, "x", 0, true},
		{"empty message is never compressed", 0, "", 0, false},
		{"equal to min is not compressed", 5, "12345", 0, false},
		{"one more is compressed", 5, "123456", 0, true},
		{"a flag set by the caller is cleared", 5, "12", tribes.DefaultGzipFlag, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			net := newMemNet()
			a := newNode(t, net, nil, mustGzip(t, interceptors.GzipConfig{CompressionMinSize: tc.minSize}))
			b := newNode(t, net, nil, mustGzip(t, interceptors.GzipConfig{}))
			tap := tapOf(a.tr)
			a.mustSend(t, []byte(tc.data), tc.opts, b.local())
			w := tap.all()[0]
			if got := w.Options.Has(tribes.DefaultGzipFlag); got != tc.compressed {
				t.Fatalf("flag on the wire = %v, want %v", got, tc.compressed)
			}
			if !tc.compressed && string(w.Data) != tc.data {
				t.Fatalf("uncompressed message changed: %q", w.Data)
			}
			if got := b.received(); len(got) != 1 || got[0] != tc.data {
				t.Fatalf("received %q", got)
			}
		})
	}
}

func TestGzipCustomFlagAndLevel(t *testing.T) {
	net := newMemNet()
	a := newNode(t, net, nil, mustGzip(t, interceptors.GzipConfig{OptionFlag: 0x400, Level: 9}))
	b := newNode(t, net, nil, mustGzip(t, interceptors.GzipConfig{OptionFlag: 0x400}))
	tap := tapOf(a.tr)
	data := bytes.Repeat([]byte("abc"), 1000)
	a.mustSend(t, data, 0, b.local())
	w := tap.all()[0]
	if !w.Options.Has(0x400) || w.Options.Has(tribes.DefaultGzipFlag) {
		t.Fatalf("wire options %v", w.Options)
	}
	if got := b.received(); len(got) != 1 || got[0] != string(data) {
		t.Fatal("round trip failed")
	}
	if _, err := interceptors.NewGzip(interceptors.GzipConfig{Level: 42}); err == nil {
		t.Fatal("level 42 accepted")
	}
}

func TestGzipBadInputDropped(t *testing.T) {
	var logs bytes.Buffer
	tests := []struct {
		name string
		cfg  interceptors.GzipConfig
		data []byte
	}{
		{"not gzip", interceptors.GzipConfig{}, []byte("definitely not gzip")},
		{"truncated", interceptors.GzipConfig{}, gzipBytes(t, []byte("some data here"))[:12]},
		{"over MaxSize", interceptors.GzipConfig{MaxSize: 1024}, gzipBytes(t, make([]byte, 1025))},
		{"lying ISIZE trailer", interceptors.GzipConfig{}, lieISIZE(gzipBytes(t, []byte("abc")), 1<<31)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			g := mustGzip(t, tc.cfg)
			net := newMemNet()
			b := newNode(t, net, nil, g)
			src := &tribes.Member{Host: netipAddr(9), Port: 4000, SecurePort: -1, UDPPort: -1}
			// A synchronous sender gets a normal ACK: the interceptor
			// returns nil.
			opts := tribes.OptUseAck | tribes.OptSynchronizedAck | tribes.DefaultGzipFlag
			if err := b.tr.inject(msgFrom(src, opts, tc.data)); err != nil {
				t.Fatalf("dropped message answered with an error (FAIL_ACK): %v", err)
			}
			if got := b.received(); len(got) != 0 {
				t.Fatalf("bad message delivered: %q", got)
			}
			if s := g.Stats(); s.RxFailures != 1 {
				t.Fatalf("stats %+v, want one failure", s)
			}
		})
	}
	if !strings.Contains(logs.String(), "does not decompress") {
		t.Fatalf("no warning logged: %s", logs.String())
	}
}

func TestGzipRestoresCallerMessage(t *testing.T) {
	net := newMemNet()
	a := newNode(t, net, nil, mustGzip(t, interceptors.GzipConfig{}))
	b := newNode(t, net, nil)
	data := []byte("payload payload payload")
	msg := &tribes.Message{Options: tribes.OptByteMessage, Data: data}
	if err := a.ch.SendMessage(t.Context(), []*tribes.Member{b.local()}, msg); err != nil {
		t.Fatal(err)
	}
	if &msg.Data[0] != &data[0] || len(msg.Data) != len(data) || msg.Options != tribes.OptByteMessage {
		t.Fatalf("message not restored: options %v, data %q", msg.Options, msg.Data)
	}
	if string(data) != "payload payload payload" {
		t.Fatalf("caller's bytes modified: %q", data)
	}
}

func TestGzipStatsInterval(t *testing.T) {
	var logs bytes.Buffer
	net := newMemNet()
	a := newNode(t, net, nil, mustGzip(t, interceptors.GzipConfig{StatsInterval: 2, Logger: slog.New(slog.NewTextHandler(&logs, nil))}))
	b := newNode(t, net, nil)
	for range 4 {
		a.mustSend(t, []byte("x"), 0, b.local())
	}
	if n := strings.Count(logs.String(), "tribes gzip statistics"); n != 2 {
		t.Fatalf("%d reports for 4 messages with interval 2:\n%s", n, logs.String())
	}
}

func gzipBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// lieISIZE rewrites the gzip trailer's size field.
func lieISIZE(b []byte, n uint32) []byte {
	b = bytes.Clone(b)
	l := len(b)
	b[l-4], b[l-3], b[l-2], b[l-1] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	return b
}
