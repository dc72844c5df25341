package farm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host/wasm"
	"github.com/wasmfarm/wasmfarm/internal/syncbuf"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
)

func hexDigest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestDeployUndeploy deploys through one member of three: every member
// serves the app and reports it; the cluster view lists it on all three;
// an undeploy removes it everywhere.
func TestDeployUndeploy(t *testing.T) {
	_, ms := newCluster(t, 3, nil)
	mod := counterModule(300<<10, 1) // several chunks
	var phases []string
	rep, err := ms[0].d.Deploy(t.Context(), "/shop", bytes.NewReader(mod), DeployOptions{Progress: func(p Progress) {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	}})
	if err != nil {
		t.Fatalf("deploy: %v (%s)", err, reportString(rep))
	}
	if got, want := reportString(rep), "deploy /shop: a=ok b=ok c=ok"; got != want {
		t.Fatalf("report %q, want %q", got, want)
	}
	if rep.Digest != hexDigest(mod) || rep.Size != int64(len(mod)) {
		t.Errorf("report digest %s size %d", rep.Digest, rep.Size)
	}
	if got := strings.Join(phases, ","); got != "deploy,transfer,results" {
		t.Errorf("progress phases %s", got)
	}
	mustServe(t, ms, "/shop", hexDigest(mod))
	for _, m := range ms {
		if _, err := os.Stat(filepath.Join(m.d.cfg.DeployDir, "shop.wasm")); err != nil {
			t.Errorf("%s: module not in the deploy dir: %v", m.name, err)
		}
		if left, _ := os.ReadDir(m.d.cfg.TempDir); len(left) != 0 {
			t.Errorf("%s: temp dir not empty: %v", m.name, left)
		}
	}
	if st := ms[1].d.Stats(); st.TransfersCompleted != 1 || st.BytesReceived != int64(len(mod)) || st.Deploys != 1 {
		t.Errorf("receiver stats %+v", st)
	}

	apps, err := ms[1].d.ClusterApps(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(apps.Apps) != 1 || apps.Apps[0].Path != "/shop" || strings.Join(apps.Apps[0].Members, ",") != "a,b,c" ||
		apps.Apps[0].Size != int64(len(mod)) || len(apps.Unanswered) != 0 {
		t.Errorf("cluster apps %+v", apps)
	}

	rep, err = ms[2].d.Undeploy(t.Context(), "/shop")
	if err != nil {
		t.Fatalf("undeploy: %v", err)
	}
	if got, want := reportString(rep), "undeploy /shop: c=ok a=ok b=ok"; got != want {
		t.Errorf("report %q, want %q", got, want)
	}
	for _, m := range ms {
		if code, _, _ := m.get("/shop/json", ""); code != http.StatusNotFound {
			t.Errorf("%s still serves /shop: %d", m.name, code)
		}
		if _, err := os.Stat(filepath.Join(m.d.cfg.DeployDir, "shop.wasm")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: module still in the deploy dir: %v", m.name, err)
		}
	}
	if _, err := ms[0].d.Undeploy(t.Context(), "/shop"); !errors.Is(err, ErrAppNotFound) {
		t.Errorf("second undeploy: %v", err)
	}
	if _, err := ms[0].d.Deploy(t.Context(), "/bad path", bytes.NewReader(mod), DeployOptions{}); !errors.Is(err, ErrBadPath) {
		t.Errorf("bad path: %v", err)
	}
}

// TestRedeployUnderLoad redeploys a new version while every member serves
// a request loop: no request fails, each session keeps counting across
// the swap, and every member ends on the new version.
func TestRedeployUnderLoad(t *testing.T) {
	_, ms := newCluster(t, 3, nil)
	v1, v2 := counterModule(100<<10, 1), counterModule(100<<10, 2)
	if _, err := ms[0].d.Deploy(t.Context(), "/shop", bytes.NewReader(v1), DeployOptions{}); err != nil {
		t.Fatal(err)
	}
	var (
		stop     atomic.Bool
		requests atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
	)
	for _, m := range ms {
		for range 2 {
			wg.Go(func() {
				cookie, last := "", 0
				for !stop.Load() {
					code, body, c := m.get("/shop/json", cookie)
					requests.Add(1)
					if code != http.StatusOK {
						mu.Lock()
						failures = append(failures, m.name+": "+body)
						mu.Unlock()
						return
					}
					n := counterOf(t, body)
					if n != last+1 {
						mu.Lock()
						failures = append(failures, m.name+": counter jumped")
						mu.Unlock()
						return
					}
					cookie, last = c, n
				}
			})
		}
	}
	time.Sleep(50 * time.Millisecond)
	rep, err := ms[1].d.Deploy(t.Context(), "/shop", bytes.NewReader(v2), DeployOptions{})
	if err != nil {
		t.Fatalf("redeploy: %v (%s)", err, reportString(rep))
	}
	time.Sleep(50 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d failures out of %d requests, first: %s", len(failures), requests.Load(), failures[0])
	}
	t.Logf("%d requests, none failed", requests.Load())
	mustServe(t, ms, "/shop", hexDigest(v2))
}

// TestSyncLateMember starts a member after two apps were farmed; its deploy
// dir already holds one of them (same digest) and a module the cluster
// undeployed while it was down. Sync deploys both apps, fetching only the
// missing one, and removes the stale module: the member it follows saw the
// undeploy.
func TestSyncLateMember(t *testing.T) {
	net, ms := newCluster(t, 2, nil)
	for _, m := range ms { // as a node does at start; a member that never synced is not followed
		if err := m.d.Sync(t.Context()); err != nil {
			t.Fatalf("%s: sync: %v", m.name, err)
		}
	}
	shop, cart, old := counterModule(200<<10, 1), counterModule(10, 3), counterModule(0, 9)
	for path, mod := range map[string][]byte{"/shop": shop, "/cart": cart, "/old": old} {
		if _, err := ms[0].d.Deploy(t.Context(), path, bytes.NewReader(mod), DeployOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ms[1].d.Undeploy(t.Context(), "/old"); err != nil {
		t.Fatal(err)
	}
	var late *member
	late = newMember(t, net, "c", func(c *Config) {
		os.MkdirAll(c.DeployDir, 0o755)
		os.WriteFile(filepath.Join(c.DeployDir, "cart.wasm"), cart, 0o644)
		os.WriteFile(filepath.Join(c.DeployDir, "old.wasm"), old, 0o644)
	})
	if err := late.d.Sync(t.Context()); err != nil {
		t.Fatalf("sync: %v", err)
	}
	// No wait: Sync returns when the apps serve.
	mustServe(t, []*member{late}, "/shop", hexDigest(shop))
	mustServe(t, []*member{late}, "/cart", hexDigest(cart))
	if code, _, _ := late.get("/old/json", ""); code != http.StatusNotFound {
		t.Errorf("stale app served: %d", code)
	}
	if _, err := os.Stat(filepath.Join(late.d.cfg.DeployDir, "old.wasm")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale module kept: %v", err)
	}
	st := late.d.Stats()
	if st.SyncFetches != 1 || st.SyncLocalReused != 1 || st.BytesReceived != int64(len(shop)) {
		t.Errorf("late member stats %+v", st)
	}
	// The late member is a full member now: it can farm out, and serve
	// catch-ups itself.
	if rep, err := late.d.Undeploy(t.Context(), "/cart"); err != nil {
		t.Fatalf("undeploy from the late member: %v (%s)", err, reportString(rep))
	}
	mustServe(t, ms, "/shop", hexDigest(shop))
}

// TestSyncFirstMember deploys what the deploy dir holds when no other
// member is up.
func TestSyncFirstMember(t *testing.T) {
	_, ms := newCluster(t, 1, func(_ string, c *Config) {
		os.MkdirAll(c.DeployDir, 0o755)
		os.WriteFile(filepath.Join(c.DeployDir, "ROOT.wasm"), counterModule(0, 1), 0o644)
		os.WriteFile(filepath.Join(c.DeployDir, "a#b.wasm"), counterModule(0, 2), 0o644)
	})
	if err := ms[0].d.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustServe(t, ms, "", hexDigest(counterModule(0, 1)))
	mustServe(t, ms, "/a/b", hexDigest(counterModule(0, 2)))
}

// sendRaw drives a transfer from m by hand, for corrupt transfers: Begin
// announcing size and digest, the given bytes in chunks, Commit; then it
// waits for the members' results.
func sendRaw(t *testing.T, m *member, path string, size int, dg digest, data []byte) []MemberResult {
	t.Helper()
	d := m.d
	id := newID()
	w := d.addWaiter(id)
	defer d.removeWaiter(id)
	to := d.ch.Members()
	send := func(msg *message) {
		if failed := d.sendTo(t.Context(), to, d.encode(nil, msg)); failed != nil {
			t.Fatalf("send type %d: %v", msg.Type, failed)
		}
	}
	send(&message{Type: msgBegin, ID: id, Size: uint64(size), Digest: dg, Path: path, Name: "raw"})
	for off := 0; off < len(data); off += d.cfg.ChunkSize {
		send(&message{Type: msgChunk, ID: id, Offset: uint64(off), Data: data[off:min(off+d.cfg.ChunkSize, len(data))]})
	}
	send(&message{Type: msgCommit, ID: id})
	return d.await(t.Context(), w, to, nil)
}

// TestCorruptModule: a truncated module, one with the wrong digest and one
// that is not wasm are refused on every member, with the reason in the
// report, and version 1 keeps serving; the origin never sends a module
// its own host refuses.
func TestCorruptModule(t *testing.T) {
	_, ms := newCluster(t, 3, nil)
	v1 := counterModule(100<<10, 1)
	if _, err := ms[0].d.Deploy(t.Context(), "/shop", bytes.NewReader(v1), DeployOptions{}); err != nil {
		t.Fatal(err)
	}
	v2 := counterModule(100<<10, 2)
	notWasm := []byte("this is not a wasm module at all")
	cases := []struct {
		name string
		size int
		dg   []byte // digest of
		data []byte
		want string
	}{
		{"truncated", len(v2), v2, v2[:len(v2)/2], "module truncated"},
		{"wrong digest", len(v2), v1, v2, "module corrupt"},
		{"not wasm", len(notWasm), notWasm, notWasm, "wasm module"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := sendRaw(t, ms[0], "/shop", tc.size, sha256.Sum256(tc.dg), tc.data)
			if len(res) != 2 {
				t.Fatalf("results %+v", res)
			}
			for _, r := range res {
				if r.OK() || !strings.Contains(r.Error, tc.want) {
					t.Errorf("%s: %q, want it to mention %q", r.Member, r.Error, tc.want)
				}
			}
			mustServe(t, ms, "/shop", hexDigest(v1))
			for _, m := range ms {
				if left, _ := os.ReadDir(m.d.cfg.TempDir); len(left) != 0 {
					t.Errorf("%s: temp dir not empty: %v", m.name, left)
				}
				if b, _ := os.ReadFile(filepath.Join(m.d.cfg.DeployDir, "shop.wasm")); !bytes.Equal(b, v1) {
					t.Errorf("%s: deploy dir no longer holds version 1", m.name)
				}
			}
		})
	}
	t.Run("refused at the origin", func(t *testing.T) {
		before := ms[1].d.Stats().Received
		rep, err := ms[0].d.Deploy(t.Context(), "/shop", bytes.NewReader(notWasm), DeployOptions{})
		var me *wasm.ModuleError
		if !errors.As(err, &me) || rep != nil {
			t.Fatalf("deploy of a bad module: %v, %v", err, rep)
		}
		if got := ms[1].d.Stats().Received; got != before {
			t.Errorf("a member received %d messages", got-before)
		}
		mustServe(t, ms, "/shop", hexDigest(v1))
	})
	t.Run("too large", func(t *testing.T) {
		ms[0].d.cfg.MaxModuleBytes = 1000
		defer func() { ms[0].d.cfg.MaxModuleBytes = DefaultMaxModuleBytes }()
		if _, err := ms[0].d.Deploy(t.Context(), "/shop", bytes.NewReader(v2), DeployOptions{}); !errors.Is(err, ErrModuleTooLarge) {
			t.Errorf("deploy over the limit: %v", err)
		}
		// And a receiver refuses an announced size over its limit.
		ms[1].d.cfg.MaxModuleBytes = 1000
		defer func() { ms[1].d.cfg.MaxModuleBytes = DefaultMaxModuleBytes }()
		failed := ms[0].d.sendTo(t.Context(), []*tribes.Member{ms[0].ch.Members()[0]},
			ms[0].d.encode(nil, &message{Type: msgBegin, ID: newID(), Size: 5000, Path: "/shop"}))
		if len(failed) != 1 {
			t.Errorf("begin over the receiver's limit not refused: %v", failed)
		}
	})
}

// TestAuthKey: with AuthKey, members with the same key deploy, a member
// with another key or none drops and counts the messages and is reported
// as failed; it keeps serving nothing.
func TestAuthKey(t *testing.T) {
	keys := map[string][]byte{"a": []byte("k1"), "b": []byte("k1"), "c": []byte("k2"), "d": nil}
	_, ms := newCluster(t, 4, func(name string, c *Config) { c.AuthKey = keys[name] })
	mod := counterModule(0, 1)
	_, err := ms[0].d.Deploy(t.Context(), "/shop", bytes.NewReader(mod), DeployOptions{})
	if !errors.Is(err, ErrMembersFailed) {
		t.Fatalf("deploy: %v", err)
	}
	var me *MembersError
	if !errors.As(err, &me) || len(me.Failed) != 2 || me.Failed[0].Addr != ms[2].ch.LocalMember().AddrPort().String() ||
		me.Failed[1].Addr != ms[3].ch.LocalMember().AddrPort().String() {
		t.Fatalf("failed members %+v", me)
	}
	if !strings.Contains(err.Error(), "FAIL_ACK") {
		t.Errorf("error %q", err)
	}
	mustServe(t, ms[:2], "/shop", hexDigest(mod))
	for _, m := range ms[2:] {
		if m.digestAt("/shop") != "" {
			t.Errorf("%s deployed an unauthenticated module", m.name)
		}
		if st := m.d.Stats(); st.Unauthenticated == 0 || st.Received != 0 {
			t.Errorf("%s stats %+v", m.name, st)
		}
	}
}

// TestForeignMessages: the farm listener ignores other users' messages on
// the shared channel and refuses malformed farm messages.
func TestForeignMessages(t *testing.T) {
	_, ms := newCluster(t, 2, nil)
	to := ms[0].ch.Members()
	opts := tribes.OptUseAck | tribes.OptSynchronizedAck
	if err := ms[0].ch.Send(t.Context(), to, []byte("WFS1 a session delta"), opts); err != nil {
		t.Errorf("session message: %v", err)
	}
	if err := ms[0].ch.Send(t.Context(), to, []byte("WFD1\x02"), opts); !errors.Is(err, tribes.ErrFailAck) {
		t.Errorf("malformed farm message: %v", err)
	}
	if err := ms[0].ch.Send(t.Context(), to, ms[0].d.encode(nil, &message{Type: msgChunk, ID: newID(), Data: []byte("x")}), opts); !errors.Is(err, tribes.ErrFailAck) {
		t.Errorf("chunk of an unknown transfer: %v", err)
	}
	st := ms[1].d.Stats()
	if st.Ignored != 1 || st.DecodeErrors != 2 || st.Refused != 2 { // each FAIL_ACK'd message came twice (one resend)
		t.Errorf("stats %+v", st)
	}
}

// TestTransferExpires: a transfer that stops is dropped with its temp file.
func TestTransferExpires(t *testing.T) {
	_, ms := newCluster(t, 2, func(_ string, c *Config) { c.TransferTimeout = 100 * time.Millisecond })
	d := ms[0].d
	if failed := d.sendTo(t.Context(), d.ch.Members(), d.encode(nil, &message{Type: msgBegin, ID: newID(), Size: 100, Path: "/x"})); failed != nil {
		t.Fatal(failed)
	}
	if left, _ := os.ReadDir(ms[1].d.cfg.TempDir); len(left) != 1 {
		t.Fatalf("temp dir %v", left)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ms[1].d.Stats().TransfersExpired == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left, _ := os.ReadDir(ms[1].d.cfg.TempDir); len(left) != 0 || ms[1].d.Stats().TransfersExpired != 1 {
		t.Errorf("temp dir %v, stats %+v", left, ms[1].d.Stats())
	}
}

// TestStartRemovesStaleParts: at Start, the partial files a crash left in
// TempDir (a transfer being received, an upload being spooled) are
// removed, with a log line. Files of other programs stay, and so does the
// partial file of a transfer that another deployer of this process,
// sharing the TempDir, is receiving.
func TestStartRemovesStaleParts(t *testing.T) {
	net := tribestest.NewNetwork()
	a := newMember(t, net, "a", nil)
	b := newMember(t, net, "b", nil)
	await(t, 1, a, b)
	id := newID()
	if failed := a.d.sendTo(t.Context(), a.ch.Members(), a.d.encode(nil, &message{Type: msgBegin, ID: id, Size: 100, Path: "/x"})); failed != nil {
		t.Fatal(failed)
	}
	tmp := b.d.cfg.TempDir
	live := filepath.Join(tmp, "farm-"+id.String()+".part")
	if _, err := os.Stat(live); err != nil {
		t.Fatalf("b receives no transfer: %v", err)
	}
	stale := []string{"farm-" + newID().String() + ".part", "upload-2596996162.part"}
	// Not the farm's, or the farm's but written a minute ago (by another
	// process sharing the directory, maybe).
	foreign := []string{"download.part", "upload-.part", "farm-1234.part", "notes.txt", "farm-" + newID().String() + ".part"}
	old := time.Now().Add(-time.Hour)
	for _, name := range append(append([]string(nil), stale...), foreign...) {
		file := filepath.Join(tmp, name)
		if err := os.WriteFile(file, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
		if name != foreign[len(foreign)-1] {
			os.Chtimes(file, old, old)
		} else {
			os.Chtimes(file, time.Now().Add(-time.Minute), time.Now().Add(-time.Minute))
		}
	}
	var logs syncbuf.Buffer
	newMember(t, net, "c", func(c *Config) {
		c.TempDir = tmp
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	for _, name := range stale {
		if _, err := os.Stat(filepath.Join(tmp, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale partial file %s kept: %v", name, err)
		}
	}
	for _, name := range append([]string{filepath.Base(live)}, foreign...) {
		if _, err := os.Stat(filepath.Join(tmp, name)); err != nil {
			t.Errorf("%s removed: %v", name, err)
		}
	}
	if s := logs.String(); !strings.Contains(s, "partial") || !strings.Contains(s, stale[0]) {
		t.Errorf("no log line names the removed files:\n%s", s)
	}
}

// TestJanitorRemovesStaleParts: a partial file that becomes stale while
// the deployer runs (a crash just before this run left it young) is
// removed by the janitor; a young one is kept.
func TestJanitorRemovesStaleParts(t *testing.T) {
	old := minPartStaleAge
	minPartStaleAge = 200 * time.Millisecond
	net := tribestest.NewNetwork()
	a := newMember(t, net, "a", func(c *Config) { c.TransferTimeout, c.ResultTimeout = 10*time.Millisecond, 10*time.Millisecond })
	minPartStaleAge = old // New read it
	tmp := a.d.cfg.TempDir
	stale, young := filepath.Join(tmp, "upload-1.part"), filepath.Join(tmp, "upload-2.part")
	for _, f := range []string{stale, young} {
		if err := os.WriteFile(f, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	past, later := time.Now().Add(-time.Hour), time.Now().Add(time.Hour) // young for the whole test
	os.Chtimes(stale, past, past)
	os.Chtimes(young, later, later)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(stale); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the janitor left a partial file unmodified for an hour")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(young); err != nil {
		t.Fatalf("the janitor removed a partial file modified within partStaleAge: %v", err)
	}
}

// TestPartsReleased: a partial file is no longer counted live once it is
// renamed or removed (a deploy, a module a member refuses, a corrupt
// transfer, one that expires, an upload over the limit), so that the count
// does not grow with the process's life.
func TestPartsReleased(t *testing.T) {
	_, ms := newCluster(t, 2, func(_ string, c *Config) { c.TransferTimeout = 100 * time.Millisecond })
	a, b := ms[0], ms[1]
	if _, err := a.d.Deploy(t.Context(), "/shop", bytes.NewReader(counterModule(0, 1)), DeployOptions{}); err != nil {
		t.Fatal(err)
	}
	bad := []byte("not wasm")
	for _, dg := range []digest{sha256.Sum256(bad), {1}} { // refused by the host; corrupt
		if res := sendRaw(t, a, "/x", len(bad), dg, bad); len(res) != 1 || res[0].OK() {
			t.Fatalf("b took a bad module: %+v", res)
		}
	}
	if failed := a.d.sendTo(t.Context(), a.ch.Members(), a.d.encode(nil, &message{Type: msgBegin, ID: newID(), Size: 100, Path: "/x"})); failed != nil {
		t.Fatal(failed)
	}
	waitFor(t, "the transfer to expire", func() bool { return b.d.Stats().TransfersExpired == 1 })
	a.d.cfg.MaxModuleBytes = 10
	if _, err := a.d.Deploy(t.Context(), "/shop", bytes.NewReader(counterModule(0, 2)), DeployOptions{}); !errors.Is(err, ErrModuleTooLarge) {
		t.Fatalf("upload over the limit: %v", err)
	}
	for _, m := range ms {
		m.d.Close()
	}
	liveParts.Lock()
	defer liveParts.Unlock()
	if len(liveParts.n) != 0 {
		t.Errorf("partial files still counted live: %v", liveParts.n)
	}
}

// TestWatchDir: a module dropped in one member's watch dir is deployed on
// all, a manifest names its path, and removing the file undeploys it.
func TestWatchDir(t *testing.T) {
	_, ms := newCluster(t, 3, func(name string, c *Config) {
		if name == "a" {
			c.WatchEnabled = true
			c.ProcessDeployFrequency = 20 * time.Millisecond
			os.MkdirAll(c.WatchDir, 0o755)
		}
	})
	watch := ms[0].d.cfg.WatchDir
	mod, other := counterModule(0, 1), counterModule(0, 2)
	os.WriteFile(filepath.Join(watch, "shop.wasm"), mod, 0o644)
	os.WriteFile(filepath.Join(watch, "x.wasm"), other, 0o644)
	os.WriteFile(filepath.Join(watch, "x.wasm.json"), []byte(`{"path": "/store/v2"}`), 0o644)
	waitFor(t, "deploys", func() bool {
		// Each member applies deploys on its own goroutine: wait for all.
		for _, m := range ms {
			if m.digestAt("/shop") != hexDigest(mod) || m.digestAt("/store/v2") != hexDigest(other) {
				return false
			}
		}
		return true
	})
	mustServe(t, ms, "/shop", hexDigest(mod))
	mustServe(t, ms, "/store/v2", hexDigest(other))
	os.Remove(filepath.Join(watch, "shop.wasm"))
	waitFor(t, "undeploy", func() bool { return ms[1].digestAt("/shop") == "" && ms[0].digestAt("/shop") == "" })
	if st := ms[0].d.Stats(); st.WatchDeploys != 2 || st.WatchUndeploys != 1 {
		t.Errorf("stats %+v", st)
	}
	// An undeploy through the API removes the watched file too, so the
	// watch does not bring it back.
	os.WriteFile(filepath.Join(watch, "shop.wasm"), mod, 0o644)
	waitFor(t, "redeploy", func() bool { return ms[1].digestAt("/shop") == hexDigest(mod) })
	if _, err := ms[0].d.Undeploy(t.Context(), "/shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(watch, "shop.wasm")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("watched module kept: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // five scans
	if ms[1].digestAt("/shop") != "" {
		t.Errorf("the watch redeployed /shop")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var _ = context.Background
