package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
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
	front, stderr, cancel, exit := startBalanceCommand(t, "-member", "jvm_a="+a.URL, "-member", "jvm_b="+b.URL,
		"-health-interval", "50ms", "-health-path", "/health")
	defer cancel()
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

// startBalanceCommand runs "wasmfarm balance -http 127.0.0.1:0" with args
// and returns its address, its log, the function that stops it and the
// channel its exit code comes on.
func startBalanceCommand(t *testing.T, args ...string) (front string, stderr *syncbuf.Buffer, stop context.CancelFunc, exit <-chan int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout syncbuf.Buffer
	stderr = new(syncbuf.Buffer)
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, append([]string{"balance", "-http", "127.0.0.1:0"}, args...), &stdout, stderr)
	}()
	re := regexp.MustCompile(`on (http://[0-9.:]+) `)
	deadline := time.Now().Add(5 * time.Second)
	for front == "" {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			front = m[1]
		} else if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no address printed; stdout %q stderr %q", stdout.String(), stderr.String())
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return front, stderr, cancel, code
}

// TestBalanceReadTimeout: a client that sends a request's head and then
// trickles its body is cut off after -read-timeout, before the member
// sees the request; a client that sends its request at once is served.
func TestBalanceReadTimeout(t *testing.T) {
	var got atomic.Int32 // requests the member received whole
	m := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got.Add(1)
		fmt.Fprintf(w, "jvm_a read %d", n)
	}))
	t.Cleanup(m.Close)
	front, _, cancel, _ := startBalanceCommand(t, "-member", "jvm_a="+m.URL, "-health-interval", "-1s", "-read-timeout", "200ms")
	defer cancel()
	resp, err := http.Post(front+"/app/", "text/plain", strings.NewReader("amount=100"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "jvm_a read 10" {
		t.Fatalf("POST at once: %d %q", resp.StatusCode, body)
	}

	c, err := net.Dial("tcp", strings.TrimPrefix(front, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /app/ HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n")
	c.SetDeadline(time.Now().Add(10 * time.Second)) // far beyond -read-timeout: only a stuck test waits that long
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c) // until the balancer closes the connection
		close(closed)
	}()
	sent := 0
	for ; sent < 100; sent++ {
		select {
		case <-closed:
		default:
			if _, err := c.Write([]byte("x")); err == nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
		}
		break
	}
	<-closed
	if sent == 100 {
		t.Fatalf("the balancer took a body trickled over %d ms with -read-timeout 200ms", sent*20)
	}
	if n := got.Load(); n != 1 {
		t.Fatalf("the member received %d whole requests, want 1 (the trickled one must not reach it)", n)
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
