package host_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/wasmfarm/wasmfarm/host"
)

func BenchmarkAB(b *testing.B) {
	for _, f := range []string{"/tmp/old_counter.wasm", "/tmp/new_counter.wasm", "/tmp/old_counter.wasm", "/tmp/new_counter.wasm"} {
		b.Run(f, func(b *testing.B) {
			mod, _ := os.ReadFile(f)
			srv, _ := host.New(host.Config{JvmRoute: "jvm_a", CacheDir: cacheDir(b)})
			defer srv.Shutdown(context.Background())
			if err := srv.Deploy(context.Background(), "/counter", mod); err != nil {
				b.Fatal(err)
			}
			w := &nopWriter{h: http.Header{}}
			req := httptest.NewRequest("GET", "/counter/json", nil)
			srv.ServeHTTP(w, req)
			cookie := w.h.Get("Set-Cookie")
			req.Header.Set("Cookie", cookie[:len("JSESSIONID=")+32+len(".jvm_a")])
			cpu0 := cpuTime()
			for b.Loop() {
				clear(w.h)
				srv.ServeHTTP(w, req)
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}
