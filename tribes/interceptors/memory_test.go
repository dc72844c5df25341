package interceptors_test

import (
	"runtime"
	"testing"

	"github.com/wasmfarm/wasmfarm/bufpool"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
)

// heapInUse returns the live heap bytes after a collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestFragmentationPendingMemoryBounded: MaxPendingBytes bounds the memory
// incomplete sets hold, also when a sender announces many sets of tiny or
// empty fragments (each set and each stored fragment costs far more than
// its payload bytes).
func TestFragmentationPendingMemoryBounded(t *testing.T) {
	const limit = 1 << 20
	r := newFragRig(t, interceptors.FragmentationConfig{MaxPendingBytes: limit})
	before := heapInUse()
	for i := range 100_000 {
		m := msgFrom(r.src, tribes.OptUseAck, interceptors.AppendFragmentTrailer(nil, 0, 2))
		m.UniqueID = tribes.UniqueID{byte(i), byte(i >> 8), byte(i >> 16), 1}
		if err := r.tr.inject(m); err != nil {
			t.Fatal(err)
		}
	}
	held := heapInUse() - before
	s := r.f.Stats()
	t.Logf("heap held by %d incomplete sets: %d bytes (PendingBytes %d, limit %d)", s.PendingSets, held, s.PendingBytes, limit)
	if held > 2*limit {
		t.Errorf("incomplete sets hold %d bytes of heap with MaxPendingBytes %d (%d sets, PendingBytes %d)",
			held, limit, s.PendingSets, s.PendingBytes)
	}
	if s.PendingBytes > limit {
		t.Errorf("PendingBytes %d over MaxPendingBytes %d", s.PendingBytes, limit)
	}
	if s.Discarded == 0 {
		t.Errorf("nothing discarded: %+v", s)
	}
}

// TestOrderQueuedMemoryBounded: MaxQueuedBytes bounds the memory a sender's
// held-back messages take, also when they are empty (each one held costs
// far more than its payload bytes).
func TestOrderQueuedMemoryBounded(t *testing.T) {
	const limit = 64 << 10
	// Released messages are dropped (not recorded by the rig's listener)
	// and their buffers not retained by a pool, so that what remains is
	// what the queue holds.
	r := newOrderRig(t, interceptors.OrderConfig{MaxQueuedBytes: limit, DropExpired: true, Pool: bufpool.New(1)})
	before := heapInUse()
	for seq := int32(2); seq < 40_002; seq += 2 { // every one ahead of a gap
		if err := r.tr.inject(msgFrom(r.src, 0, interceptors.AppendSeq(nil, seq))); err != nil {
			t.Fatal(err)
		}
	}
	held := heapInUse() - before
	s := r.o.Stats()
	t.Logf("heap held by %d waiting messages: %d bytes (limit %d)", s.Waiting, held, limit)
	if held > 2*limit {
		t.Errorf("held-back messages hold %d bytes of heap with MaxQueuedBytes %d (%d waiting)", held, limit, s.Waiting)
	}
	if s.Released == 0 {
		t.Errorf("nothing released: %+v", s)
	}
}
