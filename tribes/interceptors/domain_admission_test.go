package interceptors_test

import (
	"context"
	"testing"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
)

// gatedProbes is a memTransport whose probes each wait for a token.
type gatedProbes struct {
	*memTransport
	gate chan struct{}
}

func (g *gatedProbes) Probe(ctx context.Context, m *tribes.Member, cfg tribes.ProbeConfig) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.memTransport.Probe(ctx, m, cfg)
}

// TestDomainFilterIgnoresUpdatesOfUnadmittedMembers: a member of the
// domain whose port never answered is not admitted by the failure
// detector below the filter; a change of its record (MemberUpdated, which
// the channel gives every layer) must not admit it either, or it would
// stay in Channel.Members after it expired, since the failure detector
// swallows the disappearance of a member it never admitted.
func TestDomainFilterIgnoresUpdatesOfUnadmittedMembers(t *testing.T) {
	df, err := interceptors.NewDomainFilter(interceptors.DomainFilterConfig{Domain: "A"})
	if err != nil {
		t.Fatal(err)
	}
	a := newNode(t, newMemNet(), func(c *tribes.Config) { c.Domain = []byte("A") },
		df, tribes.NewFailureDetector(tribes.FailureDetectorConfig{}))
	ghost := &tribes.Member{Host: netipAddr(1), Port: 4000, SecurePort: -1, UDPPort: -1,
		UniqueID: tribes.NewUniqueID(), Domain: []byte("A")}
	a.mb.emit(tribes.MemberAdded, ghost)
	upd := ghost.Clone()
	upd.Payload = []byte("v2")
	a.mb.emit(tribes.MemberUpdated, upd)
	if len(a.added) != 0 || len(a.ch.Members()) != 0 {
		t.Errorf("unverified member admitted by an update: members %v", a.ch.Members())
	}
	a.mb.emit(tribes.MemberDisappeared, upd)
	if ms := a.ch.Members(); len(ms) != 0 {
		t.Errorf("unverified, expired member still listed: %v", ms)
	}
}

// TestDomainFilterAdmitsUpdatedRecordOnceVerified: a member reported in
// another domain moves into the filter's domain while the failure
// detector's first probe of it runs. It is admitted when the probe
// succeeds, not before, with its latest record.
func TestDomainFilterAdmitsUpdatedRecordOnceVerified(t *testing.T) {
	net := newMemNet()
	df, err := interceptors.NewDomainFilter(interceptors.DomainFilterConfig{Domain: "A"})
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	a := newNode(t, net, func(c *tribes.Config) {
		c.Domain = []byte("A")
		c.Transport = &gatedProbes{memTransport: c.Transport.(*memTransport), gate: gate}
	}, df, tribes.NewFailureDetector(tribes.FailureDetectorConfig{}))
	t.Cleanup(func() { close(gate) }) // before a's Stop, which waits for the probes
	b := newNode(t, net, nil)
	rec := b.local()
	rec.Domain = []byte("C")
	a.mb.emit(tribes.MemberAdded, rec) // the probe waits at the gate
	upd := rec.Clone()
	upd.Domain = []byte("A")
	a.mb.emit(tribes.MemberUpdated, upd)
	if len(a.added) != 0 {
		t.Fatalf("admitted by the update before the probe answered: %v", <-a.added)
	}
	gate <- struct{}{}
	if m := waitMember(t, a.added, rec, "admitted after the probe"); string(m.Domain) != "A" {
		t.Errorf("admitted with domain %q, want the updated record's", m.Domain)
	}
	if ms := a.ch.Members(); len(ms) != 1 || string(ms[0].Domain) != "A" {
		t.Errorf("members %v", ms)
	}
}
