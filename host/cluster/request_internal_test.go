package cluster

import (
	"log/slog"
	"testing"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// TestReplyFromAnotherMemberIgnored: request ids are sequential, so any
// member can name one; only the member asked may answer (a fetch reply or
// a state-transfer block from another member is dropped and counted).
func TestReplyFromAnotherMemberIgnored(t *testing.T) {
	c := &Cluster{log: slog.New(slog.DiscardHandler)}
	asked, other := tribes.UniqueID{1}, tribes.UniqueID{2}
	calls := 0
	id, cancel := c.request(asked, func(*tribes.Message, parsed, *reader) error { calls++; return nil })
	defer cancel()
	data := appendU64(header(nil, msgFetchReply, "/x"), id)
	data = append(data, 0)
	p, ok, err := parse(data)
	if !ok || err != nil {
		t.Fatalf("parse: %v %v", ok, err)
	}
	c.MessageReceived(&tribes.Message{Source: &tribes.Member{UniqueID: other}, Data: data})
	if calls != 0 || c.stats.bad.Load() != 1 {
		t.Fatalf("reply from a member not asked: handler ran %d times, %d bad messages counted (want 0 and 1)", calls, c.stats.bad.Load())
	}
	c.memberMessage(&tribes.Message{Source: &tribes.Member{UniqueID: asked}, Data: data}, p)
	if calls != 1 {
		t.Fatalf("reply from the member asked: handler ran %d times, want 1", calls)
	}
}
