package host_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// ExampleServer deploys the counter app and serves two requests of one
// session (through ServeHTTP, as net/http would).
func ExampleServer() {
	srv, err := host.New(host.Config{JvmRoute: "jvm_a", CacheDir: filepath.Join(os.TempDir(), "wasmfarm-test-cache")})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown(context.Background())
	if err := srv.Deploy(context.Background(), "/counter", wasmapps.Counter()); err != nil {
		panic(err)
	}
	cookie := ""
	for range 2 {
		req := httptest.NewRequest("GET", "/counter/json", nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if c := rec.Result().Cookies(); len(c) > 0 {
			cookie = c[0].Name + "=" + c[0].Value
			fmt.Println("new session, route suffix:", c[0].Value[strings.IndexByte(c[0].Value, '.'):], "path:", c[0].Path)
		}
		body, _ := io.ReadAll(rec.Body)
		fmt.Println(rec.Code, strings.Contains(string(body), `"node":"jvm_a"`), strings.TrimSpace(string(body[strings.Index(string(body), `"counter"`):])))
	}
	// Output:
	// new session, route suffix: .jvm_a path: /counter
	// 200 true "counter":1}
	// 200 true "counter":2}
}
