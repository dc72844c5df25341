package interceptors

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/bufpool"
	"github.com/wasmfarm/wasmfarm/tribes"
)

// Fragmentation defaults (Tribes' FragmentationInterceptor, and the
// reassembly bounds Tribes lacks).
const (
	DefaultFragmentMaxSize    = 1024 * 100
	DefaultFragmentExpire     = 60000 * time.Millisecond
	DefaultFragmentMaxMessage = 64 << 20
	DefaultFragmentMaxPending = 64 << 20
	DefaultFragmentMaxCount   = 1 << 16
)

// Trailer layout (spec §11): chunk ‖ int32 index ‖ int32 count ‖ byte 1, or
// message ‖ byte 0.
const (
	fragTrailerLen = 9
	slotCost       = 8 // bytes charged per announced fragment for its slot
	// setCost is charged per incomplete set besides its slots: the
	// fragSet, its map entry and the copy of the sender's record (the
	// record's variable fields are charged too).
	setCost = 512
	// fragBufCost is charged per stored fragment besides the capacity of
	// its buffer: the bufpool.Buffer holding it.
	fragBufCost = 64
)

// fragCost is what storing a fragment of n bytes charges to the pending
// bytes: the capacity of the pooled buffer that holds its copy (a power of
// two, at least bufpool.MinSize) and the buffer's header.
func fragCost(n int) int {
	c := n
	if n <= bufpool.MaxSize {
		c = bufpool.MinSize
		for c < n {
			c <<= 1
		}
	}
	return c + fragBufCost
}

// newSetCost is what an incomplete set of count fragments from src
// charges to the pending bytes before any fragment is stored.
func newSetCost(src *tribes.Member, count int) int {
	return setCost + count*slotCost + len(src.Command) + len(src.Domain) + len(src.Payload)
}

// FragmentationConfig configures a [Fragmentation] interceptor. The zero
// value of every field means its default.
type FragmentationConfig struct {
	// OptionFlag gates the splitting (optionFlag, default 0: every
	// message). The trailer byte is added to every message regardless.
	OptionFlag tribes.Options
	// MaxSize: messages longer than MaxSize bytes are split into chunks of
	// MaxSize bytes (maxSize, default 102400).
	MaxSize int
	// Expire is how long an incomplete set of fragments is kept (expire,
	// default 60000 ms); checked at every heartbeat.
	Expire time.Duration
	// MaxMessageSize limits a reassembled message (default 64 MiB).
	MaxMessageSize int
	// MaxPendingBytes bounds the bytes held by all incomplete sets
	// together (default 64 MiB): each stored fragment counts the capacity
	// of its pooled buffer plus 64 bytes, each set 512 bytes plus 8 per
	// announced fragment plus its sender's variable record fields, so that
	// tiny or empty fragments cannot hold more memory than this. A fragment
	// that does not fit makes its whole set be discarded.
	MaxPendingBytes int
	// MaxFragments bounds the number of fragments a message may announce
	// (default 65536).
	MaxFragments int
	// Pool supplies the buffers; nil gives the interceptor a pool of its own.
	Pool *bufpool.Pool
	// Logger receives the logs; nil means the channel's logger.
	Logger *slog.Logger
}

// FragmentationStats are a [Fragmentation] interceptor's counters.
type FragmentationStats struct {
	Split, FragmentsSent      int64 // messages split, and their fragments
	WholeReceived             int64 // messages received in one piece
	FragmentsReceived         int64
	Assembled                 int64 // messages reassembled and passed up
	Expired                   int64 // incomplete sets discarded by Expire
	Discarded                 int64 // sets discarded for exceeding MaxMessageSize or MaxPendingBytes
	Duplicates                int64 // fragments received twice (ignored)
	Invalid                   int64 // messages without a valid trailer (dropped)
	PendingSets, PendingBytes int64 // incomplete sets now, and the bytes charged for them (see MaxPendingBytes)
}

// Fragmentation is Tribes' FragmentationInterceptor. On the wire, every
// message passing down gets one byte appended: 0 for a message sent whole.
// A gated message longer than MaxSize is instead sent as ceil(len/MaxSize)
// messages, each carrying a chunk of MaxSize bytes (the last one shorter)
// followed by the chunk's int32 index, the int32 number of chunks and the
// byte 1; every chunk keeps the original message id, options and
// timestamp, and they are sent one after another, stopping at the first
// error.
//
// The receiver strips the trailer of a whole message and passes it up; it
// copies fragments aside, keyed by sender and message id, and passes the
// message up once all its chunks arrived (the last chunk's ACK carries the
// listener's verdict). Incomplete sets are discarded after Expire, and the
// memory they hold is bounded by MaxPendingBytes.
type Fragmentation struct {
	tribes.BaseInterceptor
	cfg  FragmentationConfig
	pool *bufpool.Pool
	now  func() time.Time

	mu      sync.Mutex
	sets    map[fragKey]*fragSet
	pending int // bytes held by incomplete sets, slots included

	split, fragsSent, whole, fragsRecv, assembled, expired, discarded, dups, invalid atomic.Int64
	pendingSets, pendingBytes                                                        atomic.Int64
}

type fragKey struct {
	src tribes.MemberKey
	id  tribes.UniqueID
}

// fragSet is the fragments of one message received so far.
type fragSet struct {
	at    time.Time
	count int
	got   int
	size  int // bytes of the chunks received
	cost  int // bytes charged to Fragmentation.pending for this set
	frags []*bufpool.Buffer
	msg   tribes.Message // options, timestamp, id and source of the first chunk
}

var _ tribes.Interceptor = (*Fragmentation)(nil)

// NewFragmentation returns a fragmentation interceptor.
func NewFragmentation(cfg FragmentationConfig) *Fragmentation {
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultFragmentMaxSize
	}
	if cfg.Expire <= 0 {
		cfg.Expire = DefaultFragmentExpire
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultFragmentMaxMessage
	}
	if cfg.MaxPendingBytes <= 0 {
		cfg.MaxPendingBytes = DefaultFragmentMaxPending
	}
	if cfg.MaxFragments <= 0 {
		cfg.MaxFragments = DefaultFragmentMaxCount
	}
	return &Fragmentation{cfg: cfg, pool: newPool(cfg.Pool), now: time.Now, sets: map[fragKey]*fragSet{}}
}

// Stats returns the counters.
func (f *Fragmentation) Stats() FragmentationStats {
	return FragmentationStats{
		Split: f.split.Load(), FragmentsSent: f.fragsSent.Load(), WholeReceived: f.whole.Load(),
		FragmentsReceived: f.fragsRecv.Load(), Assembled: f.assembled.Load(), Expired: f.expired.Load(),
		Discarded: f.discarded.Load(), Duplicates: f.dups.Load(), Invalid: f.invalid.Load(),
		PendingSets: f.pendingSets.Load(), PendingBytes: f.pendingBytes.Load(),
	}
}

// FragmentInfo describes a received message's Fragmentation trailer.
type FragmentInfo struct {
	// Fragment is false for a message sent whole (trailer byte 0).
	Fragment bool
	// Index and Count locate a fragment: 0 <= Index < Count.
	Index, Count int
}

// AppendFragmentTrailer appends the trailer of fragment index of count to
// b (count 0: the trailer of a whole message).
func AppendFragmentTrailer(b []byte, index, count int) []byte {
	if count == 0 {
		return append(b, 0)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(int32(index)))
	b = binary.BigEndian.AppendUint32(b, uint32(int32(count)))
	return append(b, 1)
}

// ParseFragment splits a received message into its data and its
// Fragmentation trailer. It fails with an error wrapping [ErrMalformed]
// when the trailer is missing, its flag byte is neither 0 nor 1, or a
// fragment's count is not in 1..maxCount (no upper bound when maxCount <=
// 0) or its index not in 0..count-1. data aliases b.
func ParseFragment(b []byte, maxCount int) (data []byte, info FragmentInfo, err error) {
	if len(b) == 0 {
		return nil, info, fmt.Errorf("%w: empty, no fragmentation trailer", ErrMalformed)
	}
	n := len(b) - 1
	switch b[n] {
	case 0:
		return b[:n], info, nil
	case 1:
	default:
		return nil, info, fmt.Errorf("%w: fragmentation flag %d, want 0 or 1", ErrMalformed, b[n])
	}
	if len(b) < fragTrailerLen {
		return nil, info, fmt.Errorf("%w: %d bytes, too short for a fragment trailer", ErrMalformed, len(b))
	}
	n = len(b) - fragTrailerLen
	index := int32(binary.BigEndian.Uint32(b[n:]))
	count := int32(binary.BigEndian.Uint32(b[n+4:]))
	if count < 1 || maxCount > 0 && int64(count) > int64(maxCount) {
		return nil, info, fmt.Errorf("%w: fragment count %d out of range", ErrMalformed, count)
	}
	if index < 0 || index >= count {
		return nil, info, fmt.Errorf("%w: fragment index %d of %d", ErrMalformed, index, count)
	}
	return b[:n], FragmentInfo{Fragment: true, Index: int(index), Count: int(count)}, nil
}

// SendMessage appends the trailer, splitting a long gated message.
func (f *Fragmentation) SendMessage(ctx context.Context, to []*tribes.Member, msg *tribes.Message) error {
	n := len(msg.Data)
	data := msg.Data
	if n <= f.cfg.MaxSize || !tribes.Gated(f.cfg.OptionFlag, msg.Options) {
		buf := f.pool.Get(n + 1)
		copy(buf.B, data)
		buf.B[n] = 0
		msg.Data = buf.B
		err := f.Next().SendMessage(ctx, to, msg)
		msg.Data = data
		f.pool.Put(buf)
		return err
	}
	// Every chunk must carry the same id and timestamp.
	if msg.UniqueID == (tribes.UniqueID{}) {
		msg.UniqueID = tribes.NewUniqueID()
	}
	if msg.Timestamp == 0 {
		msg.Timestamp = f.now().UnixMilli()
	}
	size := f.cfg.MaxSize
	count := (n + size - 1) / size
	buf := f.pool.Get(size + fragTrailerLen)
	f.split.Add(1)
	var err error
	for i := range count {
		b := append(buf.B[:0], data[i*size:min((i+1)*size, n)]...)
		msg.Data = AppendFragmentTrailer(b, i, count)
		f.fragsSent.Add(1)
		if err = f.Next().SendMessage(ctx, to, msg); err != nil {
			err = fmt.Errorf("interceptors: fragment %d of %d: %w", i, count, err)
			break
		}
	}
	msg.Data = data
	f.pool.Put(buf)
	return err
}

// MessageReceived strips the trailer; fragments are held until their
// message is complete.
func (f *Fragmentation) MessageReceived(msg *tribes.Message) error {
	body, info, err := ParseFragment(msg.Data, f.cfg.MaxFragments)
	if err != nil || (info.Fragment && msg.Source == nil) {
		f.invalid.Add(1)
		return nil
	}
	if !info.Fragment {
		f.whole.Add(1)
		data := msg.Data
		msg.Data = body
		err = f.Previous().MessageReceived(msg)
		msg.Data = data
		return err
	}
	f.fragsRecv.Add(1)
	set := f.collect(msg, body, info)
	if set == nil {
		return nil
	}
	buf := f.pool.Get(set.size)
	off := 0
	for i, fb := range set.frags {
		off += copy(buf.B[off:], fb.B)
		f.pool.Put(fb)
		set.frags[i] = nil
	}
	f.assembled.Add(1)
	set.msg.Data = buf.B
	err = f.Previous().MessageReceived(&set.msg)
	set.msg.Data = nil
	f.pool.Put(buf)
	return err
}

// collect stores a copy of one fragment and returns its set once complete
// (removed from the table), else nil.
func (f *Fragmentation) collect(msg *tribes.Message, body []byte, info FragmentInfo) *fragSet {
	key := fragKey{src: msg.Source.Key(), id: msg.UniqueID}
	f.mu.Lock()
	defer f.mu.Unlock()
	set := f.sets[key]
	fc := fragCost(len(body))
	if set == nil {
		cost := newSetCost(msg.Source, info.Count)
		if f.pending+cost+fc > f.cfg.MaxPendingBytes {
			f.discarded.Add(1)
			f.log().Warn("tribes fragmentation: reassembly memory full, discarding a message",
				"source", memberString(msg.Source), "id", msg.UniqueID.String(), "fragments", info.Count)
			return nil
		}
		set = &fragSet{at: f.now(), count: info.Count, cost: cost, frags: make([]*bufpool.Buffer, info.Count)}
		set.msg = tribes.Message{Options: msg.Options, Timestamp: msg.Timestamp, UniqueID: msg.UniqueID, Source: msg.Source.Clone()}
		f.sets[key] = set
		f.pending += cost
		f.pendingSets.Add(1)
		f.pendingBytes.Store(int64(f.pending))
	}
	switch {
	case set.count != info.Count:
		f.invalid.Add(1) // another message with the same id: keep the first
		return nil
	case set.frags[info.Index] != nil:
		f.dups.Add(1)
		return nil
	case set.size+len(body) > f.cfg.MaxMessageSize || f.pending+fc > f.cfg.MaxPendingBytes:
		f.discarded.Add(1)
		f.log().Warn("tribes fragmentation: message too large to reassemble, discarding it",
			"source", memberString(msg.Source), "id", msg.UniqueID.String(), "bytes", set.size+len(body))
		f.removeLocked(key, set)
		return nil
	}
	b := f.pool.Get(len(body))
	copy(b.B, body)
	set.frags[info.Index] = b
	set.got++
	set.size += len(body)
	set.cost += fc
	f.pending += fc
	f.pendingBytes.Store(int64(f.pending))
	if set.got < set.count {
		return nil
	}
	delete(f.sets, key)
	f.pending -= set.cost
	f.pendingSets.Add(-1)
	f.pendingBytes.Store(int64(f.pending))
	return set
}

// removeLocked discards an incomplete set.
func (f *Fragmentation) removeLocked(key fragKey, set *fragSet) {
	delete(f.sets, key)
	for i, b := range set.frags {
		if b != nil {
			f.pool.Put(b)
			set.frags[i] = nil
		}
	}
	f.pending -= set.cost
	f.pendingSets.Add(-1)
	f.pendingBytes.Store(int64(f.pending))
}

// Heartbeat discards the incomplete sets older than Expire, then passes
// the heartbeat down.
func (f *Fragmentation) Heartbeat() {
	now := f.now()
	f.mu.Lock()
	for key, set := range f.sets {
		if now.Sub(set.at) >= f.cfg.Expire {
			f.expired.Add(1)
			f.log().Info("tribes fragmentation: discarding an incomplete message",
				"source", memberString(set.msg.Source), "id", key.id.String(), "fragments", set.got, "of", set.count)
			f.removeLocked(key, set)
		}
	}
	f.mu.Unlock()
	f.Next().Heartbeat()
}

func (f *Fragmentation) log() *slog.Logger { return logger(f.cfg.Logger, &f.BaseInterceptor) }
