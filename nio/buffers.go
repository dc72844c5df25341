package nio

import "github.com/wasmfarm/wasmfarm/bufpool"

// inbuf holds a connection's unconsumed input, b.B[off:], in a pooled
// buffer. It is owned by the connection's loop (or reader goroutine).
type inbuf struct {
	b   *bufpool.Buffer
	off int
}

// shrinkAbove is the capacity above which a mostly consumed buffer is moved
// to a smaller one, so a connection does not sit on the peak of one large
// frame.
const shrinkAbove = 1 << 20

func (ib *inbuf) len() int {
	if ib.b == nil {
		return 0
	}
	return len(ib.b.B) - ib.off
}

// bytes returns the held input; valid until the next method call.
func (ib *inbuf) bytes() []byte {
	if ib.b == nil {
		return nil
	}
	return ib.b.B[ib.off:]
}

// reserve makes room for at least n more bytes after the held ones,
// compacting or moving to a larger buffer as needed.
func (ib *inbuf) reserve(p *bufpool.Pool, n int) {
	if ib.b == nil {
		ib.b = p.Get(n)
		ib.b.B = ib.b.B[:0]
		ib.off = 0
		return
	}
	held := ib.len()
	if cap(ib.b.B)-len(ib.b.B) >= n {
		return
	}
	if cap(ib.b.B) >= held+n && ib.off >= held {
		// Enough room once the consumed front is dropped, and the copy is
		// no larger than what was consumed: compact in place.
		copy(ib.b.B, ib.b.B[ib.off:])
		ib.b.B = ib.b.B[:held]
		ib.off = 0
		return
	}
	want := held + n
	if want > bufpool.MaxSize {
		want = max(want, cap(ib.b.B)+cap(ib.b.B)/4)
	} else {
		want = max(want, 2*held) // amortized growth even after compaction
	}
	nb := p.Get(want)
	nb.B = nb.B[:held]
	copy(nb.B, ib.b.B[ib.off:])
	p.Put(ib.b)
	ib.b, ib.off = nb, 0
}

// append copies data after the held bytes.
func (ib *inbuf) append(p *bufpool.Pool, data []byte) {
	if len(data) == 0 {
		return
	}
	ib.reserve(p, len(data))
	ib.b.B = append(ib.b.B, data...)
}

// space returns the free room after the held bytes, at least n bytes; fill
// it and call commit.
func (ib *inbuf) space(p *bufpool.Pool, n int) []byte {
	ib.reserve(p, n)
	return ib.b.B[len(ib.b.B):cap(ib.b.B)]
}

// commit adds n bytes written into space to the held input.
func (ib *inbuf) commit(n int) { ib.b.B = ib.b.B[:len(ib.b.B)+n] }

// consume drops n bytes from the front. When nothing is left the buffer goes
// back to the pool unless keep is set (the portable reader reads into it
// again); a large buffer whose remainder is small is swapped for a smaller one.
func (ib *inbuf) consume(p *bufpool.Pool, n int, keep bool) {
	if ib.b == nil {
		return
	}
	ib.off += n
	rest := ib.len()
	if rest == 0 {
		if keep && cap(ib.b.B) <= shrinkAbove {
			ib.b.B = ib.b.B[:0]
			ib.off = 0
			return
		}
		ib.release(p)
		return
	}
	if c := cap(ib.b.B); c > shrinkAbove && rest <= c/8 {
		nb := p.Get(rest)
		copy(nb.B, ib.b.B[ib.off:])
		p.Put(ib.b)
		ib.b, ib.off = nb, 0
	}
}

// release returns the buffer to the pool.
func (ib *inbuf) release(p *bufpool.Pool) {
	p.Put(ib.b)
	ib.b, ib.off = nil, 0
}

// wqueue is a connection's queue of bytes waiting to be written, copied into
// pooled buffers. The caller synchronizes.
type wqueue struct {
	bufs []*bufpool.Buffer // bufs[0].B[off:] is the next byte to write
	off  int
	n    int // bytes queued
}

const (
	minChunk = 4 << 10
	maxChunk = 1 << 20
)

// push copies data to the end of the queue.
func (q *wqueue) push(p *bufpool.Pool, data []byte) {
	q.n += len(data)
	if k := len(q.bufs); k > 0 {
		last := q.bufs[k-1]
		m := copy(last.B[len(last.B):cap(last.B)], data)
		last.B = last.B[:len(last.B)+m]
		data = data[m:]
	}
	for len(data) > 0 {
		b := p.Get(min(max(len(data), minChunk), maxChunk))
		m := copy(b.B[:cap(b.B)], data)
		b.B = b.B[:m]
		data = data[m:]
		q.bufs = append(q.bufs, b)
	}
}

// front returns the next bytes to write (nil when empty).
func (q *wqueue) front() []byte {
	if len(q.bufs) == 0 {
		return nil
	}
	return q.bufs[0].B[q.off:]
}

// advance drops n written bytes from the front.
func (q *wqueue) advance(p *bufpool.Pool, n int) {
	q.n -= n
	for n > 0 {
		b := q.bufs[0]
		k := min(n, len(b.B)-q.off)
		q.off += k
		n -= k
		if q.off == len(b.B) {
			q.popFront(p)
		}
	}
}

func (q *wqueue) popFront(p *bufpool.Pool) {
	p.Put(q.bufs[0])
	copy(q.bufs, q.bufs[1:])
	q.bufs[len(q.bufs)-1] = nil
	q.bufs = q.bufs[:len(q.bufs)-1]
	q.off = 0
}

// take moves the queued buffers to dst (appended) and empties the queue; the
// caller writes them and Puts them back. The first buffer is trimmed to its
// unwritten bytes.
func (q *wqueue) take(dst []*bufpool.Buffer) []*bufpool.Buffer {
	if len(q.bufs) > 0 && q.off > 0 {
		b := q.bufs[0]
		b.B = b.B[:copy(b.B, b.B[q.off:])]
	}
	dst = append(dst, q.bufs...)
	clear(q.bufs)
	q.bufs, q.off, q.n = q.bufs[:0], 0, 0
	return dst
}

// release returns every queued buffer to the pool.
func (q *wqueue) release(p *bufpool.Pool) {
	for _, b := range q.bufs {
		p.Put(b)
	}
	clear(q.bufs)
	q.bufs, q.off, q.n = q.bufs[:0], 0, 0
}
