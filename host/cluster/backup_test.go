package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host/cluster"
	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
)

// Cluster message types, as on the wire (see wire.go).
const (
	typeGetAll     byte = 4
	typeBackup     byte = 6
	typeFetchReply byte = 9
)

// isType reports whether data is a cluster message of type t.
func isType(data []byte, t byte) bool {
	return len(data) > len(cluster.Magic) && string(data[:len(cluster.Magic)]) == cluster.Magic && data[len(cluster.Magic)] == t
}

// gateWait bounds the waits of the test interceptors, so that a test whose
// expected message never comes fails on its checks instead of hanging.
const gateWait = 5 * time.Second

// waitClosed waits until ch is closed or gateWait passed.
func waitClosed(ch <-chan struct{}) {
	select {
	case <-ch:
	case <-time.After(gateWait):
	}
}

// joinGate, on a joining member, orders its state transfer after the
// backup copies the others send it when it announces the app: the
// copies go up to the cluster only once the GET_ALL is being sent (so
// the state transfer queues them), and the GET_ALL leaves only after n
// copies were taken and the clock moved past the last one's timestamp
// (so they were sent before the snapshot).
type joinGate struct {
	tribes.BaseInterceptor
	n int

	askOnce sync.Once
	asking  chan struct{} // closed when the GET_ALL is being sent
	mu      sync.Mutex
	got     int
	last    int64         // the latest copy's timestamp (unix ms)
	copies  chan struct{} // closed when n copies were taken
}

func newJoinGate(n int) *joinGate {
	return &joinGate{n: n, asking: make(chan struct{}), copies: make(chan struct{})}
}

func (g *joinGate) SendMessage(ctx context.Context, to []*tribes.Member, msg *tribes.Message) error {
	if isType(msg.Data, typeGetAll) {
		g.askOnce.Do(func() { close(g.asking) })
		waitClosed(g.copies)
		g.mu.Lock()
		last := g.last
		g.mu.Unlock()
		for time.Now().UnixMilli() <= last {
			time.Sleep(100 * time.Microsecond)
		}
	}
	return g.Next().SendMessage(ctx, to, msg)
}

func (g *joinGate) MessageReceived(msg *tribes.Message) error {
	if !isType(msg.Data, typeBackup) {
		return g.Previous().MessageReceived(msg)
	}
	waitClosed(g.asking)
	ts := msg.Timestamp
	err := g.Previous().MessageReceived(msg)
	g.mu.Lock()
	g.got++
	g.last = max(g.last, ts)
	if g.got == g.n {
		close(g.copies)
	}
	g.mu.Unlock()
	return err
}

// TestBackupManagerJoinerKeepsQueuedBackups: A serves sessions without a
// backup; B joins, and A backs them up on B while B's state transfer
// runs, before A takes the snapshot it sends B (which holds only where the
// sessions live). B must keep the copies it queued meanwhile: a request on
// B continues a session, and after A crashes B continues every one.
func TestBackupManagerJoinerKeepsQueuedBackups(t *testing.T) {
	net := tribestest.NewNetwork()
	mc := cluster.DefaultManagerConfig(cluster.KindBackup)
	a := startNode(t, net, "jvm_a", mc)
	ids := a.sessions(t, 5)
	gate := newJoinGate(len(ids))
	b := startNodeWithInterceptors(t, net, "jvm_b", mc, gate)
	select {
	case <-gate.copies:
	default:
		t.Fatal("B's state transfer did not queue A's backup copies")
	}
	if j, _ := b.get(t, "/counter/json", ids[0]); j.Counter != 3 {
		t.Errorf("request on B for a session B backs up, A alive: counter %d, want 3", j.Counter)
	}
	a.nd.Crash()
	for i, id := range ids[1:] {
		if j, _ := b.get(t, "/counter/json", id); j.Counter != 3 {
			t.Errorf("session %d on B after A crashed: counter %d, want 3 (B was its backup)", i+1, j.Counter)
		}
	}
}

// TestBackupManagerFetchesMissingBackupCopy: a member recorded as a
// session's backup that does not hold the copy fetches the session from
// its primary when a request for it arrives, instead of starting a new
// session.
func TestBackupManagerFetchesMissingBackupCopy(t *testing.T) {
	net := tribestest.NewNetwork()
	mc := cluster.DefaultManagerConfig(cluster.KindBackup)
	a := startNode(t, net, "jvm_a", mc)
	b := startNode(t, net, "jvm_b", mc)
	id := a.session(t)
	bm := b.manager(t).(*cluster.BackupManager)
	if _, ok := bm.Store().Remove(id); !ok {
		t.Fatal("B does not hold the backup copy")
	}
	if j, _ := b.get(t, "/counter/json", id); j.Counter != 3 {
		t.Errorf("request on B, the session's backup without its copy: counter %d, want 3", j.Counter)
	}
	if st := bm.Stats(); st.Fetched != 1 || st.PrimarySessions != 1 {
		t.Errorf("B's stats %+v, want one session fetched and served", st)
	}
}

// holdOne, once armed, holds the next cluster message of type typ its
// member sends until release is closed; it closes held when it has the
// message and sent when the message was sent.
// Synchronously, the sender waits (as for a slow send); with async, the
// send returns at once and the message leaves from another goroutine
// later, so that a member sending from its receive path goes on receiving.
type holdOne struct {
	tribes.BaseInterceptor
	typ     byte
	async   bool
	armed   atomic.Bool
	held    chan struct{}
	release chan struct{}
	sent    chan struct{}
}

func newHoldOne(typ byte, async bool) *holdOne {
	return &holdOne{typ: typ, async: async, held: make(chan struct{}), release: make(chan struct{}), sent: make(chan struct{})}
}

func (h *holdOne) SendMessage(ctx context.Context, to []*tribes.Member, msg *tribes.Message) error {
	if !isType(msg.Data, h.typ) || !h.armed.CompareAndSwap(true, false) {
		return h.Next().SendMessage(ctx, to, msg)
	}
	close(h.held)
	if !h.async {
		<-h.release
		defer close(h.sent)
		return h.Next().SendMessage(ctx, to, msg)
	}
	cp := &tribes.Message{Options: msg.Options, Data: bytes.Clone(msg.Data)}
	to = append([]*tribes.Member(nil), to...)
	go func() {
		<-h.release
		h.Next().SendMessage(context.Background(), to, cp)
		close(h.sent)
	}()
	return nil
}

// released waits until done closes or, when it does not, a little while,
// then releases h's message. Tests use it where the code before a fix
// finishes a concurrent step before the held message leaves and the code
// after it makes that step wait for the message: the pause gives the step
// time to start waiting; the tests' outcome does not depend on it.
func (h *holdOne) released(done <-chan struct{}) {
	select {
	case <-done:
	case <-time.After(100 * time.Millisecond):
	}
	close(h.release)
}

// TestBackupManagerConcurrentTakeover: two requests for A's session reach
// C, which holds only its location, at once. The first one's fetch is
// slow; the second must not take the session over on its own: when it
// had committed (and replicated) a change before the first fetch's reply
// arrived, that reply replaced the session on C and went, older, to the
// backup, so the acknowledged change was lost on both copies.
func TestBackupManagerConcurrentTakeover(t *testing.T) {
	hold := newHoldOne(typeFetchReply, true)
	hold.armed.Store(true)
	a, _, third, id := startPrimaryBackupOther(t, "jvm_a", "jvm_b", "jvm_c", hold)
	mgr := third.manager(t)

	first := make(chan bool)
	go func() { _, ok := mgr.Find(id); first <- ok }()
	waitClosed(hold.held) // the first takeover's fetch was answered; the answer is held

	var err2 error
	second := make(chan struct{})
	go func() {
		defer close(second)
		if _, ok := mgr.Find(id); !ok {
			err2 = errors.New("second Find found no session")
			return
		}
		d := &session.Delta{ID: id, Accessed: time.Now().UnixMilli(),
			Ops: []session.Op{{Kind: session.OpSet, Key: "user", Value: []byte("alice")}}}
		if err2 = mgr.Commit(d); err2 == nil {
			_, err2 = mgr.Replicate(context.Background(), d)
		}
	}()
	// Before the fix the second request is done first; after it, it waits
	// for the first takeover.
	hold.released(second)
	if !<-first {
		t.Fatal("first Find found no session")
	}
	<-second
	if err2 != nil {
		t.Fatal(err2)
	}

	s, ok := mgr.Find(id)
	if !ok {
		t.Fatal("C lost the session")
	}
	if _, ok := s.Get("user"); !ok {
		t.Error("C, the new primary, lost the committed user=alice")
	}
	if s, ok := a.manager(t).(*cluster.BackupManager).Store().Peek(id); !ok {
		t.Error("A, the former primary, keeps no copy")
	} else if _, ok := s.Get("user"); !ok {
		t.Error("A, the backup, lost the committed (and acknowledged) user=alice")
	}
}

// try is get for another goroutine than the test's: it returns an error
// instead of failing the test.
func (n *node) try(path, cookie string) (counterJSON, error) {
	req := httptest.NewRequest("GET", path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", "JSESSIONID="+cookie)
	}
	rec := httptest.NewRecorder()
	n.m.Server.ServeHTTP(rec, req)
	var out counterJSON
	if rec.Code != http.StatusOK {
		return out, fmt.Errorf("%s %s: %d %s", n.route, path, rec.Code, rec.Body)
	}
	return out, json.Unmarshal(rec.Body.Bytes(), &out)
}

// TestBackupManagerNewBackupGetsCopyBeforeDelta: Y, the backup of X's
// session, crashes; X chooses Z and sends it the session, slowly. A
// request on X changes the session meanwhile; its delta must not reach Z
// before the copy (Z, without the session, dropped it and acknowledged,
// and the older copy came after), so that when X crashes too Z continues
// with the change.
func TestBackupManagerNewBackupGetsCopyBeforeDelta(t *testing.T) {
	hold := newHoldOne(typeBackup, false)
	x, y, z, id := startPrimaryBackupOther(t, "jvm_x", "jvm_y", "jvm_z", hold)
	hold.armed.Store(true)
	y.nd.Crash()
	waitClosed(hold.held) // X chose Z and sends it the copy: held

	var j counterJSON
	var err error
	done := make(chan struct{})
	go func() { defer close(done); j, err = x.try("/counter/json", id) }()
	hold.released(done)
	<-done
	if err != nil || j.Counter != 3 {
		t.Fatalf("request on X: %+v, %v", j, err)
	}
	waitClosed(hold.sent)
	x.nd.Crash()
	if j, _ := z.get(t, "/counter/json", id); j.Counter != 4 {
		t.Errorf("after X crashed, Z continues the session with counter %d, want 4 (the change acknowledged before was lost)", j.Counter)
	}
}

// TestBackupManagerResendsSessionToBackupWithoutIt: the backup member Z
// lost its copy of X's session; X's next synchronous delta must not be
// acknowledged as applied there: X sends the whole session instead, and
// Z continues it after X crashed.
func TestBackupManagerResendsSessionToBackupWithoutIt(t *testing.T) {
	net := tribestest.NewNetwork()
	mc := cluster.DefaultManagerConfig(cluster.KindBackup)
	x, z := startNode(t, net, "jvm_x", mc), startNode(t, net, "jvm_z", mc)
	id := x.session(t)
	if _, ok := z.manager(t).(*cluster.BackupManager).Store().Remove(id); !ok {
		t.Fatal("Z does not hold the backup copy")
	}
	if j, _ := x.get(t, "/counter/json", id); j.Counter != 3 {
		t.Fatalf("request on X: %+v", j)
	}
	if c, ok := heldCounter(z, id); !ok || c != 3 {
		t.Errorf("Z after X's synchronous replication: counter %d (held %v), want 3", c, ok)
	}
	x.nd.Crash()
	if j, _ := z.get(t, "/counter/json", id); j.Counter != 4 {
		t.Errorf("after X crashed, Z continues the session with counter %d, want 4", j.Counter)
	}
}

// heldCounter returns the counter of the session id that n holds, without
// taking the session over (as Find would).
func heldCounter(n *node, id string) (int, bool) {
	m, _ := n.m.Cluster.Manager("/counter")
	s, ok := m.(*cluster.BackupManager).Store().Peek(id)
	if !ok {
		return 0, false
	}
	v, _ := s.Get("counter")
	var c int
	fmt.Sscan(string(v), &c)
	return c, true
}

// TestBackupManagerHandOffKeepsConcurrentChange: a request changes a
// session on A while A hands it on to B (its backup, now the primary):
// the change must reach B and its new backup, although A's copy for B was
// taken before it and A drops the session after the hand-off.
func TestBackupManagerHandOffKeepsConcurrentChange(t *testing.T) {
	hold := newHoldOne(typeBackup, false)
	a, b, c, id := startPrimaryBackupOther(t, "jvm_a", "jvm_b", "jvm_c", hold)
	hold.armed.Store(true)
	handedOff := make(chan struct{})
	var n int
	var herr error
	go func() { defer close(handedOff); n, herr = a.m.Cluster.HandOff(context.Background()) }()
	waitClosed(hold.held) // A sends B the session: held

	var j counterJSON
	var err error
	done := make(chan struct{})
	go func() { defer close(done); j, err = a.try("/counter/json", id) }()
	hold.released(done)
	<-done
	<-handedOff
	if herr != nil || n != 1 {
		t.Fatalf("HandOff: %d, %v", n, herr)
	}
	if err != nil || j.Counter != 3 {
		t.Fatalf("request on A during the hand-off: %+v, %v", j, err)
	}
	for _, n := range []*node{b, c} {
		if got, ok := heldCounter(n, id); !ok || got != 3 {
			t.Errorf("%s after the hand-off: counter %d (held %v), want 3", n.route, got, ok)
		}
	}
	a.nd.Crash()
	if j, _ := b.get(t, "/counter/json", id); j.Counter != 4 {
		t.Errorf("on B, the new primary, after A stopped: counter %d, want 4", j.Counter)
	}
}

// TestBackupManagerRenameKeepsNewLocation: A changes the id of a session
// whose backup member B died without leaving; the change gives the
// session a new backup C, whose location reaches the other members before
// the rename. A third member D must keep the new location (not move the
// old one, naming the dead B, over it), so that after A crashed a request
// on D finds the session on C. (Before the fix, the request on D could
// still succeed when C's promotion reached D first: the location check is
// the deterministic one.)
func TestBackupManagerRenameKeepsNewLocation(t *testing.T) {
	net := tribestest.NewNetwork()
	mc := cluster.DefaultManagerConfig(cluster.KindBackup)
	a := startNode(t, net, "jvm_a", mc)
	others := []*node{startNode(t, net, "jvm_b", mc), startNode(t, net, "jvm_c", mc), startNode(t, net, "jvm_d", mc)}
	id := a.session(t)
	holder := func(id string, among []*node) (*node, []*node) {
		var h *node
		var rest []*node
		for _, n := range among {
			if _, ok := heldCounter(n, id); ok {
				h = n
			} else {
				rest = append(rest, n)
			}
		}
		return h, rest
	}
	b, rest := holder(id, others)
	if b == nil {
		t.Fatal("no backup copy")
	}
	for _, n := range rest {
		eventually(t, "the location is known", func() bool { return n.m.Cluster.Managers()["/counter"].Proxies == 1 })
	}
	received := func(n *node) int64 { return n.m.Cluster.Managers()["/counter"].Received }
	before := map[*node]int64{}
	for _, n := range rest {
		before[n] = received(n)
	}
	b.nd.Transport().Close() // B's process is gone; its membership lingers
	newID, err := a.manager(t).ChangeID(id)
	if err != nil {
		t.Fatal(err)
	}
	c, rest := holder(newID, rest)
	if c == nil || len(rest) != 1 {
		t.Fatal("the session got no new backup")
	}
	d := rest[0]
	eventually(t, "D got the new location and the rename", func() bool { return received(d) >= before[d]+2 })
	route := func(u tribes.UniqueID) string {
		for _, n := range append([]*node{a}, others...) {
			if n.ch.LocalMember().UniqueID == u {
				return n.route
			}
		}
		return "none"
	}
	dm, _ := d.m.Cluster.Manager("/counter")
	if p, bk, ok := cluster.Location(dm.(*cluster.BackupManager), newID); !ok || route(p) != a.route || route(bk) != c.route {
		t.Errorf("%s records the session at primary %s, backup %s (known %v); want %s and %s", d.route, route(p), route(bk), ok, a.route, c.route)
	}
	a.nd.Crash()
	if j, _ := d.get(t, "/counter/json", newID); j.Counter != 3 {
		t.Errorf("request on %s after A crashed: counter %d, want 3 (the session is on %s)", d.route, j.Counter, c.route)
	}
}

// startPrimaryBackupOther starts three BackupManager members, the first
// with the interceptors ics, creates a session on the first (two requests:
// counter 2) and returns the members as primary, the one that got the
// backup copy, the other, and the session id.
func startPrimaryBackupOther(t *testing.T, r1, r2, r3 string, ics ...tribes.Interceptor) (primary, backup, other *node, id string) {
	t.Helper()
	net := tribestest.NewNetwork()
	mc := cluster.DefaultManagerConfig(cluster.KindBackup)
	primary = startNodeWithInterceptors(t, net, r1, mc, ics...)
	backup, other = startNode(t, net, r2, mc), startNode(t, net, r3, mc)
	_, id = primary.get(t, "/counter/json", "")
	primary.get(t, "/counter/json", id)
	if other.manager(t).Len() == 1 {
		backup, other = other, backup
	}
	if backup.manager(t).Len() != 1 {
		t.Fatalf("neither %s nor %s holds the backup copy", r2, r3)
	}
	eventually(t, "the other member knows where the session lives", func() bool {
		st := other.m.Cluster.Managers()["/counter"]
		return st.ActiveSessions == 0 && st.Proxies == 1
	})
	return primary, backup, other, id
}

// renameFetchReply rewrites the session id in the fetch replies its member
// sends, to another id of the same length: a member answering with the
// wrong session.
type renameFetchReply struct {
	tribes.BaseInterceptor
	from, to atomic.Pointer[string]
}

func (r *renameFetchReply) SendMessage(ctx context.Context, to []*tribes.Member, msg *tribes.Message) error {
	if from, want := r.from.Load(), r.to.Load(); from != nil && isType(msg.Data, typeFetchReply) {
		msg = &tribes.Message{Options: msg.Options, Data: bytes.ReplaceAll(msg.Data, []byte(*from), []byte(*want))}
	}
	return r.Next().SendMessage(ctx, to, msg)
}

// TestBackupManagerRefusesFetchReplyForAnotherSession: the primary answers
// the third member's fetch with a session under another id. The third
// member must not store it (it would hold a stray session and give the
// client a new one): it asks the backup, which has the right one.
func TestBackupManagerRefusesFetchReplyForAnotherSession(t *testing.T) {
	rw := &renameFetchReply{}
	_, _, third, id := startPrimaryBackupOther(t, "jvm_a", "jvm_b", "jvm_c", rw)
	other := "X" + id[1:]
	if id[0] == 'X' {
		other = "Y" + id[1:]
	}
	rw.from.Store(&id)
	rw.to.Store(&other)
	j, _ := third.get(t, "/counter/json", id)
	if j.Counter != 3 {
		t.Fatalf("third member after the primary answered with session %s: %+v (want counter 3 of %s, from the backup)", other, j, id)
	}
	if _, ok := heldCounter(third, other); ok {
		t.Fatalf("third member stored the stray session %s", other)
	}
}
