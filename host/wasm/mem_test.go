package wasm

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host/session"
)

// TestGuestMemoryBounded runs many requests through one instance of the
// counter app, each creating a session, and checks that the guest's linear
// memory stays bounded: the SDK yields so that the guest's garbage
// collector runs.
func TestGuestMemoryBounded(t *testing.T) {
	b, err := os.ReadFile("../../wasmapps/build/counter.wasm")
	if err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t)
	ctx := context.Background()
	m, err := rt.Compile(ctx, "counter", b)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPool(ctx, m, PoolConfig{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	mgr, _ := session.NewStandardManager(session.Config{ExpireInterval: -1})
	defer mgr.Close()
	var call Call
	var txn session.Txn
	n := 20000
	if testing.Short() {
		n = 3000
	}
	var sizes []uint32
	for i := range n {
		call.Reset()
		txn.Reset(mgr, mgr.Limits(), "", time.Now())
		call.Method, call.Path, call.ContextPath, call.Session = "GET", "/counter/json", "/counter", &txn
		if err := p.Handle(ctx, &call); err != nil {
			t.Fatal(err)
		}
		if i%(n/4) == 0 || i == n-1 {
			in := <-p.idle
			sizes = append(sizes, in.mod.Memory().Size())
			p.idle <- in
		}
	}
	t.Logf("guest memory over %d requests: %v bytes", n, sizes)
	if last := sizes[len(sizes)-1]; last > 32<<20 {
		t.Fatalf("guest memory grew to %d bytes", last)
	}
}
