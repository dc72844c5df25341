package interceptors_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
)

// The fuzz targets' seed corpora are in testdata/fuzz/<target>/; the f.Add
// calls below add a few more.

// FuzzParseFragment: the trailer parser never panics, accepts exactly the
// well-formed trailers, and round-trips them.
func FuzzParseFragment(f *testing.F) {
	f.Add([]byte("abc\x00"))
	f.Add(interceptors.AppendFragmentTrailer([]byte("chunk"), 2, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		const maxCount = 1000
		data, info, err := interceptors.ParseFragment(b, maxCount)
		if err != nil {
			if !errors.Is(err, interceptors.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !bytes.HasPrefix(b, data) {
			t.Fatal("data is not a prefix of the input")
		}
		count := 0
		if info.Fragment {
			count = info.Count
			if info.Count < 1 || info.Count > maxCount || info.Index < 0 || info.Index >= info.Count {
				t.Fatalf("accepted %+v", info)
			}
		}
		if again := interceptors.AppendFragmentTrailer(bytes.Clone(data), info.Index, count); !bytes.Equal(again, b) {
			t.Fatalf("round trip: % x -> % x", b, again)
		}
	})
}

// FuzzParseSeq: the sequence parser fails exactly on short input and
// round-trips.
func FuzzParseSeq(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1})
	f.Add([]byte("body\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		body, seq, err := interceptors.ParseSeq(b)
		if (err != nil) != (len(b) < 4) {
			t.Fatalf("len %d: err %v", len(b), err)
		}
		if err == nil && !bytes.Equal(interceptors.AppendSeq(bytes.Clone(body), seq), b) {
			t.Fatal("round trip failed")
		}
	})
}

// FuzzEncryptOpen feeds arbitrary message fields to the decrypt path (never
// a panic, never more output than input) and checks that a sealed message
// opens once, is refused as a replay the second time, and fails
// authentication with any bit flipped.
func FuzzEncryptOpen(f *testing.F) {
	f.Add([]byte("hi"), []byte{}, uint16(0))
	f.Add(make([]byte, 100), make([]byte, interceptors.EncryptOverhead), uint16(40))
	f.Fuzz(func(t *testing.T, msg, garbage []byte, flip uint16) {
		clk := newFakeClock(time.UnixMilli(1767225600000))
		e, err := interceptors.NewEncrypt(interceptors.EncryptConfig{EncryptionKey: key128, ReplayWindowMessageCount: 4})
		if err != nil {
			t.Fatal(err)
		}
		interceptors.SetEncryptClock(e, clk.Now)
		e.Start(t.Context()) // the replay window starts on the fake clock

		// Arbitrary bytes: they may only decrypt if they are a real
		// message (a seed is the spec's vector), and then only once.
		dst := make([]byte, 0, len(garbage))
		out, err := interceptors.EncryptOpen(e, dst, garbage)
		if err == nil {
			if len(out) != len(garbage)-interceptors.EncryptOverhead {
				t.Fatalf("%d bytes decrypted to %d", len(garbage), len(out))
			}
			if _, err := interceptors.EncryptOpen(e, nil, garbage); !errors.Is(err, interceptors.ErrReplay) {
				t.Fatalf("second open of the same bytes: %v", err)
			}
		}

		// A real message, first with the timestamp taken from the input.
		ts := clk.Now().UnixMilli()
		if len(garbage) >= 8 {
			ts += int64(binary.BigEndian.Uint64(garbage)) % 20000 // up to ±20 s off
		}
		sealed := make([]byte, len(msg)+interceptors.EncryptOverhead)
		if err := interceptors.EncryptSeal(e, sealed, ts, msg); err != nil {
			t.Fatal(err)
		}
		if i := int(flip); i < len(sealed) {
			bad := bytes.Clone(sealed)
			bad[i] ^= 1 << (flip % 8)
			if _, err := interceptors.EncryptOpen(e, nil, bad); !errors.Is(err, interceptors.ErrDecrypt) {
				t.Fatalf("flipped byte %d: err %v", i, err)
			}
		}
		plain, err := interceptors.EncryptOpen(e, make([]byte, 0, len(sealed)), sealed)
		now := clk.Now().UnixMilli()
		switch {
		case ts > now+10000 || ts < now-10000:
			if !errors.Is(err, interceptors.ErrClockSkew) {
				t.Fatalf("ts off by %d ms: err %v", ts-now, err)
			}
			return
		case ts == now-10000:
			// Not skewed, but not after the start minus the window either
			// (Tribes' initial lastRemovedTimestamp).
			if !errors.Is(err, interceptors.ErrReplay) {
				t.Fatalf("ts at the window's start: err %v", err)
			}
			return
		case err != nil:
			t.Fatal(err)
		case !bytes.Equal(plain, msg):
			t.Fatal("round trip failed")
		}
		if _, err := interceptors.EncryptOpen(e, nil, sealed); !errors.Is(err, interceptors.ErrReplay) {
			t.Fatalf("replay: err %v", err)
		}
	})
}

// FuzzFragmentationReceive feeds a stream of fragments decoded from the
// input to a Fragmentation interceptor with small limits: it never panics,
// never holds more than MaxPendingBytes, and passes up only messages within
// MaxMessageSize.
func FuzzFragmentationReceive(f *testing.F) {
	f.Add([]byte{1, 0, 2, 3, 'a', 'b', 'c', 1, 1, 2, 1, 'd'})
	f.Fuzz(func(t *testing.T, stream []byte) {
		const maxPending, maxMessage = 600, 300
		fr := interceptors.NewFragmentation(interceptors.FragmentationConfig{
			MaxPendingBytes: maxPending, MaxMessageSize: maxMessage, MaxFragments: 40})
		p := newPipe(t, fr)
		src := &tribes.Member{Host: hostOf(100), Port: 4000, SecurePort: -1, UDPPort: -1}
		var maxLen int
		p.ch.AddMessageListener(tribes.ListenerFunc(func(m *tribes.Message) error {
			maxLen = max(maxLen, len(m.Data))
			return nil
		}))
		// Each record: id, index, count, length, then length bytes (a
		// record that runs past the end is cut short).
		for len(stream) >= 4 {
			id, index, count, n := stream[0], int(int8(stream[1])), int(int8(stream[2])), int(stream[3])
			stream = stream[4:]
			n = min(n, len(stream))
			chunk := stream[:n]
			stream = stream[n:]
			m := msgFrom(src, 0, interceptors.AppendFragmentTrailer(bytes.Clone(chunk), index, count))
			m.UniqueID = tribes.UniqueID{id % 4}
			p.recv(t, m)
			if s := fr.Stats(); s.PendingBytes > maxPending || s.PendingBytes < 0 {
				t.Fatalf("pending %d bytes, limit %d", s.PendingBytes, maxPending)
			}
		}
		if maxLen > maxMessage {
			t.Fatalf("passed up %d bytes, limit %d", maxLen, maxMessage)
		}
	})
}

// FuzzOrderReceive feeds sequence numbers from the input to an Order
// interceptor: it never panics, holds at most MaxQueue messages, and
// accounts for every message it received.
func FuzzOrderReceive(f *testing.F) {
	f.Add([]byte{2, 1, 3, 5, 4})
	f.Fuzz(func(t *testing.T, seqs []byte) {
		o := interceptors.NewOrder(interceptors.OrderConfig{MaxQueue: 8})
		clk := newFakeClock(time.Unix(1000, 0))
		interceptors.SetOrderClock(o, clk.Now)
		p := newPipe(t, o)
		src := &tribes.Member{Host: hostOf(100), Port: 4000, SecurePort: -1, UDPPort: -1}
		for i, s := range seqs {
			if s == 0xff {
				clk.Advance(4 * time.Second) // every held message expires
				p.ch.Interceptors()[0].Heartbeat()
				continue
			}
			p.recv(t, msgFrom(src, 0, interceptors.AppendSeq([]byte{byte(i)}, int32(s)-8)))
			if st := o.Stats(); st.Waiting > 8 {
				t.Fatalf("%d messages held, MaxQueue 8", st.Waiting)
			}
		}
		st := o.Stats()
		if int64(p.got)+st.Waiting+st.Dropped != st.Received {
			t.Fatalf("delivered %d + held %d + dropped %d != received %d", p.got, st.Waiting, st.Dropped, st.Received)
		}
	})
}
