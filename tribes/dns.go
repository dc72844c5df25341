package tribes

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// DNSResolver looks up the addresses of a host name. [*net.Resolver]
// implements it.
type DNSResolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DNSConfig configures a [DNSMembership].
type DNSConfig struct {
	// Name is the DNS name whose A and AAAA records are the members, for
	// example a Kubernetes headless service
	// "my-app-membership.my-namespace.svc.cluster.local". Required.
	Name string
	// Port is the receiver port of every member. 0 means the local
	// member's port (all members listen on the same port, as with Tomcat's
	// DNSMembershipProvider).
	Port int
	// Interval is the time between two lookups. Default 5 s (Tomcat looks
	// the name up on every channel heartbeat, 5 s by default). Each lookup
	// may take up to Interval.
	Interval time.Duration
	// Resolver looks the name up; nil means [net.DefaultResolver].
	Resolver DNSResolver
	// Logger receives the provider's logs; nil discards them.
	Logger *slog.Logger
}

// DNSMembership is a membership provider whose members are the addresses
// a DNS name resolves to, like Tomcat's DNSMembershipProvider (for a
// Kubernetes headless service, the ready pods): every Interval it looks the
// name up; a new address is a new member (MemberAdded), and an address
// missing from a successful answer is a member gone (MemberDisappeared). A
// failed lookup changes nothing; a "no such host" answer counts as an empty
// set. The local member's own address is skipped.
//
// # Member identity
//
// A DNS record carries no unique id, so one is derived from the address
// exactly as Tomcat does: [DNSUniqueID], the MD5 of the address in Java's
// text form. Tomcat's provider also gives the local member that id, so that
// all nodes agree; do the same, set the local member's UniqueID to
// DNSUniqueID(local.Host) (Start logs a warning otherwise, since peers would
// then know this node under a different identity than the one in its
// messages). A consequence, as in Tomcat: a node that restarts with the
// same address keeps its identity, so peers see a restart only if the
// record disappears in between.
//
// Members get the local member's domain, SecurePort and UDPPort -1, and
// Alive 0 (DNS says nothing about age). Create one with [NewDNS]; its
// methods are safe for concurrent use.
type DNSMembership struct {
	cfg DNSConfig
	log *slog.Logger

	mu  sync.Mutex
	run *dnsRun
}

var _ Membership = (*DNSMembership)(nil)

// NewDNS returns a DNS membership provider for cfg (copied).
func NewDNS(cfg DNSConfig) (*DNSMembership, error) {
	if cfg.Name == "" {
		return nil, errors.New("tribes: DNS membership: no name to look up")
	}
	if cfg.Interval == 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("tribes: DNS membership interval %v is negative", cfg.Interval)
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("tribes: DNS membership port %d out of range 0..65535", cfg.Port)
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	return &DNSMembership{cfg: cfg, log: discardLogger(cfg.Logger).With("component", "tribes.dns", "name", cfg.Name)}, nil
}

// DNSUniqueID returns the unique id Tomcat's DNSMembershipProvider gives the
// member at addr: the MD5 digest of the address's Java text form
// (InetAddress.getHostAddress: dotted decimal for IPv4, including
// IPv4-mapped IPv6, and eight uncompressed lower-case hexadecimal groups for
// IPv6, "0:0:0:0:0:0:0:1").
func DNSUniqueID(addr netip.Addr) UniqueID {
	return md5.Sum([]byte(javaHostAddress(addr)))
}

// javaHostAddress formats addr as Java's InetAddress.getHostAddress does
// (zones dropped).
func javaHostAddress(addr netip.Addr) string {
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	a := addr.As16()
	b := make([]byte, 0, 39)
	for i := 0; i < 16; i += 2 {
		if i > 0 {
			b = append(b, ':')
		}
		b = strconv.AppendUint(b, uint64(a[i])<<8|uint64(a[i+1]), 16)
	}
	return string(b)
}

type dnsRun struct {
	s      *DNSMembership
	local  *Member
	port   int
	events func(MemberEvent)
	cancel context.CancelFunc
	first  chan struct{}
	done   chan struct{}

	errLog logLimiter // used by loop only
	tabMu  sync.RWMutex
	table  memberTable
}

// Start looks the name up once, reports the members found, and then looks
// it up every Interval (see [Membership.Start]). A failed first lookup is
// logged, not returned: the name may appear later (pods not ready yet). If
// ctx ends during the first lookup, Start stops the provider and returns
// ctx's error.
func (s *DNSMembership) Start(ctx context.Context, local *Member, events func(MemberEvent)) error {
	if local == nil {
		return fmt.Errorf("tribes: DNS membership: nil local member")
	}
	if events == nil {
		events = func(MemberEvent) {}
	}
	r := &dnsRun{s: s, local: local.Clone(), port: s.cfg.Port, events: events,
		first: make(chan struct{}), done: make(chan struct{}), table: newMemberTable(0),
		errLog: logLimiter{every: time.Minute}}
	if r.port == 0 {
		r.port = local.Port
	}
	if want := DNSUniqueID(local.Host); local.UniqueID != want {
		s.log.Warn("the local member's unique id is not the one DNS members derive from its address: "+
			"peers will know it under another identity; set Member.UniqueID = tribes.DNSUniqueID(host)",
			"host", local.Host.String(), "uniqueId", local.UniqueID.String(), "want", want.String())
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	s.mu.Lock()
	if s.run != nil {
		s.mu.Unlock()
		cancel()
		return ErrMembershipStarted
	}
	s.run = r
	s.mu.Unlock()
	go r.loop(bg)
	select {
	case <-r.first:
	case <-ctx.Done():
		s.Stop(context.WithoutCancel(ctx))
		return ctx.Err()
	}
	s.log.Info("DNS membership started", "port", r.port, "interval", s.cfg.Interval)
	return nil
}

func (r *dnsRun) loop(ctx context.Context) {
	defer close(r.done)
	r.lookup(ctx)
	close(r.first)
	t := time.NewTicker(r.s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.lookup(ctx)
	}
}

// lookup resolves the name once and reports the differences.
func (r *dnsRun) lookup(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, r.s.cfg.Interval)
	addrs, err := r.s.cfg.Resolver.LookupNetIP(lctx, "ip", r.s.cfg.Name)
	cancel()
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsNotFound {
			if ok, n := r.errLog.allow(time.Now()); ok {
				r.s.log.Warn("DNS lookup failed; members unchanged", "err", err, "suppressed", n)
			}
			return
		}
		addrs = nil // no such host: no members
	}
	now := time.Now()
	var added []*Member
	r.tabMu.Lock()
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		if !a.IsValid() || (a == r.local.Host && r.port == r.local.Port) {
			continue
		}
		m := &Member{Host: a, Port: r.port, SecurePort: -1, UDPPort: -1, Domain: r.local.Domain, UniqueID: DNSUniqueID(a)}
		if res, ev := r.table.heard(m, now); res == heardAdded {
			added = append(added, ev)
		}
	}
	// Every member in the answer was heard at exactly now; the others were
	// not in it.
	gone := r.table.expire(now, 0)
	r.tabMu.Unlock()
	for _, m := range added {
		r.s.log.Info("DNS member added", "member", m.String())
		r.events(MemberEvent{Type: MemberAdded, Member: m})
	}
	for _, m := range gone {
		r.s.log.Info("DNS member gone", "member", m.String())
		r.events(MemberEvent{Type: MemberDisappeared, Member: m})
	}
}

// Stop stops the lookups (see [Membership.Stop]).
func (s *DNSMembership) Stop(ctx context.Context) error {
	s.mu.Lock()
	r := s.run
	s.run = nil
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	r.cancel()
	select {
	case <-r.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.tabMu.Lock()
	r.table.clear()
	r.tabMu.Unlock()
	return nil
}

// Members returns copies of the members of the last successful lookup; nil
// when stopped.
func (s *DNSMembership) Members() []*Member {
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
