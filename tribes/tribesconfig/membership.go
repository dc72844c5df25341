package tribesconfig

import (
	"github.com/wasmfarm/wasmfarm/internal/serverxml"
	"github.com/wasmfarm/wasmfarm/tribes"
)

// Tomcat's membership providers for CloudMembershipService.
const (
	DNSMembershipProvider        = "org.apache.catalina.tribes.membership.cloud.DNSMembershipProvider"
	KubernetesMembershipProvider = "org.apache.catalina.tribes.membership.cloud.KubernetesMembershipProvider"
)

// mcastService maps McastService to tribes.McastConfig.
func mcastService(b *serverxml.Binder, bd *Build) error {
	c := &bd.Config.Mcast
	str := func(dst *string) func(string) bool { return func(n string) bool { return b.String(n, dst) } }
	num := func(dst *int) func(string) bool { return func(n string) bool { return b.Int(n, dst) } }
	dur := func(n string) bool { return positive(b, n, ms, &c.Frequency) }
	drop := func(n string) bool { return positive(b, n, ms, &c.DropTime) }

	alias(b, "mcastAddr", "address", str(&c.Address))
	b.String("address", &c.Address)
	alias(b, "mcastPort", "port", num(&c.Port))
	b.Int("port", &c.Port)
	alias(b, "mcastFrequency", "frequency", dur)
	dur("frequency")
	alias(b, "mcastDropTime", "dropTime", drop)
	drop("dropTime")
	alias(b, "mcastBindAddress", "bind", str(&c.Bind))
	b.String("bind", &c.Bind)
	b.Int("ttl", &c.TTL)
	b.Bool("localLoopbackDisabled", &c.LocalLoopbackDisabled)
	b.Func("domain", parseDomain(&bd.Config.Domain))
	b.Ignore("the receive loop needs no socket timeout", "soTimeout")
	b.Ignore("not needed: after a send or receive error the service keeps going and retries; it never stops itself", "recoveryEnabled", "recoveryCounter", "recoverySleepTime")
	if _, err := tribes.NewMcast(*c); err != nil {
		return failCtor(b, "", err)
	}
	return nil
}

// staticMembershipService maps StaticMembershipService and its <Member>
// children to tribes.NewStatic.
func staticMembershipService(b *serverxml.Binder, bd *Build) error {
	sc := tribes.DefaultStaticConfig()
	positive(b, "pingInterval", ms, &sc.Frequency)
	positive(b, "expirationTime", ms, &sc.DropTime)
	positive(b, "connectTimeout", ms, &sc.ConnectTimeout)
	b.Ignore("wasmfarm's static membership checks members with a TCP connect and exchanges no RPC messages", "rpcTimeout", "useThread")
	members, _, err := staticMembers(b, bd)
	if err != nil {
		return err
	}
	sc.Members = members
	bd.seen(sc)
	m, err := tribes.NewStatic(sc)
	if err != nil {
		return failCtor(b, "", err)
	}
	bd.Config.Membership = m
	return nil
}

// cloudMembershipService maps CloudMembershipService with the DNS provider
// to tribes.NewDNS.
func cloudMembershipService(b *serverxml.Binder, bd *Build) error {
	var provider string
	b.String("membershipProviderClassName", &provider)
	b.Ignore("DNS lookups have their own timeouts, and members last as long as their DNS record", "connectTimeout", "readTimeout", "expirationTime")
	switch provider {
	case "dns", DNSMembershipProvider, "DNSMembershipProvider":
	case "", "kubernetes", KubernetesMembershipProvider, "KubernetesMembershipProvider":
		return serverxml.ErrorAt(b.Element(), "membershipProviderClassName", ErrNotSupported,
			`the Kubernetes API membership provider (CloudMembershipService's default) is not supported; `+
				`use membershipProviderClassName="dns" with a headless service`)
	default:
		return serverxml.ErrorAt(b.Element(), "membershipProviderClassName", serverxml.ErrUnknownClass,
			"unknown membership provider %q; known: dns (%s)", provider, DNSMembershipProvider)
	}
	var name string
	if !b.String("dnsMembershipServiceName", &name) {
		name = bd.Getenv("DNS_MEMBERSHIP_SERVICE_NAME")
	}
	if name == "" {
		return serverxml.ErrorAt(b.Element(), "", serverxml.ErrBadValue,
			"no DNS name to look up: set the DNS_MEMBERSHIP_SERVICE_NAME environment variable, as for Tomcat, or the dnsMembershipServiceName attribute")
	}
	dc := tribes.DNSConfig{Name: name, Interval: bd.Config.HeartbeatInterval}
	bd.seen(dc)
	m, err := tribes.NewDNS(dc)
	if err != nil {
		return failCtor(b, "", err)
	}
	bd.Config.Membership = m
	return nil
}
