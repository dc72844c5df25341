package host_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

type nopWriter struct {
	h      http.Header
	status int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(s int)           { w.status = s }

// BenchmarkServeHTTP is the host's request path without sockets: the
// counter app's /json with a session cookie (deadline enforced).
func BenchmarkServeHTTP(b *testing.B) {
	b.Run("deadlines", func(b *testing.B) { benchSerial(b, false) })
	b.Run("nodeadlines", func(b *testing.B) { benchSerial(b, true) })
}

func benchSerial(b *testing.B, noDeadlines bool) {
	serve := counterRequest(b, noDeadlines)
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		serve()
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// counterRequest deploys the counter app on a new server, makes a session
// and returns a function that serves /counter/json for it again (in
// process, no sockets), failing tb on a status other than 200.
func counterRequest(tb testing.TB, noDeadlines bool) func() {
	srv, err := host.New(host.Config{JvmRoute: "jvm_a", CacheDir: cacheDir(tb), NoDeadlines: noDeadlines})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Shutdown(context.Background()) })
	if err := srv.Deploy(context.Background(), "/counter", wasmapps.Counter()); err != nil {
		tb.Fatal(err)
	}
	w := &nopWriter{h: http.Header{}}
	req := httptest.NewRequest("GET", "/counter/json", nil)
	srv.ServeHTTP(w, req)
	cookie := w.h.Get("Set-Cookie")
	if w.status != 200 || cookie == "" {
		tb.Fatalf("first request: %d %q", w.status, cookie)
	}
	req.Header.Set("Cookie", cookie[:len("JSESSIONID=")+32+len(".jvm_a")])
	return func() {
		clear(w.h)
		srv.ServeHTTP(w, req)
		if w.status != 200 {
			tb.Fatal(w.status)
		}
	}
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkServeHTTPParallel is BenchmarkServeHTTP from 16 goroutines, one
// session each, on the default pool (2 × GOMAXPROCS instances).
func BenchmarkServeHTTPParallel(b *testing.B) {
	b.Run("deadlines", func(b *testing.B) { benchParallel(b, false) })
	b.Run("nodeadlines", func(b *testing.B) { benchParallel(b, true) })
}

func benchParallel(b *testing.B, noDeadlines bool) {
	srv, err := host.New(host.Config{JvmRoute: "jvm_a", CacheDir: cacheDir(b), NoDeadlines: noDeadlines})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	if err := srv.Deploy(context.Background(), "/counter", wasmapps.Counter()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(8)
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		w := &nopWriter{h: http.Header{}}
		req := httptest.NewRequest("GET", "/counter/json", nil)
		for pb.Next() {
			clear(w.h)
			srv.ServeHTTP(w, req)
			if c := w.h.Get("Set-Cookie"); c != "" {
				req.Header.Set("Cookie", c[:len("JSESSIONID=")+32+len(".jvm_a")])
			}
		}
	})
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// TestServeHTTPAllocs: a repeated request of the counter app (read the
// counter, set it, answer JSON) allocates on the host only the session's
// copy of the new value (BenchmarkServeHTTP reports the same).
func TestServeHTTPAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	serve := counterRequest(t, false)
	if allocs := testing.AllocsPerRun(200, serve); allocs > 2 {
		t.Errorf("%v allocations per request, want at most 2 (the session's copy of the counter, and slack for the runtime)", allocs)
	}
}
