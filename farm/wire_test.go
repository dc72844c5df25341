package farm

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// sampleMessages has one message of each type.
func sampleMessages() []*message {
	id := opID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	dg := digest{0xaa, 0xbb}
	return []*message{
		{Type: msgBegin, ID: id, Kind: kindSync, Size: 12345, Digest: dg, Path: "/shop/v2", Name: "shop#v2.wasm"},
		{Type: msgChunk, ID: id, Offset: 65536, Data: []byte("\x00asm chunk bytes")},
		{Type: msgCommit, ID: id},
		{Type: msgAbort, ID: id},
		{Type: msgResult, ID: id, Op: opUndeploy, Digest: dg, Name: "jvm_b", Err: "wasm module refused"},
		{Type: msgUndeploy, ID: id, Path: "/"},
		{Type: msgListReq, ID: id},
		{Type: msgList, ID: id, Name: "jvm_a", Apps: []appEntry{{Path: "/", Digest: dg, Size: 10, Farmed: true}, {Path: "/x", Size: 0}}},
		{Type: msgFetch, ID: id, Path: "/shop", Digest: dg},
		{Type: msgList, ID: id, Name: "jvm_c", Apps: []appEntry{{Path: "/shop", Digest: dg, Size: 10, Farmed: true}}, Unsynced: true},
		{Type: msgList, ID: id, Name: "jvm_d", Apps: []appEntry{{Path: "/shop", Digest: dg, Size: 10, Farmed: true}, {Path: "/old", Undeployed: true}}, Cold: true},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, key := range [][]byte{nil, []byte("secret")} {
		for _, m := range sampleMessages() {
			b := seal(appendMessage(nil, m), key)
			var got message
			if err := decodeMessage(b, key, &got); err != nil {
				t.Fatalf("type %d key %q: %v", m.Type, key, err)
			}
			if m.Type == msgChunk {
				if !bytes.Equal(got.Data, m.Data) {
					t.Errorf("chunk data %q", got.Data)
				}
				got.Data, m.Data = nil, nil
			}
			if !reflect.DeepEqual(&got, m) {
				t.Errorf("type %d key %q: got %+v, want %+v", m.Type, key, got, *m)
			}
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	good := appendMessage(nil, sampleMessages()[0])
	key := []byte("k")
	sealed := seal(appendMessage(nil, sampleMessages()[0]), key)
	tamper := bytes.Clone(sealed)
	tamper[headerLen+2] ^= 1
	tests := []struct {
		name string
		b    []byte
		key  []byte
		want error
		text string
	}{
		{"short", []byte("WFD1\x01"), nil, ErrBadMessage, "shorter than"},
		{"unknown type", append([]byte("WFD1\x63\x00"), make([]byte, 16)...), nil, ErrBadMessage, "unknown type 99"},
		{"unknown flag", append([]byte("WFD1\x03\x08"), make([]byte, 16)...), nil, ErrBadMessage, "unknown flags"},
		{"unsynced flag off a list", append([]byte("WFD1\x03\x02"), make([]byte, 16)...), nil, ErrBadMessage, "flag 0x2 on a type-3"},
		{"cold flag off a list", append([]byte("WFD1\x03\x04"), make([]byte, 16)...), nil, ErrBadMessage, "flag 0x4 on a type-3"},
		{"unsynced and cold", append([]byte("WFD1\x08\x06"), make([]byte, 16)...), nil, ErrBadMessage, "together"},
		{"farmed and undeployed", listWithAppFlags(appFarmed | appUndeployed), nil, ErrBadMessage, "bad app flags 3"},
		{"truncated body", good[:len(good)-3], nil, ErrBadMessage, "bytes needed"},
		{"trailing bytes", append(bytes.Clone(good), 0), nil, ErrBadMessage, "trailing"},
		{"no MAC", good, key, ErrUnauthenticated, "no MAC"},
		{"MAC without key", sealed, nil, ErrUnauthenticated, "no AuthKey"},
		{"wrong key", sealed, []byte("other"), ErrUnauthenticated, "wrong MAC"},
		{"tampered", tamper, key, ErrUnauthenticated, "wrong MAC"},
		{"too large", append([]byte("WFD1\x02\x00"), make([]byte, maxMessage)...), nil, ErrBadMessage, "limit"},
		{"bad kind", append(append([]byte("WFD1\x01\x00"), make([]byte, 16)...), 7, 0, 0, 0, 0, 0, 0, 0, 0), nil, ErrBadMessage, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m message
			err := decodeMessage(tc.b, tc.key, &m)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("got %v, want %v containing %q", err, tc.want, tc.text)
			}
		})
	}
}

// listWithAppFlags is a list answer of one app whose flags byte is f.
func listWithAppFlags(f byte) []byte {
	b := appendMessage(nil, &message{Type: msgList, Apps: []appEntry{{Path: "/x"}}})
	b[len(b)-1] = f
	return b
}

// TestDecodeAllocs: decoding a chunk, the bulk of the traffic, does not
// copy its data.
func TestDecodeChunkNoCopy(t *testing.T) {
	b := appendMessage(nil, &message{Type: msgChunk, Offset: 1, Data: make([]byte, 1<<16)})
	var m message
	allocs := testing.AllocsPerRun(100, func() {
		if err := decodeMessage(b, nil, &m); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per chunk decode", allocs)
	}
	if &m.Data[0] != &b[headerLen+8] {
		t.Error("chunk data copied")
	}
}

// FuzzDecodeMessage feeds arbitrary bytes to the decoder, with and without
// a key: it must not panic, must stay within its limits, and whatever it
// accepts must encode back to the same bytes.
func FuzzDecodeMessage(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(appendMessage(nil, m), false)
		f.Add(seal(appendMessage(nil, m), []byte("fuzz")), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, keyed bool) {
		var key []byte
		if keyed {
			key = []byte("fuzz")
		}
		var m message
		if err := decodeMessage(b, key, &m); err != nil {
			if !errors.Is(err, ErrBadMessage) && !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("error %v wraps neither sentinel", err)
			}
			return
		}
		if len(m.Apps) > maxListApps || len(m.Path) > maxString || len(m.Name) > maxString || len(m.Err) > maxString {
			t.Fatalf("limits exceeded: %d apps", len(m.Apps))
		}
		if again := seal(appendMessage(nil, &m), key); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", again, b)
		}
	})
}
