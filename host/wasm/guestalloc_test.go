package wasm

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
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
	cc := &callCounter{want: map[string]bool{".runtime.mallocgc": true, ".main.serve": true}, calls: map[string]int{}}
	c := newCounterClient(t, experimental.WithFunctionListenerFactory(context.Background(), cc), Config{CacheDir: "-"})
	const warm, measured = 32, 64
	for i := range warm + measured {
		cc.on = i >= warm
		if err := c.request(); err != nil {
			t.Fatal(err)
		}
	}
	if cc.calls[".main.serve"] != measured {
		t.Fatalf("the listener saw %d calls of main.serve for %d requests", cc.calls[".main.serve"], measured)
	}
	if n := cc.calls[".runtime.mallocgc"]; n != 0 {
		t.Fatalf("%d guest allocations in %d requests, want none", n, measured)
	}
}
