package farm

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// received is the channel listener. It skips messages without the farm's
// magic; a farm message that is malformed, unauthenticated or refused
// returns an error, so an acknowledged sender gets FAIL_ACK. It never
// blocks for long: compiling happens on the apply loop, answers are sent
// from goroutines of their own.
func (d *Deployer) received(msg *tribes.Message) error {
	if !isFarmMessage(msg.Data) {
		d.st.ignored.Add(1)
		return nil
	}
	var m message
	if err := decodeMessage(msg.Data, d.cfg.AuthKey, &m); err != nil {
		if errors.Is(err, ErrUnauthenticated) {
			d.st.unauthenticated.Add(1)
		} else {
			d.st.decodeErrors.Add(1)
		}
		d.log.Warn("farm: message dropped", "from", msg.Source.AddrPort().String(), "err", err)
		return err
	}
	d.st.received.Add(1)
	if err := d.handle(msg.Source, &m); err != nil {
		d.st.refused.Add(1)
		d.log.Warn("farm: message refused", "from", msg.Source.AddrPort().String(), "type", m.Type, "id", m.ID.String(), "err", err)
		return err
	}
	return nil
}

// handle processes a decoded message from src (valid during the call only).
func (d *Deployer) handle(src *tribes.Member, m *message) error {
	switch m.Type {
	case msgBegin:
		return d.begin(src, m)
	case msgChunk:
		return d.chunk(m)
	case msgCommit:
		return d.commit(m)
	case msgAbort:
		d.mu.Lock()
		t := d.transfers[m.ID]
		delete(d.transfers, m.ID)
		d.mu.Unlock()
		if t != nil {
			t.discard()
			d.st.expired.Add(1)
		}
		return nil
	case msgResult:
		d.learnName(src, m.Name)
		d.deliver(m.ID, src.Key(), &result{err: m.Err, digest: m.Digest}, nil)
		return nil
	case msgUndeploy:
		if err := CheckPath(m.Path); err != nil {
			return err
		}
		return d.enqueue(applyJob{op: opUndeploy, id: m.ID, from: src.Clone(), path: m.Path})
	case msgListReq:
		from, id := src.Clone(), m.ID
		if !d.spawn(func() {
			d.sendOne(from, d.listMessage(id))
		}) {
			return ErrClosed
		}
		return nil
	case msgList:
		d.learnName(src, m.Name)
		d.deliver(m.ID, src.Key(), nil, &listAnswer{apps: m.Apps, unsynced: m.Unsynced, cold: m.Cold})
		return nil
	case msgFetch:
		if err := CheckPath(m.Path); err != nil {
			return err
		}
		from, fm := src.Clone(), *m
		if !d.spawn(func() { d.serveFetch(from, &fm) }) {
			return ErrClosed
		}
		return nil
	}
	return fmt.Errorf("%w: unexpected type %d", ErrBadMessage, m.Type)
}

// spawn runs fn on a goroutine Close waits for, unless the deployer is
// closed.
func (d *Deployer) spawn(fn func()) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.running {
		return false
	}
	d.wg.Go(fn)
	return true
}

// sendOne sends m to one member, logging a failure.
func (d *Deployer) sendOne(to *tribes.Member, m *message) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.ch.Send(ctx, []*tribes.Member{to}, d.encode(nil, m), sendOpts); err != nil {
		d.log.Warn("farm: answer not delivered", "to", to.AddrPort().String(), "type", m.Type, "err", err)
	}
}

func (d *Deployer) begin(src *tribes.Member, m *message) error {
	if err := CheckPath(m.Path); err != nil {
		return err
	}
	if m.Size > uint64(d.cfg.MaxModuleBytes) {
		return fmt.Errorf("%w: %d bytes announced, limit %d", ErrModuleTooLarge, m.Size, d.cfg.MaxModuleBytes)
	}
	if len(m.Name) > 255 {
		m.Name = m.Name[:255]
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.running {
		return ErrClosed
	}
	if _, ok := d.transfers[m.ID]; ok {
		return nil // a resend
	}
	if m.Kind == kindDeploy {
		// The cluster farms path again, whether or not this member gets
		// the module: it can no longer tell others it is undeployed.
		delete(d.gone, m.Path)
	}
	if len(d.transfers) >= d.cfg.MaxTransfers {
		return fmt.Errorf("farm: %d transfers in progress already (MaxTransfers)", len(d.transfers))
	}
	f, err := createPart(func() (*os.File, error) {
		return os.OpenFile(filepath.Join(d.cfg.TempDir, "farm-"+m.ID.String()+".part"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	})
	if err != nil {
		return fmt.Errorf("farm: %w", err)
	}
	d.transfers[m.ID] = &transfer{
		id: m.ID, from: src.Clone(), kind: m.Kind, path: m.Path, name: m.Name,
		size: int64(m.Size), digest: m.Digest, f: f, h: sha256.New(), last: time.Now(),
	}
	d.log.Debug("farm: transfer started", "from", src.AddrPort().String(), "context", m.Path, "bytes", m.Size, "catchUp", m.Kind == kindSync)
	return nil
}

func (d *Deployer) transfer(id opID) (*transfer, error) {
	d.mu.Lock()
	t := d.transfers[id]
	d.mu.Unlock()
	if t == nil {
		return nil, fmt.Errorf("farm: unknown transfer %s (expired, aborted or never begun)", id)
	}
	return t, nil
}

func (d *Deployer) chunk(m *message) error {
	t, err := d.transfer(m.ID)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f == nil {
		return fmt.Errorf("farm: transfer %s was dropped", m.ID)
	}
	t.last = time.Now()
	off, n := int64(m.Offset), int64(len(m.Data))
	if m.Offset > uint64(t.size) || n > t.size-off {
		return fmt.Errorf("farm: chunk at %d of %d bytes runs past the announced %d bytes", m.Offset, n, t.size)
	}
	switch {
	case off == t.written:
		if _, err := t.f.Write(m.Data); err != nil {
			return fmt.Errorf("farm: %w", err)
		}
		t.h.Write(m.Data)
		t.written += n
		d.st.chunks.Add(1)
		d.st.bytesReceived.Add(n)
		return nil
	case off+n <= t.written:
		return nil // a resend of a chunk written already
	default:
		return fmt.Errorf("farm: chunk at %d, expected %d", off, t.written)
	}
}

func (d *Deployer) commit(m *message) error {
	d.mu.Lock()
	t := d.transfers[m.ID]
	delete(d.transfers, m.ID)
	d.mu.Unlock()
	if t == nil {
		return fmt.Errorf("farm: commit of unknown transfer %s", m.ID)
	}
	t.mu.Lock()
	var sum digest
	t.h.Sum(sum[:0])
	name := t.f.Name()
	err := t.f.Sync()
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	t.f = nil
	written := t.written
	t.mu.Unlock()
	switch {
	case err != nil:
		err = fmt.Errorf("farm: writing the module: %w", err)
	case written != t.size:
		err = fmt.Errorf("farm: module truncated: %d of %d bytes arrived", written, t.size)
	case sum != t.digest:
		err = fmt.Errorf("farm: module corrupt: SHA-256 %s, announced %s", sum, t.digest)
	}
	if err != nil {
		// The transfer was received and refused: the reason travels in
		// the result, which says more than a FAIL_ACK could.
		removePart(name)
		d.st.corrupt.Add(1)
		d.log.Warn("farm: module refused", "context", t.path, "from", t.from.AddrPort().String(), "err", err)
		d.finished(applyJob{op: opDeploy, id: t.id, from: t.from, path: t.path, digest: t.digest}, err)
		return nil
	}
	d.st.completed.Add(1)
	if err := d.enqueue(applyJob{op: opDeploy, kind: t.kind, id: t.id, from: t.from, path: t.path, name: t.name, tmp: name, digest: t.digest, size: t.size}); err != nil {
		removePart(name)
		return err
	}
	return nil
}

// applyJob is a received deploy or undeploy, applied in arrival order.
type applyJob struct {
	op     byte
	kind   byte // of a deploy: kindDeploy, or kindSync (a catch-up Sync fetched)
	id     opID
	from   *tribes.Member // the origin, told the result
	path   string
	name   string
	tmp    string // the verified module
	digest digest
	size   int64
}

func (d *Deployer) enqueue(j applyJob) error {
	select {
	case d.applyQ <- j:
		return nil
	default:
		return errors.New("farm: too many deploys queued")
	}
}

func (d *Deployer) applyLoop() {
	for {
		select {
		case <-d.stop:
			for {
				select {
				case j := <-d.applyQ:
					if j.tmp != "" {
						removePart(j.tmp)
					}
				default:
					return
				}
			}
		case j := <-d.applyQ:
			d.apply(j)
		}
	}
}

func (d *Deployer) apply(j applyJob) {
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.ResultTimeout)
	defer cancel()
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	if j.tmp != "" {
		defer releasePart(j.tmp) // deployFile renames or removes it
	}
	if j.op == opDeploy && j.kind == kindSync && d.changed[j.path] {
		// Sync asked for the version a member listed, but a farm deploy or
		// undeploy received since is newer: keep it.
		os.Remove(j.tmp)
		d.log.Info("farm: catch-up dropped: the app changed by a farm deploy since", "context", j.path, "from", j.from.AddrPort().String())
		d.finished(j, nil)
		return
	}
	var err error
	switch j.op {
	case opDeploy:
		err = d.deployFile(ctx, j.path, j.name, j.tmp, j.digest, j.size)
	case opUndeploy:
		if err = d.undeployLocal(ctx, j.path); errors.Is(err, ErrAppNotFound) {
			err = nil
		}
	}
	if err == nil && j.kind != kindSync {
		d.changed[j.path] = true
		if j.op == opUndeploy {
			d.markGone(j.path)
		}
	}
	if err != nil {
		d.log.Warn("farm: refused", "op", j.op, "context", j.path, "from", j.from.AddrPort().String(), "err", err)
	} else {
		d.log.Info("farm: applied", "op", j.op, "context", j.path, "from", j.from.AddrPort().String())
	}
	d.finished(j, err)
}

// finished reports the outcome of j to a local waiter (Sync) and to its
// origin.
func (d *Deployer) finished(j applyJob, err error) {
	r := result{digest: j.digest}
	if err != nil {
		r.err = err.Error()
	}
	d.deliver(j.id, localKey, &r, nil)
	if j.from != nil {
		d.spawn(func() {
			d.sendOne(j.from, &message{Type: msgResult, ID: j.id, Op: j.op, Digest: j.digest, Name: d.localName(), Err: r.err})
		})
	}
}

// janitor drops incoming transfers that went quiet, and removes the
// partial files that an earlier run left in TempDir once they are old
// enough (see removeStaleParts).
func (d *Deployer) janitor() {
	t := time.NewTicker(max(d.cfg.TransferTimeout/4, 50*time.Millisecond))
	defer t.Stop()
	lastSweep := time.Now() // Start swept TempDir
	for {
		select {
		case <-d.stop:
			return
		case now := <-t.C:
			if now.Sub(lastSweep) >= d.partStaleAge() {
				lastSweep = now
				d.removeStaleParts(d.cfg.TempDir)
			}
			var idle []*transfer
			d.mu.Lock()
			for id, tr := range d.transfers {
				tr.mu.Lock()
				if now.Sub(tr.last) > d.cfg.TransferTimeout {
					idle = append(idle, tr)
					delete(d.transfers, id)
				}
				tr.mu.Unlock()
			}
			d.mu.Unlock()
			for _, tr := range idle {
				tr.discard()
				d.st.expired.Add(1)
				d.log.Warn("farm: incoming transfer expired", "context", tr.path, "from", tr.from.AddrPort().String())
			}
		}
	}
}

// serveFetch pushes the farmed app a joining member asked for.
func (d *Deployer) serveFetch(to *tribes.Member, m *message) {
	fail := func(why string) {
		d.sendOne(to, &message{Type: msgResult, ID: m.ID, Op: opDeploy, Digest: m.Digest, Name: d.localName(), Err: why})
	}
	// The index and the file agree under d.mu (deployFile renames under
	// it); the open file is that version even if another replaces it.
	d.mu.Lock()
	rec, ok := d.index[m.Path]
	var f *os.File
	err := errors.New("that module is not farmed here (any more)")
	if ok && rec.digest == m.Digest {
		f, err = os.Open(filepath.Join(d.cfg.DeployDir, FileName(m.Path)))
	}
	d.mu.Unlock()
	if err != nil {
		fail(err.Error())
		return
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-d.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	res := d.push(ctx, []*tribes.Member{to}, f, &message{
		Type: msgBegin, ID: m.ID, Kind: kindSync, Size: uint64(rec.size), Digest: rec.digest, Path: m.Path, Name: FileName(m.Path),
	}, nil)
	for _, r := range res {
		if !r.OK() {
			d.log.Warn("farm: catch-up transfer failed", "to", r.Label(), "context", m.Path, "err", r.Error)
		}
	}
}
