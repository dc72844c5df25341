package interceptors_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
)

func TestOrderWireFormat(t *testing.T) {
	net := newMemNet()
	a := newNode(t, net, nil, interceptors.NewOrder(interceptors.OrderConfig{}))
	b := newNode(t, net, nil, interceptors.NewOrder(interceptors.OrderConfig{}))
	c := newNode(t, net, nil, interceptors.NewOrder(interceptors.OrderConfig{}))
	tap := tapOf(a.tr)

	a.mustSend(t, []byte("m1"), 0, b.local(), c.local()) // B:1 C:1
	a.mustSend(t, []byte("m2"), 0, b.local())            // B:2
	a.mustSend(t, []byte("m3"), 0, c.local(), b.local()) // C:2 B:3

	seqs := map[string][]string{}
	tap.mu.Lock()
	for i, w := range tap.msgs {
		body, seq, err := interceptors.ParseSeq(w.Data)
		if err != nil {
			t.Fatal(err)
		}
		if binary.BigEndian.Uint32(w.Data[len(w.Data)-4:]) != uint32(seq) {
			t.Fatal("ParseSeq disagrees with the trailing int32")
		}
		who := "B"
		if tap.to[i].Key() == c.local().Key() {
			who = "C"
		}
		seqs[who] = append(seqs[who], string(body)+"#"+strconv.Itoa(int(seq)))
	}
	tap.mu.Unlock()
	for _, s := range seqs {
		slices.Sort(s)
	}
	if got := fmt.Sprint(seqs); got != "map[B:[m1#1 m2#2 m3#3] C:[m1#1 m3#2]]" {
		t.Fatalf("sequence numbers on the wire: %s", got)
	}
	if got := b.received(); !slices.Equal(got, []string{"m1", "m2", "m3"}) {
		t.Fatalf("B received %q", got)
	}
	if got := c.received(); !slices.Equal(got, []string{"m1", "m3"}) {
		t.Fatalf("C received %q", got)
	}
}

// orderRig is a node with an Order interceptor and a fake clock, fed by
// hand-made messages from one source.
type orderRig struct {
	*node
	o   *interceptors.Order
	clk *fakeClock
	src *tribes.Member
}

func newOrderRig(t *testing.T, cfg interceptors.OrderConfig) *orderRig {
	o := interceptors.NewOrder(cfg)
	clk := newFakeClock(time.Unix(1000, 0))
	interceptors.SetOrderClock(o, clk.Now)
	n := newNode(t, newMemNet(), nil, o)
	return &orderRig{node: n, o: o, clk: clk, src: &tribes.Member{Host: netipAddr(1), Port: 4000, SecurePort: -1, UDPPort: -1}}
}

func (r *orderRig) in(t *testing.T, seqs ...int32) {
	t.Helper()
	for _, s := range seqs {
		data := interceptors.AppendSeq([]byte("m"+strconv.Itoa(int(s))), s)
		if err := r.tr.inject(msgFrom(r.src, 0, data)); err != nil {
			t.Fatal(err)
		}
	}
}

func (r *orderRig) got() string { return strings.Join(r.received(), " ") }

func TestOrderReorders(t *testing.T) {
	tests := []struct {
		name string
		cfg  interceptors.OrderConfig
		in   []int32
		want string
	}{
		{"in order", interceptors.OrderConfig{}, []int32{1, 2, 3}, "m1 m2 m3"},
		{"swapped", interceptors.OrderConfig{}, []int32{2, 1, 3}, "m1 m2 m3"},
		{"reversed", interceptors.OrderConfig{}, []int32{4, 3, 2, 1}, "m1 m2 m3 m4"},
		{"gap held", interceptors.OrderConfig{}, []int32{1, 3, 4}, "m1"},
		{"duplicate passes at once", interceptors.OrderConfig{}, []int32{1, 2, 1}, "m1 m2 m1"},
		{"max queue releases", interceptors.OrderConfig{MaxQueue: 2}, []int32{1, 4, 3, 5}, "m1 m3 m4 m5"},
		{"max queued bytes releases", interceptors.OrderConfig{MaxQueuedBytes: 3}, []int32{3, 4}, "m3 m4"},
		{"max queue drops with DropExpired", interceptors.OrderConfig{MaxQueue: 2, DropExpired: true}, []int32{1, 4, 3, 5}, "m1 m5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newOrderRig(t, tc.cfg)
			r.in(t, tc.in...)
			if got := r.got(); got != tc.want {
				t.Fatalf("received %q, want %q", got, tc.want)
			}
		})
	}
}

func TestOrderExpire(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprint("DropExpired=", drop), func(t *testing.T) {
			r := newOrderRig(t, interceptors.OrderConfig{DropExpired: drop})
			r.in(t, 3) // waits for 1 and 2
			r.clk.Advance(2 * time.Second)
			r.in(t, 5)
			r.clk.Advance(999 * time.Millisecond)
			r.heartbeat()
			if got := r.got(); got != "" {
				t.Fatalf("released before expire: %q", got)
			}
			r.clk.Advance(time.Millisecond) // m3 has waited 3 s
			r.heartbeat()
			want := "m3"
			if drop {
				want = ""
			}
			if got := r.got(); got != want {
				t.Fatalf("after m3 expired: %q, want %q", got, want)
			}
			r.in(t, 4) // fills the next gap: m4 and the held m5 pass
			if drop {
				want = "m4 m5"
			} else {
				want = "m3 m4 m5"
			}
			if got := r.got(); got != want {
				t.Fatalf("after m4: %q, want %q", got, want)
			}
			r.in(t, 1) // late: passed at once
			if got := r.got(); !strings.HasSuffix(got, "m1") {
				t.Fatalf("late message not delivered: %q", got)
			}
			s := r.o.Stats()
			if s.Released != 1 || s.Queued != 2 || s.Waiting != 0 || (s.Dropped == 1) != drop {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestOrderExpiresOnNextMessage(t *testing.T) {
	r := newOrderRig(t, interceptors.OrderConfig{})
	r.in(t, 2)
	r.clk.Advance(3 * time.Second)
	r.in(t, 4) // expiry is checked on receipt too, as in Tribes
	if got := r.got(); got != "m2" {
		t.Fatalf("received %q", got)
	}
	r.in(t, 3)
	if got := r.got(); got != "m2 m3 m4" {
		t.Fatalf("received %q", got)
	}
}

func TestOrderMemberDisappearedFlushes(t *testing.T) {
	r := newOrderRig(t, interceptors.OrderConfig{})
	r.see(r.src)
	waitMember(t, r.added, r.src, "source added")
	r.in(t, 3, 2)
	r.mb.emit(tribes.MemberDisappeared, r.src)
	waitMember(t, r.gone, r.src, "source gone")
	if got := r.got(); got != "m2 m3" {
		t.Fatalf("held messages after departure: %q", got)
	}
	// The counters restart: a new 1 is in order.
	r.in(t, 1)
	if got := r.got(); got != "m2 m3 m1" {
		t.Fatalf("received %q", got)
	}
	if s := r.o.Stats(); s.Flushed != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestOrderGatedAndMalformed(t *testing.T) {
	net := newMemNet()
	o := interceptors.NewOrder(interceptors.OrderConfig{OptionFlag: 0x200})
	a := newNode(t, net, nil, interceptors.NewOrder(interceptors.OrderConfig{OptionFlag: 0x200}))
	b := newNode(t, net, nil, o)
	tap := tapOf(a.tr)
	a.mustSend(t, []byte("plain"), 0, b.local())
	a.mustSend(t, []byte("ordered"), 0x200, b.local())
	w := tap.all()
	if string(w[0].Data) != "plain" || len(w[1].Data) != len("ordered")+4 {
		t.Fatalf("wire: %q, %q", w[0].Data, w[1].Data)
	}
	b.tr.inject(msgFrom(a.local(), 0x200, []byte{1, 2, 3})) // too short
	if got := b.received(); !slices.Equal(got, []string{"plain", "ordered"}) {
		t.Fatalf("received %q", got)
	}
	if s := o.Stats(); s.Invalid != 1 || s.Received != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestOrderConcurrentSenders sends from many goroutines to two members;
// the memory transport delivers each send on its own goroutine, so numbered
// messages race to the receiver, which must deliver every message once and
// each goroutine's messages in the order it sent them.
func TestOrderConcurrentSenders(t *testing.T) {
	net := newMemNet()
	a := newNode(t, net, nil, interceptors.NewOrder(interceptors.OrderConfig{}))
	ob := interceptors.NewOrder(interceptors.OrderConfig{})
	b := newNode(t, net, nil, ob)
	c := newNode(t, net, nil, interceptors.NewOrder(interceptors.OrderConfig{}))
	const goroutines, each = 8, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				a.mustSend(t, fmt.Appendf(nil, "%d:%d", g, i), 0, b.local(), c.local())
			}
		})
	}
	wg.Wait()
	for _, n := range []*node{b, c} {
		got := n.received()
		if len(got) != goroutines*each {
			t.Fatalf("received %d messages, want %d", len(got), goroutines*each)
		}
		next := make([]int, goroutines)
		for _, s := range got {
			var g, i int
			fmt.Sscanf(s, "%d:%d", &g, &i)
			if i != next[g] {
				t.Fatalf("goroutine %d: got message %d, want %d", g, i, next[g])
			}
			next[g]++
		}
	}
	t.Logf("B held back %d of %d messages", ob.Stats().Queued, goroutines*each)
}

// TestOrderHoldingIsNotQuadratic: holding a message back costs about the
// same whatever the queue's length; checking the queue for expired
// messages must not scan it all on every message. 30000 held messages take
// a few tens of milliseconds when each costs O(1) (O(n) each: ~10 s).
func TestOrderHoldingIsNotQuadratic(t *testing.T) {
	r := newOrderRig(t, interceptors.OrderConfig{MaxQueuedBytes: 1 << 30, DropExpired: true})
	msgs := make([]*tribes.Message, 0, 30_000)
	for seq := int32(2); len(msgs) < cap(msgs); seq += 2 { // every one ahead of a gap
		msgs = append(msgs, msgFrom(r.src, 0, interceptors.AppendSeq(nil, seq)))
	}
	start := time.Now()
	for _, m := range msgs {
		if err := r.tr.inject(m); err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(start)
	if s := r.o.Stats(); s.Waiting != int64(len(msgs)) {
		t.Fatalf("stats %+v, want all %d waiting", s, len(msgs))
	}
	if took > 2*time.Second {
		t.Errorf("holding %d messages back took %v", len(msgs), took)
	}
	// They still expire, in one go.
	r.clk.Advance(interceptors.DefaultOrderExpire)
	r.heartbeat()
	if s := r.o.Stats(); s.Waiting != 0 || s.Dropped != int64(len(msgs)) {
		t.Fatalf("after Expire: stats %+v", s)
	}
}

// TestOrderMatchesModel: random arrivals, clock steps and heartbeats give
// the deliveries of a straightforward model of Order (scan the whole queue
// for the last expired message on every event).
func TestOrderMatchesModel(t *testing.T) {
	type held struct {
		seq int32
		at  time.Duration
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		cfg := interceptors.OrderConfig{MaxQueue: 2 + rng.IntN(8), DropExpired: rng.IntN(2) == 0}
		r := newOrderRig(t, cfg)
		var (
			next  int32 = 1
			queue []held
			now   time.Duration
			want  []string
		)
		deliver := func(seq int32, pass bool) {
			if pass {
				want = append(want, "m"+strconv.Itoa(int(seq)))
			}
		}
		drain := func() {
			for len(queue) > 0 && queue[0].seq <= next {
				h := queue[0]
				queue = queue[1:]
				if h.seq == next {
					next++
				}
				deliver(h.seq, true)
			}
		}
		expire := func(force bool) {
			last := -1
			for i, h := range queue {
				if force || now-h.at >= interceptors.DefaultOrderExpire {
					last = i
				}
			}
			for range last + 1 {
				h := queue[0]
				queue = queue[1:]
				next = max(next, h.seq+1)
				deliver(h.seq, !cfg.DropExpired)
			}
			drain()
		}
		for range 60 {
			switch k := rng.IntN(10); {
			case k < 2:
				d := time.Duration(rng.IntN(2000)) * time.Millisecond
				now += d
				r.clk.Advance(d)
			case k < 3:
				r.heartbeat()
				if len(queue) > 0 {
					expire(false)
				}
			default:
				seq := next - 2 + int32(rng.IntN(12))
				r.in(t, seq)
				if seq <= next {
					if seq == next {
						next++
					}
					deliver(seq, true)
					if len(queue) > 0 {
						drain()
						expire(false)
					}
					continue
				}
				i := len(queue)
				for i > 0 && queue[i-1].seq > seq {
					i--
				}
				queue = slices.Insert(queue, i, held{seq, now})
				expire(len(queue) >= cfg.MaxQueue)
			}
		}
		if got, w := r.got(), strings.Join(want, " "); got != w {
			t.Fatalf("round %d (%+v):\ngot  %s\nwant %s", round, cfg, got, w)
		}
	}
}
