package wasm

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// BenchmarkCounterGuest runs the counter app's /json through a pool, with
// a real session and no HTTP: the guest's cost alone, with and without
// deadline enforcement (wazero's termination checks).
func BenchmarkCounterGuest(b *testing.B) {
	for _, tc := range []struct {
		name        string
		noDeadlines bool
	}{{"deadlines", false}, {"nodeadlines", true}} {
		b.Run(tc.name, func(b *testing.B) {
			c := newCounterClient(b, context.Background(), Config{CacheDir: testCacheDir(), NoDeadlines: tc.noDeadlines})
			b.ReportAllocs()
			for b.Loop() {
				if err := c.request(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCounterGuestColdCache is BenchmarkCounterGuest with the CPU
// caches disturbed between calls, as an HTTP server's socket work and its
// load generator do: each call is preceded by a write to every cache line
// of a buffer of the given size. guest-ns/op is the guest call alone. The
// guest's cost grows with the disturbance (its code and data are evicted),
// which is why the counter costs about twice as much under wrk as here.
func BenchmarkCounterGuestColdCache(b *testing.B) {
	for _, kib := range []int{0, 256, 1024, 4096} {
		b.Run(strconv.Itoa(kib)+"KiB", func(b *testing.B) {
			c := newCounterClient(b, context.Background(), Config{CacheDir: testCacheDir()})
			junk := make([]byte, kib<<10)
			var guest time.Duration
			b.ReportAllocs()
			for b.Loop() {
				for i := 0; i < len(junk); i += 64 {
					junk[i]++
				}
				c.begin()
				t0 := time.Now()
				if err := c.p.Handle(context.Background(), &c.call); err != nil {
					b.Fatal(err)
				}
				guest += time.Since(t0)
				if err := c.commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(guest.Nanoseconds())/float64(b.N), "guest-ns/op")
		})
	}
}

func testCacheDir() string { return os.TempDir() + "/wasmfarm-test-cache" }

// counterClient sends the counter app's /json through a one-instance pool
// with one session, committing each delta as the host does.
type counterClient struct {
	p    *Pool
	mgr  *session.StandardManager
	call Call
	txn  session.Txn
	id   string
}

// newCounterClient compiles the counter app on a runtime configured by cfg
// (ctx also goes to Compile and NewPool: a call listener factory, say);
// everything is closed when tb ends.
func newCounterClient(tb testing.TB, ctx context.Context, cfg Config) *counterClient {
	rt, err := NewRuntime(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rt.Close(context.Background()) })
	m, err := rt.Compile(ctx, "counter", wasmapps.Counter())
	if err != nil {
		tb.Fatal(err)
	}
	p, err := NewPool(ctx, m, PoolConfig{Size: 1})
	if err != nil {
		tb.Fatal(err)
	}
	mgr, _ := session.NewStandardManager(session.Config{ExpireInterval: -1, JvmRoute: "jvm_a"})
	tb.Cleanup(func() { mgr.Close() })
	return &counterClient{p: p, mgr: mgr}
}

// begin prepares the next request's call and session.
func (c *counterClient) begin() {
	c.call.Reset()
	c.txn.Reset(c.mgr, c.mgr.Limits(), c.id, time.Now())
	c.call.Method, c.call.Path, c.call.ContextPath, c.call.Session, c.call.JvmRoute = "GET", "/counter/json", "/counter", &c.txn, "jvm_a"
}

// commit applies the request's delta and keeps the session's id.
func (c *counterClient) commit() error {
	d := c.txn.Delta()
	if d == nil {
		return nil
	}
	if err := c.mgr.Commit(d); err != nil {
		return err
	}
	c.id = d.FinalID()
	return nil
}

// request sends one request and commits it; a status other than 200 is an
// error.
func (c *counterClient) request() error {
	c.begin()
	if err := c.p.Handle(context.Background(), &c.call); err != nil {
		return err
	}
	if st := c.call.Status; st != 0 && st != 200 {
		return fmt.Errorf("status %d: %s", st, c.call.ResponseBody)
	}
	return c.commit()
}
