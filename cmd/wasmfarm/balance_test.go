package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/internal/syncbuf"
)

// TestBalanceCommand runs "wasmfarm balance" in front of two fake members:
// sticky routing by cookie, failover when a member dies, clean shutdown.
func TestBalanceCommand(t *testing.T) {
	member := func(route string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, route)
		}))
		t.Cleanup(s.Close)
		return s
	}
	a, b := member("jvm_a"), member("jvm_b")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncbuf.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"balance", "-http", "127.0.0.1:0",
			"-member", "jvm_a=" + a.URL, "-member", "jvm_b=" + b.URL,
			"-health-interval", "50ms", "-health-path", "/health"}, &stdout, &stderr)
	}()
	re := regexp.MustCompile(`on (http://[0-9.:]+) `)
	var front string
	deadline := time.Now().Add(5 * time.Second)
	for front == "" {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			front = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no address printed; stdout %q stderr %q", stdout.String(), stderr.String())
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	get := func(cookie string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", front+"/app/", nil)
		req.Header.Set("Cookie", cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, route := range []string{"jvm_a", "jvm_b", "jvm_a"} {
		if st, body := get("JSESSIONID=ABC." + route); st != 200 || body != route {
			t.Fatalf("cookie .%s: %d %q", route, st, body)
		}
	}
	a.Close()
	if st, body := get("JSESSIONID=ABC.jvm_a"); st != 200 || body != "jvm_b" {
		t.Fatalf("after jvm_a died: %d %q, want jvm_b", st, body)
	}
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit %d; stderr %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("balance did not stop on cancel")
	}
	for _, want := range []string{"member down", "route=jvm_a"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestBalanceFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no member", args: []string{"balance", "-http", "127.0.0.1:0"}, want: "no -member"},
		{name: "member without route", args: []string{"balance", "-member", "http://127.0.0.1:1"}, want: "jvmRoute=URL"},
		{name: "member with relative URL", args: []string{"balance", "-member", "a=/members/a"}, want: "bad member"},
		{name: "duplicate route", args: []string{"balance", "-member", "a=http://127.0.0.1:1", "-member", "a=http://127.0.0.1:2"}, want: "duplicate"},
		{name: "extra argument", args: []string{"balance", "-member", "a=http://127.0.0.1:1", "x"}, want: "unexpected"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr syncbuf.Buffer
			if code := run(context.Background(), tc.args, &stdout, &stderr); code == 0 {
				t.Fatalf("exit 0, want failure")
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr %q lacks %q", stderr.String(), tc.want)
			}
		})
	}
}
