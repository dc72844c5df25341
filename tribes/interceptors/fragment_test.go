package interceptors_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
)

func TestFragmentationWireFormat(t *testing.T) {
	net := newMemNet()
	a := newNode(t, net, nil, interceptors.NewFragmentation(interceptors.FragmentationConfig{MaxSize: 10}))
	fb := interceptors.NewFragmentation(interceptors.FragmentationConfig{})
	b := newNode(t, net, nil, fb)
	tap := tapOf(a.tr)

	a.mustSend(t, []byte("short"), 0, b.local())
	whole := tap.all()[0]
	if !bytes.Equal(whole.Data, []byte("short\x00")) {
		t.Fatalf("whole message on the wire: %q", whole.Data)
	}
	tap.clear()

	data := []byte("0123456789abcdefghijKLMNO") // 25 bytes: 10 + 10 + 5
	a.mustSend(t, data, tribes.OptUseAck, b.local())
	wire := tap.all()
	if len(wire) != 3 {
		t.Fatalf("%d fragments, want 3", len(wire))
	}
	for i, w := range wire {
		chunk := data[i*10 : min(i*10+10, len(data))]
		want := append(bytes.Clone(chunk), 0, 0, 0, byte(i), 0, 0, 0, 3, 1)
		if !bytes.Equal(w.Data, want) {
			t.Fatalf("fragment %d: % x, want % x", i, w.Data, want)
		}
		if w.UniqueID != wire[0].UniqueID || w.Timestamp != wire[0].Timestamp || w.Options != wire[0].Options {
			t.Fatalf("fragment %d does not share the id, timestamp and options of the first", i)
		}
	}
	if got := b.received(); len(got) != 2 || got[0] != "short" || got[1] != string(data) {
		t.Fatalf("received %q", got)
	}
	if m := b.messages()[1]; m.UniqueID != wire[0].UniqueID || m.Options != wire[0].Options {
		t.Fatal("reassembled message lost the id or options")
	}
	if s := fb.Stats(); s.Assembled != 1 || s.FragmentsReceived != 3 || s.WholeReceived != 1 || s.PendingSets != 0 || s.PendingBytes != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestFragmentationGated(t *testing.T) {
	net := newMemNet()
	a := newNode(t, net, nil, interceptors.NewFragmentation(interceptors.FragmentationConfig{MaxSize: 4, OptionFlag: 0x200}))
	b := newNode(t, net, nil, interceptors.NewFragmentation(interceptors.FragmentationConfig{}))
	tap := tapOf(a.tr)
	a.mustSend(t, []byte("long but not gated"), 0, b.local())
	a.mustSend(t, []byte("long and gated"), 0x200, b.local())
	w := tap.all()
	if len(w) != 1+4 || string(w[0].Data) != "long but not gated\x00" {
		t.Fatalf("%d messages on the wire, first %q", len(w), w[0].Data)
	}
	if got := b.received(); len(got) != 2 || got[1] != "long and gated" {
		t.Fatalf("received %q", got)
	}
}

// fragRig feeds hand-made fragments to a node.
type fragRig struct {
	*node
	f   *interceptors.Fragmentation
	clk *fakeClock
	src *tribes.Member
}

func newFragRig(t *testing.T, cfg interceptors.FragmentationConfig) *fragRig {
	f := interceptors.NewFragmentation(cfg)
	clk := newFakeClock(time.Unix(1000, 0))
	interceptors.SetFragmentationClock(f, clk.Now)
	return &fragRig{node: newNode(t, newMemNet(), nil, f), f: f, clk: clk,
		src: &tribes.Member{Host: netipAddr(1), Port: 4000, SecurePort: -1, UDPPort: -1}}
}

func (r *fragRig) frag(t *testing.T, id byte, chunk string, index, count int) {
	t.Helper()
	m := msgFrom(r.src, tribes.OptUseAck, interceptors.AppendFragmentTrailer([]byte(chunk), index, count))
	m.UniqueID = tribes.UniqueID{id}
	if err := r.tr.inject(m); err != nil {
		t.Fatal(err)
	}
}

func TestFragmentationReassembly(t *testing.T) {
	r := newFragRig(t, interceptors.FragmentationConfig{})
	r.frag(t, 1, "c", 2, 3)
	r.frag(t, 2, "y", 1, 2) // another message, interleaved
	r.frag(t, 1, "a", 0, 3)
	r.frag(t, 1, "a", 0, 3)    // duplicate
	r.frag(t, 1, "zz", 0, 4)   // same id, different count
	r.frag(t, 2, "x", 0, 2)    // completes message 2
	r.frag(t, 1, "b", 1, 3)    // completes message 1
	r.frag(t, 1, "late", 0, 3) // a new set with the same id, never completed
	if got := strings.Join(r.received(), " "); got != "xy abc" {
		t.Fatalf("received %q", got)
	}
	s := r.f.Stats()
	if s.Assembled != 2 || s.Duplicates != 1 || s.Invalid != 1 || s.PendingSets != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestFragmentationExpire(t *testing.T) {
	r := newFragRig(t, interceptors.FragmentationConfig{Expire: time.Minute})
	r.frag(t, 1, "a", 0, 2)
	r.clk.Advance(59 * time.Second)
	r.heartbeat()
	r.clk.Advance(time.Second)
	r.frag(t, 2, "x", 0, 2)
	r.heartbeat() // set 1 is 60 s old: discarded; set 2 stays
	r.frag(t, 1, "b", 1, 2)
	r.frag(t, 2, "y", 1, 2)
	if got := strings.Join(r.received(), " "); got != "xy" {
		t.Fatalf("received %q", got)
	}
	if s := r.f.Stats(); s.Expired != 1 || s.PendingSets != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestFragmentationBounds(t *testing.T) {
	tests := []struct {
		name  string
		cfg   interceptors.FragmentationConfig
		feed  func(t *testing.T, r *fragRig)
		stats func(s interceptors.FragmentationStats) bool
	}{
		{
			"message too large", interceptors.FragmentationConfig{MaxMessageSize: 5},
			func(t *testing.T, r *fragRig) {
				r.frag(t, 1, "abc", 0, 2)
				r.frag(t, 1, "def", 1, 2)
			},
			func(s interceptors.FragmentationStats) bool { return s.Discarded == 1 && s.PendingSets == 0 },
		},
		{
			"pending memory full", interceptors.FragmentationConfig{MaxPendingBytes: 1000},
			func(t *testing.T, r *fragRig) {
				r.frag(t, 1, strings.Repeat("a", 50), 0, 2) // a set of 2 slots + 50 bytes (in a buffer of 64)
				r.frag(t, 2, strings.Repeat("b", 50), 0, 2) // does not fit
			},
			func(s interceptors.FragmentationStats) bool {
				src := &tribes.Member{Host: netipAddr(1), Port: 4000}
				return s.Discarded == 1 && s.PendingSets == 1 &&
					s.PendingBytes == int64(interceptors.FragmentSetCost(src, 2)+interceptors.FragmentCost(50))
			},
		},
		{
			"too many fragments", interceptors.FragmentationConfig{MaxFragments: 10},
			func(t *testing.T, r *fragRig) { r.frag(t, 1, "a", 0, 11) },
			func(s interceptors.FragmentationStats) bool { return s.Invalid == 1 && s.PendingSets == 0 },
		},
		{
			"huge announced count charged", interceptors.FragmentationConfig{MaxPendingBytes: 1 << 20},
			func(t *testing.T, r *fragRig) { r.frag(t, 1, "a", 0, 1<<16) }, // 512 KiB of slots
			func(s interceptors.FragmentationStats) bool {
				src := &tribes.Member{Host: netipAddr(1), Port: 4000}
				return s.PendingBytes == int64(interceptors.FragmentSetCost(src, 1<<16)+interceptors.FragmentCost(1))
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newFragRig(t, tc.cfg)
			tc.feed(t, r)
			if got := r.received(); len(got) != 0 {
				t.Fatalf("received %q", got)
			}
			if s := r.f.Stats(); !tc.stats(s) {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestParseFragment(t *testing.T) {
	be := func(i, c int32) []byte {
		return append(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(i)), uint32(c)), 1)
	}
	tests := []struct {
		name  string
		in    []byte
		data  string
		info  interceptors.FragmentInfo
		valid bool
	}{
		{"whole", []byte("abc\x00"), "abc", interceptors.FragmentInfo{}, true},
		{"whole empty", []byte{0}, "", interceptors.FragmentInfo{}, true},
		{"fragment", append([]byte("ab"), be(1, 2)...), "ab", interceptors.FragmentInfo{Fragment: true, Index: 1, Count: 2}, true},
		{"empty chunk", be(0, 1), "", interceptors.FragmentInfo{Fragment: true, Index: 0, Count: 1}, true},
		{"empty", nil, "", interceptors.FragmentInfo{}, false},
		{"bad flag", []byte("abc\x02"), "", interceptors.FragmentInfo{}, false},
		{"short fragment", []byte{0, 0, 0, 1, 1}, "", interceptors.FragmentInfo{}, false},
		{"index = count", be(2, 2), "", interceptors.FragmentInfo{}, false},
		{"negative index", be(-1, 2), "", interceptors.FragmentInfo{}, false},
		{"zero count", be(0, 0), "", interceptors.FragmentInfo{}, false},
		{"negative count", be(0, -5), "", interceptors.FragmentInfo{}, false},
		{"count over max", be(0, 101), "", interceptors.FragmentInfo{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, info, err := interceptors.ParseFragment(tc.in, 100)
			if (err == nil) != tc.valid {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				if !errors.Is(err, interceptors.ErrMalformed) {
					t.Fatalf("%v does not wrap ErrMalformed", err)
				}
				return
			}
			if string(data) != tc.data || info != tc.info {
				t.Fatalf("got %q %+v", data, info)
			}
		})
	}
}

func TestFragmentationLargeRoundTripWithGzipAndEncrypt(t *testing.T) {
	clk := newFakeClock(time.Now())
	stack := func() []tribes.Interceptor {
		e := mustEncrypt(t, interceptors.EncryptConfig{EncryptionKey: key128})
		interceptors.SetEncryptClock(e, clk.Now)
		return []tribes.Interceptor{
			interceptors.NewFragmentation(interceptors.FragmentationConfig{MaxSize: 1000}),
			mustGzip(t, interceptors.GzipConfig{}), e,
		}
	}
	net := newMemNet()
	a := newNode(t, net, nil, stack()...)
	b := newNode(t, net, nil, stack()...)
	data := make([]byte, 100_000)
	for i := range data {
		data[i] = byte(i * i >> 3)
	}
	a.mustSend(t, data, tribes.OptUseAck|tribes.OptSynchronizedAck, b.local())
	if got := b.messages(); len(got) != 1 || !bytes.Equal(got[0].Data, data) {
		t.Fatalf("received %d messages", len(got))
	}
}
