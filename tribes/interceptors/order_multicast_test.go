package interceptors_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
)

// sendRecorder sits below the interceptor under test and records what
// reaches it, without passing it on.
type sendRecorder struct {
	tribes.BaseInterceptor
	mu   sync.Mutex
	data [][]byte
	to   [][]*tribes.Member
}

func (r *sendRecorder) SendMessage(ctx context.Context, to []*tribes.Member, msg *tribes.Message) error {
	r.mu.Lock()
	r.data = append(r.data, bytes.Clone(msg.Data))
	r.to = append(r.to, to)
	r.mu.Unlock()
	return nil
}

// TestOrderPassesMulticastThroughUnnumbered: a multicast message
// (OptMulticast) is one datagram for every member, so it cannot carry a
// per-destination sequence number. Order passes it down unnumbered and,
// since the option travels with it, passes a received one up unchanged:
// no bytes stripped, none held back, short ones not dropped. Numbered
// messages from the same sender are not disturbed.
func TestOrderPassesMulticastThroughUnnumbered(t *testing.T) {
	t.Run("send", func(t *testing.T) {
		o := interceptors.NewOrder(interceptors.OrderConfig{})
		rec := &sendRecorder{}
		a := newNode(t, newMemNet(), nil, o, rec)
		a.mustSend(t, []byte("hello world"), tribes.OptMulticast)
		a.mustSend(t, []byte("hi"), tribes.OptMulticast)
		if want := [][]byte{[]byte("hello world"), []byte("hi")}; !slices.EqualFunc(rec.data, want, bytes.Equal) {
			t.Errorf("passed down %q, want %q", rec.data, want)
		}
		for _, to := range rec.to {
			if len(to) != 0 {
				t.Errorf("multicast passed down with destinations %v", to)
			}
		}
		if s := o.Stats(); s.Sent != 0 {
			t.Errorf("stats %+v, want nothing numbered", s)
		}
	})
	t.Run("receive", func(t *testing.T) {
		r := newOrderRig(t, interceptors.OrderConfig{})
		mc := tribes.OptByteMessage | tribes.OptMulticast
		r.in(t, 2) // numbered, held for 1
		for _, d := range []string{"hello world", "hi", ""} {
			if err := r.tr.inject(msgFrom(r.src, mc, []byte(d))); err != nil {
				t.Fatal(err)
			}
		}
		r.in(t, 1)
		if got, want := r.received(), []string{"hello world", "hi", "", "m1", "m2"}; !slices.Equal(got, want) {
			t.Errorf("received %q, want %q", got, want)
		}
		if s := r.o.Stats(); s.Invalid != 0 || s.Received != 2 || s.Waiting != 0 {
			t.Errorf("stats %+v, want the two numbered messages only", s)
		}
	})
}

// TestOrderMulticastOverTheGroup sends multicast messages between two
// channels with Order over real multicast (on lo, TTL 0): they arrive
// intact.
func TestOrderMulticastOverTheGroup(t *testing.T) {
	mc := tribestest.McastConfig(t)
	mk := func() (*tribes.Channel, *interceptors.Order) {
		cfg := tribes.LocalConfig()
		cfg.Mcast = mc
		o := interceptors.NewOrder(interceptors.OrderConfig{})
		cfg.Interceptors = []tribes.Interceptor{o}
		c, err := tribes.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Stop(context.Background()) })
		return c, o
	}
	a, _ := mk()
	b, ob := mk()
	got := make(chan string, 4)
	b.AddMessageListener(tribes.ListenerFunc(func(m *tribes.Message) error {
		got <- string(m.Data)
		return nil
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.AwaitMembers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hello world", "hi"} {
		if err := a.Send(ctx, nil, []byte(want), tribes.OptMulticast); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-got:
			if s != want {
				t.Fatalf("B got %q, want %q", s, want)
			}
		case <-ctx.Done():
			t.Fatalf("%q not delivered (B's Order: %+v)", want, ob.Stats())
		}
	}
}
