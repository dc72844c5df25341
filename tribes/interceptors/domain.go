package interceptors

import (
	"bytes"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// DefaultDomainLogInterval is how many refused messages a [DomainFilter]
// logs one warning for (Tribes' logInterval).
const DefaultDomainLogInterval = 100

// DomainFilterConfig configures a [DomainFilter].
type DomainFilterConfig struct {
	// Domain is the cluster domain accepted (domain), parsed by
	// [ParseDomain]: a plain string ("staging") stands for its ISO-8859-1
	// bytes, and "{1,2,3}" lists the bytes in decimal. The empty domain
	// accepts the members that announce none.
	Domain string
	// LogInterval: one warning is logged per LogInterval refused messages
	// (logInterval, default 100).
	LogInterval int
	// Logger receives the logs; nil means the channel's logger.
	Logger *slog.Logger
}

// DomainFilterStats are a [DomainFilter]'s counters.
type DomainFilterStats struct {
	Accepted, Refused int64 // messages
	RefusedMembers    int64 // membership events swallowed
}

// DomainFilter is Tribes' DomainFilterInterceptor. It changes no bytes: it
// passes up only the messages whose sender's member record carries the
// configured domain, and the membership events of such members, and keeps
// its own view of them ([DomainFilter.Members]; as the top-most
// [tribes.MemberView] it is the channel's membership). A member already in
// the view is not reported twice.
//
// It follows the updates of a member's record (see [tribes.MemberUpdater])
// only for members the layers below reported added, whatever their
// domain: a member that a [tribes.FailureDetector] below has not admitted
// (its port never answered) is not admitted by changing its record.
type DomainFilter struct {
	tribes.BaseInterceptor
	cfg    DomainFilterConfig
	domain []byte

	mu      sync.Mutex
	members map[tribes.MemberKey]*tribes.Member // the view: reported, of the domain
	below   map[tribes.MemberKey]*tribes.Member // reported by the layers below, any domain

	accepted, refused, refusedMembers, logCount atomic.Int64
}

var (
	_ tribes.Interceptor = (*DomainFilter)(nil)
	_ tribes.MemberView  = (*DomainFilter)(nil)
)

// NewDomainFilter returns a domain filter. It fails with an error wrapping
// [ErrBadDomain] when the domain does not parse.
func NewDomainFilter(cfg DomainFilterConfig) (*DomainFilter, error) {
	d, err := ParseDomain(cfg.Domain)
	if err != nil {
		return nil, err
	}
	if cfg.LogInterval <= 0 {
		cfg.LogInterval = DefaultDomainLogInterval
	}
	return &DomainFilter{cfg: cfg, domain: d,
		members: map[tribes.MemberKey]*tribes.Member{}, below: map[tribes.MemberKey]*tribes.Member{}}, nil
}

// ParseDomain converts a domain as Tomcat's configuration writes it to its
// bytes: "{216,123,12,3}" lists them as decimal numbers (-128..255, blanks
// allowed), anything else stands for its ISO-8859-1 encoding. It fails with
// an error wrapping [ErrBadDomain].
func ParseDomain(s string) ([]byte, error) {
	if strings.HasPrefix(s, "{") {
		if !strings.HasSuffix(s, "}") {
			return nil, fmt.Errorf("%w: %q: missing closing brace", ErrBadDomain, s)
		}
		inner := strings.TrimSpace(s[1 : len(s)-1])
		if inner == "" {
			return []byte{}, nil
		}
		parts := strings.Split(inner, ",")
		out := make([]byte, len(parts))
		for i, p := range parts {
			v, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || v < -128 || v > 255 {
				return nil, fmt.Errorf("%w: %q: byte %d (%q) is not a number in -128..255", ErrBadDomain, s, i, strings.TrimSpace(p))
			}
			out[i] = byte(v)
		}
		return out, nil
	}
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, fmt.Errorf("%w: %q: %q is not an ISO-8859-1 character", ErrBadDomain, s, r)
		}
		out = append(out, byte(r))
	}
	return out, nil
}

// Domain returns the accepted domain's bytes. They must not be modified.
func (d *DomainFilter) Domain() []byte { return d.domain }

// Stats returns the counters.
func (d *DomainFilter) Stats() DomainFilterStats {
	return DomainFilterStats{Accepted: d.accepted.Load(), Refused: d.refused.Load(), RefusedMembers: d.refusedMembers.Load()}
}

// Members returns the members of the domain that were reported and have
// not disappeared, oldest first.
func (d *DomainFilter) Members() []*tribes.Member {
	d.mu.Lock()
	out := make([]*tribes.Member, 0, len(d.members))
	for _, m := range d.members {
		out = append(out, m)
	}
	d.mu.Unlock()
	sortMembers(out)
	return out
}

func (d *DomainFilter) ours(m *tribes.Member) bool {
	return m != nil && bytes.Equal(m.Domain, d.domain)
}

// MessageReceived passes msg up if its sender is in the domain, else drops
// it (with a warning every LogInterval drops).
func (d *DomainFilter) MessageReceived(msg *tribes.Message) error {
	if d.ours(msg.Source) {
		d.accepted.Add(1)
		return d.Previous().MessageReceived(msg)
	}
	d.refused.Add(1)
	if d.logCount.Add(1)%int64(d.cfg.LogInterval) == 1 || d.cfg.LogInterval == 1 {
		d.log().Warn("tribes domain filter: refusing messages from another domain",
			"source", memberString(msg.Source), "refused", d.refused.Load())
	}
	return nil
}

// MemberAdded passes up a member of the domain not yet in the view.
func (d *DomainFilter) MemberAdded(m *tribes.Member) {
	d.mu.Lock()
	d.below[m.Key()] = m
	d.mu.Unlock()
	if !d.ours(m) {
		d.refusedMembers.Add(1)
		d.log().Info("tribes domain filter: member of another domain refused", "member", memberString(m))
		return
	}
	d.mu.Lock()
	_, known := d.members[m.Key()]
	d.members[m.Key()] = m
	d.mu.Unlock()
	if !known {
		d.Previous().MemberAdded(m)
	}
}

// MemberDisappeared removes a member of the domain and passes the event up.
func (d *DomainFilter) MemberDisappeared(m *tribes.Member) {
	d.mu.Lock()
	delete(d.below, m.Key())
	d.mu.Unlock()
	if !d.ours(m) {
		return
	}
	d.mu.Lock()
	delete(d.members, m.Key())
	d.mu.Unlock()
	d.Previous().MemberDisappeared(m)
}

// MemberUpdated re-filters a member whose record changed: one that moved
// into the domain is added, one that moved out of it disappears. Members
// the layers below have not reported are left alone.
func (d *DomainFilter) MemberUpdated(m *tribes.Member) {
	ours := d.ours(m)
	d.mu.Lock()
	if _, reported := d.below[m.Key()]; !reported {
		d.mu.Unlock()
		return
	}
	d.below[m.Key()] = m
	_, known := d.members[m.Key()]
	if ours {
		d.members[m.Key()] = m
	} else {
		delete(d.members, m.Key())
	}
	d.mu.Unlock()
	switch {
	case ours && !known:
		d.Previous().MemberAdded(m)
	case !ours && known:
		d.Previous().MemberDisappeared(m)
	}
}

func (d *DomainFilter) log() *slog.Logger { return logger(d.cfg.Logger, &d.BaseInterceptor) }
