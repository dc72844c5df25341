package wasm

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/wasmfarm/wasmfarm/host/session"
)

// callCounter counts calls of the guest functions named in want while on.
type callCounter struct {
	want  map[string]bool
	on    bool
	calls map[string]int
}

func (c *callCounter) NewFunctionListener(def api.FunctionDefinition) experimental.FunctionListener {
	name := def.DebugName()
	if !c.want[name] {
		return nil
	}
	return experimental.FunctionListenerFunc(func(context.Context, api.Module, api.FunctionDefinition, []uint64, experimental.StackIterator) {
		if c.on {
			c.calls[name]++
		}
	})
}

// TestCounterGuestDoesNotAllocate: once warm, the counter app's /json
// request allocates nothing in the guest (the SDK reuses its request,
// response and session values and scratch buffers). Guest allocations
// cost more than they look: under load every one is code and memory
// fetched cold, and they bring the guest's garbage collector round.
func TestCounterGuestDoesNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: compiles the counter app with call listeners (about a second)")
	}
	bin, err := os.ReadFile("../../wasmapps/build/counter.wasm")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := NewRuntime(context.Background(), Config{CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	cc := &callCounter{want: map[string]bool{".runtime.mallocgc": true, ".main.serve": true}, calls: map[string]int{}}
	ctx := experimental.WithFunctionListenerFactory(context.Background(), cc)
	m, err := rt.Compile(ctx, "counter", bin)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPool(ctx, m, PoolConfig{Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	mgr, _ := session.NewStandardManager(session.Config{ExpireInterval: -1, JvmRoute: "jvm_a"})
	defer mgr.Close()
	var call Call
	var txn session.Txn
	id := ""
	const warm, measured = 32, 64
	for i := range warm + measured {
		cc.on = i >= warm
		call.Reset()
		txn.Reset(mgr, mgr.Limits(), id, time.Now())
		call.Method, call.Path, call.ContextPath, call.Session, call.JvmRoute = "GET", "/counter/json", "/counter", &txn, "jvm_a"
		if err := p.Handle(context.Background(), &call); err != nil {
			t.Fatal(err)
		}
		if call.Status != 0 && call.Status != 200 {
			t.Fatalf("status %d: %s", call.Status, call.ResponseBody)
		}
		if d := txn.Delta(); d != nil {
			if err := mgr.Commit(d); err != nil {
				t.Fatal(err)
			}
			id = d.FinalID()
		}
	}
	if cc.calls[".main.serve"] != measured {
		t.Fatalf("the listener saw %d calls of main.serve for %d requests", cc.calls[".main.serve"], measured)
	}
	if n := cc.calls[".runtime.mallocgc"]; n != 0 {
		t.Fatalf("%d guest allocations in %d requests, want none", n, measured)
	}
}
