package interceptors

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// The control messages of StaticMembershipInterceptor (spec §10).
const (
	memberStart = "Local StaticMember Notification Data" // 36 bytes
	memberStop  = "Local StaticMember Shutdown Data"     // 32 bytes
)

// StaticMembershipConfig configures a [StaticMembership] interceptor.
type StaticMembershipConfig struct {
	// Members are the <Member> children: each member's host, port and
	// unique id exactly as that node uses them (identity is host + port +
	// unique id), and its domain. An entry with the local member's host
	// and port is skipped, so every node can share one list.
	Members []*tribes.Member
	// LocalMember is the optional <LocalMember>: its UniqueID (when not
	// zero), Domain and Payload (when not nil) replace the channel's in
	// the record sent with every message; host and port stay the
	// receiver's. Prefer setting tribes.Config.UniqueID and Domain to the
	// same values, so that Channel.LocalMember agrees.
	LocalMember *tribes.Member
	// OptionFlag is the options of MEMBER_START and MEMBER_STOP (optionFlag,
	// default 0: no byte-message flag, no ACK).
	OptionFlag tribes.Options
	// Logger receives the logs; nil means the channel's logger.
	Logger *slog.Logger
}

// StaticMembershipStats are a [StaticMembership] interceptor's counters.
type StaticMembershipStats struct {
	StartsSent, StopsSent         int64 // MEMBER_START / MEMBER_STOP messages, one per member
	StartsReceived, StopsReceived int64
	Unknown                       int64 // control messages from members not configured nor known (dropped)
	SendFailures                  int64
}

// StaticMembership is Tribes' StaticMembershipInterceptor: a cluster
// without multicast, whose members are listed in the configuration.
//
// At Start it reports each configured member as added, from its own
// position in the stack upward, so that a [tribes.FailureDetector] above
// it probes the member before the listeners hear of it (and re-probes one
// that does not answer at every heartbeat). When a configured member
// reaches the listeners, it is sent MEMBER_START (the 36 ASCII bytes
// "Local StaticMember Notification Data") once; at Stop every member is
// sent MEMBER_STOP ("Local StaticMember Shutdown Data"). Both are plain
// messages with options OptionFlag, passed down through the interceptors
// below this one (encrypted if Encrypt is below).
//
// On receipt, MEMBER_START from a configured member (or one the membership
// knows) is reported upward as added, and MEMBER_STOP as disappeared with
// the command BABY-ALEX, so that the failure detector removes it without
// probing; both messages are consumed. No heartbeats are exchanged: put a
// [TCPPing] and a [tribes.FailureDetector] above it (it warns at Start when
// either is missing). At every heartbeat it re-reports the configured
// members the failure detector above has dropped, so that one that comes
// back is found again.
//
// As a [tribes.MemberView] it answers the configured members (but those
// that sent MEMBER_STOP) plus the membership's.
type StaticMembership struct {
	tribes.BaseInterceptor
	cfg     StaticMembershipConfig
	members []*tribes.Member // configured, local excluded at Start
	byKey   map[tribes.MemberKey]*tribes.Member
	run     stopper
	warn    rateLimit

	mu        sync.Mutex
	announced map[tribes.MemberKey]bool // sent MEMBER_START since it was last added
	sending   map[tribes.MemberKey]bool
	stopped   map[tribes.MemberKey]bool // sent us MEMBER_STOP
	stopping  bool
	fd        *tribes.FailureDetector // above this one, if any

	startsSent, stopsSent, startsRecv, stopsRecv, unknown, sendFailures atomic.Int64
}

var (
	_ tribes.Interceptor = (*StaticMembership)(nil)
	_ tribes.Starter     = (*StaticMembership)(nil)
	_ tribes.MemberView  = (*StaticMembership)(nil)
)

// NewStaticMembership returns a static membership interceptor. It fails
// when a member has no valid host or a port out of range, or two members
// share an identity.
func NewStaticMembership(cfg StaticMembershipConfig) (*StaticMembership, error) {
	s := &StaticMembership{
		cfg: cfg, byKey: map[tribes.MemberKey]*tribes.Member{}, warn: rateLimit{period: dropLogPeriod},
		announced: map[tribes.MemberKey]bool{}, sending: map[tribes.MemberKey]bool{}, stopped: map[tribes.MemberKey]bool{},
	}
	for i, m := range cfg.Members {
		if m == nil {
			return nil, fmt.Errorf("interceptors: static member %d is nil", i)
		}
		if _, err := m.MarshalBinary(); err != nil {
			return nil, fmt.Errorf("interceptors: static member %d (%v): %w", i, m, err)
		}
		c := m.Clone()
		c.Command = nil
		if _, dup := s.byKey[c.Key()]; dup {
			return nil, fmt.Errorf("interceptors: static member %d (%v) is listed twice", i, m)
		}
		s.byKey[c.Key()] = c
		s.members = append(s.members, c)
	}
	return s, nil
}

// Stats returns the counters.
func (s *StaticMembership) Stats() StaticMembershipStats {
	return StaticMembershipStats{StartsSent: s.startsSent.Load(), StopsSent: s.stopsSent.Load(),
		StartsReceived: s.startsRecv.Load(), StopsReceived: s.stopsRecv.Load(), Unknown: s.unknown.Load(),
		SendFailures: s.sendFailures.Load()}
}

// StaticMembers returns copies of the configured members (the local member
// excluded once started).
func (s *StaticMembership) StaticMembers() []*tribes.Member {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*tribes.Member, len(s.members))
	for i, m := range s.members {
		out[i] = m.Clone()
	}
	return out
}

// configured returns the configured members that have not sent
// MEMBER_STOP.
func (s *StaticMembership) configured() []*tribes.Member {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*tribes.Member, 0, len(s.members))
	for _, m := range s.members {
		if !s.stopped[m.Key()] {
			out = append(out, m.Clone())
		}
	}
	return out
}

// Members returns the configured members that have not sent MEMBER_STOP,
// and the members the channel's membership knows.
func (s *StaticMembership) Members() []*tribes.Member {
	s.mu.Lock()
	out := make([]*tribes.Member, 0, len(s.members))
	seen := make(map[tribes.MemberKey]bool, len(s.members))
	for _, m := range s.members {
		if !s.stopped[m.Key()] {
			out = append(out, m)
			seen[m.Key()] = true
		}
	}
	s.mu.Unlock()
	if ch := s.Channel(); ch != nil {
		for _, m := range ch.Membership().Members() {
			if !seen[m.Key()] {
				out = append(out, m)
			}
		}
	}
	sortMembers(out)
	return out
}

// Start adopts the configured local member record, registers for the
// members reaching the listeners, and reports every configured member as
// added (from a goroutine, so that Start does not wait for probes).
func (s *StaticMembership) Start(ctx context.Context) error {
	ch := s.Channel()
	local := ch.LocalMember()
	if lm := s.cfg.LocalMember; lm != nil && local != nil {
		patched := local.Clone()
		if lm.UniqueID != (tribes.UniqueID{}) {
			patched.UniqueID = lm.UniqueID
		}
		if lm.Domain != nil {
			patched.Domain = bytes.Clone(lm.Domain)
		}
		if lm.Payload != nil {
			patched.Payload = bytes.Clone(lm.Payload)
		}
		if patched.Key() != local.Key() || !bytes.Equal(patched.Domain, local.Domain) || !bytes.Equal(patched.Payload, local.Payload) {
			if err := ch.Transport().SetLocalMember(patched); err != nil {
				return fmt.Errorf("interceptors: static membership: local member: %w", err)
			}
			s.log().Warn("tribes static membership: messages carry the configured local member, which differs from the channel's; set tribes.Config.UniqueID and Domain to match",
				"local", patched.String(), "channel", local.String())
			local = patched
		}
	}
	s.mu.Lock()
	if local != nil {
		kept := s.members[:0]
		for _, m := range s.members {
			if m.Host == local.Host && m.Port == local.Port {
				delete(s.byKey, m.Key())
				continue
			}
			kept = append(kept, m)
		}
		s.members = kept
	}
	members := make([]*tribes.Member, len(s.members))
	copy(members, s.members)
	s.mu.Unlock()

	for _, ic := range ch.Interceptors() {
		if ic == tribes.Interceptor(s) {
			break
		}
		if fd, ok := ic.(*tribes.FailureDetector); ok {
			s.fd = fd
		}
	}
	if s.fd == nil {
		s.log().Warn("tribes static membership: no FailureDetector above it; members are reported without a liveness check")
	}
	if !above(s, ch, func(x tribes.Interceptor) bool { _, ok := x.(*TCPPing); return ok }) {
		s.log().Warn("tribes static membership: no TCPPing above it; a member that dies silently is noticed only when a send to it fails")
	}
	ch.AddMembershipListener(tribes.MembershipFuncs{Added: s.reachedTop, Disappeared: s.leftTop})
	s.run.goFn(func(ctx context.Context) {
		for _, m := range members {
			if ctx.Err() != nil {
				return
			}
			s.Previous().MemberAdded(m.Clone())
		}
	})
	return nil
}

// Stop sends MEMBER_STOP to every member, after stopping the goroutines
// that send MEMBER_START.
func (s *StaticMembership) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	err := s.run.stop(ctx)
	ch := s.Channel()
	members := ch.Members()
	if len(members) == 0 {
		return err
	}
	if serr := s.send(ctx, members, memberStop); serr != nil {
		s.log().Warn("tribes static membership: sending MEMBER_STOP failed", "err", serr)
	}
	s.stopsSent.Add(int64(len(members)))
	return err
}

// reachedTop is told of every member reaching the listeners; a configured
// one is sent MEMBER_START once.
func (s *StaticMembership) reachedTop(m *tribes.Member) {
	k := m.Key()
	s.mu.Lock()
	target, ok := s.byKey[k]
	if !ok || s.stopping || s.announced[k] || s.sending[k] {
		s.mu.Unlock()
		return
	}
	s.sending[k] = true
	s.mu.Unlock()
	started := s.run.goFn(func(ctx context.Context) {
		err := s.send(ctx, []*tribes.Member{target}, memberStart)
		s.mu.Lock()
		delete(s.sending, k)
		if err == nil {
			s.announced[k] = true
		}
		s.mu.Unlock()
		if err != nil {
			s.warn.warn(s.log(), "tribes static membership: sending MEMBER_START failed", "member", target.String(), "err", err)
			return
		}
		s.startsSent.Add(1)
	})
	if !started {
		s.mu.Lock()
		delete(s.sending, k)
		s.mu.Unlock()
	}
}

// leftTop forgets that a member was announced to, so that it is sent
// MEMBER_START again when it comes back.
func (s *StaticMembership) leftTop(m *tribes.Member) {
	s.mu.Lock()
	delete(s.announced, m.Key())
	s.mu.Unlock()
}

// send passes one control message down to members.
func (s *StaticMembership) send(ctx context.Context, members []*tribes.Member, payload string) error {
	ctx, cancel := context.WithTimeout(ctx, tribes.DefaultSendTimeout)
	defer cancel()
	msg := &tribes.Message{Options: s.cfg.OptionFlag, Timestamp: time.Now().UnixMilli(), UniqueID: tribes.NewUniqueID(), Data: []byte(payload)}
	err := s.Next().SendMessage(ctx, members, msg)
	if err != nil {
		s.sendFailures.Add(1)
	}
	return err
}

// MessageReceived turns MEMBER_START and MEMBER_STOP into membership
// events and passes everything else up.
func (s *StaticMembership) MessageReceived(msg *tribes.Message) error {
	var start bool
	switch string(msg.Data) { // no allocation: the conversion is only compared
	case memberStart:
		start = true
		s.startsRecv.Add(1)
	case memberStop:
		s.stopsRecv.Add(1)
	default:
		return s.Previous().MessageReceived(msg)
	}
	m := s.lookup(msg.Source)
	if m == nil {
		s.unknown.Add(1)
		s.warn.warn(s.log(), "tribes static membership: control message from an unknown member dropped", "source", memberString(msg.Source))
		return nil
	}
	k := m.Key()
	s.mu.Lock()
	if start {
		delete(s.stopped, k)
	} else {
		delete(s.announced, k)
		if _, ok := s.byKey[k]; ok {
			s.stopped[k] = true
		}
	}
	s.mu.Unlock()
	if start {
		s.Previous().MemberAdded(m)
	} else {
		m.Command = []byte(tribes.ShutdownCommand)
		s.Previous().MemberDisappeared(m)
	}
	return nil
}

// lookup returns a copy of the configured member, else of the
// membership's member, with src's identity; nil when neither knows it.
func (s *StaticMembership) lookup(src *tribes.Member) *tribes.Member {
	if src == nil {
		return nil
	}
	k := src.Key()
	s.mu.Lock()
	m := s.byKey[k]
	s.mu.Unlock()
	if m != nil {
		return m.Clone()
	}
	if ch := s.Channel(); ch != nil {
		for _, mm := range ch.Membership().Members() {
			if mm.Key() == k {
				mm.Command = nil
				return mm
			}
		}
	}
	return nil
}

// Heartbeat re-reports the configured members that the failure detector
// above has dropped (but not those that said MEMBER_STOP), then passes the
// heartbeat down.
func (s *StaticMembership) Heartbeat() {
	if s.fd != nil {
		alive := map[tribes.MemberKey]bool{}
		for _, m := range s.fd.Members() {
			alive[m.Key()] = true
		}
		var lost []*tribes.Member
		s.mu.Lock()
		if !s.stopping {
			for _, m := range s.members {
				if !alive[m.Key()] && !s.stopped[m.Key()] {
					lost = append(lost, m.Clone())
				}
			}
		}
		s.mu.Unlock()
		for _, m := range lost {
			s.Previous().MemberAdded(m)
		}
	}
	s.Next().Heartbeat()
}

func (s *StaticMembership) log() *slog.Logger { return logger(s.cfg.Logger, &s.BaseInterceptor) }
