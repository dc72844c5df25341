package interceptors

import "encoding/binary"

// replayEntry is one accepted message in the replay window.
type replayEntry struct {
	iv [gcmIVLen]byte
	ts int64 // the timestamp inside the message, ms
}

// replayWindow remembers the IVs of the last accepted messages (Tribes'
// replayWindowMessageCount) in arrival order, with a hash set over them, so
// that neither a check nor an eviction allocates. Not safe for concurrent
// use: the caller locks.
type replayWindow struct {
	window      int64         // replay window time, ms
	ring        []replayEntry // FIFO of accepted messages
	head, n     int
	table       []int32 // open addressing, linear probing: ring index + 1, 0 = empty
	shift       uint
	lastRemoved int64 // ts of the newest entry evicted so far
}

func newReplayWindow(windowMillis int64, count int, nowMillis int64) *replayWindow {
	size, bits := 16, uint(4)
	for size < 2*count {
		size <<= 1
		bits++
	}
	return &replayWindow{
		window:      windowMillis,
		ring:        make([]replayEntry, count),
		table:       make([]int32, size),
		shift:       64 - bits,
		lastRemoved: nowMillis - windowMillis,
	}
}

// reset forgets everything, as a restart would: only messages stamped after
// now minus the window are accepted.
func (w *replayWindow) reset(nowMillis int64) {
	clear(w.table)
	w.head, w.n = 0, 0
	w.lastRemoved = nowMillis - w.window
}

// check accepts a decrypted message (its IV and inner timestamp) at time
// now, or returns why not: [ErrClockSkew] when ts is further than the
// window from now, [ErrReplay] when ts is not newer than the last evicted
// entry or the IV was seen. An accepted message is remembered; when the
// window is full its oldest entry is evicted.
func (w *replayWindow) check(iv *[gcmIVLen]byte, ts, now int64) error {
	if ts < now-w.window || ts > now+w.window {
		return ErrClockSkew
	}
	// Entries that fell out of the time window cannot match anything the
	// skew check lets through: evict them early to keep lookups short.
	for w.n > 0 && w.ring[w.head].ts < now-w.window {
		w.pop()
	}
	if ts <= w.lastRemoved || w.find(iv) >= 0 {
		return ErrReplay
	}
	if w.n == len(w.ring) {
		w.pop()
	}
	slot := (w.head + w.n) % len(w.ring)
	w.ring[slot] = replayEntry{iv: *iv, ts: ts}
	w.n++
	pos := w.home(iv)
	for w.table[pos] != 0 {
		pos = (pos + 1) & (len(w.table) - 1)
	}
	w.table[pos] = int32(slot + 1)
	return nil
}

// pop evicts the oldest entry.
func (w *replayWindow) pop() {
	e := &w.ring[w.head]
	w.remove(w.find(&e.iv))
	w.lastRemoved = max(w.lastRemoved, e.ts)
	w.head = (w.head + 1) % len(w.ring)
	w.n--
}

func (w *replayWindow) home(iv *[gcmIVLen]byte) int {
	h := binary.LittleEndian.Uint64(iv[:8]) ^ uint64(binary.LittleEndian.Uint32(iv[8:]))<<29
	return int((h * 0x9e3779b97f4a7c15) >> w.shift)
}

// find returns the table position holding iv, or -1.
func (w *replayWindow) find(iv *[gcmIVLen]byte) int {
	mask := len(w.table) - 1
	for pos := w.home(iv); ; pos = (pos + 1) & mask {
		s := w.table[pos]
		if s == 0 {
			return -1
		}
		if w.ring[s-1].iv == *iv {
			return pos
		}
	}
}

// remove empties table position i, shifting later entries of the probe
// run back so that every entry stays reachable from its home position.
func (w *replayWindow) remove(i int) {
	if i < 0 {
		return
	}
	mask := len(w.table) - 1
	for j := (i + 1) & mask; w.table[j] != 0; j = (j + 1) & mask {
		k := w.home(&w.ring[w.table[j]-1].iv)
		// The entry at j may move to i unless its home lies cyclically in
		// (i, j].
		if i <= j && (k <= i || k > j) || i > j && k <= i && k > j {
			w.table[i] = w.table[j]
			i = j
		}
	}
	w.table[i] = 0
}
