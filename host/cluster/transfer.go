package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// xfer is the state transfer both managers share: a joining member asks
// the oldest member running the app for everything it holds, applies the
// blocks as they come (each acknowledged after it was applied), queues
// the messages that arrive meanwhile and applies them afterwards, in order.
type xfer struct {
	b *base // the manager's
	// apply applies a live message; record applies one record of a block.
	apply  func(t msgType, body []byte) error
	record func(rec []byte) error
	// replayAll makes drain apply every queued message, also those the
	// snapshot's member sent before its snapshot: a BackupManager's
	// snapshot holds only where the sessions live, so its member's backup
	// copies, deltas, expiries and renames queued meanwhile are not in it.
	// Without it (the DeltaManager, whose snapshot holds every session)
	// those are dropped, unless NoStateTimestampDrop.
	replayAll bool

	tmu       sync.Mutex
	receiving bool
	queue     []queued
	from      tribes.UniqueID // the member whose snapshot arrived
	snapTime  int64
	isReady   atomic.Bool
	dur       atomic.Int64
	n         atomic.Int64
	ok        atomic.Bool
}

// queued is a message received during the state transfer.
type queued struct {
	typ  msgType
	from tribes.UniqueID
	ts   int64
	body []byte
}

func (x *xfer) ready() bool { return x.isReady.Load() }

// live applies msg now, or queues it while the transfer runs.
func (x *xfer) live(msg *tribes.Message, p parsed) error {
	x.tmu.Lock()
	if x.receiving {
		x.queue = append(x.queue, queued{typ: p.typ, from: msg.Source.UniqueID, ts: msg.Timestamp, body: append([]byte(nil), p.body...)})
		x.tmu.Unlock()
		return nil
	}
	x.tmu.Unlock()
	return x.apply(p.typ, p.body)
}

// serveGetAll answers a joiner's GET_ALL: the joiner is marked as running
// the app before the snapshot (so no later change misses it), then
// snapshot's records go in acknowledged blocks from another goroutine.
func (x *xfer) serveGetAll(msg *tribes.Message, p parsed, snapshot func() (int, func(b []byte, i int) []byte)) error {
	id, err := getAllRequest(p.body)
	if err != nil {
		return err
	}
	src := msg.Source.Clone()
	x.b.c.markContext(src, x.b.ctx)
	snap := time.Now().UnixMilli()
	n, appendRec := snapshot()
	go x.sendAll(src, id, snap, n, appendRec)
	return nil
}

// stateBlockBytes bounds the size of a state-transfer block: the cluster
// decoder's limit (and the channel's default), less room for what the
// channel's interceptors add. A variable for tests (SetStateBlockBytes).
var stateBlockBytes atomic.Int64

func init() { stateBlockBytes.Store(MaxMessageBytes - 64<<10) }

// sendAll sends n records in acknowledged blocks; appendRec appends
// record i. A block holds at most SendAllSessionsSize records and
// stateBlockBytes bytes, fewer when the channel refuses it as too large
// (its MaxMessageSize is smaller); a record that does not fit alone is
// skipped with a warning. When a block cannot be sent, the joiner is told
// (allFailed), so that it asks another member instead of waiting.
func (x *xfer) sendAll(to *tribes.Member, reqID uint64, snap int64, n int, appendRec func(b []byte, i int) []byte) {
	start := time.Now()
	dst := []*tribes.Member{to}
	size := x.b.cfg.SendAllSessionsSize
	hard := int(stateBlockBytes.Load())
	limit := hard // lowered when the channel refuses a block as too large
	skipped := 0
	var buf []byte
	for next := 0; ; { // next: the first record not sent yet
		buf = header(buf[:0], msgAllData, x.b.ctx)
		buf = appendU64(buf, reqID)
		flagsAt := len(buf)
		buf = append(buf, 0)
		buf = appendVarint(buf, snap)
		countAt := len(buf)
		buf = append(buf, 0, 0, 0, 0, 0) // room for the record count
		first, cnt := next, 0
		for next < n && cnt < size {
			mark := len(buf)
			buf = append(buf, 0, 0, 0, 0, 0) // room for the length
			buf = appendRec(buf, next)
			buf = fixLen(buf, mark)
			if len(buf) > limit && (cnt > 0 || len(buf) > hard) {
				buf = buf[:mark]
				if cnt > 0 {
					break // the record opens the next block
				}
				x.b.log.Warn("session too large for a state-transfer message: not sent to the joining member",
					"member", to, "record", next, "limit", hard)
				skipped++
				next++
				continue
			}
			cnt++
			next++
		}
		if next == n {
			buf[flagsAt] |= allLast
		}
		buf = fixUvarint(buf, countAt, uint64(cnt))
		ctx, cancel := context.WithTimeout(context.Background(), x.b.cfg.SendAllSessionsWaitTime)
		err := x.b.c.ch.Send(ctx, dst, buf, SyncOptions)
		cancel()
		if errors.Is(err, tribes.ErrMessageTooLarge) {
			// Nothing was sent: cut this block's records smaller.
			next = first
			if cnt <= 1 {
				x.b.log.Warn("session too large for the channel's messages: not sent to the joining member",
					"member", to, "record", next, "err", err)
				skipped++
				next++
			} else {
				limit = len(buf) / 2
			}
			continue
		}
		x.b.countSent(len(buf))
		if err != nil {
			x.b.log.Warn("state transfer to a joining member failed", "member", to, "sent", first, "of", n, "err", err)
			x.abortAll(to, reqID)
			return
		}
		if next == n {
			break
		}
	}
	x.b.log.Info("state sent to a joining member", "member", to, "records", n-skipped, "skipped", skipped,
		"took", time.Since(start).Round(time.Millisecond))
}

// abortAll tells a joiner that this member cannot send it the rest of its
// state, so that it asks another member. (A joiner that predates the flag
// ignores it and waits, as it did.)
func (x *xfer) abortAll(to *tribes.Member, reqID uint64) {
	b := header(nil, msgAllData, x.b.ctx)
	b = appendU64(b, reqID)
	b = append(b, allFailed)
	b = appendAllHead(b, 0, 0)
	x.b.c.sendAsync([]*tribes.Member{to}, b)
}

// fixLen turns the 5 bytes reserved at mark into the uvarint length of what
// follows them, moving the record if the length is shorter.
func fixLen(b []byte, mark int) []byte {
	return fixUvarint(b, mark, uint64(len(b)-mark-5))
}

// fixUvarint turns the 5 bytes reserved at mark into the uvarint v (less
// than 2^35), moving what follows them if it is shorter.
func fixUvarint(b []byte, mark int, v uint64) []byte {
	var tmp [10]byte
	l := len(appendUvarint(tmp[:0], v))
	if l < 5 {
		copy(b[mark+l:], b[mark+5:])
		b = b[:len(b)-(5-l)]
	}
	copy(b[mark:], tmp[:l])
	return b
}

// transfer asks the oldest member running the app for its state and
// applies it, then the messages queued meanwhile.
func (x *xfer) transfer(ctx context.Context) {
	start := time.Now()
	x.tmu.Lock()
	x.receiving = true
	x.tmu.Unlock()
	defer func() {
		x.drain()
		x.dur.Store(int64(time.Since(start)))
		x.isReady.Store(true)
	}()
	members := slices.Clone(x.b.c.domainMembers())
	sortOldestFirst(members)
	failed := 0
	for _, to := range members {
		got, err := x.askAll(ctx, to)
		if err != nil {
			if ctx.Err() != nil {
				x.b.log.Warn("state transfer incomplete: starting with what was received",
					"err", fmt.Errorf("%w after %s: %v", ErrStateTransfer, time.Since(start).Round(time.Millisecond), err),
					"records", x.n.Load())
				return
			}
			x.b.log.Warn("state transfer from a member failed, asking the next", "member", to, "err", err)
			failed++
			continue
		}
		if got {
			x.ok.Store(true)
			x.b.log.Info("state received", "from", to, "records", x.n.Load(), "took", time.Since(start).Round(time.Millisecond))
			return
		}
	}
	if failed > 0 {
		x.b.log.Warn("state transfer incomplete: no member could send its sessions: starting with what was received",
			"members", failed, "records", x.n.Load())
		return
	}
	x.ok.Store(true) // nobody else runs the app
}

// askAll sends GET_ALL to one member and waits for its last block. It
// reports false when the member does not run the app, and an error when
// the member could not send its state or a block could not be applied
// here (the caller then asks another member).
func (x *xfer) askAll(ctx context.Context, to *tribes.Member) (bool, error) {
	type result struct {
		got bool // true: data, false: no such app there
		err error
	}
	done := make(chan result, 1)
	finish := func(res result) {
		select {
		case done <- res:
		default:
		}
	}
	id, cancel := x.b.c.request(to.UniqueID, func(msg *tribes.Message, p parsed, r *reader) error {
		flags := r.byte()
		snap := r.varint("snapshot time")
		n := int(r.uvarint(MaxMessageBytes, "record count"))
		if r.err != nil {
			finish(result{err: r.err})
			return r.err
		}
		if flags&allNoContext != 0 {
			finish(result{})
			return nil
		}
		if flags&allFailed != 0 {
			finish(result{err: errors.New("the member could not send its sessions")})
			return nil
		}
		x.b.c.markContext(msg.Source, x.b.ctx)
		for i := 0; i < n; i++ {
			rec := r.raw(MaxMessageBytes, "record")
			if r.err != nil {
				finish(result{err: r.err})
				return r.err
			}
			if err := x.record(rec); err != nil {
				finish(result{err: fmt.Errorf("a session received could not be stored: %w", err)})
				return err
			}
			x.n.Add(1)
		}
		r.end()
		if r.err != nil {
			finish(result{err: r.err})
		} else if flags&allLast != 0 {
			x.tmu.Lock()
			x.from, x.snapTime = msg.Source.UniqueID, snap
			x.tmu.Unlock()
			finish(result{got: true})
		}
		return r.err
	})
	defer cancel()
	b := header(nil, msgGetAll, x.b.ctx)
	b = appendU64(b, id)
	b = append(b, 0)
	sctx, scancel := context.WithTimeout(ctx, x.b.cfg.SendAllSessionsWaitTime)
	err := x.b.c.ch.Send(sctx, []*tribes.Member{to}, b, SyncOptions)
	scancel()
	if err != nil {
		return false, err
	}
	select {
	case res := <-done:
		return res.got, res.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// drain applies the queued messages in order, dropping those the snapshot
// already held (StateTimestampDrop, unless replayAll), and ends the
// receiving phase.
func (x *xfer) drain() {
	for {
		x.tmu.Lock()
		q := x.queue
		x.queue = nil
		if len(q) == 0 {
			x.receiving = false
			x.tmu.Unlock()
			return
		}
		from, snap := x.from, x.snapTime
		x.tmu.Unlock()
		for _, e := range q {
			if !x.replayAll && !x.b.cfg.NoStateTimestampDrop && e.from == from && e.ts < snap {
				continue
			}
			if err := x.apply(e.typ, e.body); err != nil {
				x.b.log.Warn("queued message not applied", "type", e.typ, "err", err)
			}
		}
	}
}

// getAllRequest decodes a GET_ALL body.
func getAllRequest(body []byte) (uint64, error) {
	r := reader{b: body}
	id := r.u64()
	r.byte() // kind, for later use
	r.end()
	return id, r.err
}

func sortOldestFirst(ms []*tribes.Member) {
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].Alive > ms[j-1].Alive; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}
