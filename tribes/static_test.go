package tribes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestNewStatic(t *testing.T) {
	s, err := NewStatic(StaticConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Frequency != time.Second || s.cfg.DropTime != 5*time.Second || s.cfg.ConnectTimeout != 500*time.Millisecond {
		t.Fatalf("defaults %+v", s.cfg)
	}
	for _, tc := range []struct {
		name string
		cfg  StaticConfig
		want error
		text string
	}{
		{"member without host", StaticConfig{Members: []*Member{{Port: 4000}}}, ErrBadMember, "static member 0"},
		{"member without port", StaticConfig{Members: []*Member{{Host: netip.MustParseAddr("10.0.0.1")}}}, ErrBadMember, "static member 0"},
		{"nil member", StaticConfig{Members: []*Member{nil}}, ErrBadMember, "static member 0"},
		{"drop time", StaticConfig{Frequency: time.Second, DropTime: time.Second}, nil, "must exceed"},
		{"connect timeout", StaticConfig{Frequency: time.Second, ConnectTimeout: 2 * time.Second}, nil, "connect timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewStatic(tc.cfg)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("error %v, want %v containing %q", err, tc.want, tc.text)
			}
		})
	}
}

// stFakeNet answers dials for the addresses marked up, with in-memory
// connections.
type stFakeNet struct {
	mu     sync.Mutex
	up     map[string]bool
	dialed []string
}

func (n *stFakeNet) set(addr string, up bool) {
	n.mu.Lock()
	n.up[addr] = up
	n.mu.Unlock()
}

func (n *stFakeNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	n.dialed = append(n.dialed, addr)
	up := n.up[addr]
	n.mu.Unlock()
	if !up {
		return nil, fmt.Errorf("dial %s: connection refused", addr)
	}
	c1, c2 := net.Pipe()
	c2.Close()
	return c1, nil
}

// TestStaticTiming runs the check rounds on synctest's clock.
func TestStaticTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn := &stFakeNet{up: map[string]bool{}}
		m1, m2, local := mbMember(1), mbMember(2), mbMember(9)
		fn.set(m1.AddrPort().String(), true)
		localEntry := local.Clone()
		localEntry.UniqueID = UniqueID{} // matched by address, whatever the id
		s, err := NewStatic(StaticConfig{
			Members:   []*Member{m1, m2, localEntry},
			Frequency: time.Second, DropTime: 5 * time.Second,
			Dial: fn.dial,
		})
		if err != nil {
			t.Fatal(err)
		}
		var log mbEventLog
		if err := s.Start(t.Context(), local, log.add); err != nil {
			t.Fatal(err)
		}
		defer s.Stop(context.Background())
		// Start returns after the first round has been reported.
		if got := log.String(); got != "added 1" {
			t.Fatalf("events after Start: %q", got)
		}
		if got := mcKeys(s.Members()); got != "1" {
			t.Fatalf("members %q", got)
		}
		time.Sleep(2500 * time.Millisecond)
		fn.set(m1.AddrPort().String(), false) // last success at 2 s
		time.Sleep(4500 * time.Millisecond)   // 7 s: 5 s since, not more
		synctest.Wait()
		if got := log.String(); got != "added 1" {
			t.Fatalf("events at 7 s: %q", got)
		}
		time.Sleep(time.Second) // 8 s
		synctest.Wait()
		if got := log.String(); got != "added 1, disappeared 1" {
			t.Fatalf("events at 8 s: %q", got)
		}
		fn.set(m2.AddrPort().String(), true)
		fn.set(m1.AddrPort().String(), true)
		time.Sleep(time.Second) // 9 s
		synctest.Wait()
		if got := log.String(); got != "added 1, disappeared 1, added 1, added 2" {
			t.Fatalf("events at 9 s: %q", got)
		}
		fn.mu.Lock()
		defer fn.mu.Unlock()
		if slices.Contains(fn.dialed, local.AddrPort().String()) {
			t.Fatal("the local member was checked")
		}
		if got, want := len(fn.dialed), 2*10; got != want { // 2 members, rounds at 0..9 s
			t.Fatalf("%d dials, want %d", got, want)
		}
	})
}

func TestStaticStartCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hang := func(ctx context.Context, network, addr string) (net.Conn, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		s, err := NewStatic(StaticConfig{Members: []*Member{mbMember(1)}, Dial: hang})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		if err := s.Start(ctx, mbMember(9), nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Start: %v, want deadline exceeded", err)
		}
		if s.Members() != nil {
			t.Fatal("members after a failed Start")
		}
		if err := s.Start(t.Context(), mbMember(9), nil); err != nil {
			t.Fatalf("Start after a failed Start: %v", err)
		}
		if err := s.Start(t.Context(), mbMember(9), nil); !errors.Is(err, ErrMembershipStarted) {
			t.Fatalf("second Start: %v", err)
		}
		if err := s.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestStaticLoopback checks real TCP connects: a member whose port listens
// is added, and dropped about DropTime after its listener closed.
func TestStaticLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("real TCP on loopback: skipped in -short mode")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead.Close() // nothing listens on its port
	up := &Member{Host: netip.MustParseAddr("127.0.0.1"), Port: l.Addr().(*net.TCPAddr).Port, SecurePort: -1, UDPPort: -1, UniqueID: UniqueID{1}}
	down := &Member{Host: netip.MustParseAddr("127.0.0.1"), Port: dead.Addr().(*net.TCPAddr).Port, SecurePort: -1, UDPPort: -1, UniqueID: UniqueID{2}}
	const freq, drop = 50 * time.Millisecond, 300 * time.Millisecond
	s, err := NewStatic(StaticConfig{Members: []*Member{up, down}, Frequency: freq, DropTime: drop, ConnectTimeout: freq})
	if err != nil {
		t.Fatal(err)
	}
	var log mbEventLog
	var gone atomic.Int64
	err = s.Start(t.Context(), mcLocal(9), func(ev MemberEvent) {
		log.add(ev)
		if ev.Type == MemberDisappeared {
			gone.Store(time.Now().UnixNano())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	if got := log.String(); got != "added 1" {
		t.Fatalf("events after Start: %q", got)
	}
	time.Sleep(2 * freq)
	closed := time.Now()
	l.Close()
	mcEventually(t, 5*time.Second, "member not dropped", func() bool { return gone.Load() != 0 })
	d := time.Unix(0, gone.Load()).Sub(closed)
	t.Logf("static member dropped %v after its listener closed (drop time %v, frequency %v)", d.Round(time.Millisecond), drop, freq)
	// Not before the drop time (less the probes in flight); how late a busy
	// machine makes it is reported, not asserted. TestStaticTiming checks
	// the exact rule on a fake clock.
	if d < drop-2*freq {
		t.Errorf("dropped after %v, before the drop time %v", d, drop)
	}
	if got := log.String(); got != "added 1, disappeared 1" {
		t.Fatalf("events %q", got)
	}
}
