package interceptors

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// TestReplayWindowModel runs the hash-set window against a map-based model
// of the same rules, with few distinct IVs so that repeats, evictions and
// long probe runs (a tiny table) are all exercised.
func TestReplayWindowModel(t *testing.T) {
	for _, count := range []int{1, 2, 3, 8, 100} {
		r := rand.New(rand.NewPCG(1, uint64(count)))
		const window = 1000
		now := int64(1_000_000)
		w := newReplayWindow(window, count, now)
		type entry struct {
			iv [gcmIVLen]byte
			ts int64
		}
		var fifo []entry
		seen := map[[gcmIVLen]byte]bool{}
		lastRemoved := now - window
		pop := func() {
			e := fifo[0]
			fifo = fifo[1:]
			delete(seen, e.iv)
			lastRemoved = max(lastRemoved, e.ts)
		}
		for i := range 20000 {
			now += int64(r.IntN(20))
			var iv [gcmIVLen]byte
			iv[0] = byte(r.IntN(3 * count)) // few distinct IVs: many repeats
			iv[11] = byte(r.IntN(2))
			ts := now + int64(r.IntN(2*window+200)) - window - 100

			var want error
			switch {
			case ts < now-window || ts > now+window:
				want = ErrClockSkew
			default:
				for len(fifo) > 0 && fifo[0].ts < now-window {
					pop()
				}
				if ts <= lastRemoved || seen[iv] {
					want = ErrReplay
				} else {
					if len(fifo) == count {
						pop()
					}
					fifo = append(fifo, entry{iv, ts})
					seen[iv] = true
				}
			}
			if got := w.check(&iv, ts, now); !errors.Is(got, want) || (got == nil) != (want == nil) {
				t.Fatalf("count %d step %d: check(iv %x, ts %d, now %d) = %v, want %v", count, i, iv, ts, now, got, want)
			}
			if w.n != len(fifo) || w.lastRemoved != lastRemoved {
				t.Fatalf("count %d step %d: %d entries, lastRemoved %d; model %d, %d", count, i, w.n, w.lastRemoved, len(fifo), lastRemoved)
			}
			// Every remembered IV is findable, and the table holds nothing else.
			used := 0
			for _, s := range w.table {
				if s != 0 {
					used++
				}
			}
			if used != len(fifo) {
				t.Fatalf("count %d step %d: table holds %d, want %d", count, i, used, len(fifo))
			}
			for _, e := range fifo {
				if w.find(&e.iv) < 0 {
					t.Fatalf("count %d step %d: iv %x lost", count, i, e.iv)
				}
			}
		}
	}
}
