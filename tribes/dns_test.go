package tribes

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestDNSUniqueID(t *testing.T) {
	// md5 of the Java text form of the address, as Tomcat's
	// DNSMembershipProvider computes it.
	tests := []struct {
		addr, java, md5 string
	}{
		{"10.0.0.5", "10.0.0.5", "0669df0f031fb83e345267a9679bbc6a"},
		{"::ffff:10.0.0.5", "10.0.0.5", "0669df0f031fb83e345267a9679bbc6a"},
		{"::1", "0:0:0:0:0:0:0:1", "5d4905e9588912f5f2229f0428c6bc65"},
		{"fd00::2", "fd00:0:0:0:0:0:0:2", "a6cad09e854a812c4a29a8237e98f662"},
		{"2001:DB8::ABCD%eth0", "2001:db8:0:0:0:0:0:abcd", "b5afdec741f5b39212301a76a19ce1d2"},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tc.addr)
			if got := javaHostAddress(a); got != tc.java {
				t.Fatalf("Java form %q, want %q", got, tc.java)
			}
			id := DNSUniqueID(a)
			if got := hex.EncodeToString(id[:]); got != tc.md5 {
				t.Fatalf("id %s, want %s", got, tc.md5)
			}
		})
	}
}

func TestNewDNS(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  DNSConfig
		text string
	}{
		{"no name", DNSConfig{}, "no name"},
		{"negative interval", DNSConfig{Name: "x", Interval: -1}, "negative"},
		{"port", DNSConfig{Name: "x", Port: 65536}, "port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewDNS(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("error %v, want one containing %q", err, tc.text)
			}
		})
	}
	d, err := NewDNS(DNSConfig{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if d.cfg.Interval != 5*time.Second || d.cfg.Resolver != net.DefaultResolver {
		t.Fatalf("defaults %+v", d.cfg)
	}
}

// dnsFake is a resolver whose answer the test changes.
type dnsFake struct {
	mu    sync.Mutex
	addrs []string
	err   error
	names []string
}

func (f *dnsFake) set(err error, addrs ...string) {
	f.mu.Lock()
	f.addrs, f.err = addrs, err
	f.mu.Unlock()
}

func (f *dnsFake) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.names = append(f.names, network+" "+host)
	if f.err != nil {
		return nil, f.err
	}
	var out []netip.Addr
	for _, a := range f.addrs {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

// dnsEvents records events as "+10.0.0.1", "-10.0.0.2".
type dnsEvents struct {
	mu  sync.Mutex
	evs []string
}

func (l *dnsEvents) add(ev MemberEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sign := map[MemberEventType]string{MemberAdded: "+", MemberDisappeared: "-", MemberUpdated: "~"}[ev.Type]
	l.evs = append(l.evs, sign+ev.Member.Host.String())
}

func (l *dnsEvents) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.Join(l.evs, " ")
	l.evs = nil
	return s
}

func TestDNSMembership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const every = 5 * time.Second
		res := &dnsFake{}
		local := &Member{Host: netip.MustParseAddr("10.0.0.9"), Port: 4000, SecurePort: -1, UDPPort: -1, Domain: []byte("dom")}
		local.UniqueID = DNSUniqueID(local.Host)
		res.set(nil, "10.0.0.1", "10.0.0.9", "10.0.0.2")
		logs := &mcLogs{}
		d, err := NewDNS(DNSConfig{Name: "app.ns.svc.cluster.local", Resolver: res, Logger: logs.logger()})
		if err != nil {
			t.Fatal(err)
		}
		var ev dnsEvents
		if err := d.Start(t.Context(), local, ev.add); err != nil {
			t.Fatal(err)
		}
		defer d.Stop(context.Background())
		step := func(what, want string) {
			t.Helper()
			synctest.Wait()
			if got := ev.take(); got != want {
				t.Fatalf("%s: events %q, want %q", what, got, want)
			}
		}
		step("start", "+10.0.0.1 +10.0.0.2") // own address skipped
		ms := d.Members()
		if len(ms) != 2 {
			t.Fatalf("%d members", len(ms))
		}
		for _, m := range ms {
			if m.Port != 4000 || m.UniqueID != DNSUniqueID(m.Host) || string(m.Domain) != "dom" || m.SecurePort != -1 || m.UDPPort != -1 {
				t.Fatalf("member %+v", m)
			}
		}

		res.set(nil, "10.0.0.2", "::ffff:10.0.0.3", "10.0.0.9")
		time.Sleep(every - time.Millisecond)
		step("before the interval", "")
		time.Sleep(time.Millisecond)
		step("record changes", "+10.0.0.3 -10.0.0.1")

		res.set(errors.New("server misbehaving"))
		time.Sleep(every)
		step("lookup failure", "")
		if got := mcKeysHosts(d.Members()); got != "10.0.0.2 10.0.0.3" {
			t.Fatalf("members after a failed lookup: %s", got)
		}

		res.set(&net.DNSError{Err: "no such host", Name: "app", IsNotFound: true})
		time.Sleep(every)
		step("name gone", "-10.0.0.2 -10.0.0.3")

		res.set(nil, "fd00::2")
		time.Sleep(every)
		step("IPv6 record", "+fd00::2")
		if strings.Contains(logs.String(), "unique id") {
			t.Fatalf("warned about a correct unique id:\n%s", logs)
		}
		res.mu.Lock()
		defer res.mu.Unlock()
		if len(res.names) != 5 || res.names[0] != "ip app.ns.svc.cluster.local" {
			t.Fatalf("lookups %q", res.names)
		}
	})
}

func mcKeysHosts(ms []*Member) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Host.String())
	}
	return strings.Join(s, " ")
}

func TestDNSWarnsAboutLocalUniqueID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &mcLogs{}
		d, _ := NewDNS(DNSConfig{Name: "x", Resolver: &dnsFake{}, Logger: logs.logger()})
		if err := d.Start(t.Context(), mcLocal(1), nil); err != nil {
			t.Fatal(err)
		}
		d.Stop(t.Context())
		if !strings.Contains(logs.String(), "DNSUniqueID") {
			t.Fatalf("no warning about the local unique id:\n%s", logs)
		}
	})
}

func TestDNSPortAndStartStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		res := &dnsFake{}
		res.set(nil, "127.0.0.1", "10.0.0.1")
		d, _ := NewDNS(DNSConfig{Name: "x", Port: 5000, Resolver: res})
		local := mcLocal(1) // 127.0.0.1:4001: another port, so 127.0.0.1:5000 is a member
		var ev dnsEvents
		if err := d.Start(t.Context(), local, ev.add); err != nil {
			t.Fatal(err)
		}
		if err := d.Start(t.Context(), local, nil); !errors.Is(err, ErrMembershipStarted) {
			t.Fatalf("second Start: %v", err)
		}
		if got := fmt.Sprint(d.Members()[0].Port, d.Members()[1].Port); got != "5000 5000" {
			t.Fatalf("ports %s", got)
		}
		if got := ev.take(); got != "+127.0.0.1 +10.0.0.1" {
			t.Fatalf("events %q", got)
		}
		if err := d.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if d.Members() != nil || ev.take() != "" {
			t.Fatal("members or events after Stop")
		}
	})
}
