package tribes

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/wasmfarm/wasmfarm/bufpool"
)

// Dispatcher defaults (Tribes' MessageDispatchInterceptor).
const (
	DefaultMaxQueueSize      = 64 << 20
	DefaultDispatcherThreads = 10
)

// ErrQueueFull occurs when an asynchronous message does not fit in the
// dispatcher's queue and DispatcherConfig.FailWhenFull is set.
var ErrQueueFull = errors.New("tribes: dispatch queue full (maxQueueSize)")

// DispatcherConfig configures a [MessageDispatcher]. The zero value of
// every field means its default.
type DispatcherConfig struct {
	// MaxQueueSize bounds the bytes of queued messages (default 64 MiB).
	MaxQueueSize int64
	// MaxThreads is the number of goroutines sending queued messages
	// (default 10). With more than one, messages to a member can be sent
	// out of order, as in Tribes.
	MaxThreads int
	// FailWhenFull makes a send that does not fit in the queue fail with
	// ErrQueueFull; by default it is sent synchronously instead (Tribes'
	// alwaysSend=true).
	FailWhenFull bool
	// OnError is called when a queued message could not be sent. Optional;
	// failures are also logged and counted.
	OnError func(to []*Member, msg *Message, err error)
}

// DispatcherStats are a dispatcher's counters.
type DispatcherStats struct {
	Queued, SentSync, Failed, Rejected int64
	QueuedBytes                        int64 // bytes in the queue now
}

// MessageDispatcher makes [OptAsynchronous] sends return at once (Tribes'
// MessageDispatchInterceptor).
//
// An asynchronous message that asks for an ACK is copied into a bounded
// queue and sent by the dispatcher's goroutines, which wait for the ACKs.
// An asynchronous message without an ACK is passed straight down: the
// transport already queues it per member and writes queued messages in
// batches (see [Sender]), which is both the asynchrony Tribes' dispatcher
// gives and much cheaper than a second queue. Either way failures do not
// reach the caller: they go to OnError, the log and the counters.
type MessageDispatcher struct {
	BaseInterceptor
	cfg    DispatcherConfig
	pool   *bufpool.Pool
	mu     sync.Mutex
	cond   sync.Cond
	queue  []*dispatchJob
	bytes  int64
	closed bool
	wg     sync.WaitGroup

	queued, sentSync, failed, rejected atomic.Int64
}

type dispatchJob struct {
	to  []*Member
	msg Message
	buf *bufpool.Buffer
}

var (
	_ Interceptor = (*MessageDispatcher)(nil)
	_ Starter     = (*MessageDispatcher)(nil)
)

// NewMessageDispatcher returns a dispatcher.
func NewMessageDispatcher(cfg DispatcherConfig) *MessageDispatcher {
	if cfg.MaxQueueSize <= 0 {
		cfg.MaxQueueSize = DefaultMaxQueueSize
	}
	if cfg.MaxThreads <= 0 {
		cfg.MaxThreads = DefaultDispatcherThreads
	}
	d := &MessageDispatcher{cfg: cfg, pool: bufpool.New(0)}
	d.cond.L = &d.mu
	return d
}

// Start starts the sending goroutines.
func (d *MessageDispatcher) Start(ctx context.Context) error {
	for range d.cfg.MaxThreads {
		d.wg.Add(1)
		go d.run()
	}
	return nil
}

// Stop sends what is queued, then stops the goroutines.
func (d *MessageDispatcher) Stop(ctx context.Context) error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.cond.Broadcast()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns the dispatcher's counters.
func (d *MessageDispatcher) Stats() DispatcherStats {
	d.mu.Lock()
	b := d.bytes
	d.mu.Unlock()
	return DispatcherStats{Queued: d.queued.Load(), SentSync: d.sentSync.Load(), Failed: d.failed.Load(),
		Rejected: d.rejected.Load(), QueuedBytes: b}
}

// SendMessage queues acknowledged asynchronous messages and passes the
// rest down.
func (d *MessageDispatcher) SendMessage(ctx context.Context, to []*Member, msg *Message) error {
	if !msg.Options.Has(OptAsynchronous | OptUseAck) {
		return d.next.SendMessage(ctx, to, msg)
	}
	size := int64(len(msg.Data))
	d.mu.Lock()
	if d.closed || d.bytes+size > d.cfg.MaxQueueSize {
		closed := d.closed
		d.mu.Unlock()
		if closed {
			return ErrChannelClosed
		}
		if d.cfg.FailWhenFull {
			d.rejected.Add(1)
			return ErrQueueFull
		}
		d.sentSync.Add(1)
		return d.next.SendMessage(ctx, to, msg)
	}
	j := &dispatchJob{to: slices.Clone(to), msg: *msg, buf: d.pool.Get(len(msg.Data))}
	copy(j.buf.B, msg.Data)
	j.msg.Data = j.buf.B
	j.msg.buf = nil
	d.queue = append(d.queue, j)
	d.bytes += size
	d.mu.Unlock()
	d.queued.Add(1)
	d.cond.Signal()
	return nil
}

func (d *MessageDispatcher) run() {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		for len(d.queue) == 0 && !d.closed {
			d.cond.Wait()
		}
		if len(d.queue) == 0 {
			d.mu.Unlock()
			return
		}
		j := d.queue[0]
		d.queue[0] = nil
		d.queue = d.queue[1:]
		d.bytes -= int64(len(j.msg.Data))
		d.mu.Unlock()

		if err := d.next.SendMessage(context.Background(), j.to, &j.msg); err != nil {
			d.failed.Add(1)
			d.Channel().Logger().Warn("tribes dispatcher: asynchronous send failed", "err", err)
			if d.cfg.OnError != nil {
				d.cfg.OnError(j.to, &j.msg, err)
			}
		}
		d.pool.Put(j.buf)
	}
}
