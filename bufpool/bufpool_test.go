package bufpool

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

func TestGetSizes(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		wantCap int
	}{
		{"zero", 0, 64},
		{"one", 1, 64},
		{"min", 64, 64},
		{"min+1", 65, 128},
		{"1000", 1000, 1024},
		{"64KiB", 64 << 10, 64 << 10},
		{"64KiB+1", 64<<10 + 1, 128 << 10},
		{"max", MaxSize, MaxSize},
		{"oversize", MaxSize + 1, MaxSize + 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New(0)
			b := p.Get(tc.n)
			if len(b.B) != tc.n || cap(b.B) != tc.wantCap {
				t.Fatalf("Get(%d): len %d cap %d, want len %d cap %d", tc.n, len(b.B), cap(b.B), tc.n, tc.wantCap)
			}
			p.Put(b)
			// A second Get of the same size reuses the buffer unless it was dropped.
			b2 := p.Get(tc.n)
			if len(b2.B) != tc.n || cap(b2.B) != tc.wantCap {
				t.Fatalf("second Get(%d): len %d cap %d", tc.n, len(b2.B), cap(b2.B))
			}
			st := p.Stats()
			wantMisses := int64(1)
			if tc.n > MaxSize {
				wantMisses = 2
			}
			if st.Gets != 2 || st.Misses != wantMisses || st.Puts != 1 {
				t.Fatalf("stats %+v, want Gets 2, Misses %d, Puts 1", st, wantMisses)
			}
		})
	}
}

func TestGetNegativePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Get(-1) did not panic")
		}
	}()
	new(Pool).Get(-1)
}

func TestPutClasses(t *testing.T) {
	tests := []struct {
		name     string
		capacity int
		getSize  int  // size of the Get after the Put
		kept     bool // that Get returns the put array
		dropped  bool // the Put counted a drop
	}{
		{"exact class", 1024, 1024, true, false},
		{"odd cap goes below", 1500, 1024, true, false},
		{"odd cap not above", 1500, 1025, false, false},
		{"below min", 63, 1, false, true},
		{"max", MaxSize, MaxSize, true, false},
		{"above max", MaxSize + MinSize, MaxSize, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New(1 << 30)
			arr := make([]byte, 10, tc.capacity)
			p.Put(&Buffer{B: arr})
			b := p.Get(tc.getSize)
			same := cap(b.B) > 0 && &b.B[:1][0] == &arr[:1][0]
			if same != tc.kept {
				t.Fatalf("reused = %v, want %v (cap after Get %d)", same, tc.kept, cap(b.B))
			}
			if same && cap(b.B) != MinSize<<classUp(tc.getSize) {
				t.Fatalf("reused buffer has cap %d, want the class size %d", cap(b.B), MinSize<<classUp(tc.getSize))
			}
			st := p.Stats()
			if (st.Drops == 1) != tc.dropped || st.Puts != 1 {
				t.Fatalf("stats %+v, want dropped %v", st, tc.dropped)
			}
		})
	}
}

func TestPutNil(t *testing.T) {
	var p Pool
	p.Put(nil)
	if st := p.Stats(); st != (Stats{}) {
		t.Fatalf("stats after Put(nil): %+v", st)
	}
}

func TestPutTwicePanics(t *testing.T) {
	var p Pool
	b := p.Get(100)
	p.Put(b)
	defer func() {
		if recover() == nil {
			t.Fatal("second Put did not panic")
		}
	}()
	p.Put(b)
}

func TestZeroValue(t *testing.T) {
	var p Pool
	if p.MaxRetained() != DefaultMaxRetained {
		t.Fatalf("MaxRetained %d", p.MaxRetained())
	}
	if New(-5).MaxRetained() != DefaultMaxRetained {
		t.Fatal("New(-5) does not use the default")
	}
	b := p.Get(10)
	p.Put(b)
	if st := p.Stats(); st.Retained != 64 {
		t.Fatalf("retained %d, want 64", st.Retained)
	}
}

func TestRetainedLimitExact(t *testing.T) {
	const limit = 10 << 10 // room for ten 1 KiB buffers
	p := New(limit)
	var bufs []*Buffer
	for range 12 {
		bufs = append(bufs, p.Get(1024))
	}
	for _, b := range bufs {
		p.Put(b)
	}
	st := p.Stats()
	if st.Retained != limit || st.Drops != 2 || st.Puts != 12 {
		t.Fatalf("stats %+v, want Retained %d, Drops 2, Puts 12", st, limit)
	}
	// A large buffer does not fit any more.
	big := p.Get(4096)
	p.Put(big)
	if st := p.Stats(); st.Retained != limit || st.Drops != 3 {
		t.Fatalf("stats %+v after a put over the limit", st)
	}
	// Taking buffers out frees room.
	for range 10 {
		p.Get(1000)
	}
	if st := p.Stats(); st.Retained != 0 || st.Misses != 13 {
		t.Fatalf("stats %+v, want Retained 0, Misses 13", st)
	}
}

func TestGrow(t *testing.T) {
	tests := []struct {
		name    string
		start   int // -1 means nil
		grow    int
		wantCap int
		same    bool
	}{
		{"nil", -1, 100, 128, false},
		{"fits", 100, 128, 128, true},
		{"doubles", 100, 129, 256, false},
		{"large", 1000, 1 << 20, 1 << 20, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New(0)
			var b *Buffer
			if tc.start >= 0 {
				b = p.Get(tc.start)
				for i := range b.B {
					b.B[i] = byte(i)
				}
			}
			nb := p.Grow(b, tc.grow)
			if cap(nb.B) != tc.wantCap {
				t.Fatalf("cap %d, want %d", cap(nb.B), tc.wantCap)
			}
			if (nb == b) != tc.same {
				t.Fatalf("same buffer %v, want %v", nb == b, tc.same)
			}
			wantLen := max(tc.start, 0)
			if len(nb.B) != wantLen {
				t.Fatalf("len %d, want %d", len(nb.B), wantLen)
			}
			for i := range nb.B {
				if nb.B[i] != byte(i) {
					t.Fatalf("byte %d = %d", i, nb.B[i])
				}
			}
			if !tc.same && b != nil && p.Stats().Retained == 0 {
				t.Fatal("the replaced buffer was not put back")
			}
		})
	}
}

func TestGrowOversizeAmortized(t *testing.T) {
	p := New(0)
	b := p.Get(MaxSize)
	b = p.Grow(b, MaxSize+1)
	if c := cap(b.B); c < MaxSize+MaxSize/4 {
		t.Fatalf("oversize Grow gave cap %d, want >= %d", c, MaxSize+MaxSize/4)
	}
	if len(b.B) != MaxSize {
		t.Fatalf("len %d", len(b.B))
	}
}

// TestConcurrentOwnership hammers Get/Put from many goroutines and checks
// that no buffer is handed to two owners at once: each owner stamps its id into
// the buffer and checks it is still there before Put.
func TestConcurrentOwnership(t *testing.T) {
	const limit = 256 << 10
	p := New(limit)
	goroutines, iters := 16, 5000
	if testing.Short() {
		iters = 500
	}
	var bad atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			var held []*Buffer
			for i := range iters {
				n := r.IntN(8192)
				b := p.Get(n + 8)
				binary.LittleEndian.PutUint64(b.B, uint64(g)<<32|uint64(i))
				held = append(held, b)
				if len(held) > 4 || r.IntN(2) == 0 {
					k := r.IntN(len(held))
					h := held[k]
					want := binary.LittleEndian.Uint64(h.B)
					if want>>32 != uint64(g) {
						bad.Add(1)
					}
					held = append(held[:k], held[k+1:]...)
					p.Put(h)
				}
				if st := p.Stats(); st.Retained > limit {
					bad.Add(1000)
				}
			}
			for _, h := range held {
				p.Put(h)
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d ownership or limit violations", bad.Load())
	}
	st := p.Stats()
	if st.Gets != st.Puts {
		t.Fatalf("Gets %d != Puts %d", st.Gets, st.Puts)
	}
	if st.Retained > limit || st.Retained <= 0 {
		t.Fatalf("retained %d, limit %d", st.Retained, limit)
	}
	// Drain everything: the retained count must come back to exactly zero.
	var sum int64
	for ci := range numClasses {
		for p.classes[ci].n.Load() > 0 {
			b := p.Get(MinSize << ci)
			sum += int64(cap(b.B))
		}
	}
	if sum != st.Retained || p.Stats().Retained != 0 {
		t.Fatalf("drained %d bytes, stats said %d retained, now %d", sum, st.Retained, p.Stats().Retained)
	}
}

// TestGetPutZeroAlloc locks in that Get, Put and Grow allocate nothing in
// steady state (one testing.Benchmark covering several classes, to keep the
// test at about a second).
func TestGetPutZeroAlloc(t *testing.T) {
	sizes := []int{0, 100, 4096, 1 << 20}
	p := New(0)
	op := func() {
		for _, size := range sizes {
			p.Put(p.Get(size))
		}
		p.Put(p.Grow(p.Get(100), 5000))
	}
	op()
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			op()
		}
	})
	if a := res.AllocsPerOp(); a != 0 {
		t.Fatalf("Get/Put/Grow: %d allocs/op, want 0", a)
	}
	if res.N < 1000 {
		t.Fatalf("benchmark ran only %d times", res.N)
	}
}

func BenchmarkGetPut(b *testing.B) {
	for _, size := range []int{64, 1024, 64 << 10} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			p := New(0)
			b.ReportAllocs()
			for b.Loop() {
				p.Put(p.Get(size))
			}
		})
	}
}

// BenchmarkGetPutParallel measures contention: every goroutine uses the same
// class. syncPool is a plain sync.Pool of *Buffer for comparison (per-P
// caches, but no retained-bytes accounting).
func BenchmarkGetPutParallel(b *testing.B) {
	for _, size := range []int{1024, 64 << 10} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			p := New(0)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					x := p.Get(size)
					y := p.Get(size)
					p.Put(x)
					p.Put(y)
				}
			})
		})
		b.Run(fmt.Sprintf("%d/syncPool", size), func(b *testing.B) {
			sp := sync.Pool{New: func() any { return &Buffer{B: make([]byte, size)} }}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					x := sp.Get().(*Buffer)
					y := sp.Get().(*Buffer)
					sp.Put(x)
					sp.Put(y)
				}
			})
		})
	}
}
