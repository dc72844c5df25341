package tribes

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Transport moves messages between members: the bottom of a channel's
// interceptor stack. [NioTransport] is the real one (TCP, Tribes wire
// format); package tribestest has an in-memory one for tests.
//
// Implementations must be safe for concurrent use.
type Transport interface {
	// Start begins receiving: every message received is passed to recv,
	// with the ownership rules of [ReceiveFunc]. It returns the address
	// other members reach this one at.
	Start(ctx context.Context, recv ReceiveFunc) (netip.AddrPort, error)
	// SetLocalMember sets the member record sent as the source of messages.
	// It is called after Start, before the first Send.
	SetLocalMember(m *Member) error
	// Send sends msg to the members, as [Sender.Send] describes.
	Send(ctx context.Context, to []*Member, msg *Message) error
	// Disconnect drops any connection to m (it left the group).
	Disconnect(m *Member)
	// Close stops receiving and sending and releases the connections.
	Close() error
}

// ErrNotStarted occurs when a transport is used before Start (or, for
// sending, before SetLocalMember).
var ErrNotStarted = errors.New("tribes: transport not started")

// NioTransport is the real [Transport]: a [Receiver] on the nio reactor and
// a [Sender] with pooled parallel connections.
type NioTransport struct {
	rcfg ReceiverConfig
	scfg SenderConfig

	mu sync.RWMutex
	r  *Receiver
	s  *Sender
}

var (
	_ Transport = (*NioTransport)(nil)
	_ Prober    = (*NioTransport)(nil)
)

// NewNioTransport returns a transport that will receive and send as the
// configurations say. Nothing is opened before Start.
func NewNioTransport(r ReceiverConfig, s SenderConfig) *NioTransport {
	return &NioTransport{rcfg: r, scfg: s}
}

// Start binds the receiver.
func (t *NioTransport) Start(ctx context.Context, recv ReceiveFunc) (netip.AddrPort, error) {
	r, err := NewReceiver(t.rcfg, recv)
	if err != nil {
		return netip.AddrPort{}, err
	}
	t.mu.Lock()
	t.r = r
	t.mu.Unlock()
	return r.Addr(), nil
}

// SetLocalMember creates the sender on first use, else updates its record.
func (t *NioTransport) SetLocalMember(m *Member) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.s != nil {
		return t.s.SetLocalMember(m)
	}
	s, err := NewSender(t.scfg, m)
	if err != nil {
		return err
	}
	t.s = s
	return nil
}

// Send sends with the Sender.
func (t *NioTransport) Send(ctx context.Context, to []*Member, msg *Message) error {
	t.mu.RLock()
	s := t.s
	t.mu.RUnlock()
	if s == nil {
		return ErrNotStarted
	}
	return s.Send(ctx, to, msg)
}

// Disconnect closes the sender's connections to m.
func (t *NioTransport) Disconnect(m *Member) {
	t.mu.RLock()
	s := t.s
	t.mu.RUnlock()
	if s != nil {
		s.Disconnect(m)
	}
}

// Probe checks that m is alive as TcpFailureDetector does (spec section
// 9): a TCP connect, then, with SendTest, one frame carrying the probe
// payload, and with ReadTest, a wait for the ACK. It checks the address
// only: a process restarted there with a new unique id answers for m (the
// [FailureDetector] then drops m, see there).
func (t *NioTransport) Probe(ctx context.Context, m *Member, cfg ProbeConfig) error {
	t.mu.RLock()
	s := t.s
	t.mu.RUnlock()
	if s == nil {
		return ErrNotStarted
	}
	d := net.Dialer{Timeout: cfg.ConnectTimeout}
	c, err := d.DialContext(ctx, "tcp", m.AddrPort().String())
	if err != nil {
		return err
	}
	defer c.Close()
	if !cfg.SendTest {
		return nil
	}
	opts := OptByteMessage | cfg.OptionFlag
	if cfg.ReadTest {
		opts |= OptUseAck
	}
	id := NewUniqueID()
	frame := appendMessageHeader(nil, opts, time.Now().UnixMilli(), id[:], *s.local.Load(), len(tcpFailDetect))
	frame = append(frame, tcpFailDetect[:]...)
	frame = append(frame, frameEnd[:]...)
	c.SetDeadline(time.Now().Add(cfg.ConnectTimeout))
	if _, err := c.Write(frame); err != nil {
		return err
	}
	if cfg.ReadTest {
		c.SetDeadline(time.Now().Add(cfg.ReadTestTimeout))
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil {
			return err
		}
	}
	return nil
}

// Receiver returns the receiver (nil before Start), for its address and
// statistics.
func (t *NioTransport) Receiver() *Receiver {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.r
}

// Sender returns the sender (nil before SetLocalMember).
func (t *NioTransport) Sender() *Sender {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.s
}

// Close closes the sender, then the receiver.
func (t *NioTransport) Close() error {
	t.mu.Lock()
	r, s := t.r, t.s
	t.r, t.s = nil, nil
	t.mu.Unlock()
	var errs []error
	if s != nil {
		errs = append(errs, s.Close())
	}
	if r != nil {
		errs = append(errs, r.Close())
	}
	return errors.Join(errs...)
}
