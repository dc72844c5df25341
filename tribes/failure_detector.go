package tribes

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// FailureDetector defaults (Tribes' TcpFailureDetector).
const (
	DefaultConnectTimeout        = 1000 * time.Millisecond
	DefaultReadTestTimeout       = 5000 * time.Millisecond
	DefaultRemoveSuspectsTimeout = 300 * time.Second
)

// FailureDetectorConfig configures a [FailureDetector]. The zero value of
// every field means its default.
type FailureDetectorConfig struct {
	// ConnectTimeout bounds the probe's TCP connect (default 1 s).
	ConnectTimeout time.Duration
	// NoSendTest makes the probe a bare connect, without the probe frame
	// (Tribes' performSendTest=false).
	NoSendTest bool
	// ReadTest makes the probe ask for an ACK and wait ReadTestTimeout
	// for it (Tribes' performReadTest).
	ReadTest        bool
	ReadTestTimeout time.Duration
	// RemoveSuspectsTimeout is how long a member whose heartbeats stopped
	// but whose port still answers is kept (default 300 s).
	RemoveSuspectsTimeout time.Duration
	// OptionFlag gates the recognition of probe messages (0: always).
	OptionFlag Options
}

// Prober is implemented by transports that can check whether a member is
// alive (the [NioTransport]: a TCP connect and the probe frame of
// TcpFailureDetector, spec section 9). Without it the failure detector
// trusts the membership.
type Prober interface {
	Probe(ctx context.Context, m *Member, cfg ProbeConfig) error
}

// ProbeConfig says how to probe.
type ProbeConfig struct {
	ConnectTimeout  time.Duration
	SendTest        bool
	ReadTest        bool
	ReadTestTimeout time.Duration
	OptionFlag      Options
}

// FailureDetectorStats are a failure detector's counters.
type FailureDetectorStats struct {
	Probes, ProbeFailures, Suspects, Removed int64
}

// FailureDetector verifies membership changes by probing (Tribes'
// TcpFailureDetector):
//
//   - a member reported by the membership is passed up only once a probe
//     reached it (a member whose port does not answer is retried at every
//     heartbeat);
//   - a member that stopped heartbeating is probed: if its port still
//     answers it stays, as a suspect, until RemoveSuspectsTimeout; else it
//     is removed. A member that left gracefully (BABY-ALEX) is removed at
//     once;
//   - a send that fails with an I/O error (not a FAIL_ACK) triggers the
//     same check, so a crashed member is removed as soon as a message to
//     it fails, long before its heartbeats expire. A member whose port
//     answers stays a plain member as long as the membership holds it (a
//     slow peer whose ACK timed out is not a suspect).
//   - a member that stopped heartbeating whose address another live member
//     now has (it restarted on the same host and port with a new unique
//     id, and the probe reached the new process) is removed at once
//     rather than kept as a suspect, so that messages do not reach the
//     new process twice. Tribes keeps it as a suspect.
//
// Probes run on their own goroutines: membership events never wait for
// them. A probe's result is judged against the membership's latest word:
// a member heard again while its expiry probe ran is no suspect.
type FailureDetector struct {
	BaseInterceptor
	cfg FailureDetectorConfig

	mu       sync.Mutex
	alive    map[MemberKey]*Member
	pending  map[MemberKey]*Member   // reported, probe failed: retried on heartbeat
	suspects map[MemberKey]time.Time // heartbeats stopped, port answers
	gone     map[MemberKey]bool      // alive, but the membership reported it disappeared and not heard since
	checking map[MemberKey]bool      // a probe is running
	stopped  bool
	wg       sync.WaitGroup

	probes, probeFailures, suspected, removed atomic.Int64
}

var (
	_ Interceptor = (*FailureDetector)(nil)
	_ Starter     = (*FailureDetector)(nil)
	_ MemberView  = (*FailureDetector)(nil)
)

// NewFailureDetector returns a failure detector.
func NewFailureDetector(cfg FailureDetectorConfig) *FailureDetector {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.ReadTestTimeout <= 0 {
		cfg.ReadTestTimeout = DefaultReadTestTimeout
	}
	if cfg.RemoveSuspectsTimeout <= 0 {
		cfg.RemoveSuspectsTimeout = DefaultRemoveSuspectsTimeout
	}
	return &FailureDetector{
		cfg:      cfg,
		alive:    map[MemberKey]*Member{},
		pending:  map[MemberKey]*Member{},
		suspects: map[MemberKey]time.Time{},
		gone:     map[MemberKey]bool{},
		checking: map[MemberKey]bool{},
	}
}

// Start does nothing; the detector works from events.
func (f *FailureDetector) Start(ctx context.Context) error { return nil }

// Stop waits for the probes in flight.
func (f *FailureDetector) Stop(ctx context.Context) error {
	f.mu.Lock()
	f.stopped = true
	f.mu.Unlock()
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns the detector's counters.
func (f *FailureDetector) Stats() FailureDetectorStats {
	return FailureDetectorStats{
		Probes: f.probes.Load(), ProbeFailures: f.probeFailures.Load(),
		Suspects: f.suspected.Load(), Removed: f.removed.Load(),
	}
}

// Members returns the members the detector holds alive, suspects included.
func (f *FailureDetector) Members() []*Member {
	f.mu.Lock()
	out := make([]*Member, 0, len(f.alive))
	for _, m := range f.alive {
		out = append(out, m)
	}
	f.mu.Unlock()
	sortMembers(out)
	return out
}

func (f *FailureDetector) log() *slog.Logger { return f.Channel().Logger() }

// MemberAdded probes a new member before passing it up.
func (f *FailureDetector) MemberAdded(m *Member) {
	k := m.Key()
	f.mu.Lock()
	if _, ok := f.alive[k]; ok {
		f.alive[k] = m // heard again: no longer a suspect
		delete(f.suspects, k)
		delete(f.gone, k)
		f.mu.Unlock()
		return
	}
	f.pending[k] = m
	f.mu.Unlock()
	f.check(m, false)
}

// MemberDisappeared removes a member that left, and verifies one that
// stopped heartbeating.
func (f *FailureDetector) MemberDisappeared(m *Member) {
	k := m.Key()
	if m.IsShutdown() {
		f.remove(k, m)
		return
	}
	f.mu.Lock()
	_, known := f.alive[k]
	delete(f.pending, k)
	if known {
		f.gone[k] = true
	}
	f.mu.Unlock()
	if known {
		f.check(m, true)
	}
}

// MemberUpdated refreshes the record of a member the detector holds, or
// waits to admit: it admits it with the latest record.
func (f *FailureDetector) MemberUpdated(m *Member) {
	k := m.Key()
	f.mu.Lock()
	if _, ok := f.alive[k]; ok {
		f.alive[k] = m
	} else if _, ok := f.pending[k]; ok {
		f.pending[k] = m
	}
	f.mu.Unlock()
}

// SendMessage checks the members a send failed for with an I/O error.
func (f *FailureDetector) SendMessage(ctx context.Context, to []*Member, msg *Message) error {
	err := f.next.SendMessage(ctx, to, msg)
	if err == nil {
		return nil
	}
	var se *SendError
	if errors.As(err, &se) {
		for _, fm := range se.Failed {
			if errors.Is(fm.Err, ErrFailAck) || errors.Is(fm.Err, ErrSenderClosed) {
				continue // the member answered: it is alive
			}
			f.mu.Lock()
			_, known := f.alive[fm.Member.Key()]
			f.mu.Unlock()
			if known {
				f.check(fm.Member, true)
			}
		}
	}
	return err
}

// MessageReceived drops probe messages.
func (f *FailureDetector) MessageReceived(msg *Message) error {
	if Gated(f.cfg.OptionFlag, msg.Options) && bytes.Equal(msg.Data, tcpFailDetect[:]) {
		return nil
	}
	return f.prev.MessageReceived(msg)
}

// Heartbeat re-probes members whose first probe failed, and suspects.
func (f *FailureDetector) Heartbeat() {
	now := time.Now()
	var retry, recheck []*Member
	var expired []*Member
	// Members the membership still holds but the detector dropped (a send
	// failed while they were briefly unreachable) are probed again.
	known := f.Channel().Membership().Members()
	f.mu.Lock()
	for _, m := range known {
		k := m.Key()
		if _, ok := f.alive[k]; !ok && !m.IsShutdown() {
			f.pending[k] = m
		}
	}
	for _, m := range f.pending {
		retry = append(retry, m)
	}
	for k, since := range f.suspects {
		m := f.alive[k]
		if m == nil {
			delete(f.suspects, k)
			continue
		}
		if now.Sub(since) > f.cfg.RemoveSuspectsTimeout {
			expired = append(expired, m)
		} else {
			recheck = append(recheck, m)
		}
	}
	f.mu.Unlock()
	for _, m := range expired {
		f.log().Info("tribes failure detector: removing suspect after removeSuspectsTimeout", "member", m.String())
		f.remove(m.Key(), m)
	}
	for _, m := range retry {
		f.check(m, false)
	}
	for _, m := range recheck {
		f.check(m, true)
	}
	f.next.Heartbeat()
}

// check probes m on a goroutine of its own (one per member at a time).
// known says whether m is in the alive view (a disappearance or a failed
// send to verify) or waiting to be added. What a successful probe of a
// known member means is decided when it returns: a suspect if the
// membership has dropped it meanwhile or before (even if that event's
// own check was skipped because this probe was running), nothing if the
// membership holds it.
func (f *FailureDetector) check(m *Member, known bool) {
	k := m.Key()
	f.mu.Lock()
	if f.stopped || f.checking[k] {
		f.mu.Unlock()
		return
	}
	f.checking[k] = true
	f.wg.Add(1)
	f.mu.Unlock()
	go func() {
		defer f.wg.Done()
		ok := f.probe(m)
		f.mu.Lock()
		delete(f.checking, k)
		if f.stopped {
			f.mu.Unlock()
			return
		}
		switch {
		case ok && !known:
			latest, stillPending := f.pending[k]
			if !stillPending {
				f.mu.Unlock()
				return // it disappeared meanwhile
			}
			m := latest // the record may have been updated meanwhile
			delete(f.pending, k)
			f.alive[k] = m
			replaced := f.atAddrLocked(k, true)
			f.mu.Unlock()
			for _, old := range replaced {
				f.log().Info("tribes failure detector: removing a member whose address a new member has", "member", old.String(), "new", m.String())
				f.remove(old.Key(), old)
			}
			f.prev.MemberAdded(m)
		case ok && known:
			_, isSuspect := f.suspects[k]
			_, alive := f.alive[k]
			if !alive || !f.gone[k] {
				// Removed meanwhile, or still (or again) held by the
				// membership: nothing to do.
				f.mu.Unlock()
				return
			}
			if by := f.atAddrLocked(k, false); len(by) > 0 {
				f.mu.Unlock()
				f.log().Info("tribes failure detector: removing a member whose address a new member has", "member", m.String(), "new", by[0].String())
				f.remove(k, m)
				return
			}
			if isSuspect {
				f.mu.Unlock()
				return
			}
			f.suspects[k] = time.Now()
			f.suspected.Add(1)
			f.mu.Unlock()
			f.log().Info("tribes failure detector: member still alive, kept as a suspect", "member", m.String())
		case !ok && known:
			f.mu.Unlock()
			f.remove(k, m)
		default: // not reachable yet: retried on the next heartbeat
			f.mu.Unlock()
		}
	}()
}

// atAddrLocked returns the alive members with k's host and port but
// another unique id, those the membership has dropped (gone) or those it
// holds (!gone). Held: the process a probe of k's address reaches. Dropped:
// identities that k, just admitted, has replaced.
func (f *FailureDetector) atAddrLocked(k MemberKey, gone bool) []*Member {
	var out []*Member
	for other, m := range f.alive {
		if other.Host == k.Host && other.Port == k.Port && other.ID != k.ID && f.gone[other] == gone {
			out = append(out, m)
		}
	}
	return out
}

// probe reports whether m answers.
func (f *FailureDetector) probe(m *Member) bool {
	p, ok := f.Channel().Transport().(Prober)
	if !ok {
		return true
	}
	f.probes.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.ConnectTimeout+f.cfg.ReadTestTimeout)
	defer cancel()
	err := p.Probe(ctx, m, ProbeConfig{
		ConnectTimeout: f.cfg.ConnectTimeout, SendTest: !f.cfg.NoSendTest,
		ReadTest: f.cfg.ReadTest, ReadTestTimeout: f.cfg.ReadTestTimeout, OptionFlag: f.cfg.OptionFlag,
	})
	if err != nil {
		f.probeFailures.Add(1)
		f.log().Debug("tribes failure detector: probe failed", "member", m.String(), "err", err)
		return false
	}
	return true
}

// remove drops m from every table and passes the departure up if it was
// alive.
func (f *FailureDetector) remove(k MemberKey, m *Member) {
	f.mu.Lock()
	_, wasAlive := f.alive[k]
	delete(f.alive, k)
	delete(f.pending, k)
	delete(f.suspects, k)
	delete(f.gone, k)
	f.mu.Unlock()
	if wasAlive {
		f.removed.Add(1)
		f.Channel().Transport().Disconnect(m)
		f.prev.MemberDisappeared(m)
	}
}
