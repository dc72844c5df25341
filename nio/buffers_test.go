package nio

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/wasmfarm/wasmfarm/bufpool"
)

// runBufferOps drives an inbuf and a wqueue with operations decoded from
// ops and checks them against plain byte slices. Both must agree with the
// model after every step, and every pooled buffer must come back.
func runBufferOps(t *testing.T, ops []byte) {
	p := bufpool.New(0)
	var ib inbuf
	var q wqueue
	var inModel, qModel []byte
	next := byte(0)
	fill := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = next
			next++
		}
		return b
	}
	for len(ops) >= 3 {
		op, arg := ops[0]%6, int(binary.LittleEndian.Uint16(ops[1:3]))
		ops = ops[3:]
		switch op {
		case 0: // input arrives
			d := fill(arg * 37 % 1200000)
			ib.append(p, d)
			inModel = append(inModel, d...)
		case 1: // handler consumes
			if n := ib.len(); n > 0 {
				k := arg % (n + 1)
				ib.consume(p, k, arg&1 == 0)
				inModel = inModel[k:]
			}
		case 2: // a read into space
			sp := ib.space(p, 1+arg%70000)
			k := min(len(sp), arg)
			copy(sp, fill(k))
			ib.commit(k)
			inModel = append(inModel, sp[:k]...)
		case 3: // a write is queued
			d := fill(arg * 41 % 300000)
			q.push(p, d)
			qModel = append(qModel, d...)
		case 4: // the socket takes some
			k := min(arg*17, len(q.front()))
			if !bytes.Equal(q.front()[:k], qModel[:k]) {
				t.Fatal("queue front differs from the model")
			}
			q.advance(p, k)
			qModel = qModel[k:]
		case 5: // the writer takes everything
			var got []byte
			for _, b := range q.take(nil) {
				got = append(got, b.B...)
				p.Put(b)
			}
			if !bytes.Equal(got, qModel) {
				t.Fatal("taken queue differs from the model")
			}
			qModel = nil
		}
		if !bytes.Equal(ib.bytes(), inModel) || ib.len() != len(inModel) {
			t.Fatalf("inbuf holds %d bytes, model %d (or contents differ)", ib.len(), len(inModel))
		}
		if q.n != len(qModel) {
			t.Fatalf("queue counts %d bytes, model %d", q.n, len(qModel))
		}
	}
	ib.release(p)
	q.release(p)
	if st := p.Stats(); st.Gets != st.Puts {
		t.Fatalf("pool Gets %d != Puts %d: a buffer leaked", st.Gets, st.Puts)
	}
}

func TestBuffers(t *testing.T) {
	tests := []struct {
		name string
		ops  []byte
	}{
		{"empty", nil},
		{"append and consume all", []byte{0, 10, 0, 1, 255, 255}},
		{"partial consume keeps the tail", []byte{0, 100, 0, 1, 7, 0, 0, 3, 0}},
		{"large then shrink", []byte{0, 0, 200, 0, 0, 100, 1, 0, 0, 1, 1, 0}},
		{"read space", []byte{2, 0, 4, 1, 3, 0, 2, 0, 128, 1, 255, 255}},
		{"queue", []byte{3, 0, 1, 3, 9, 0, 4, 5, 0, 4, 255, 255, 5, 0, 0}},
		{"big queue", []byte{3, 255, 255, 4, 0, 16, 3, 1, 0, 5, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runBufferOps(t, tc.ops) })
	}
}

// FuzzBuffers checks the leftover buffer and the write queue against a
// plain-slice model for arbitrary operation sequences.
func FuzzBuffers(f *testing.F) {
	f.Add([]byte{0, 10, 0, 1, 255, 255})
	f.Add([]byte{0, 0, 200, 0, 0, 100, 1, 0, 0, 1, 1, 0, 2, 0, 4})
	f.Add([]byte{3, 255, 255, 4, 0, 16, 3, 1, 0, 5, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 150 {
			ops = ops[:150] // bound the work per input
		}
		runBufferOps(t, ops)
	})
}

func TestInbufShrinkAndCompact(t *testing.T) {
	p := bufpool.New(0)
	var ib inbuf
	big := bytes.Repeat([]byte{7}, 2<<20)
	ib.append(p, big)
	ib.consume(p, len(big)-100, false)
	if ib.len() != 100 || cap(ib.b.B) > 4096 {
		t.Fatalf("after consuming most of 2 MiB: len %d cap %d, want 100 bytes in a small buffer", ib.len(), cap(ib.b.B))
	}
	// Compaction: a 1 KiB buffer with 600 consumed and 100 held takes 800
	// more bytes in place.
	var c inbuf
	c.append(p, make([]byte, 700))
	c.consume(p, 600, false)
	arr := &c.b.B[:1][0]
	c.append(p, bytes.Repeat([]byte{1}, 800))
	if &c.b.B[:1][0] != arr || c.len() != 900 || c.off != 0 {
		t.Fatalf("not compacted in place: len %d off %d", c.len(), c.off)
	}
	// keep: an emptied small buffer stays for the next read.
	c.consume(p, c.len(), true)
	if c.b == nil || c.len() != 0 {
		t.Fatal("keep released the buffer")
	}
	c.release(p)
	ib.release(p)
	if st := p.Stats(); st.Gets != st.Puts {
		t.Fatalf("pool Gets %d != Puts %d", st.Gets, st.Puts)
	}
}
