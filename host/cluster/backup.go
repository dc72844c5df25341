package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/tribes"
)

// BackupManager keeps each session on two members (Tomcat's BackupManager
// over a LazyReplicatedMap): the member that created it (the primary) and
// one backup member chosen among the members running the app; the others
// keep only where it lives (a proxy). A request for the session on a
// member that is not its primary makes that member the primary: it uses
// its backup copy or fetches the session, chooses a backup and tells the
// others. When a member leaves, the backups of its sessions are promoted
// and new backups chosen, so a later second failure loses nothing either.
type BackupManager struct {
	base
	xfer

	mu      sync.Mutex
	entries map[string]*entry
	locks   idLocks
}

// entry says where one session lives.
type entry struct {
	primary, backup tribes.UniqueID
}

// idLocks serialises the work of a member on one session id: a takeover,
// and what it sends as the session's primary (whole copies to a backup
// member, deltas), so that a backup member gets them in the order the
// session went through, and a delta never reaches a new backup member
// before the copy it applies to.
type idLocks struct {
	mu sync.Mutex
	m  map[string]*idLock
}

// idLock is the lock of one id, kept while it is held or awaited.
type idLock struct {
	sync.Mutex
	refs int // holders and waiters
}

// idLockPool recycles the locks of ids no longer locked: Replicate locks
// the id of every request's session.
var idLockPool = sync.Pool{New: func() any { return new(idLock) }}

// lock locks id and returns what unlock takes.
func (l *idLocks) lock(id string) *idLock {
	l.mu.Lock()
	k := l.m[id]
	if k == nil {
		if l.m == nil {
			l.m = map[string]*idLock{}
		}
		k = idLockPool.Get().(*idLock)
		l.m[id] = k
	}
	k.refs++
	l.mu.Unlock()
	k.Lock()
	return k
}

// unlock unlocks id, which lock returned k for.
func (l *idLocks) unlock(id string, k *idLock) {
	k.Unlock()
	l.mu.Lock()
	k.refs--
	free := k.refs == 0
	if free {
		delete(l.m, id)
	}
	l.mu.Unlock()
	if free {
		idLockPool.Put(k) // no holder or waiter has it
	}
}

// locked runs f holding id's lock.
func (m *BackupManager) locked(id string, f func()) {
	k := m.locks.lock(id)
	defer m.locks.unlock(id, k)
	f()
}

var (
	_ Replicator = (*BackupManager)(nil)
	_ replicator = (*BackupManager)(nil)
)

func newBackupManager(c *Cluster, path string, scfg session.Config) (*BackupManager, error) {
	m := &BackupManager{entries: map[string]*entry{}}
	m.base.init(c, path, scfg, managerHooks{
		replicate:  m.Replicate,
		expireOpts: tribes.OptAsynchronous,
		renamed:    m.renameEntry,
		forget:     m.dropEntry,
		// On shutdown only the sessions served here expire: the others
		// belong to their primaries.
		owns: func(id string) bool { e, _ := m.role(id); return e.primary == m.c.localID() },
	})
	// The state transfer brings only locations (proxy records): the
	// backup copies and deltas queued meanwhile are applied, whenever they
	// were sent.
	m.xfer = xfer{b: &m.base, apply: m.apply, record: m.putRecord, replayAll: true}
	scfg.Listener = m
	scfg.Backup = func(id string) bool {
		// Called with the store's locks held; entries has its own.
		m.mu.Lock()
		e := m.entries[id]
		m.mu.Unlock()
		return e != nil && e.primary != c.localID()
	}
	st, err := session.NewStandardManager(scfg)
	if err != nil {
		return nil, err
	}
	m.store = st
	m.lim = st.Limits()
	return m, nil
}

// role returns the session's entry (a copy) and whether it is known.
func (m *BackupManager) role(id string) (entry, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[id]
	if !ok {
		return entry{}, false
	}
	return *e, true
}

func (m *BackupManager) setEntry(id string, e entry) {
	m.mu.Lock()
	m.entries[id] = &e
	m.mu.Unlock()
}

// renameEntry moves the entry of a session whose id changed. An entry
// under the new id already is newer (its primary sent it after the
// change, with a new backup member): it stays.
func (m *BackupManager) renameEntry(oldID, newID string) {
	m.mu.Lock()
	if e := m.entries[oldID]; e != nil {
		delete(m.entries, oldID)
		if _, ok := m.entries[newID]; !ok {
			m.entries[newID] = e
		}
	}
	m.mu.Unlock()
}

func (m *BackupManager) dropEntry(id string) {
	m.mu.Lock()
	delete(m.entries, id)
	m.mu.Unlock()
}

// Find implements session.Manager. A session this member is not primary
// for is taken over: from the local backup copy, else fetched from its
// primary or backup member. Concurrent requests for a session being
// taken over wait for the takeover, then find the session served here.
func (m *BackupManager) Find(id string) (*session.Session, bool) {
	local := m.c.localID()
	if e, known := m.role(id); !known || e.primary == local {
		return m.store.Find(id)
	}
	// One takeover of a session at a time: two fetches racing would let
	// the later answer replace the session after a request had changed
	// it, and send that older state to the backup.
	k := m.locks.lock(id)
	defer m.locks.unlock(id, k)
	e, known := m.role(id)
	if !known || e.primary == local {
		return m.store.Find(id) // taken over meanwhile
	}
	prefer := e.primary // keeps a copy, unless it did not answer
	var s *session.Session
	ok := false
	if e.backup == local {
		s, ok = m.store.Find(id)
	}
	if !ok {
		// Not the backup, or the backup copy is missing (it expired here,
		// or has not arrived yet): the primary has the session.
		st, from, err := m.fetch(id, e)
		if err != nil {
			m.log.Warn("session not fetched", "session", id, "err", err)
			return nil, false
		}
		if _, err := m.store.Put(st); err != nil {
			return nil, false
		}
		m.k.fetched.Add(1)
		prefer = from
		if s, ok = m.store.Find(id); !ok {
			return nil, false
		}
	}
	m.promote(context.Background(), id, s, entry{primary: prefer})
	return s, true
}

// promote makes this member the primary of session s: a new backup gets
// the whole session, the other members the new location. The caller holds
// the id's lock.
func (m *BackupManager) promote(ctx context.Context, id string, s *session.Session, old entry) {
	m.backUp(ctx, id, s, entry{primary: m.c.localID(), backup: m.chooseBackup(id, old.primary)})
}

// backUp records e, in which this member is the primary of session s,
// sends s whole to e.backup and the location to the other members. A
// backup member that does not take it (one that died and that the failure
// detector has not dropped yet: after a takeover, the former primary is
// the preferred backup) is passed over for the next member in rendezvous
// order, so that the session does not stay without a copy while another
// member could hold it. The error is the last backup member's, if none
// took the session. Members in failed are known not to take it. The
// caller holds the id's lock.
func (m *BackupManager) backUp(ctx context.Context, id string, s *session.Session, e entry, failed ...tribes.UniqueID) error {
	var err error
	for {
		m.setEntry(id, e)
		if err = m.sendBackup(ctx, id, s, e); err == nil {
			break
		}
		failed = append(failed, e.backup)
		next := m.chooseBackupExcept(id, tribes.UniqueID{}, failed...)
		m.log.Debug("backup member did not take the session; choosing another", "session", id,
			"member", e.backup, "next", next, "err", err)
		e.backup = next
		if next == (tribes.UniqueID{}) {
			m.setEntry(id, e)
			break
		}
	}
	m.sendProxy(id, e)
	return err
}

// chooseBackup picks the backup member of a session by rendezvous hashing
// over the members running the app, so a member's leaving moves only its
// own sessions. prefer, if it runs the app, wins (the former primary after
// a takeover keeps a copy).
func (m *BackupManager) chooseBackup(id string, prefer tribes.UniqueID) tribes.UniqueID {
	return m.chooseBackupExcept(id, prefer, tribes.UniqueID{})
}

// chooseBackupExcept is chooseBackup among the members not in except.
func (m *BackupManager) chooseBackupExcept(id string, prefer tribes.UniqueID, except ...tribes.UniqueID) tribes.UniqueID {
	var best tribes.UniqueID
	var bestScore uint64
	for _, mb := range m.c.contextMembers(m.ctx) {
		if slices.Contains(except, mb.UniqueID) {
			continue
		}
		if mb.UniqueID == prefer {
			return prefer
		}
		h := fnv.New64a()
		h.Write([]byte(id))
		h.Write(mb.UniqueID[:])
		if sc := h.Sum64(); sc >= bestScore {
			best, bestScore = mb.UniqueID, sc
		}
	}
	return best
}

func (m *BackupManager) sendBackup(ctx context.Context, id string, s *session.Session, e entry) error {
	if e.backup == (tribes.UniqueID{}) {
		return nil
	}
	to := m.c.member(e.backup)
	if to == nil {
		return nil
	}
	st := s.Snapshot()
	b := header(nil, msgBackup, m.ctx)
	b = append(b, e.primary[:]...)
	b = append(b, e.backup[:]...)
	b, _ = st.AppendBinary(b)
	return m.send(ctx, []*tribes.Member{to}, b, m.cfg.SendOptions)
}

// others returns the members other than the backup (those that do not
// run the app drop what they get).
func (m *BackupManager) others(e entry) []*tribes.Member {
	ms := m.c.domainMembers()
	out := make([]*tribes.Member, 0, len(ms))
	for _, mb := range ms {
		if mb.UniqueID != e.backup {
			out = append(out, mb)
		}
	}
	return out
}

func (m *BackupManager) sendProxy(id string, e entry) {
	to := m.others(e)
	if len(to) == 0 {
		return
	}
	rec := proxyRec{id: id, primary: e.primary, backup: e.backup}
	b := rec.appendBody(header(nil, msgProxy, m.ctx))
	m.send(context.Background(), to, b, tribes.OptAsynchronous)
}

// fetch asks the session's primary, then its backup, for the session, and
// returns it with the member that answered.
func (m *BackupManager) fetch(id string, e entry) (session.State, tribes.UniqueID, error) {
	var errs []error
	for _, uid := range []tribes.UniqueID{e.primary, e.backup} {
		to := m.c.member(uid)
		if to == nil {
			continue
		}
		st, found, err := m.fetchFrom(to, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if found {
			return st, uid, nil
		}
	}
	return session.State{}, tribes.UniqueID{}, fmt.Errorf("%w: %s: %w", ErrFetch, id, errors.Join(errs...))
}

func (m *BackupManager) fetchFrom(to *tribes.Member, id string) (session.State, bool, error) {
	type result struct {
		st    session.State
		found bool
		err   error
	}
	done := make(chan result, 1)
	req, cancel := m.c.request(to.UniqueID, func(msg *tribes.Message, p parsed, r *reader) error {
		var res result
		res.found = r.byte() == 1
		if r.err != nil {
			return r.err
		}
		if res.found {
			res.st, res.err = session.UnmarshalState(r.rest(), m.lim)
			if res.err == nil && res.st.ID != id {
				res.err = fmt.Errorf("%w: asked for session %s, got %s", ErrFetch, id, res.st.ID)
			}
		}
		select {
		case done <- res:
		default:
		}
		return nil
	})
	defer cancel()
	ctx, cc := context.WithTimeout(m.c.life, m.cfg.FetchTimeout)
	defer cc()
	b := header(nil, msgFetch, m.ctx)
	b = appendU64(b, req)
	b = appendStr(b, id)
	if err := m.c.ch.Send(ctx, []*tribes.Member{to}, b, SyncOptions); err != nil {
		return session.State{}, false, err
	}
	select {
	case res := <-done:
		return res.st, res.found, res.err
	case <-ctx.Done():
		return session.State{}, false, ctx.Err()
	}
}

// Commit implements session.Manager: it applies the delta locally, as the
// session's primary; the ReplicationValve then calls Replicate.
func (m *BackupManager) Commit(d *session.Delta) error {
	if err := m.store.Commit(d); err != nil {
		return err
	}
	switch {
	case d.Invalidated:
		m.dropEntry(d.ID)
	case d.Created:
		m.k.created.Add(1)
		m.setEntry(d.FinalID(), entry{primary: m.c.localID()})
	case d.NewID != "":
		m.renameEntry(d.ID, d.NewID)
	}
	return nil
}

// Replicate implements [Replicator]: a new session goes whole to its
// backup member (and its location to the others), a change as a delta to
// the backup member. A change to a session that moved to another primary
// while the request ran (a hand-off, a takeover by another member) goes
// to its new primary and backup member.
func (m *BackupManager) Replicate(ctx context.Context, d *session.Delta) (int, error) {
	id := d.FinalID()
	if d.Invalidated {
		to := m.c.domainMembers()
		if len(to) == 0 {
			return 0, nil
		}
		b := header(nil, msgExpire, m.ctx)
		b = appendStr(b, d.ID)
		b = append(b, reasonInvalidated)
		return len(b), m.send(ctx, to, b, m.cfg.SendOptions)
	}
	s, ok := m.store.Peek(id)
	if !d.HasChanges() {
		if !ok {
			return 0, nil
		}
		if d.Accessed-s.ReplicatedAccess() < accessInterval(m.cfg, s) {
			m.k.skipped.Add(1)
			return 0, nil
		}
	}
	// After the copies and deltas of the session sent before (by a
	// takeover, a new backup chosen when a member left or joined, a
	// hand-off): the backup member applies them in order. The id before a
	// rename: that is the one those were sent under.
	k := m.locks.lock(d.ID)
	defer m.locks.unlock(d.ID, k)
	e, _ := m.role(id)
	if local := m.c.localID(); e.primary != local && e.primary != (tribes.UniqueID{}) {
		return m.forward(ctx, d, e)
	}
	if !ok {
		return 0, nil
	}
	s.SetReplicatedAccess(d.Accessed)
	if d.Created || e.backup == (tribes.UniqueID{}) || m.c.member(e.backup) == nil {
		return 0, m.backUp(ctx, id, s, entry{primary: m.c.localID(), backup: m.chooseBackup(id, tribes.UniqueID{})})
	}
	b := header(nil, msgDelta, m.ctx)
	b, _ = d.AppendBinary(b)
	err := m.send(ctx, []*tribes.Member{m.c.member(e.backup)}, b, m.cfg.SendOptions)
	switch {
	case err == nil:
	case errors.Is(err, tribes.ErrFailAck):
		// The backup member got the change but could not apply it (it
		// does not hold the session): it gets the whole session, or, if
		// it does not take that either, another member does.
		err = m.backUp(ctx, id, s, e)
	default:
		// The backup member did not take the change (it died and is not
		// dropped yet): another one gets the whole session.
		dead := e.backup
		e = entry{primary: m.c.localID(), backup: m.chooseBackupExcept(id, tribes.UniqueID{}, dead)}
		err = m.backUp(ctx, id, s, e, dead)
	}
	if d.NewID != "" {
		if to := m.others(e); len(to) > 0 {
			r := header(nil, msgRename, m.ctx)
			r = appendStr(r, d.ID)
			r = appendStr(r, d.NewID)
			m.send(ctx, to, r, tribes.OptAsynchronous)
		}
	}
	return len(b), err
}

// forward sends the delta of a request that changed a session here while
// it moved to another primary to the members that hold it now (e). The
// session's copy here was left out of the hand-off's or takeover's copy,
// or is gone.
func (m *BackupManager) forward(ctx context.Context, d *session.Delta, e entry) (int, error) {
	to := make([]*tribes.Member, 0, 2)
	for _, uid := range [...]tribes.UniqueID{e.primary, e.backup} {
		if mb := m.c.member(uid); mb != nil { // not this member
			to = append(to, mb)
		}
	}
	if len(to) == 0 {
		return 0, nil
	}
	b := header(nil, msgDelta, m.ctx)
	b, _ = d.AppendBinary(b)
	return len(b), m.send(ctx, to, b, m.cfg.SendOptions)
}

// putRecord stores one proxy record of a state-transfer block.
func (m *BackupManager) putRecord(rec []byte) error {
	r := reader{b: rec}
	p := r.proxy()
	r.end()
	if r.err != nil {
		return r.err
	}
	m.setEntry(p.id, entry{primary: p.primary, backup: p.backup})
	return nil
}

// handle applies a message of another member.
func (m *BackupManager) handle(ctx context.Context, msg *tribes.Message, p parsed) error {
	switch p.typ {
	case msgBackup, msgDelta, msgProxy, msgExpire, msgRename:
		return m.live(msg, p)
	case msgFetch:
		r := reader{b: p.body}
		req := r.u64()
		id := r.str(maxIDBytes, "session id")
		r.end()
		if r.err != nil {
			return r.err
		}
		b := header(nil, msgFetchReply, m.ctx)
		b = appendU64(b, req)
		if s, ok := m.store.Peek(id); ok {
			st := s.Snapshot()
			b = append(b, 1)
			b, _ = st.AppendBinary(b)
		} else {
			b = append(b, 0)
		}
		m.send(ctx, []*tribes.Member{msg.Source.Clone()}, b, tribes.OptAsynchronous)
		return nil
	case msgGetAll:
		return m.serveGetAll(msg, p, func() (int, func(b []byte, i int) []byte) {
			m.mu.Lock()
			recs := make([]proxyRec, 0, len(m.entries))
			for id, e := range m.entries {
				recs = append(recs, proxyRec{id: id, primary: e.primary, backup: e.backup})
			}
			m.mu.Unlock()
			return len(recs), func(b []byte, i int) []byte { return recs[i].appendBody(b) }
		})
	}
	m.c.stats.ignored.Add(1)
	return nil
}

// apply applies a live (or queued) message.
func (m *BackupManager) apply(t msgType, body []byte) error {
	m.k.received.Add(1)
	m.k.receivedBytes.Add(int64(len(body)))
	local := m.c.localID()
	r := reader{b: body}
	switch t {
	case msgBackup:
		primary, backup := r.uid(), r.uid()
		if r.err != nil {
			return r.err
		}
		st, err := session.UnmarshalState(r.rest(), m.lim)
		if err != nil {
			return err
		}
		s, err := m.store.Put(st)
		if err != nil {
			return err
		}
		s.SetReplicatedAccess(st.Accessed)
		m.setEntry(st.ID, entry{primary: primary, backup: backup})
	case msgDelta:
		ev, err := m.store.ApplyEncoded(body, m.lim)
		if err != nil {
			// A delta comes only to the session's backup member. Without
			// the session here (its copy was lost, or did not come), the
			// change would be acknowledged and lost: the error makes the
			// ack a FAIL_ACK, and the primary sends the whole session.
			if errors.Is(err, session.ErrNotFound) {
				m.k.missing.Add(1)
			}
			return err
		}
		if ev.OldID != "" {
			m.renameEntry(ev.OldID, ev.Session.ID())
		}
		if ev.Destroyed != nil {
			m.dropEntry(ev.Destroyed.ID())
			m.notifyDestroyed(ev.Destroyed, false)
		}
	case msgProxy:
		p := r.proxy()
		r.end()
		if r.err != nil {
			return r.err
		}
		m.setEntry(p.id, entry{primary: p.primary, backup: p.backup})
		if p.primary != local && p.backup != local {
			m.store.Remove(p.id) // another member serves it now: keep only where
		}
	case msgExpire:
		id, reason, err := decodeExpire(body)
		if err != nil {
			return err
		}
		m.dropEntry(id)
		if s, ok := m.store.Remove(id); ok {
			m.notifyDestroyed(s, reason == reasonExpired)
		}
	case msgRename:
		oldID, newID := r.str(maxIDBytes, "session id"), r.str(maxIDBytes, "new session id")
		r.end()
		if r.err != nil {
			return r.err
		}
		m.renameEntry(oldID, newID)
		m.store.Rename(oldID, newID)
	}
	return nil
}

// memberJoined gives the sessions this member serves without a backup one
// on the new member.
func (m *BackupManager) memberJoined(uid tribes.UniqueID) {
	local := m.c.localID()
	var ids []string
	m.mu.Lock()
	for id, e := range m.entries {
		if e.primary == local && (e.backup == (tribes.UniqueID{}) || e.backup == uid) {
			ids = append(ids, id)
		}
	}
	m.mu.Unlock()
	for _, id := range ids {
		m.locked(id, func() {
			if e, _ := m.role(id); e.primary != local || (e.backup != (tribes.UniqueID{}) && e.backup != uid) {
				return // backed up meanwhile, or no longer served here
			}
			if s, ok := m.store.Peek(id); ok {
				m.backUp(context.Background(), id, s, entry{primary: local, backup: m.chooseBackup(id, uid)})
			}
		})
	}
}

// memberLeft promotes the backups of the member's sessions held here and
// chooses new backups for this member's sessions it backed up.
func (m *BackupManager) memberLeft(uid tribes.UniqueID) {
	local := m.c.localID()
	var promote, rebackup []string
	m.mu.Lock()
	for id, e := range m.entries {
		switch {
		case e.primary == uid && e.backup == local:
			promote = append(promote, id)
		case e.primary == uid:
			if e.backup == (tribes.UniqueID{}) {
				delete(m.entries, id) // lost with its only copy
			} else {
				e.primary, e.backup = e.backup, tribes.UniqueID{}
			}
		case e.backup == uid && e.primary == local:
			rebackup = append(rebackup, id)
		case e.backup == uid:
			e.backup = tribes.UniqueID{}
		}
	}
	m.mu.Unlock()
	ctx := context.Background()
	for _, id := range promote {
		m.locked(id, func() {
			if e, _ := m.role(id); e.primary != uid || e.backup != local {
				return // taken over meanwhile (a request here)
			}
			if s, ok := m.store.Peek(id); ok {
				m.k.promoted.Add(1)
				m.promote(ctx, id, s, entry{})
			}
		})
	}
	for _, id := range rebackup {
		m.locked(id, func() {
			if e, _ := m.role(id); e.primary != local || e.backup != uid {
				return // backed up elsewhere meanwhile (by a request's replication)
			}
			if s, ok := m.store.Peek(id); ok {
				m.backUp(ctx, id, s, entry{primary: local, backup: m.chooseBackup(id, tribes.UniqueID{})})
			}
		})
	}
	if len(promote)+len(rebackup) > 0 {
		m.log.Info("sessions taken over from a member that left", "promoted", len(promote), "new backups", len(rebackup))
	}
}

// handOff makes other members the primaries of every session this member
// serves (a drain before stopping): each session's backup member becomes
// its primary and a new backup is chosen; this member keeps a pointer.
// It returns how many sessions it handed on.
func (m *BackupManager) handOff(ctx context.Context) (int, error) {
	local := m.c.localID()
	var ids []string
	m.mu.Lock()
	for id, e := range m.entries {
		if e.primary == local {
			ids = append(ids, id)
		}
	}
	m.mu.Unlock()
	n := 0
	var errs []error
	for _, id := range ids {
		var done bool
		var err error
		m.locked(id, func() { done, err = m.handOffOne(ctx, id) })
		if err != nil {
			errs = append(errs, err)
		}
		if done {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// handOffOne hands session id on, if this member still serves it, and
// reports whether it did. The caller holds the id's lock.
func (m *BackupManager) handOffOne(ctx context.Context, id string) (bool, error) {
	local := m.c.localID()
	e, _ := m.role(id)
	if e.primary != local {
		return false, nil // taken over meanwhile
	}
	s, ok := m.store.Peek(id)
	if !ok {
		return false, nil
	}
	np := e.backup
	if np == (tribes.UniqueID{}) || m.c.member(np) == nil {
		np = m.chooseBackup(id, tribes.UniqueID{})
	}
	if np == (tribes.UniqueID{}) {
		return false, fmt.Errorf("%s: no other member runs %s", id, m.ctx)
	}
	ne := entry{primary: np, backup: m.chooseBackupExcept(id, tribes.UniqueID{}, np)}
	st := s.Snapshot()
	b := header(nil, msgBackup, m.ctx)
	b = append(b, ne.primary[:]...)
	b = append(b, ne.backup[:]...)
	b, _ = st.AppendBinary(b)
	to := []*tribes.Member{m.c.member(np)}
	if bm := m.c.member(ne.backup); bm != nil {
		to = append(to, bm)
	}
	if err := m.send(ctx, to, b, SyncOptions); err != nil {
		return false, fmt.Errorf("%s: %w", id, err)
	}
	m.setEntry(id, ne)
	m.sendProxy(id, ne)
	m.store.Remove(id)
	return true, nil
}

// Stats returns the manager's counters.
func (m *BackupManager) Stats() ManagerStats {
	local := m.c.localID()
	s := ManagerStats{Kind: KindBackup, ActiveSessions: m.store.Len(), Ready: m.ready(),
		StateTransferred: int(m.n.Load()), StateTransfer: time.Duration(m.dur.Load()), StateComplete: m.ok.Load()}
	m.mu.Lock()
	for _, e := range m.entries {
		switch {
		case e.primary == local:
			s.PrimarySessions++
		case e.backup != local:
			s.Proxies++
		}
	}
	m.mu.Unlock()
	m.k.fill(&s)
	return s
}
