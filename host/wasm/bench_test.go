package wasm

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host/session"
)

// BenchmarkCounterGuest runs the counter app's /json through a pool, with
// a real session and no HTTP: the guest's cost alone, with and without
// deadline enforcement (wazero's termination checks).
func BenchmarkCounterGuest(b *testing.B) {
	wasm, err := os.ReadFile("../../wasmapps/build/counter.wasm")
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		noDeadlines bool
	}{{"deadlines", false}, {"nodeadlines", true}} {
		b.Run(tc.name, func(b *testing.B) {
			p, mgr := counterPool(b, wasm, tc.noDeadlines)
			var call Call
			var txn session.Txn
			id := ""
			b.ReportAllocs()
			for b.Loop() {
				call.Reset()
				txn.Reset(mgr, mgr.Limits(), id, time.Now())
				call.Method, call.Path, call.ContextPath, call.Session, call.JvmRoute = "GET", "/counter/json", "/counter", &txn, "jvm_a"
				if err := p.Handle(context.Background(), &call); err != nil {
					b.Fatal(err)
				}
				if d := txn.Delta(); d != nil {
					mgr.Commit(d)
					id = d.FinalID()
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
	wasm, err := os.ReadFile("../../wasmapps/build/counter.wasm")
	if err != nil {
		b.Fatal(err)
	}
	for _, kib := range []int{0, 256, 1024, 4096} {
		b.Run(strconv.Itoa(kib)+"KiB", func(b *testing.B) {
			p, mgr := counterPool(b, wasm, false)
			junk := make([]byte, kib<<10)
			var call Call
			var txn session.Txn
			id := ""
			var guest time.Duration
			b.ReportAllocs()
			for b.Loop() {
				for i := 0; i < len(junk); i += 64 {
					junk[i]++
				}
				call.Reset()
				txn.Reset(mgr, mgr.Limits(), id, time.Now())
				call.Method, call.Path, call.ContextPath, call.Session, call.JvmRoute = "GET", "/counter/json", "/counter", &txn, "jvm_a"
				t0 := time.Now()
				if err := p.Handle(context.Background(), &call); err != nil {
					b.Fatal(err)
				}
				guest += time.Since(t0)
				if d := txn.Delta(); d != nil {
					mgr.Commit(d)
					id = d.FinalID()
				}
			}
			b.ReportMetric(float64(guest.Nanoseconds())/float64(b.N), "guest-ns/op")
		})
	}
}

// counterPool returns a one-instance pool of the counter module wasm and a
// session manager, both closed when b ends.
func counterPool(b *testing.B, wasm []byte, noDeadlines bool) (*Pool, *session.StandardManager) {
	rt, err := NewRuntime(context.Background(), Config{CacheDir: os.TempDir() + "/wasmfarm-test-cache", NoDeadlines: noDeadlines})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close(context.Background()) })
	m, err := rt.Compile(context.Background(), "counter", wasm)
	if err != nil {
		b.Fatal(err)
	}
	p, err := NewPool(context.Background(), m, PoolConfig{Size: 1})
	if err != nil {
		b.Fatal(err)
	}
	mgr, _ := session.NewStandardManager(session.Config{ExpireInterval: -1, JvmRoute: "jvm_a"})
	b.Cleanup(func() { mgr.Close() })
	return p, mgr
}
