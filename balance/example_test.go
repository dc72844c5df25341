package balance_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/wasmfarm/wasmfarm/balance"
)

// A balancer in front of two members: a session id ending in .jvm_b goes
// to jvm_b; when jvm_b dies, its next request is served by jvm_a.
func Example() {
	member := func(route string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, route)
		}))
	}
	a, b := member("jvm_a"), member("jvm_b")
	defer a.Close()
	ua, _ := url.Parse(a.URL)
	ub, _ := url.Parse(b.URL)

	cfg := balance.DefaultConfig()
	cfg.Members = []balance.Member{{Route: "jvm_a", URL: ua}, {Route: "jvm_b", URL: ub}}
	bal, err := balance.New(cfg)
	if err != nil {
		panic(err)
	}
	defer bal.Close()
	front := httptest.NewServer(bal)
	defer front.Close()

	get := func() {
		req, _ := http.NewRequest("GET", front.URL+"/counter/", nil)
		req.Header.Set("Cookie", "JSESSIONID=0123456789ABCDEF.jvm_b")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(body))
	}
	get()
	b.Close()
	get()
	fmt.Println("jvm_b up:", bal.Stats()[1].Up)
	// Output:
	// 200 jvm_b
	// 200 jvm_a
	// jvm_b up: false
}
