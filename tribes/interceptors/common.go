package interceptors

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/bufpool"
	"github.com/wasmfarm/wasmfarm/tribes"
)

// Errors of the interceptors. Received messages that fail a check are
// dropped (and counted); these errors describe why, in logs and in the
// results of the exported decoders.
var (
	// ErrMalformed occurs when a received message lacks the bytes an
	// interceptor appends (the Order sequence number, the Fragmentation
	// trailer) or they are out of range.
	ErrMalformed = errors.New("interceptors: malformed message")

	// ErrDecrypt occurs when an Encrypt message is too short or fails
	// authentication (wrong key, corrupted bytes).
	ErrDecrypt = errors.New("interceptors: decryption failed")

	// ErrReplay occurs when an Encrypt message repeats an IV already seen
	// or is older than the replay window allows.
	ErrReplay = errors.New("interceptors: replayed message")

	// ErrClockSkew occurs when the timestamp inside an Encrypt message is
	// further from the local clock than the replay window time.
	ErrClockSkew = errors.New("interceptors: message timestamp outside the replay window")

	// ErrUnsupportedAlgorithm occurs when an Encrypt configuration names an
	// algorithm other than AES/GCM/NoPadding.
	ErrUnsupportedAlgorithm = errors.New("interceptors: unsupported encryption algorithm")

	// ErrBadKey occurs when an Encrypt key is missing, not hexadecimal, or
	// not 16, 24 or 32 bytes long.
	ErrBadKey = errors.New("interceptors: bad encryption key")

	// ErrBadDomain occurs when a DomainFilter domain in the "{1,2,3}" form
	// cannot be parsed, or a plain domain has characters outside ISO-8859-1.
	ErrBadDomain = errors.New("interceptors: bad domain")
)

// tcpFailDetect is the payload of TcpFailureDetector's probe (spec §9). The
// receiver drops it before the stack; the decoding interceptors drop it too
// should it reach them, never counting it as a failure.
var tcpFailDetect = [64]byte{
	0x4f, 0xa7, 0x73, 0x48, 0x79, 0x82, 0x43, 0xc9, 0x9f, 0x6f, 0x89, 0x80, 0xa1, 0x5b, 0x07, 0x14,
	0x7d, 0xd9, 0x52, 0x5b, 0xeb, 0xf1, 0x43, 0x9a, 0xb7, 0x7e, 0xbe, 0x8f, 0x81, 0x67, 0x1e, 0xb6,
	0x37, 0x15, 0xbe, 0x87, 0x45, 0x7e, 0x4c, 0xa8, 0xbf, 0x0a, 0x4d, 0x13, 0x53, 0x38, 0x15, 0x32,
	0x55, 0xf6, 0x94, 0xb7, 0x3a, 0xfa, 0x40, 0x78, 0x91, 0x04, 0x7d, 0xd7, 0x72, 0x84, 0xc0, 0xd5,
}

// isProbe reports whether b is the failure detector's probe payload.
func isProbe(b []byte) bool { return bytes.Equal(b, tcpFailDetect[:]) }

// defaultPoolRetained bounds the bytes an interceptor's own buffer pool
// keeps when Config.Pool is nil.
const defaultPoolRetained = 32 << 20

// newPool returns p, or a pool of the interceptor's own.
func newPool(p *bufpool.Pool) *bufpool.Pool {
	if p == nil {
		return bufpool.New(defaultPoolRetained)
	}
	return p
}

// logger is the logger an interceptor configured with l uses: l, else the
// channel's (which discards when none was configured).
func logger(l *slog.Logger, b *tribes.BaseInterceptor) *slog.Logger {
	if l != nil {
		return l
	}
	if ch := b.Channel(); ch != nil {
		return ch.Logger()
	}
	return slog.New(slog.DiscardHandler)
}

// rateLimit lets at most one log line through per period; the lines it
// holds back are counted and reported with the next one.
type rateLimit struct {
	period     time.Duration
	last       atomic.Int64 // unix nanoseconds of the last line let through
	suppressed atomic.Int64
}

// allow reports whether a line may be logged now, and how many were held
// back since the last one.
func (r *rateLimit) allow(now time.Time) (ok bool, suppressed int64) {
	n := now.UnixNano()
	last := r.last.Load()
	if last != 0 && n-last < int64(r.period) || !r.last.CompareAndSwap(last, n) {
		r.suppressed.Add(1)
		return false, 0
	}
	return true, r.suppressed.Swap(0)
}

// warn logs msg with args through r's rate limit.
func (r *rateLimit) warn(log *slog.Logger, msg string, args ...any) {
	ok, held := r.allow(time.Now())
	if !ok {
		return
	}
	if held > 0 {
		args = append(args, "suppressed", held)
	}
	log.Warn(msg, args...)
}

// dropLogPeriod is how often an interceptor logs dropped messages at most.
const dropLogPeriod = 10 * time.Second

// membersBelow returns the members as the interceptors below self see them
// (Tribes' getNext().getMembers()): the view of the first [tribes.MemberView]
// below self, else the channel's membership.
func membersBelow(self tribes.Interceptor, ch *tribes.Channel) []*tribes.Member {
	ics := ch.Interceptors()
	if i := slices.Index(ics, self); i >= 0 {
		for _, ic := range ics[i+1:] {
			if v, ok := ic.(tribes.MemberView); ok {
				return v.Members()
			}
		}
	}
	return ch.Membership().Members()
}

// above reports whether an interceptor for which match is true sits above
// self in its channel's stack.
func above(self tribes.Interceptor, ch *tribes.Channel, match func(tribes.Interceptor) bool) bool {
	ics := ch.Interceptors()
	i := slices.Index(ics, self)
	return i > 0 && slices.ContainsFunc(ics[:i], match)
}

// sortMembers sorts oldest (largest Alive) first, then by identity, as the
// membership providers do.
func sortMembers(ms []*tribes.Member) {
	slices.SortFunc(ms, func(a, b *tribes.Member) int {
		if c := cmp.Compare(b.Alive, a.Alive); c != 0 {
			return c
		}
		if c := a.Host.Compare(b.Host); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Port, b.Port); c != 0 {
			return c
		}
		return bytes.Compare(a.UniqueID[:], b.UniqueID[:])
	})
}

// joinSendErrors combines the errors of sends to disjoint sets of members:
// [*tribes.SendError]s are merged into one, so callers (the failure
// detector) still find every failed member with errors.As; anything else
// is joined.
func joinSendErrors(errs []error) error {
	var merged tribes.SendError
	var other []error
	for _, err := range errs {
		if err == nil {
			continue
		}
		var se *tribes.SendError
		if errors.As(err, &se) {
			merged.Failed = append(merged.Failed, se.Failed...)
		} else {
			other = append(other, err)
		}
	}
	switch {
	case len(other) == 0 && len(merged.Failed) == 0:
		return nil
	case len(other) == 0:
		return &merged
	case len(merged.Failed) > 0:
		other = append(other, &merged)
	}
	return errors.Join(other...)
}

// stopper runs an interceptor's goroutines and stops them.
type stopper struct {
	mu      sync.Mutex
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	stopped bool
}

// context returns a context cancelled by stop.
func (s *stopper) context() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		if s.stopped {
			s.cancel()
		}
	}
	return s.ctx
}

// goFn runs fn on a goroutine unless stopped, and reports whether it did.
func (s *stopper) goFn(fn func(ctx context.Context)) bool {
	ctx := s.context()
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return false
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		fn(ctx)
	}()
	return true
}

// stop cancels the goroutines' context and waits for them, or for ctx.
func (s *stopper) stop(ctx context.Context) error {
	s.context()
	s.mu.Lock()
	s.stopped = true
	s.cancel()
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// memberString describes m for logs; nil gives "unknown".
func memberString(m *tribes.Member) string {
	if m == nil {
		return "unknown"
	}
	return m.String()
}
