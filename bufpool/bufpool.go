package bufpool

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

const (
	// DefaultMaxRetained is the number of bytes a Pool keeps in its free
	// lists at most when none is given (Apache Tribes' BufferPool default).
	DefaultMaxRetained = 100 << 20

	// MinSize is the smallest size class: Get(n) for n <= MinSize returns a
	// buffer with capacity MinSize.
	MinSize = 1 << minShift

	// MaxSize is the largest size class. Get(n) for n > MaxSize allocates a
	// buffer of exactly n bytes, which Put drops.
	MaxSize = 1 << maxShift

	minShift   = 6
	maxShift   = 26
	numClasses = maxShift - minShift + 1
)

// Buffer is a byte slice owned by one user at a time. B has the length asked
// for in [Pool.Get]; its capacity is the size class. The user may reslice B
// within its capacity; appending beyond it is allowed too, and Put then files
// the new array under the class its capacity fits.
type Buffer struct {
	B []byte

	next *Buffer // free-list link, set only while in the pool
	free bool    // in a free list: a second Put panics
}

// Stats are a Pool's counters since it was created.
type Stats struct {
	Gets     int64 // calls to Get (and Grow when it replaces the buffer)
	Puts     int64 // calls to Put with a non-nil buffer
	Misses   int64 // Gets that allocated because the class was empty
	Drops    int64 // Puts that did not keep the buffer (too small, too large, or over the retained limit)
	Retained int64 // bytes now held in free lists
}

// Pool is a set of free lists of byte buffers, one per power-of-two size
// class. The zero value is ready to use and retains at most
// [DefaultMaxRetained] bytes. A Pool must not be copied after first use. All
// methods are safe for concurrent use.
type Pool struct {
	maxRetained int64 // 0 means DefaultMaxRetained
	classes     [numClasses]class

	retained atomic.Int64 // bytes in free lists plus bytes reserved by Puts in progress
	_        [56]byte
	misses   atomic.Int64
	drops    atomic.Int64
}

// class is the free list of one size class, padded to its own cache lines.
type class struct {
	mu     sync.Mutex
	head   *Buffer
	n      atomic.Int64 // buffers in the list, read without mu to skip an empty list
	hits   int64        // Gets served from this list, under mu
	pushes int64        // Puts kept in this list, under mu
	_      [128 - 8 - 8 - 3*8]byte
}

// New returns a Pool that keeps at most maxRetained bytes in its free lists.
// maxRetained <= 0 means [DefaultMaxRetained].
func New(maxRetained int64) *Pool {
	return &Pool{maxRetained: max(maxRetained, 0)}
}

func (p *Pool) limit() int64 {
	if p.maxRetained <= 0 {
		return DefaultMaxRetained
	}
	return p.maxRetained
}

// classUp is the index of the smallest class holding n bytes (n <= MaxSize).
func classUp(n int) int {
	if n <= MinSize {
		return 0
	}
	return bits.Len(uint(n-1)) - minShift
}

// classDown is the index of the largest class not larger than c, or -1 when c
// is below MinSize or above MaxSize.
func classDown(c int) int {
	if c < MinSize || c > MaxSize {
		return -1
	}
	return bits.Len(uint(c)) - 1 - minShift
}

// Get returns a buffer with len(b.B) == n and cap(b.B) the power-of-two size
// class >= n (n itself when n > [MaxSize]). The contents of b.B are
// unspecified: a reused buffer holds old bytes. The caller owns b until it
// calls Put. Get panics if n < 0.
func (p *Pool) Get(n int) *Buffer {
	if n < 0 {
		panic("bufpool: negative size")
	}
	if n > MaxSize {
		p.misses.Add(1)
		return &Buffer{B: make([]byte, n)}
	}
	ci := classUp(n)
	c := &p.classes[ci]
	if c.n.Load() > 0 {
		c.mu.Lock()
		if b := c.head; b != nil {
			c.head = b.next
			c.n.Add(-1)
			c.hits++
			c.mu.Unlock()
			b.next = nil
			b.free = false
			p.retained.Add(-int64(cap(b.B)))
			b.B = b.B[:n]
			return b
		}
		c.mu.Unlock()
	}
	p.misses.Add(1)
	return &Buffer{B: make([]byte, n, MinSize<<ci)}
}

// Put returns b to the pool; b == nil is a no-op. After Put the buffer
// belongs to the pool: neither b nor any slice of b.B may be used again. A
// buffer whose capacity is not a class size is filed under the class below
// it; a buffer smaller than [MinSize] or larger than [MaxSize], or one that
// would raise the retained bytes above the pool's limit, is dropped for the
// garbage collector. Put panics if b is already in the pool.
func (p *Pool) Put(b *Buffer) {
	if b == nil {
		return
	}
	if b.free {
		panic("bufpool: Buffer put twice")
	}
	ci := classDown(cap(b.B))
	if ci < 0 {
		p.drops.Add(1)
		b.B = nil
		return
	}
	size := int64(MinSize) << ci
	limit := p.limit()
	for {
		r := p.retained.Load()
		if r+size > limit {
			p.drops.Add(1)
			b.B = nil
			return
		}
		if p.retained.CompareAndSwap(r, r+size) {
			break
		}
	}
	b.B = b.B[:0:size]
	b.free = true
	c := &p.classes[ci]
	c.mu.Lock()
	b.next = c.head
	c.head = b
	c.n.Add(1)
	c.pushes++
	c.mu.Unlock()
}

// Grow returns a buffer with capacity >= n holding b's bytes: len(b.B) is
// preserved. If b already has the capacity it is returned as it is; otherwise
// a new buffer is taken with Get, b.B is copied into it and b is Put back (so
// b must not be used after Grow). b == nil is treated as an empty buffer.
// Beyond [MaxSize] the capacity grows by at least a quarter each time, so
// repeated Grows stay amortized linear.
func (p *Pool) Grow(b *Buffer, n int) *Buffer {
	if b == nil {
		nb := p.Get(n)
		nb.B = nb.B[:0]
		return nb
	}
	if cap(b.B) >= n {
		return b
	}
	if n > MaxSize {
		n = max(n, cap(b.B)+cap(b.B)/4)
	}
	nb := p.Get(n)
	nb.B = nb.B[:len(b.B)]
	copy(nb.B, b.B)
	p.Put(b)
	return nb
}

// Stats returns the pool's counters. Under concurrent use they are not a
// consistent snapshot of one instant.
func (p *Pool) Stats() Stats {
	st := Stats{
		Misses:   p.misses.Load(),
		Drops:    p.drops.Load(),
		Retained: p.retained.Load(),
	}
	for i := range p.classes {
		c := &p.classes[i]
		c.mu.Lock()
		st.Gets += c.hits
		st.Puts += c.pushes
		c.mu.Unlock()
	}
	st.Gets += st.Misses
	st.Puts += st.Drops
	return st
}

// MaxRetained returns the pool's limit on retained bytes.
func (p *Pool) MaxRetained() int64 { return p.limit() }
