package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/internal/syncbuf"
)

// loopbackGroup returns channel flags that keep multicast on this host, on
// a group and port of the test's own.
func loopbackGroup() []string {
	return []string{"-address", "127.0.0.1", "-port", "-1",
		"-mcast-address", fmt.Sprintf("239.255.%d.%d", rand.IntN(200)+1, rand.IntN(200)+1),
		"-mcast-port", fmt.Sprint(46000 + rand.IntN(2000)), "-mcast-bind", "127.0.0.1", "-ttl", "0",
		"-frequency", "100ms", "-drop-time", "1s"}
}

func TestChannelTools(t *testing.T) {
	if testing.Short() {
		t.Skip("loopback multicast test; skipped with -short")
	}
	g := loopbackGroup()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var listenOut, listenErr syncbuf.Buffer
	done := make(chan int)
	go func() {
		done <- run(ctx, append([]string{"channel", "listen", "-count", "2"}, g...), &listenOut, &listenErr)
	}()

	var out, errOut bytes.Buffer
	if code := run(ctx, append([]string{"channel", "members", "-expect", "1", "-wait", "10s", "-json"}, g...), &out, &errOut); code != 0 {
		t.Fatalf("members: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), `"host":"127.0.0.1"`) {
		t.Fatalf("members printed %q", out.String())
	}
	out.Reset()
	if code := run(ctx, append([]string{"channel", "send", "-options", "use_ack,sync", "-n", "2", "-data", "ping"}, g...), &out, &errOut); code != 0 {
		t.Fatalf("send: exit %d: %s %s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "sent 2 of 2 messages") {
		t.Fatalf("send printed %q", out.String())
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("listen: exit %d: %s", code, listenErr.String())
		}
	case <-ctx.Done():
		t.Fatal("listen did not get the two messages")
	}
	if n := strings.Count(listenOut.String(), "4 bytes: ping"); n != 2 {
		t.Fatalf("listen printed %q", listenOut.String())
	}
}

// TestChannelMembersWatchStatic: "channel members -watch" with static
// membership only (-no-mcast) reports a static member that is up when it
// starts. (It passes with the listener added after Start too, as before
// c48a099: the channel hands the event to its listeners a little later,
// so it does not show that race.)
func TestChannelMembersWatchStatic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const uid = "0102030405060708090a0b0c0d0e0f10"
	var peerOut, peerErr syncbuf.Buffer
	peerDone := make(chan int, 1)
	go func() {
		// The peer has multicast membership (on loopback) of its own.
		peerDone <- run(ctx, append([]string{"channel", "listen", "-unique-id", uid}, loopbackGroup()...), &peerOut, &peerErr)
	}()
	addr := ""
	for addr == "" {
		if _, rest, ok := strings.Cut(peerErr.String(), "joined as tcp://"); ok {
			addr, _, _ = strings.Cut(rest, " ")
			break
		}
		select {
		case code := <-peerDone:
			t.Fatalf("the peer exited with %d: %s", code, peerErr.String())
		case <-ctx.Done():
			t.Fatalf("the peer did not start: %s", peerErr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}

	wctx, wcancel := context.WithCancel(ctx)
	var out, errOut syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(wctx, []string{"channel", "members", "-watch", "-json", "-no-mcast", "-address", "127.0.0.1", "-port", "-1",
			"-member", addr + "=" + uid}, &out, &errOut)
	}()
	// Wait until the watcher joined (its Start is over), then a little
	// longer for the event to be printed.
	for !strings.Contains(errOut.String(), "joined as") {
		select {
		case code := <-done:
			wcancel()
			t.Fatalf("members exited with %d: %s", code, errOut.String())
		case <-ctx.Done():
			t.Fatalf("the watcher did not start: %s", errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	for wait := time.Now().Add(5 * time.Second); !strings.Contains(out.String(), `"event":"added"`) && time.Now().Before(wait); {
		time.Sleep(10 * time.Millisecond)
	}
	wcancel()
	if code := <-done; code != 0 {
		t.Fatalf("members -watch: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), `"event":"added"`) || !strings.Contains(out.String(), `"port":`+addr[strings.LastIndexByte(addr, ':')+1:]) {
		t.Fatalf("members -watch did not report the static member %s: %q", addr, out.String())
	}
	cancel()
	<-peerDone
}

func TestChannelFlagErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	for _, args := range [][]string{
		{"channel", "nope"},
		{"channel", "send", "-options", "bogus"},
		{"channel", "members", "-no-mcast"},
		{"channel", "members", "-member", "127.0.0.1:4000"},
	} {
		if code := run(context.Background(), args, &out, &errOut); code == 0 {
			t.Errorf("%v: exit 0, want an error", args)
		}
	}
}

// TestChannelConfigFile loads a seed configuration, typos included: the
// typos are warnings naming the attribute, and the member joins.
func TestChannelConfigFile(t *testing.T) {
	if testing.Short() {
		t.Skip("loopback multicast test; skipped with -short")
	}
	var out, errOut bytes.Buffer
	args := append([]string{"channel", "members", "-config", "../../examples/seeds/007-delta-typos.xml", "-wait", "100ms"}, loopbackGroup()...)
	if code := run(context.Background(), args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{`attribute "seceltorTimeout"`, `did you mean "selectorTimeout"`, `attribute "droptTime"`, "joined as tcp://127.0.0.1:"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"channel", "members", "-config", "no/such/server.xml"}, &out, &errOut); code == 0 {
		t.Fatal("a missing config file was accepted")
	}
}
