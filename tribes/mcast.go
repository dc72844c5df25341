package tribes

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
)

// MaxDatagramSize is the largest multicast datagram [McastService] sends:
// the largest UDP payload over IPv4. Heartbeats and broadcast frames must
// fit in one datagram.
const MaxDatagramSize = 65507

// McastConfig configures a [McastService]. The zero value of a field means
// its default, except TTL (0 keeps packets on the host; DefaultMcastConfig
// sets -1).
type McastConfig struct {
	// Address is the multicast group, an IPv4 address. Default "228.0.0.4"
	// (Tribes' default). Prefer an administratively scoped group
	// (239.0.0.0/8) on shared networks.
	Address string
	// Port is the group's UDP port. Default 45564.
	Port int
	// Frequency is the interval between heartbeats, and between checks for
	// expired members. Default 500 ms.
	Frequency time.Duration
	// DropTime: a member not heard from for longer is dropped
	// (MemberDisappeared). Default 3 s. It must exceed Frequency.
	DropTime time.Duration
	// Bind selects the network interface to join the group and send on: its
	// IPv4 address ("127.0.0.1" selects lo) or its name ("eth0"). Heartbeats
	// then leave from that address. "" lets the OS choose (the interface of
	// the route to the group). Tribes' "bind" attribute.
	Bind string
	// TTL is the multicast TTL: -1 leaves the OS default (1, one subnet; what
	// Tribes does unless ttl is set), 0 keeps heartbeats on this host, n > 0
	// crosses up to n-1 routers. Note that the zero value means 0, not the
	// default: Start warns when TTL 0 meets a Bind that is not loopback.
	TTL int
	// LocalLoopbackDisabled turns off multicast loopback: other members on
	// the same host then hear nothing from this one. Leave it false unless
	// there is one member per host (own heartbeats are ignored either way).
	LocalLoopbackDisabled bool
	// MaxMembers bounds the membership table, so that a flood of forged
	// heartbeats cannot grow it without limit; new members beyond it are
	// ignored and counted. Default 1024.
	MaxMembers int
	// OnMessage, if set, receives each multicast message frame (a datagram
	// that is not a heartbeat: SEND_OPTIONS_MULTICAST messages, spec §3.3),
	// START and END markers included, after checking that it is a well-formed
	// frame holding ChannelData and that it was not sent by the local member.
	// It is called from the receive goroutine, never concurrently, and must
	// not block for long. frame is valid only during the call (copy what you
	// keep). When nil, such frames are counted and dropped.
	OnMessage func(frame []byte)
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultMcastConfig returns Tribes' defaults: group 228.0.0.4:45564, a
// heartbeat every 500 ms, members dropped after 3 s of silence, the OS's
// default interface and TTL.
func DefaultMcastConfig() McastConfig {
	return McastConfig{
		Address:    "228.0.0.4", // Tribes' default group
		Port:       45564,       // Tribes' default port
		Frequency:  500 * time.Millisecond,
		DropTime:   3 * time.Second,
		TTL:        -1, // OS default (1), as Tribes leaves it unset
		MaxMembers: 1024,
	}
}

// LocalMcastConfig returns a configuration for members on one host (demos,
// tests): multicast on lo (Bind 127.0.0.1) with TTL 0, so that no heartbeat
// can leave the host, a heartbeat every 100 ms and a drop time of 1 s. The
// group and port stay Tribes' defaults, so a local Tomcat with
// bind="127.0.0.1" joins; tests should use tribestest.McastConfig, which
// also picks a random group and port so that parallel test processes do not
// hear each other.
func LocalMcastConfig() McastConfig {
	c := DefaultMcastConfig()
	c.Bind = "127.0.0.1"
	c.TTL = 0
	c.Frequency = 100 * time.Millisecond
	c.DropTime = time.Second
	return c
}

// McastStats are a [McastService]'s counters since it was created.
type McastStats struct {
	HeartbeatsSent     uint64 // heartbeats sent, the leave (BABY-ALEX) included
	HeartbeatsReceived uint64 // well-formed member records received, own ones included
	OwnHeartbeats      uint64 // of those, the local member's own (looped back, ignored)
	Malformed          uint64 // datagrams, or frames in them, that could not be decoded (dropped)
	Messages           uint64 // message frames handed to OnMessage
	MessagesDropped    uint64 // message frames dropped because OnMessage is nil
	OwnMessages        uint64 // message frames sent by the local member (ignored)
	MembersAdded       uint64
	MembersUpdated     uint64
	MembersExpired     uint64 // dropped after DropTime without a heartbeat
	MembersLeft        uint64 // removed on their BABY-ALEX heartbeat
	MembersRejected    uint64 // new members ignored because MaxMembers were known
	SendErrors         uint64
	ReceiveErrors      uint64
}

type mcastCounters struct {
	heartbeatsSent, heartbeatsReceived, ownHeartbeats, malformed atomic.Uint64
	messages, messagesDropped, ownMessages                       atomic.Uint64
	membersAdded, membersUpdated, membersExpired, membersLeft    atomic.Uint64
	membersRejected, sendErrors, receiveErrors                   atomic.Uint64
}

// McastService is the multicast membership of Tribes' McastService (spec
// §3): it announces the local member with a heartbeat datagram every
// Frequency, adds the members it hears, drops those silent for DropTime,
// and removes at once a member that says goodbye with BABY-ALEX. It speaks
// the Tribes 10.1 wire format, so Tomcat members and wasmfarm members see
// each other. Create one with [NewMcast]; its methods are safe for
// concurrent use.
//
// # Socket
//
// The service binds the group address and port with SO_REUSEADDR and
// SO_REUSEPORT, so several members share a host (Tribes binds the same
// way), joins the group on the Bind interface, sends from it (IP_MULTICAST_IF),
// sets the TTL and keeps multicast loopback on (own heartbeats come back
// and are ignored). On Linux it also turns off IP_MULTICAST_ALL, so it
// hears only the group it joined. IPv6 groups are not supported.
//
// # Differences from Tribes
//
// Start does not sleep (Tribes waits 2×frequency twice): it returns once
// the first heartbeat is out. When a new member appears, the service sends
// an extra heartbeat at once, so the newcomer
// learns about it in milliseconds instead of up to one Frequency (answers
// are spaced by at least Frequency/10, and a burst of joins shares one). Malformed
// datagrams are counted and logged at debug level, at most once a second;
// there is no receiver sleep and no service restart as in Tribes.
type McastService struct {
	cfg    McastConfig
	group  netip.AddrPort
	log    *slog.Logger
	stats  mcastCounters
	listen func(ctx context.Context) (mcastConn, error) // replaced by tests

	mu  sync.Mutex
	run *mcastRun
}

var _ Membership = (*McastService)(nil)

// NewMcast returns a multicast membership service configured by cfg (a
// copy is kept). It validates cfg; sockets are opened by Start.
func NewMcast(cfg McastConfig) (*McastService, error) {
	d := DefaultMcastConfig()
	if cfg.Address == "" {
		cfg.Address = d.Address
	}
	if cfg.Port == 0 {
		cfg.Port = d.Port
	}
	if cfg.Frequency == 0 {
		cfg.Frequency = d.Frequency
	}
	if cfg.DropTime == 0 {
		cfg.DropTime = d.DropTime
	}
	if cfg.MaxMembers == 0 {
		cfg.MaxMembers = d.MaxMembers
	}
	addr, err := netip.ParseAddr(cfg.Address)
	if err != nil || !addr.Unmap().Is4() || !addr.IsMulticast() {
		return nil, fmt.Errorf("tribes: multicast address %q is not an IPv4 multicast address (224.0.0.0/4)", cfg.Address)
	}
	switch {
	case cfg.Port < 1 || cfg.Port > 65535:
		return nil, fmt.Errorf("tribes: multicast port %d out of range 1..65535", cfg.Port)
	case cfg.Frequency < 0:
		return nil, fmt.Errorf("tribes: multicast frequency %v is negative", cfg.Frequency)
	case cfg.DropTime <= cfg.Frequency:
		return nil, fmt.Errorf("tribes: multicast drop time %v must exceed the frequency %v", cfg.DropTime, cfg.Frequency)
	case cfg.TTL < -1 || cfg.TTL > 255:
		return nil, fmt.Errorf("tribes: multicast TTL %d out of range -1..255", cfg.TTL)
	case cfg.MaxMembers < 0:
		return nil, fmt.Errorf("tribes: multicast MaxMembers %d is negative", cfg.MaxMembers)
	}
	s := &McastService{
		cfg:   cfg,
		group: netip.AddrPortFrom(addr.Unmap(), uint16(cfg.Port)),
		log:   discardLogger(cfg.Logger).With("component", "tribes.mcast", "group", netip.AddrPortFrom(addr.Unmap(), uint16(cfg.Port)).String()),
	}
	s.listen = func(ctx context.Context) (mcastConn, error) { return listenMcast(ctx, &s.cfg, s.group) }
	return s, nil
}

// Config returns the service's configuration, defaults filled in.
func (s *McastService) Config() McastConfig { return s.cfg }

// Stats returns the service's counters.
func (s *McastService) Stats() McastStats {
	c := &s.stats
	return McastStats{
		HeartbeatsSent:     c.heartbeatsSent.Load(),
		HeartbeatsReceived: c.heartbeatsReceived.Load(),
		OwnHeartbeats:      c.ownHeartbeats.Load(),
		Malformed:          c.malformed.Load(),
		Messages:           c.messages.Load(),
		MessagesDropped:    c.messagesDropped.Load(),
		OwnMessages:        c.ownMessages.Load(),
		MembersAdded:       c.membersAdded.Load(),
		MembersUpdated:     c.membersUpdated.Load(),
		MembersExpired:     c.membersExpired.Load(),
		MembersLeft:        c.membersLeft.Load(),
		MembersRejected:    c.membersRejected.Load(),
		SendErrors:         c.sendErrors.Load(),
		ReceiveErrors:      c.receiveErrors.Load(),
	}
}

// Start opens the multicast socket, sends the first heartbeat and starts
// the receive and heartbeat goroutines (see [Membership.Start]). local must
// encode as a member record (valid host, ports in range, at most
// [MaxMemberSize] bytes); its Alive is replaced by the ms since Start. It
// returns [ErrMembershipStarted] if the service is running.
func (s *McastService) Start(ctx context.Context, local *Member, events func(MemberEvent)) error {
	if local == nil {
		return fmt.Errorf("tribes: multicast membership: nil local member")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != nil {
		return ErrMembershipStarted
	}
	l := local.Clone()
	l.Alive = 0
	if rec, err := l.AppendBinary(nil); err != nil {
		return fmt.Errorf("tribes: multicast membership: local member: %w", err)
	} else if len(rec) > MaxDatagramSize {
		return &SizeError{Size: int64(len(rec)), Limit: MaxDatagramSize}
	}
	conn, err := s.listen(ctx)
	if err != nil {
		return err
	}
	r := s.newRun(l, events)
	r.conn = conn
	if err := r.sendHeartbeat(false); err != nil {
		conn.close()
		return fmt.Errorf("tribes: multicast membership: first heartbeat: %w", err)
	}
	r.wg.Add(2)
	go r.readLoop()
	go r.tickLoop()
	s.run = r
	if s.cfg.TTL == 0 && !isLoopbackBind(s.cfg.Bind) {
		s.log.Warn("multicast TTL is 0: heartbeats never leave this host, so members on other hosts will not see " +
			"this one; set TTL -1 (the OS default, as DefaultMcastConfig does) for a multi-host cluster")
	}
	s.log.Info("multicast membership started", "member", l.String(), "bind", s.cfg.Bind, "ttl", s.cfg.TTL,
		"frequency", s.cfg.Frequency, "dropTime", s.cfg.DropTime)
	return nil
}

// newRun prepares the state of one Start..Stop period without a socket.
func (s *McastService) newRun(local *Member, events func(MemberEvent)) *mcastRun {
	if events == nil {
		events = func(MemberEvent) {}
	}
	return &mcastRun{
		s:             s,
		start:         time.Now(),
		local:         local,
		localKey:      local.Key(),
		localLoopback: local.Host.IsLoopback(),
		events:        events,
		stop:          make(chan struct{}),
		table:         newMemberTable(s.cfg.MaxMembers),
		badLog:        logLimiter{every: time.Second},
	}
}

// Stop sends one BABY-ALEX heartbeat (spec §3.4), leaves the group, closes
// the socket and waits for the service's goroutines (see
// [Membership.Stop]). It returns an error if the leave heartbeat could not
// be sent (the service stops anyway; the others will expire it).
func (s *McastService) Stop(ctx context.Context) error {
	s.mu.Lock()
	r := s.run
	s.run = nil
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	err := r.sendHeartbeat(true)
	if err != nil {
		err = fmt.Errorf("tribes: multicast membership: leave heartbeat: %w", err)
	}
	if werr := r.shutdown(ctx); werr != nil {
		return werr
	}
	s.log.Info("multicast membership stopped", "member", r.local.String())
	return err
}

// abort stops the service without the leave heartbeat, as if the process
// had crashed (the others expire it after DropTime). For tests.
func (s *McastService) abort(ctx context.Context) error {
	s.mu.Lock()
	r := s.run
	s.run = nil
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	return r.shutdown(ctx)
}

// Members returns copies of the members heard from, oldest first; nil when
// the service is not running.
func (s *McastService) Members() []*Member {
	s.mu.Lock()
	r := s.run
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	r.tabMu.RLock()
	defer r.tabMu.RUnlock()
	return r.table.snapshot()
}

// Broadcast sends frame, one complete Tribes frame (spec §1) such as a
// SEND_OPTIONS_MULTICAST message, as one datagram to the group. It returns
// [ErrMembershipNotStarted] when the service is not running and a
// *[SizeError] when frame exceeds [MaxDatagramSize]. frame is not retained.
func (s *McastService) Broadcast(frame []byte) error {
	if len(frame) > MaxDatagramSize {
		return &SizeError{Size: int64(len(frame)), Limit: MaxDatagramSize}
	}
	if !bytes.HasPrefix(frame, frameStart[:]) {
		return fmt.Errorf("%w: broadcast data does not start with the frame START marker", ErrBadFrame)
	}
	s.mu.Lock()
	r := s.run
	s.mu.Unlock()
	if r == nil {
		return ErrMembershipNotStarted
	}
	if err := r.conn.send(frame); err != nil {
		s.stats.sendErrors.Add(1)
		return fmt.Errorf("tribes: multicast broadcast: %w", err)
	}
	return nil
}

// mcastConn is the group socket as the service uses it; tests replace it
// with an in-memory group.
type mcastConn interface {
	// read blocks for the next datagram, copies it into b and returns its
	// length. After close it returns an error wrapping net.ErrClosed.
	read(b []byte) (int, error)
	// send sends b to the group as one datagram.
	send(b []byte) error
	// close leaves the group and closes the socket, unblocking read.
	close() error
}

// mcastRun is the state of one Start..Stop period.
type mcastRun struct {
	s             *McastService
	conn          mcastConn
	start         time.Time
	localKey      MemberKey
	localLoopback bool
	events        func(MemberEvent)
	stop          chan struct{}
	stopOnce      sync.Once
	wg            sync.WaitGroup

	sendMu     sync.Mutex // guards the fields below
	local      *Member
	left       bool // the BABY-ALEX heartbeat went out, or the run stopped: send nothing more
	sendBuf    []byte
	lastEager  time.Time   // last heartbeat sent for a new member
	eagerTimer *time.Timer // pending delayed one, or nil

	// evMu serialises changes of the table with the delivery of their
	// events; the fields below it are used only under it.
	evMu           sync.Mutex
	scratch        Member
	warnedLoopback bool
	badLog         logLimiter

	tabMu sync.RWMutex // guards table; never held while calling events
	table memberTable
}

// shutdown stops the goroutines and closes the socket, without any leave
// message, then forgets the members.
func (r *mcastRun) shutdown(ctx context.Context) error {
	r.stopOnce.Do(func() {
		r.sendMu.Lock()
		r.left = true
		if r.eagerTimer != nil {
			r.eagerTimer.Stop()
			r.eagerTimer = nil
		}
		r.sendMu.Unlock()
		close(r.stop)
		r.conn.close()
	})
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.tabMu.Lock()
	r.table.clear()
	r.tabMu.Unlock()
	return nil
}

// sendHeartbeat sends the local member's record with Alive = ms since
// Start; with leaving, it first sets the command to BABY-ALEX.
func (r *mcastRun) sendHeartbeat(leaving bool) error {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	return r.sendHeartbeatLocked(leaving)
}

// sendHeartbeatLocked is sendHeartbeat with sendMu held.
func (r *mcastRun) sendHeartbeatLocked(leaving bool) error {
	if r.left {
		return nil
	}
	if leaving {
		r.local.Command = []byte(ShutdownCommand)
		r.left = true
	}
	r.local.Alive = time.Since(r.start).Milliseconds()
	b, err := r.local.AppendBinary(r.sendBuf[:0])
	if err != nil {
		return err // cannot happen: validated by Start
	}
	r.sendBuf = b
	if err := r.conn.send(b); err != nil {
		r.s.stats.sendErrors.Add(1)
		return err
	}
	r.s.stats.heartbeatsSent.Add(1)
	return nil
}

// tickLoop sends a heartbeat and expires silent members every Frequency.
func (r *mcastRun) tickLoop() {
	defer r.wg.Done()
	t := time.NewTicker(r.s.cfg.Frequency)
	defer t.Stop()
	var sendErrLog logLimiter
	sendErrLog.every = 10 * time.Second
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		if err := r.sendHeartbeat(false); err != nil {
			if ok, n := sendErrLog.allow(time.Now()); ok {
				r.s.log.Warn("cannot send heartbeat", "err", err, "suppressed", n)
			}
		}
		r.expire(time.Now())
	}
}

// expire drops the members not heard from for more than DropTime.
func (r *mcastRun) expire(now time.Time) {
	r.evMu.Lock()
	defer r.evMu.Unlock()
	r.tabMu.Lock()
	gone := r.table.expire(now, r.s.cfg.DropTime)
	r.tabMu.Unlock()
	for _, m := range gone {
		r.s.stats.membersExpired.Add(1)
		r.s.log.Info("member expired", "member", m.String(), "dropTime", r.s.cfg.DropTime)
		r.events(MemberEvent{Type: MemberDisappeared, Member: m})
	}
}

// readLoop receives datagrams until the socket is closed.
func (r *mcastRun) readLoop() {
	defer r.wg.Done()
	buf := make([]byte, MaxDatagramSize+1)
	var errLog logLimiter
	errLog.every = 10 * time.Second
	for {
		n, err := r.conn.read(buf)
		if err != nil {
			select {
			case <-r.stop:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.s.stats.receiveErrors.Add(1)
			if ok, sup := errLog.allow(time.Now()); ok {
				r.s.log.Warn("multicast receive failed", "err", err, "suppressed", sup)
			}
			select { // do not spin on a persistent error
			case <-r.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		r.handleDatagram(buf[:n], time.Now())
	}
}

// handleDatagram processes one received datagram at now (spec §3.3). It
// never panics on any input and does not retain data.
func (r *mcastRun) handleDatagram(data []byte, now time.Time) {
	if len(data) == 0 {
		r.evMu.Lock()
		r.malformed(now, "datagram", data, decodeErr("datagram", 0, "empty", ErrBadFrame))
		r.evMu.Unlock()
		return
	}
	if !bytes.HasPrefix(data, memberBegin[:]) {
		r.handleFrames(data, now)
		return
	}
	m := &r.scratch
	r.evMu.Lock()
	if _, err := decodeMember(data, m); err != nil {
		r.malformed(now, "heartbeat", data, err)
		r.evMu.Unlock()
		return
	}
	st := &r.s.stats
	st.heartbeatsReceived.Add(1)
	key := m.Key()
	if key == r.localKey {
		st.ownHeartbeats.Add(1)
		r.evMu.Unlock()
		return
	}
	if m.IsShutdown() {
		r.tabMu.Lock()
		gone := r.table.remove(key)
		r.tabMu.Unlock()
		if gone != nil {
			st.membersLeft.Add(1)
			ev := m.Clone()
			r.s.log.Info("member left", "member", ev.String())
			r.events(MemberEvent{Type: MemberDisappeared, Member: ev})
		}
		r.evMu.Unlock()
		return
	}
	r.tabMu.Lock()
	res, ev := r.table.heard(m, now)
	r.tabMu.Unlock()
	eager := false
	switch res {
	case heardAdded:
		st.membersAdded.Add(1)
		r.s.log.Info("member added", "member", ev.String())
		if r.localLoopback && !ev.Host.IsLoopback() && !r.warnedLoopback {
			r.warnedLoopback = true
			r.s.log.Warn("the local member advertises a loopback address, but a member from another host joined: "+
				"it cannot connect to this node; advertise an address the other hosts can reach",
				"local", r.localKey.Host.String(), "member", ev.String())
		}
		r.events(MemberEvent{Type: MemberAdded, Member: ev})
		eager = true
	case heardUpdated:
		st.membersUpdated.Add(1)
		r.s.log.Debug("member updated", "member", ev.String())
		r.events(MemberEvent{Type: MemberUpdated, Member: ev})
	case heardFull:
		st.membersRejected.Add(1)
		if ok, n := r.badLog.allow(now); ok {
			r.s.log.Warn("membership table full, new member ignored", "max", r.s.cfg.MaxMembers,
				"member", m.String(), "suppressed", n)
		}
	}
	r.evMu.Unlock()
	if eager {
		r.eagerHeartbeat(now)
	}
}

// eagerHeartbeat answers a new member with a heartbeat, so that it learns
// about this one at once instead of at the next tick. Answers are spaced by
// at least Frequency/10: one that would come sooner is delayed, and the new
// members of a burst share it.
func (r *mcastRun) eagerHeartbeat(now time.Time) {
	gap := max(r.s.cfg.Frequency/10, time.Millisecond)
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	if r.eagerTimer != nil || r.left {
		return // one is pending, or we are leaving
	}
	wait := gap - now.Sub(r.lastEager)
	if r.lastEager.IsZero() || wait <= 0 {
		r.lastEager = now
		r.sendHeartbeatLocked(false) // errors are counted; the ticker retries
		return
	}
	r.eagerTimer = time.AfterFunc(wait, func() {
		r.sendMu.Lock()
		defer r.sendMu.Unlock()
		r.eagerTimer = nil
		r.lastEager = time.Now()
		r.sendHeartbeatLocked(false)
	})
}

// handleFrames processes a datagram that is not a heartbeat: one or more
// message frames (spec §3.3).
func (r *mcastRun) handleFrames(data []byte, now time.Time) {
	st := &r.s.stats
	for len(data) > 0 {
		body, n, err := parseFrame(data, MaxDatagramSize)
		if err == nil && n == 0 {
			err = decodeErr("frame", len(data), "datagram ends inside a frame", ErrBadFrame)
		}
		if err != nil {
			r.evMu.Lock()
			r.malformed(now, "datagram", data, err)
			r.evMu.Unlock()
			return
		}
		frame := data[:n]
		data = data[n:]
		var cd channelData
		if err := decodeChannelData(body, &cd); err != nil {
			r.evMu.Lock()
			r.malformed(now, "multicast message", frame, err)
			r.evMu.Unlock()
			continue
		}
		if k, err := recordKey(cd.member); err == nil && k == r.localKey {
			st.ownMessages.Add(1)
			continue
		}
		if on := r.s.cfg.OnMessage; on != nil {
			st.messages.Add(1)
			on(frame)
		} else {
			st.messagesDropped.Add(1)
		}
	}
}

// malformed counts a datagram that could not be decoded and logs it at
// debug level, rate-limited. Called with evMu held.
func (r *mcastRun) malformed(now time.Time, what string, data []byte, err error) {
	r.s.stats.malformed.Add(1)
	if ok, n := r.badLog.allow(now); ok {
		head := data[:min(len(data), 16)]
		r.s.log.Debug("malformed "+what+" dropped", "err", err, "len", len(data),
			"head", fmt.Sprintf("%x", head), "suppressed", n)
	}
}

// recordKey returns the identity of the valid member record at the start of
// rec without decoding the rest; it does not allocate unless it fails.
func recordKey(rec []byte) (MemberKey, error) {
	l, err := scanMember(rec)
	if err != nil {
		return MemberKey{}, err
	}
	var k MemberKey
	if l.hostLen == 4 {
		k.Host = netip.AddrFrom4([4]byte(rec[memberHostOff:]))
	} else {
		k.Host = netip.AddrFrom16([16]byte(rec[memberHostOff:]))
	}
	k.Port = int(int32(binary.BigEndian.Uint32(rec[22:])))
	k.ID = UniqueID(rec[l.uidOff:])
	return k, nil
}

// udpMcast is the real group socket.
type udpMcast struct {
	c     *net.UDPConn
	p     *ipv4.PacketConn
	group netip.AddrPort
	ifi   *net.Interface
}

func (u *udpMcast) read(b []byte) (int, error) {
	n, _, err := u.c.ReadFromUDPAddrPort(b)
	return n, err
}

func (u *udpMcast) send(b []byte) error {
	_, err := u.c.WriteToUDPAddrPort(b, u.group)
	return err
}

func (u *udpMcast) close() error {
	u.p.LeaveGroup(u.ifi, &net.UDPAddr{IP: u.group.Addr().AsSlice()})
	return u.c.Close()
}

// listenMcast opens the group socket described by cfg.
func listenMcast(ctx context.Context, cfg *McastConfig, group netip.AddrPort) (mcastConn, error) {
	var (
		ifi    *net.Interface
		ifAddr netip.Addr
		err    error
	)
	if cfg.Bind != "" {
		if ifi, ifAddr, err = mcastInterface(cfg.Bind); err != nil {
			return nil, err
		}
	}
	lc := net.ListenConfig{Control: mcastSocketControl}
	// Bind the group address, as Tribes does first, so that only datagrams
	// sent to the group arrive; fall back to the wildcard where the OS
	// refuses (Windows).
	pc, err := lc.ListenPacket(ctx, "udp4", group.String())
	if err != nil {
		var err2 error
		pc, err2 = lc.ListenPacket(ctx, "udp4", "0.0.0.0:"+strconv.Itoa(int(group.Port())))
		if err2 != nil {
			return nil, fmt.Errorf("tribes: multicast socket on port %d: %w", group.Port(), errors.Join(err, err2))
		}
	}
	c := pc.(*net.UDPConn)
	p := ipv4.NewPacketConn(c)
	fail := func(what string, err error) (mcastConn, error) {
		c.Close()
		return nil, fmt.Errorf("tribes: multicast %s (group %s, bind %q): %w", what, group, cfg.Bind, err)
	}
	if err := p.JoinGroup(ifi, &net.UDPAddr{IP: group.Addr().AsSlice()}); err != nil {
		return fail("join", err)
	}
	if ifi != nil {
		if err := setMulticastInterface(c, p, ifi, ifAddr); err != nil {
			return fail("set interface", err)
		}
	}
	if cfg.TTL >= 0 {
		if err := p.SetMulticastTTL(cfg.TTL); err != nil {
			return fail("set TTL", err)
		}
	}
	if err := p.SetMulticastLoopback(!cfg.LocalLoopbackDisabled); err != nil {
		return fail("set loopback", err)
	}
	c.SetReadBuffer(1 << 16) // as Tribes; best effort
	return &udpMcast{c: c, p: p, group: group, ifi: ifi}, nil
}

// isLoopbackBind reports whether bind names a loopback address or
// interface.
func isLoopbackBind(bind string) bool {
	if a, err := netip.ParseAddr(bind); err == nil {
		return a.IsLoopback()
	}
	ifi, err := net.InterfaceByName(bind)
	return err == nil && ifi.Flags&net.FlagLoopback != 0
}

// mcastInterface finds the interface named by bind: the one holding the
// IPv4 address bind, or the one called bind. It returns the interface and
// its IPv4 address.
func mcastInterface(bind string) (*net.Interface, netip.Addr, error) {
	if a, err := netip.ParseAddr(bind); err == nil {
		a = a.Unmap()
		if !a.Is4() {
			return nil, netip.Addr{}, fmt.Errorf("tribes: multicast bind address %s is not IPv4", bind)
		}
		ifs, err := net.Interfaces()
		if err != nil {
			return nil, netip.Addr{}, fmt.Errorf("tribes: multicast bind %s: %w", bind, err)
		}
		for i := range ifs {
			addrs, err := ifs[i].Addrs()
			if err != nil {
				continue
			}
			for _, ad := range addrs {
				if ipn, ok := ad.(*net.IPNet); ok {
					if x, ok := netip.AddrFromSlice(ipn.IP); ok && x.Unmap() == a {
						return &ifs[i], a, nil
					}
				}
			}
		}
		return nil, netip.Addr{}, fmt.Errorf("tribes: multicast bind: no network interface has address %s", bind)
	}
	ifi, err := net.InterfaceByName(bind)
	if err != nil {
		return nil, netip.Addr{}, fmt.Errorf("tribes: multicast bind %q is neither an IP address nor an interface: %w", bind, err)
	}
	addrs, _ := ifi.Addrs()
	for _, ad := range addrs {
		if ipn, ok := ad.(*net.IPNet); ok {
			if x, ok := netip.AddrFromSlice(ipn.IP); ok && x.Unmap().Is4() {
				return ifi, x.Unmap(), nil
			}
		}
	}
	return nil, netip.Addr{}, fmt.Errorf("tribes: multicast bind: interface %s has no IPv4 address", bind)
}
