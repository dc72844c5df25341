package cluster

import (
	"context"
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

// sendAll sends n records in acknowledged blocks; appendRec appends
// record i.
func (x *xfer) sendAll(to *tribes.Member, reqID uint64, snap int64, n int, appendRec func(b []byte, i int) []byte) {
	start := time.Now()
	dst := []*tribes.Member{to}
	size := x.b.cfg.SendAllSessionsSize
	var buf []byte
	for i := 0; ; i += size {
		end := min(i+size, n)
		buf = header(buf[:0], msgAllData, x.b.ctx)
		buf = appendU64(buf, reqID)
		var flags byte
		if end == n {
			flags |= allLast
		}
		buf = append(buf, flags)
		buf = appendAllHead(buf, snap, end-i)
		for j := i; j < end; j++ {
			mark := len(buf)
			buf = append(buf, 0, 0, 0, 0, 0) // room for the length
			buf = appendRec(buf, j)
			buf = fixLen(buf, mark)
		}
		ctx, cancel := context.WithTimeout(context.Background(), x.b.cfg.SendAllSessionsWaitTime)
		err := x.b.c.ch.Send(ctx, dst, buf, SyncOptions)
		cancel()
		x.b.countSent(len(buf))
		if err != nil {
			x.b.log.Warn("state transfer to a joining member failed", "member", to, "sent", i, "of", n, "err", err)
			return
		}
		if end == n {
			break
		}
	}
	x.b.log.Info("state sent to a joining member", "member", to, "records", n, "took", time.Since(start).Round(time.Millisecond))
}

// fixLen turns the 5 bytes reserved at mark into the uvarint length of what
// follows them, moving the record if the length is shorter.
func fixLen(b []byte, mark int) []byte {
	n := len(b) - mark - 5
	var tmp [10]byte
	l := len(appendUvarint(tmp[:0], uint64(n)))
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
			continue
		}
		if got {
			x.ok.Store(true)
			x.b.log.Info("state received", "from", to, "records", x.n.Load(), "took", time.Since(start).Round(time.Millisecond))
			return
		}
	}
	x.ok.Store(true) // nobody else runs the app
}

// askAll sends GET_ALL to one member and waits for its last block. It
// reports false when the member does not run the app.
func (x *xfer) askAll(ctx context.Context, to *tribes.Member) (bool, error) {
	done := make(chan bool, 1) // true: data, false: no such app there
	id, cancel := x.b.c.request(func(msg *tribes.Message, p parsed, r *reader) error {
		flags := r.byte()
		snap := r.varint("snapshot time")
		n := int(r.uvarint(MaxMessageBytes, "record count"))
		if r.err != nil {
			return r.err
		}
		if flags&allNoContext != 0 {
			select {
			case done <- false:
			default:
			}
			return nil
		}
		x.b.c.markContext(msg.Source, x.b.ctx)
		for i := 0; i < n; i++ {
			rec := r.raw(MaxMessageBytes, "record")
			if r.err != nil {
				return r.err
			}
			if err := x.record(rec); err != nil {
				return err
			}
			x.n.Add(1)
		}
		r.end()
		if r.err == nil && flags&allLast != 0 {
			x.tmu.Lock()
			x.from, x.snapTime = msg.Source.UniqueID, snap
			x.tmu.Unlock()
			select {
			case done <- true:
			default:
			}
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
	case got := <-done:
		return got, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// drain applies the queued messages in order, dropping those the snapshot
// already held (StateTimestampDrop), and ends the receiving phase.
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
			if !x.b.cfg.NoStateTimestampDrop && e.from == from && e.ts < snap {
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
