package farm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// streamHost is a fakeHost that deploys from a reader, as [ServerHost]
// does: it hashes the stream through a small buffer, so a test measures
// the farm's memory without the compiler's.
type streamHost struct{ fakeHost }

func (s *streamHost) DeployAppFrom(_ context.Context, path string, r io.Reader, limit int64, _ string) error {
	h := sha256.New()
	if _, err := io.CopyBuffer(h, io.LimitReader(r, limit), make([]byte, 32<<10)); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps == nil {
		s.apps = map[string]string{}
	}
	s.apps[path] = hex.EncodeToString(h.Sum(nil))
	return nil
}

// paddedReader streams mod followed by a custom section of n zero bytes
// (padModule without holding the padding in memory).
func paddedReader(mod []byte, n int) io.Reader {
	name := "wasmfarm.pad"
	content := binary.AppendUvarint(nil, uint64(len(name)))
	content = append(content, name...)
	head := append(append([]byte(nil), mod...), 0)
	head = binary.AppendUvarint(head, uint64(len(content)+n))
	head = append(head, content...)
	return io.MultiReader(bytes.NewReader(head), io.LimitReader(zeros{}, int64(n)))
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestDeployMemoryBounded deploys a 64 MiB module on three members of one
// process, streamed from a reader on the sender and deployed from the
// received file on the others: the heap in use never grows by more than a
// small multiple of the chunk size, where holding the module once would
// take 64 MiB (and three members 192).
func TestDeployMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 64 MiB three times; skipped with -short")
	}
	const chunk = DefaultChunkSize
	size := DefaultMaxModuleBytes - len(wasmapps.Counter()) - 64 // the largest module by default
	net := tribestest.NewNetwork()
	var ms []*member
	var hosts []*streamHost
	for i := range 3 {
		name := string(rune('a' + i))
		nd := net.NewNode()
		h := &streamHost{}
		m := newMemberOnHost(t, tribes.Config{
			Transport: nd.Transport(), Membership: nd.Membership(),
			Interceptors: []tribes.Interceptor{}, Payload: []byte(name),
		}, name, func(c *Config) { c.ChunkSize = chunk }, h)
		ms, hosts = append(ms, m), append(hosts, h)
	}
	for _, m := range ms {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		if _, err := m.ch.AwaitMembers(ctx, 2); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		cancel()
	}
	want := sha256.New()
	if _, err := io.Copy(want, paddedReader(wasmapps.Counter(), size)); err != nil {
		t.Fatal(err)
	}
	digest := hex.EncodeToString(want.Sum(nil))

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var (
		peak uint64
		wg   sync.WaitGroup
	)
	stop := make(chan struct{})
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	rep, err := ms[0].d.Deploy(t.Context(), "/big", paddedReader(wasmapps.Counter(), size), DeployOptions{})
	close(stop)
	wg.Wait()
	if err != nil || len(rep.Members) != 3 {
		t.Fatalf("deploy: %v %s", err, reportString(rep))
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	for i, h := range hosts {
		if got := h.Apps(); len(got) != 1 || got[0].Digest != digest {
			t.Errorf("%s deployed %+v, want %.12s", ms[i].name, got, digest)
		}
	}
	grew := int64(peak) - int64(before.HeapInuse)
	t.Logf("64 MiB to 3 members: heap in use %d KiB before, peak %+d KiB (%.1f chunks of %d KiB); allocated %d KiB in all",
		before.HeapInuse>>10, grew>>10, float64(grew)/chunk, chunk>>10, (after.TotalAlloc-before.TotalAlloc)>>10)
	// The bound is loose (garbage waits for the collector) but far below
	// one copy of the module.
	if limit := int64(size / 4); grew > limit {
		t.Errorf("heap in use grew by %d KiB during the deploy, over %d KiB: a member holds the module in memory", grew>>10, limit>>10)
	}
}
