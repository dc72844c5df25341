package interceptors_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
)

func TestParseDomain(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []byte
		err  bool
	}{
		{"plain", "staging-domain", []byte("staging-domain"), false},
		{"empty", "", []byte{}, false},
		{"latin-1", "caf\u00e9", []byte{'c', 'a', 'f', 0xe9}, false},
		{"bytes", "{216,123,12,3}", []byte{216, 123, 12, 3}, false},
		{"signed bytes and blanks", "{ -40 , 123,-1 }", []byte{216, 123, 255}, false},
		{"empty byte list", "{}", []byte{}, false},
		{"not latin-1", "\u20ac", nil, true},
		{"no closing brace", "{1,2", nil, true},
		{"out of range", "{256}", nil, true},
		{"not a number", "{a}", nil, true},
		{"empty element", "{1,,2}", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := interceptors.ParseDomain(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				if !errors.Is(err, interceptors.ErrBadDomain) {
					t.Fatalf("err %v does not wrap ErrBadDomain", err)
				}
				return
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDomainFilter(t *testing.T) {
	net := newMemNet()
	df, err := interceptors.NewDomainFilter(interceptors.DomainFilterConfig{Domain: "{65}"}) // "A"
	if err != nil {
		t.Fatal(err)
	}
	b := newNode(t, net, func(c *tribes.Config) { c.Domain = []byte("A") }, df)
	same := newNode(t, net, func(c *tribes.Config) { c.Domain = []byte("A") })
	other := newNode(t, net, func(c *tribes.Config) { c.Domain = []byte("B") })
	none := newNode(t, net, nil)

	// Membership: only the member of domain A is reported, once.
	b.see(other.local())
	b.see(none.local())
	b.see(same.local())
	waitMember(t, b.added, same.local(), "member of A")
	b.see(same.local()) // reported again by the membership
	noMember(t, b.added, 50*time.Millisecond, "second report or other domains")
	if ms := b.ch.Members(); len(ms) != 1 || ms[0].Key() != same.local().Key() {
		t.Fatalf("channel members %v, want the domain filter's view", ms)
	}

	// Messages: only those from domain A reach the listeners.
	same.mustSend(t, []byte("from A"), 0, b.local())
	other.mustSend(t, []byte("from B"), tribes.OptUseAck|tribes.OptSynchronizedAck, b.local()) // normal ACK
	none.mustSend(t, []byte("no domain"), 0, b.local())
	if got := b.received(); len(got) != 1 || got[0] != "from A" {
		t.Fatalf("received %q", got)
	}
	if s := df.Stats(); s.Accepted != 1 || s.Refused != 2 || s.RefusedMembers != 2 {
		t.Fatalf("stats %+v", s)
	}

	// Departures of other domains are swallowed; ours pass and leave the view.
	b.mb.emit(tribes.MemberDisappeared, other.local())
	b.mb.emit(tribes.MemberDisappeared, same.local())
	waitMember(t, b.gone, same.local(), "member of A left")
	noMember(t, b.gone, 50*time.Millisecond, "other domain left")
	if ms := df.Members(); len(ms) != 0 {
		t.Fatalf("view after departure: %v", ms)
	}
}

func TestDomainFilterEmptyDomain(t *testing.T) {
	net := newMemNet()
	df, err := interceptors.NewDomainFilter(interceptors.DomainFilterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	b := newNode(t, net, nil, df)
	none := newNode(t, net, nil)
	other := newNode(t, net, func(c *tribes.Config) { c.Domain = []byte("B") })
	none.mustSend(t, []byte("no domain"), 0, b.local())
	other.mustSend(t, []byte("domain B"), 0, b.local())
	if got := b.received(); len(got) != 1 || got[0] != "no domain" {
		t.Fatalf("received %q", got)
	}
}
