package tribesconfig

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/wasmfarm/wasmfarm/internal/serverxml"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
)

const ms = time.Millisecond

// positive reads a duration that must be greater than zero.
func positive(b *serverxml.Binder, name string, unit time.Duration, dst *time.Duration) bool {
	var d time.Duration
	if !b.Duration(name, unit, &d) {
		return false
	}
	if d <= 0 {
		b.Fail(name, nil, "%s must be positive", name)
		return false
	}
	*dst = d
	return true
}

// atLeast reads an integer that must be at least lo.
func atLeast(b *serverxml.Binder, name string, lo int, dst *int) bool {
	var n int
	if !b.Int(name, &n) {
		return false
	}
	if n < lo {
		b.Fail(name, nil, "%s must be at least %d", name, lo)
		return false
	}
	*dst = n
	return true
}

// optionFlag reads Tomcat's optionFlag: a number, or option names as
// channelSendOptions takes them.
func optionFlag(b *serverxml.Binder, dst *tribes.Options) bool {
	return b.Func("optionFlag", func(v string) error {
		o, err := tribes.ParseOptions(v)
		if err != nil {
			return fmt.Errorf("is not a number or a list of send options")
		}
		*dst = o
		return nil
	})
}

// alias reads a deprecated Tomcat attribute name with read, noting the
// current name.
func alias(b *serverxml.Binder, old, current string, read func(name string) bool) {
	if read(old) {
		b.Note(old, "deprecated Tomcat name of %q", current)
	}
}

// failCtor records a constructor's error on the element.
func failCtor(b *serverxml.Binder, attr string, err error) error {
	return serverxml.ErrorAt(b.Element(), attr, fmt.Errorf("%w: %w", serverxml.ErrBadValue, err), "%v", err)
}

func appendInterceptor(bd *Build, ic tribes.Interceptor) {
	bd.Config.Interceptors = append(bd.Config.Interceptors, ic)
}

// groupChannel maps GroupChannel's attributes.
func groupChannel(b *serverxml.Binder, bd *Build) error {
	hb := true
	if b.Bool("heartbeat", &hb) && !hb {
		b.Warn("heartbeat", `"false" is not supported: the channel always sends its heartbeat down the stack (the failure detector and the interceptors need it); ignored`)
	}
	positive(b, "heartbeatSleeptime", ms, &bd.Config.HeartbeatInterval)
	b.Ignore("wasmfarm has no JMX", "jmxEnabled", "jmxDomain", "jmxPrefix")
	b.Ignore("interceptor option flags are not cross-checked at start", "optionCheck")
	b.Ignore("a wasmfarm channel has no name", "name")
	return nil
}

// parseHost reads a member host: an IP address, or Tomcat's byte form
// "{192,168,0,1}". Host names are refused: they would be resolved once,
// at load time, which hides DNS changes.
func parseHost(v string) (netip.Addr, error) {
	if strings.HasPrefix(v, "{") && strings.HasSuffix(v, "}") {
		parts := strings.Split(v[1:len(v)-1], ",")
		if len(parts) == 4 || len(parts) == 16 {
			b := make([]byte, len(parts))
			for i, p := range parts {
				n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 16)
				if err != nil || n < -128 || n > 255 {
					return netip.Addr{}, fmt.Errorf("is not an address in the {b0,b1,...} form")
				}
				b[i] = byte(n)
			}
			a, _ := netip.AddrFromSlice(b)
			return a, nil
		}
		return netip.Addr{}, fmt.Errorf("is not an address in the {b0,b1,...} form (4 or 16 bytes)")
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("is not an IP address (host names are not resolved when loading; write the member's address)")
	}
	return a.Unmap(), nil
}

func parseDomain(dst *[]byte) func(string) error {
	return func(v string) error {
		d, err := interceptors.ParseDomain(v)
		if err != nil {
			return fmt.Errorf("is not a domain: %v", err)
		}
		*dst = d
		return nil
	}
}

// staticMembers reads the <Member> and <LocalMember> children of a static
// membership element. LocalMember's uniqueId and domain also become the
// channel's.
func staticMembers(b *serverxml.Binder, bd *Build) (members []*tribes.Member, local *tribes.Member, err error) {
	var errs []error
	read := func(el *serverxml.Element, isLocal bool) *tribes.Member {
		mb := el.Bind()
		done := func() bool {
			ws, derr := mb.Done()
			b.AddWarnings(ws...)
			b.AddError(derr)
			return derr == nil
		}
		if _, _, err := bd.Registry.Bind(mb, KindMember, StaticMember); err != nil {
			errs = append(errs, err)
			done()
			return nil
		}
		m := &tribes.Member{SecurePort: -1, UDPPort: -1}
		if isLocal {
			mb.Ignore("the local member's address and ports are the <Receiver>'s", "host", "port", "securePort", "udpPort")
		} else {
			if !mb.Func("host", func(v string) (err error) { m.Host, err = parseHost(v); return err }) && !mb.Has("host") {
				mb.Fail("", nil, "<%s> has no host", el.Name)
			}
			var port int
			if mb.Int("port", &port) {
				if port < 1 || port > 65535 {
					mb.Fail("port", nil, "port %d out of range 1..65535", port)
				}
				m.Port = port
			} else if !mb.Has("port") {
				mb.Fail("", nil, "<%s> has no port", el.Name)
			}
			for _, p := range []struct {
				name string
				dst  *int
			}{{"securePort", &m.SecurePort}, {"udpPort", &m.UDPPort}} {
				if mb.Int(p.name, p.dst) && (*p.dst < -1 || *p.dst > 65535) {
					mb.Fail(p.name, nil, "%s %d out of range -1..65535", p.name, *p.dst)
				}
			}
		}
		hasID := mb.Func("uniqueId", func(v string) (err error) {
			if m.UniqueID, err = tribes.ParseUniqueID(v); err != nil {
				return errors.New("is not a unique id ({16 signed bytes}, 32 hexadecimal digits or a UUID)")
			}
			return nil
		})
		if !hasID && !isLocal && !mb.Has("uniqueId") {
			mb.Warn("", "no uniqueId: the member's id is all zeros, and members are told apart by host, port and id, so it must be the id that node uses (spec §10)")
		}
		mb.Func("domain", parseDomain(&m.Domain))
		if !done() {
			return nil
		}
		if isLocal {
			if hasID {
				bd.Config.UniqueID = m.UniqueID
			}
			if m.Domain != nil {
				bd.Config.Domain = m.Domain
			}
		}
		return m
	}
	for _, el := range b.Children("Member") {
		if m := read(el, false); m != nil {
			members = append(members, m)
		}
	}
	if el := b.Child("LocalMember"); el != nil {
		local = read(el, true)
	}
	return members, local, errors.Join(errs...)
}
