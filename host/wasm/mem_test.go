package wasm

import (
	"context"
	"testing"
)

// TestGuestMemoryBounded runs many requests through one instance of the
// counter app, each creating a session, and checks that the guest's linear
// memory stays bounded: the SDK yields so that the guest's garbage
// collector runs.
func TestGuestMemoryBounded(t *testing.T) {
	c := newCounterClient(t, context.Background(), Config{CacheDir: "-"})
	n := 20000
	if testing.Short() {
		n = 3000
	}
	var sizes []uint32
	for i := range n {
		c.id = "" // a new session each time
		if err := c.request(); err != nil {
			t.Fatal(err)
		}
		if i%(n/4) == 0 || i == n-1 {
			sizes = append(sizes, uint32(c.p.GuestMemory())) // one instance, idle between requests
		}
	}
	t.Logf("guest memory over %d requests: %v bytes", n, sizes)
	if last := sizes[len(sizes)-1]; last > 32<<20 {
		t.Fatalf("guest memory grew to %d bytes", last)
	}
}
