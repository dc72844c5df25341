package interceptors_test

import (
	"context"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
)

// TestDomainFilterFollowsUpdates: a member that announces a new domain in
// its heartbeats moves into and out of what the filter admits.
func TestDomainFilterFollowsUpdates(t *testing.T) {
	ctx := context.Background()
	net := tribestest.NewNetwork()
	nodeA, nodeB := net.NewNode(), net.NewNode()
	df, err := interceptors.NewDomainFilter(interceptors.DomainFilterConfig{Domain: "A"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := tribes.New(tribes.Config{Transport: nodeA.Transport(), Membership: nodeA.Membership(),
		Domain: []byte("A"), Interceptors: []tribes.Interceptor{df, tribes.NewFailureDetector(tribes.FailureDetectorConfig{})}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := tribes.New(tribes.Config{Transport: nodeB.Transport(), Membership: nodeB.Membership(), Domain: []byte("B")})
	if err != nil {
		t.Fatal(err)
	}
	added, gone := make(chan *tribes.Member, 4), make(chan *tribes.Member, 4)
	a.AddMembershipListener(tribes.MembershipFuncs{
		Added:       func(m *tribes.Member) { added <- m },
		Disappeared: func(m *tribes.Member) { gone <- m },
	})
	for _, ch := range []*tribes.Channel{a, b} {
		if err := ch.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer ch.Stop(ctx)
	}
	expect := func(ch chan *tribes.Member, what string) {
		t.Helper()
		select {
		case m := <-ch:
			if m.Key() != b.LocalMember().Key() {
				t.Fatalf("%s: got %v", what, m)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no event", what)
		}
	}
	select {
	case m := <-added:
		t.Fatalf("member of domain B admitted: %v", m)
	case <-time.After(100 * time.Millisecond):
	}

	rec := b.LocalMember().Clone()
	rec.Domain = []byte("A")
	if err := nodeB.Membership().Update(rec); err != nil {
		t.Fatal(err)
	}
	expect(added, "moved into domain A")
	if ms := a.Members(); len(ms) != 1 {
		t.Fatalf("A.Members() = %v", ms)
	}
	rec = rec.Clone()
	rec.Domain = []byte("C")
	if err := nodeB.Membership().Update(rec); err != nil {
		t.Fatal(err)
	}
	expect(gone, "moved out of domain A")
}
