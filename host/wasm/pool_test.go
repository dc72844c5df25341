package wasm

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host/abi"
	"github.com/wasmfarm/wasmfarm/host/internal/wasmtest"
)

// okPool returns a pool of a guest whose handle succeeds.
func okPool(t *testing.T, cfg PoolConfig) *Pool {
	return testPool(t, "ok", wasmtest.Module(abi.Version, abi.ResultOK, false), cfg)
}

// TestPoolReusesMostRecent: idle instances are taken last in, first out,
// so that a steady load keeps reusing the same (cache-warm) instances.
func TestPoolReusesMostRecent(t *testing.T) {
	ctx := context.Background()
	p := okPool(t, PoolConfig{Size: 3})
	var ins [3]*instance
	for i := range ins {
		in, err := p.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ins[i] = in
	}
	if live, _, _ := p.Stats(); live != 3 {
		t.Fatalf("live %d, want 3", live)
	}
	for _, in := range ins {
		p.release(in, false)
	}
	for range 5 { // a serial load: always the last released
		in, err := p.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if in != ins[2] {
			t.Fatal("acquire did not return the most recently released instance")
		}
		p.release(in, false)
	}
	if got := p.GuestMemory(); got == 0 || got%65536 != 0 {
		t.Fatalf("GuestMemory %d, want the pages of 3 idle instances", got)
	}
}

// TestPoolHandoff: with every instance in use, an acquirer waits and gets
// the next released one; one that times out leaves nothing stranded.
func TestPoolHandoff(t *testing.T) {
	ctx := context.Background()
	p := okPool(t, PoolConfig{Size: 1, Deadline: 200 * time.Millisecond})
	held, err := p.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing idle, nothing to create: the deadline ends the wait.
	if _, err := p.acquire(ctx); !errors.Is(err, ErrBusy) {
		t.Fatalf("acquire with the only instance held: %v, want ErrBusy", err)
	}
	got := make(chan *instance)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		in, err := p.acquire(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- in
	}()
	for { // wait until the acquirer waits
		p.mu.Lock()
		w := p.waiting
		p.mu.Unlock()
		if w == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	p.release(held, false)
	if in := <-got; in != held {
		t.Fatal("the waiter did not get the released instance")
	}
	wg.Wait()
	p.release(held, false)
	// An instance handed over to a waiter that had gone (as when the
	// waiter's deadline passes just as a release sees it) is found again.
	in, err := p.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.waiting++ // a waiter that will not receive
	p.mu.Unlock()
	p.release(in, false)
	p.mu.Lock()
	p.waiting--
	p.mu.Unlock()
	if again, err := p.acquire(ctx); err != nil || again != in {
		t.Fatalf("acquire after a handoff nobody took: %v, same instance %v", err, again == in)
	} else {
		p.release(again, false)
	}
	if live, created, _ := p.Stats(); live != 1 || created != 1 {
		t.Fatalf("live %d created %d, want 1 and 1", live, created)
	}
	// Close discards idle instances, including one left in the handoff.
	p.mu.Lock()
	p.waiting++
	p.mu.Unlock()
	in, _ = p.acquire(ctx)
	p.release(in, false)
	p.Close(ctx)
	if live, _, _ := p.Stats(); live != 0 {
		t.Fatalf("live %d after Close, want 0", live)
	}
}
