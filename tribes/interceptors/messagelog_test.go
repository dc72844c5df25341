package interceptors_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/wasmfarm/wasmfarm/internal/syncbuf"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
)

// TestMessageLog: at LevelMessages every message is logged both ways; at
// debug none is.
func TestMessageLog(t *testing.T) {
	for _, tc := range []struct {
		name  string
		level slog.Level
		want  bool
	}{{"messages level", interceptors.LevelMessages, true}, {"debug level", slog.LevelDebug, false}} {
		t.Run(tc.name, func(t *testing.T) {
			net := tribestest.NewNetwork()
			var buf syncbuf.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level}))
			var chans []*tribes.Channel
			got := make(chan struct{}, 1)
			for range 2 {
				nd := net.NewNode()
				ch, err := tribes.New(tribes.Config{Transport: nd.Transport(), Membership: nd.Membership(),
					Interceptors: []tribes.Interceptor{interceptors.NewMessageLog(log)}})
				if err != nil {
					t.Fatal(err)
				}
				ch.AddMessageListener(tribes.ListenerFunc(func(*tribes.Message) error { got <- struct{}{}; return nil }))
				if err := ch.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
				defer ch.Stop(context.Background())
				chans = append(chans, ch)
			}
			if err := chans[0].Send(context.Background(), nil, []byte("hello\x00world"), tribes.OptUseAck|tribes.OptSynchronizedAck); err != nil {
				t.Fatal(err)
			}
			<-got
			out := buf.String()
			for _, w := range []string{"tribes message sent", "tribes message received", "hello.world"} {
				if strings.Contains(out, w) != tc.want {
					t.Errorf("%q in the log: %v, want %v\n%s", w, !tc.want, tc.want, out)
				}
			}
		})
	}
}

// TestMessageLogMulticast: a multicast message goes down with no member
// list; logging it must not index into the empty list.
func TestMessageLogMulticast(t *testing.T) {
	var buf syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: interceptors.LevelMessages}))
	rec := &sendRecorder{}
	a := newNode(t, newMemNet(), nil, interceptors.NewMessageLog(log), rec)
	a.mustSend(t, []byte("to everyone"), tribes.OptMulticast)
	if len(rec.data) != 1 || string(rec.data[0]) != "to everyone" {
		t.Fatalf("passed down %q", rec.data)
	}
	if out := buf.String(); !strings.Contains(out, "tribes message sent") || !strings.Contains(out, "to everyone") {
		t.Fatalf("multicast not logged:\n%s", out)
	}
}
