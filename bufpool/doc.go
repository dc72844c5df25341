// Package bufpool keeps byte buffers in power-of-two size classes so that hot
// paths (socket reads, frame assembly, write queues) reuse memory instead of
// allocating it.
//
// A [Pool] hands out [*Buffer] values whose B field has the requested length and
// a capacity equal to the size class (a power of two from [MinSize] to
// [MaxSize]). Free buffers wait in per-class stacks; the bytes they hold are
// counted exactly and never exceed the pool's maxRetained limit (by default
// [DefaultMaxRetained], like Apache Tribes' BufferPool), so an idle process
// does not sit on the peak of a past burst.
//
//	p := bufpool.New(0)
//	b := p.Get(n)    // len(b.B) == n
//	fill(b.B)
//	p.Put(b)         // b and b.B now belong to the pool
//
// # Ownership
//
// After Put the buffer belongs to the pool: neither the *Buffer nor any slice
// of b.B may be used again, by the caller or anyone it shared them with. The
// pool hands the same memory to the next Get. Putting a buffer twice panics
// when it is detected.
//
// All methods of a Pool are safe for concurrent use. A Buffer itself is not
// synchronized: one owner at a time.
//
// # Why locked stacks and not sync.Pool?
//
// A sync.Pool may drop its items at any garbage collection without telling
// anyone, so the bytes it holds cannot be counted and a limit on retained
// bytes cannot be exact. Each size class therefore keeps one mutex-protected
// intrusive stack: a Buffer links itself in, so Get and Put allocate nothing.
// One atomic counter reserves the retained bytes before a Put links a buffer,
// which keeps the limit exact under concurrency (Stats.Retained never exceeds
// it). Measured on 2 cores (BenchmarkGetPutParallel, two Gets and two Puts per
// op): about 36 ns/op against 30 ns/op for a bare sync.Pool; sharding each
// class over several stacks (picked at random, or by a per-P hint kept in a
// sync.Pool) was slower there, 80 to 290 ns/op, because the shared retained
// counter still crosses cores and the extra lines cost more than the lock
// contention they avoid.
package bufpool
