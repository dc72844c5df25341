package farm

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// sendOpts are the options of every farm message: a member's refusal
// (FAIL_ACK) reaches the sender.
const sendOpts = tribes.OptUseAck | tribes.OptSynchronizedAck

// localKey keys this member's own result in a waiter.
var localKey tribes.MemberKey

// Deployer is one member's farm: it deploys modules here and on every
// other member of its channel, receives theirs, and catches up with the
// cluster at Sync. Its methods are safe for concurrent use; this member's
// farm operations (Deploy, Undeploy, Sync, watch-dir changes) run one at a
// time.
type Deployer struct {
	cfg  Config
	log  *slog.Logger
	ch   *tribes.Channel
	host Host
	lst  tribes.MessageListener

	partStale time.Duration // see partStaleAge

	opMu sync.Mutex // serialises this member's operations

	// applyMu serialises the changes to the host, DeployDir and index:
	// the apply loop's, Sync's, and those of this member's Deploy and
	// Undeploy.
	applyMu sync.Mutex
	// changed holds the paths a farm deploy or undeploy (received, or
	// from here) changed since Start. Sync leaves them alone: they are
	// newer than any member's list. Guarded by applyMu.
	changed map[string]bool

	mu        sync.Mutex
	index     map[string]appRecord // farmed apps by path
	transfers map[opID]*transfer   // incoming
	waiters   map[opID]*waiter
	names     map[tribes.MemberKey]string // member names learned from their messages
	running   bool
	synced    bool // a Sync returned: the list this member answers is the cluster's...
	cold      bool // ...but may lack apps the cluster farms (flagCold; see Sync)
	// gone holds the paths this member saw undeployed by the farm since
	// Start (or took as undeployed at Sync), with no deploy of them
	// announced since: a cold list names them, so that members catching
	// up from it remove theirs.
	gone map[string]bool

	applyQ chan applyJob
	stop   chan struct{}
	wg     sync.WaitGroup
	w      *watcher

	st counters
}

// listener is the deployer's channel listener.
type listener struct{ d *Deployer }

func (l *listener) MessageReceived(msg *tribes.Message) error { return l.d.received(msg) }

// appRecord is a farmed app: its module is DeployDir/FileName(path).
type appRecord struct {
	digest digest
	size   int64
}

type counters struct {
	received, ignored, decodeErrors, unauthenticated, refused                 atomic.Int64
	chunks, bytesReceived, completed, corrupt, expired                        atomic.Int64
	deploys, deployFailures, undeploys, bytesSent                             atomic.Int64
	watchDeploys, watchUndeploys, manifestErrors, syncFetches, syncLocalReuse atomic.Int64
}

// New returns a deployer for the members of ch deploying into h. It
// creates TempDir and DeployDir. Nothing is received before Start.
func New(cfg Config, ch *tribes.Channel, h Host) (*Deployer, error) {
	if ch == nil || h == nil {
		return nil, errors.New("farm: New needs a channel and a host")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	d := &Deployer{
		cfg: cfg, log: cfg.Logger, ch: ch, host: h,
		index:     map[string]appRecord{},
		transfers: map[opID]*transfer{},
		waiters:   map[opID]*waiter{},
		names:     map[tribes.MemberKey]string{},
		changed:   map[string]bool{},
		gone:      map[string]bool{},
		partStale: max(minPartStaleAge, 2*cfg.TransferTimeout, 2*cfg.ResultTimeout),
	}
	d.lst = &listener{d} // a pointer: RemoveMessageListener compares listeners
	return d, nil
}

// Start listens for farm messages on the channel and starts the background
// work: applying received deploys in order, expiring idle transfers and,
// when enabled, watching WatchDir. First it removes the partial files
// (modules being received or uploaded) an earlier run left in TempDir,
// except those another deployer of this process is writing. Call Sync
// next to catch up: until a Sync returns, members catching up do not
// follow this member's app list.
func (d *Deployer) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running || d.stop != nil {
		return errors.New("farm: Start called twice")
	}
	// Before this deployer creates any: what is there was left by a run
	// that stopped half-way.
	d.removeStaleParts(d.cfg.TempDir)
	d.running = true
	d.stop = make(chan struct{})
	d.applyQ = make(chan applyJob, 64)
	d.wg.Go(d.applyLoop)
	d.wg.Go(d.janitor)
	if d.cfg.WatchEnabled {
		d.w = newWatcher(d)
		d.wg.Go(d.w.run)
	}
	d.ch.AddMessageListener(d.lst)
	d.log.Info("farm deployer started", "deployDir", d.cfg.DeployDir, "watch", d.cfg.WatchEnabled, "watchDir", d.cfg.WatchDir)
	return nil
}

// Close stops listening, waits for the background work (a deploy being
// applied finishes) and removes incomplete transfers. It does not undeploy
// anything.
func (d *Deployer) Close() error {
	d.mu.Lock()
	if !d.running {
		d.mu.Unlock()
		return nil
	}
	d.running = false
	close(d.stop)
	d.mu.Unlock()
	d.ch.RemoveMessageListener(d.lst)
	d.wg.Wait()
	d.mu.Lock()
	for id, t := range d.transfers {
		t.discard()
		delete(d.transfers, id)
	}
	d.mu.Unlock()
	return nil
}

// Stats returns the deployer's counters.
func (d *Deployer) Stats() Stats {
	s := &d.st
	return Stats{
		Received: s.received.Load(), Ignored: s.ignored.Load(), DecodeErrors: s.decodeErrors.Load(),
		Unauthenticated: s.unauthenticated.Load(), Refused: s.refused.Load(),
		ChunksReceived: s.chunks.Load(), BytesReceived: s.bytesReceived.Load(),
		TransfersCompleted: s.completed.Load(), TransfersCorrupt: s.corrupt.Load(), TransfersExpired: s.expired.Load(),
		Deploys: s.deploys.Load(), DeployFailures: s.deployFailures.Load(), Undeploys: s.undeploys.Load(),
		BytesSent: s.bytesSent.Load(), WatchDeploys: s.watchDeploys.Load(), WatchUndeploys: s.watchUndeploys.Load(),
		ManifestErrors: s.manifestErrors.Load(), SyncFetches: s.syncFetches.Load(), SyncLocalReused: s.syncLocalReuse.Load(),
	}
}

// Config returns the configuration with defaults filled in.
func (d *Deployer) Config() Config { return d.cfg }

func (d *Deployer) isRunning() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running
}

// localName is this member's name in reports.
func (d *Deployer) localName() string {
	if d.cfg.Name != "" {
		return d.cfg.Name
	}
	if m := d.ch.LocalMember(); m != nil {
		return m.AddrPort().String()
	}
	return "local"
}

func (d *Deployer) localResult(err error) MemberResult {
	r := MemberResult{Member: d.localName(), Local: true}
	if m := d.ch.LocalMember(); m != nil {
		r.Addr = m.AddrPort().String()
	}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

func (d *Deployer) memberResult(m *tribes.Member, errText string) MemberResult {
	addr := m.AddrPort().String()
	d.mu.Lock()
	name := d.names[m.Key()]
	d.mu.Unlock()
	if name == "" {
		name = addr
	}
	return MemberResult{Member: name, Addr: addr, Error: errText}
}

func (d *Deployer) learnName(m *tribes.Member, name string) {
	if name == "" {
		return
	}
	d.mu.Lock()
	d.names[m.Key()] = name
	d.mu.Unlock()
}

// Deploy deploys the module read from r at path on this member, then on
// every other member, and returns when each of them reported. The module
// is spooled to TempDir (at most MaxModuleBytes) and deployed here first:
// a module this member refuses is sent nowhere, and the error (wrapping
// the host's, e.g. a *wasm.ModuleError) comes back with a nil report.
// Otherwise the report lists every member; when some failed, the error is
// a [*MembersError] naming them. Members that failed keep serving the
// version they had. Members that joined while the module was sent get it
// next, and are in the report.
func (d *Deployer) Deploy(ctx context.Context, path string, r io.Reader, opts DeployOptions) (*Report, error) {
	if err := CheckPath(path); err != nil {
		return nil, err
	}
	if !d.isRunning() {
		return nil, ErrClosed
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(Progress) {}
	}
	name := opts.Name
	if name == "" {
		name = FileName(path)
	}
	d.opMu.Lock()
	defer d.opMu.Unlock()
	start := time.Now()
	tmp, size, dg, err := d.spool(r)
	if err != nil {
		return nil, err
	}
	defer removePart(tmp) // gone after the rename
	// Open before the rename: the transfer reads this very file even if
	// another deploy replaces the one in DeployDir meanwhile.
	f, err := os.Open(tmp)
	if err != nil {
		return nil, fmt.Errorf("farm: %w", err)
	}
	defer f.Close()
	rep := &Report{Op: "deploy", Path: path, Digest: dg.String(), Size: size}
	progress(Progress{Phase: "deploy", Done: 0, Total: 1})
	d.applyMu.Lock()
	err = d.deployFile(ctx, path, name, tmp, dg, size)
	if err == nil {
		d.changed[path] = true
	}
	d.applyMu.Unlock()
	if err != nil {
		return nil, err
	}
	progress(Progress{Phase: "deploy", Done: 1, Total: 1})
	rep.Members = append(rep.Members, d.localResult(nil))
	d.log.Info("farm: deployed locally, sending to the members", "context", path, "bytes", size, "sha256", rep.Digest[:16])
	begin := func() *message {
		return &message{Type: msgBegin, ID: newID(), Kind: kindDeploy, Size: uint64(size), Digest: dg, Path: path, Name: name}
	}
	to := d.ch.Members()
	rep.Members = append(rep.Members, d.push(ctx, to, f, begin(), progress)...)
	rep.Members = append(rep.Members, d.toJoiners(ctx, "deploy", path, to, func(joined []*tribes.Member) []MemberResult {
		return d.push(ctx, joined, f, begin(), nil)
	})...)
	rep.Elapsed = time.Since(start)
	rep.sort()
	d.log.Info("farm: deploy done", "context", path, "members", len(rep.Members), "failed", len(rep.Failed()), "elapsed", rep.Elapsed.Round(time.Millisecond))
	return rep, rep.Err()
}

// DeployFile deploys a module file as [Deployer.Deploy] does, at the
// context path from its manifest ("file.json") if any, else from its name
// (see [ContextPath]).
func (d *Deployer) DeployFile(ctx context.Context, file string, opts DeployOptions) (*Report, error) {
	path, err := d.pathOf(file)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("farm: %w", err)
	}
	defer f.Close()
	if opts.Name == "" {
		opts.Name = filepath.Base(file)
	}
	return d.Deploy(ctx, path, f, opts)
}

// pathOf returns a module file's context path, from its manifest if any,
// counting bad manifests.
func (d *Deployer) pathOf(file string) (string, error) {
	path, err := modulePath(file)
	if errors.Is(err, ErrBadManifest) {
		d.st.manifestErrors.Add(1)
	}
	return path, err
}

// modulePath returns a module file's context path, from its manifest if
// any.
func modulePath(file string) (string, error) {
	b, err := os.ReadFile(file + ManifestExt)
	if err == nil {
		m, err := ParseManifest(b)
		if err != nil {
			return "", fmt.Errorf("%s: %w", file+ManifestExt, err)
		}
		if m.Path != "" {
			return m.Path, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("farm: %w", err)
	}
	return ContextPath(file)
}

// spool copies r into a new file in TempDir, at most MaxModuleBytes, and
// returns its name, size and digest.
func (d *Deployer) spool(r io.Reader) (name string, size int64, dg digest, err error) {
	f, err := createPart(func() (*os.File, error) { return os.CreateTemp(d.cfg.TempDir, "upload-*.part") })
	if err != nil {
		return "", 0, dg, fmt.Errorf("farm: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, d.cfg.MaxModuleBytes+1))
	if err == nil && n > d.cfg.MaxModuleBytes {
		err = fmt.Errorf("%w: more than %d bytes", ErrModuleTooLarge, d.cfg.MaxModuleBytes)
	} else if err != nil {
		err = fmt.Errorf("farm: reading the module: %w", err)
	}
	if err == nil {
		// On disk before deployFile renames it into DeployDir, as a
		// receiver's module is at Commit.
		if serr := f.Sync(); serr != nil {
			err = fmt.Errorf("farm: %w", serr)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("farm: %w", cerr)
	}
	if err != nil {
		removePart(f.Name())
		return "", 0, dg, err
	}
	h.Sum(dg[:0])
	return f.Name(), n, dg, nil
}

// deployFile deploys the verified module file tmp into the host and, if the
// host takes it, renames it into DeployDir and records it. tmp is removed
// either way, unless it is the module in DeployDir already. If the host
// already serves that module, nothing is compiled. The caller holds
// applyMu.
func (d *Deployer) deployFile(ctx context.Context, path, name, tmp string, dg digest, size int64) error {
	final := filepath.Join(d.cfg.DeployDir, FileName(path))
	drop := func() {
		if tmp != final {
			os.Remove(tmp)
		}
	}
	if d.hostDigest(path) != dg {
		var err error
		if sh, ok := d.host.(StreamHost); ok {
			err = deployFrom(ctx, sh, tmp, path, name, d.cfg.MaxModuleBytes)
		} else {
			var module []byte
			if module, err = readModule(tmp, d.cfg.MaxModuleBytes); err != nil {
				drop()
				return err
			}
			err = d.host.DeployApp(ctx, path, module, name)
			module = nil
		}
		// Give the compiler's garbage (tens of MiB for a Go app, whatever
		// the module's size) back to the OS now: a deploy is rare, a
		// member's idle RSS matters. Keeping the garbage down while it
		// compiles (GOGC 10) saved about 10 MiB of peak and made deploys
		// take half as long again ("wasmfarm bench farm": 10 MiB on three
		// members 2.4-2.6 s against 1.6-1.8 s), so the compiler runs as is.
		debug.FreeOSMemory()
		if err != nil {
			drop()
			d.st.deployFailures.Add(1)
			return fmt.Errorf("farm: deploy %s: %w", path, err)
		}
		d.st.deploys.Add(1)
	}
	// The rename and the index change together: serveFetch reads the
	// index and opens the file under d.mu.
	d.mu.Lock()
	defer d.mu.Unlock()
	if tmp != final {
		if err := os.Rename(tmp, final); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("farm: deployed, but keeping the module failed: %w", err)
		}
	}
	d.index[path] = appRecord{digest: dg, size: size}
	delete(d.gone, path)
	return nil
}

// deployFrom deploys the module file at name through h, reading it as the
// host compiles it.
func deployFrom(ctx context.Context, h StreamHost, file, path, name string, limit int64) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("farm: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return fmt.Errorf("farm: %w", err)
	} else if fi.Size() > limit {
		return fmt.Errorf("%w: %s is over %d bytes", ErrModuleTooLarge, file, limit)
	}
	return h.DeployAppFrom(ctx, path, f, limit, name)
}

// readModule reads a module file of at most limit bytes.
func readModule(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("farm: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("farm: %w", err)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrModuleTooLarge, name, limit)
	}
	// One allocation of the exact size: io.ReadAll's doubling would leave
	// about twice the module in garbage at the peak of a large deploy.
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("farm: %w", err)
	}
	return b, nil
}

// hostDigest returns the digest of the module the host serves at path.
func (d *Deployer) hostDigest(path string) digest {
	for _, a := range d.host.Apps() {
		if a.Path == path {
			return parseDigest(a.Digest)
		}
	}
	return digest{}
}

// Undeploy undeploys the app at path here and on every other member. It
// returns [ErrAppNotFound] when this member neither serves nor farms an
// app there (and then asks no one); a member where the app is missing
// counts as undeployed. The module leaves DeployDir and, if the watch is
// on, WatchDir: the modules there whose manifest names path, or named
// after path when they have no manifest.
func (d *Deployer) Undeploy(ctx context.Context, path string) (*Report, error) {
	return d.undeploy(ctx, path, true)
}

// undeploy is Undeploy; the watch, undeploying because a module left the
// watch dir, leaves the other modules there alone (unwatch false).
func (d *Deployer) undeploy(ctx context.Context, path string, unwatch bool) (*Report, error) {
	if err := CheckPath(path); err != nil {
		return nil, err
	}
	if !d.isRunning() {
		return nil, ErrClosed
	}
	d.opMu.Lock()
	defer d.opMu.Unlock()
	start := time.Now()
	d.applyMu.Lock()
	d.mu.Lock()
	_, farmed := d.index[path]
	d.mu.Unlock()
	err := d.undeployLocal(ctx, path)
	if err == nil || (errors.Is(err, ErrAppNotFound) && farmed) {
		d.changed[path] = true
		d.markGone(path)
	}
	d.applyMu.Unlock()
	if errors.Is(err, ErrAppNotFound) {
		if !farmed {
			return nil, fmt.Errorf("%w: %s", ErrAppNotFound, path)
		}
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("farm: undeploy %s: %w", path, err)
	}
	if d.cfg.WatchEnabled && unwatch {
		// As Tomcat, the module leaves the watch dir too, so that the next
		// start does not bring it back.
		d.removeWatched(path)
	}
	rep := &Report{Op: "undeploy", Path: path, Members: []MemberResult{d.localResult(nil)}}
	to := d.ch.Members()
	rep.Members = append(rep.Members, d.broadcast(ctx, to, &message{Type: msgUndeploy, ID: newID(), Path: path})...)
	rep.Members = append(rep.Members, d.toJoiners(ctx, "undeploy", path, to, func(joined []*tribes.Member) []MemberResult {
		return d.broadcast(ctx, joined, &message{Type: msgUndeploy, ID: newID(), Path: path})
	})...)
	rep.Elapsed = time.Since(start)
	rep.sort()
	return rep, rep.Err()
}

// removeWatched removes the modules in WatchDir that serve path: those
// whose manifest names it, or named after it when they have none. A
// module named after path whose manifest names another path serves that
// other app, and stays.
func (d *Deployer) removeWatched(path string) {
	entries, err := os.ReadDir(d.cfg.WatchDir)
	if err != nil {
		d.log.Warn("farm: reading the watch dir", "dir", d.cfg.WatchDir, "err", err)
		return
	}
	for _, e := range entries {
		if !isWatchedModule(e) {
			continue
		}
		file := filepath.Join(d.cfg.WatchDir, e.Name())
		if p, err := modulePath(file); err != nil || p != path {
			continue
		}
		if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.log.Warn("farm: removing an undeployed module from the watch dir", "file", file, "context", path, "err", err)
		}
	}
}

// undeployLocal undeploys path from the host and forgets its module. The
// caller holds applyMu.
func (d *Deployer) undeployLocal(ctx context.Context, path string) error {
	err := d.host.Undeploy(ctx, path)
	if err == nil {
		d.st.undeploys.Add(1)
	}
	if err == nil || errors.Is(err, ErrAppNotFound) {
		d.mu.Lock()
		delete(d.index, path)
		d.mu.Unlock()
		if rerr := os.Remove(filepath.Join(d.cfg.DeployDir, FileName(path))); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			d.log.Warn("farm: removing an undeployed module", "context", path, "err", rerr)
		}
	}
	return err
}

// markGone records that the cluster no longer farms path (see gone).
func (d *Deployer) markGone(path string) {
	d.mu.Lock()
	d.gone[path] = true
	d.mu.Unlock()
}

// encode returns m's sealed encoding appended to buf.
func (d *Deployer) encode(buf []byte, m *message) []byte {
	return seal(appendMessage(buf, m), d.cfg.AuthKey)
}

// sendTo sends m to the members with a synchronized ACK and returns the
// members it failed for, with the reasons (every member on a general
// error).
func (d *Deployer) sendTo(ctx context.Context, to []*tribes.Member, data []byte) map[tribes.MemberKey]string {
	if len(to) == 0 {
		return nil
	}
	err := d.ch.Send(ctx, to, data, sendOpts)
	if err == nil {
		return nil
	}
	failed := map[tribes.MemberKey]string{}
	var se *tribes.SendError
	if errors.As(err, &se) {
		for _, f := range se.Failed {
			why := f.Err.Error()
			if errors.Is(f.Err, tribes.ErrFailAck) {
				why = "refused the transfer (FAIL_ACK; see its log): " + why
			}
			failed[f.Member.Key()] = why
		}
		return failed
	}
	for _, m := range to {
		failed[m.Key()] = err.Error()
	}
	return failed
}

// push streams the module in f to the members (Begin, chunks, Commit),
// then waits for each member's result. begin carries the transfer's id,
// size, digest and path.
func (d *Deployer) push(ctx context.Context, to []*tribes.Member, f io.ReaderAt, begin *message, progress func(Progress)) []MemberResult {
	if len(to) == 0 {
		return nil
	}
	if progress == nil {
		progress = func(Progress) {}
	}
	id := begin.ID
	w := d.addWaiter(id)
	defer d.removeWaiter(id)
	var results []MemberResult
	live := append([]*tribes.Member(nil), to...)
	send := func(data []byte) {
		for k, why := range d.sendTo(ctx, live, data) {
			for i, m := range live {
				if m.Key() == k {
					results = append(results, d.memberResult(m, why))
					live = append(live[:i], live[i+1:]...)
					break
				}
			}
		}
	}
	buf := make([]byte, 0, headerLen+8+d.cfg.ChunkSize+macLen)
	send(d.encode(buf[:0], begin))
	size := int64(begin.Size)
	progress(Progress{Phase: "transfer", Done: 0, Total: size})
	var readErr error
	for off := int64(0); off < size && len(live) > 0; {
		b := appendMessage(buf[:0], &message{Type: msgChunk, ID: id, Offset: uint64(off)})
		n := int(min(int64(d.cfg.ChunkSize), size-off))
		k, err := f.ReadAt(b[len(b):len(b)+n], off)
		if k < n {
			readErr = fmt.Errorf("reading the module at %d: %v", off, err)
			break
		}
		send(seal(b[:len(b)+n], d.cfg.AuthKey))
		d.st.bytesSent.Add(int64(n))
		off += int64(n)
		progress(Progress{Phase: "transfer", Done: off, Total: size})
	}
	if readErr != nil || ctx.Err() != nil {
		why := "transfer aborted: "
		if readErr != nil {
			why += readErr.Error()
		} else {
			why += ctx.Err().Error()
		}
		abort := d.encode(buf[:0], &message{Type: msgAbort, ID: id})
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		d.sendTo(actx, live, abort)
		cancel()
		for _, m := range live {
			results = append(results, d.memberResult(m, why))
		}
		return results
	}
	send(d.encode(buf[:0], &message{Type: msgCommit, ID: id}))
	return append(results, d.await(ctx, w, live, progress)...)
}

// broadcast sends m (an undeploy) to the members and waits for their
// results.
func (d *Deployer) broadcast(ctx context.Context, to []*tribes.Member, m *message) []MemberResult {
	if len(to) == 0 {
		return nil
	}
	w := d.addWaiter(m.ID)
	defer d.removeWaiter(m.ID)
	var results []MemberResult
	failed := d.sendTo(ctx, to, d.encode(nil, m))
	var live []*tribes.Member
	for _, mb := range to {
		if why, ok := failed[mb.Key()]; ok {
			results = append(results, d.memberResult(mb, why))
		} else {
			live = append(live, mb)
		}
	}
	return append(results, d.await(ctx, w, live, nil)...)
}

// maxJoinerRounds bounds the rounds of [Deployer.toJoiners].
const maxJoinerRounds = 3

// toJoiners runs op (the operation's sending and waiting) for the members
// that joined while it ran on those in sent, and returns their results.
// A member that joins while a deploy is under way is missing from the
// members it was sent to, and it may catch up (Sync) from a member still
// applying it, so it would stay on the old version; it gets the operation
// now. Members that join after the last round catch up from members that
// all reported.
func (d *Deployer) toJoiners(ctx context.Context, op, path string, sent []*tribes.Member, run func([]*tribes.Member) []MemberResult) []MemberResult {
	seen := make(map[tribes.MemberKey]bool, len(sent))
	for _, m := range sent {
		seen[m.Key()] = true
	}
	var out []MemberResult
	for range maxJoinerRounds {
		if ctx.Err() != nil {
			break
		}
		var joined []*tribes.Member
		for _, m := range d.ch.Members() {
			if !seen[m.Key()] {
				seen[m.Key()] = true
				joined = append(joined, m)
			}
		}
		if len(joined) == 0 {
			break
		}
		d.log.Info("farm: members joined during the operation, sending it to them", "op", op, "context", path, "members", len(joined))
		out = append(out, run(joined)...)
	}
	return out
}

// await waits for the results of the members from w, until ResultTimeout
// or ctx ends; members that leave the channel meanwhile fail at once.
func (d *Deployer) await(ctx context.Context, w *waiter, members []*tribes.Member, progress func(Progress)) []MemberResult {
	if progress == nil {
		progress = func(Progress) {}
	}
	timer := time.NewTimer(d.cfg.ResultTimeout)
	defer timer.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	out := make([]MemberResult, 0, len(members))
	pending := append([]*tribes.Member(nil), members...)
	total := int64(len(members))
	for {
		w.mu.Lock()
		rest := pending[:0]
		for _, m := range pending {
			if r, ok := w.results[m.Key()]; ok {
				out = append(out, d.memberResult(m, r.err))
			} else {
				rest = append(rest, m)
			}
		}
		w.mu.Unlock()
		pending = rest
		progress(Progress{Phase: "results", Done: total - int64(len(pending)), Total: total})
		if len(pending) == 0 {
			return out
		}
		var why string
		select {
		case <-w.notify:
			continue
		case <-tick.C:
			alive := map[tribes.MemberKey]bool{}
			for _, m := range d.ch.Members() {
				alive[m.Key()] = true
			}
			rest := pending[:0]
			for _, m := range pending {
				if alive[m.Key()] {
					rest = append(rest, m)
				} else {
					out = append(out, d.memberResult(m, "left the cluster before reporting"))
				}
			}
			pending = rest
			continue
		case <-timer.C:
			why = fmt.Sprintf("no result within %v", d.cfg.ResultTimeout)
		case <-ctx.Done():
			why = "gave up waiting: " + ctx.Err().Error()
		case <-d.stop:
			why = "deployer closed"
		}
		for _, m := range pending {
			out = append(out, d.memberResult(m, why))
		}
		return out
	}
}

// waiter collects the answers to one of this member's operations.
type waiter struct {
	mu      sync.Mutex
	results map[tribes.MemberKey]result
	lists   map[tribes.MemberKey]listAnswer
	notify  chan struct{} // 1-buffered
}

// listAnswer is a member's answer to a list request.
type listAnswer struct {
	apps     []appEntry
	unsynced bool // its Sync has not returned: not the cluster's state
	cold     bool // synced, but apps may lack some the cluster farms
}

type result struct {
	err    string
	digest digest
}

func (d *Deployer) addWaiter(id opID) *waiter {
	w := &waiter{results: map[tribes.MemberKey]result{}, lists: map[tribes.MemberKey]listAnswer{}, notify: make(chan struct{}, 1)}
	d.mu.Lock()
	d.waiters[id] = w
	d.mu.Unlock()
	return w
}

func (d *Deployer) removeWaiter(id opID) {
	d.mu.Lock()
	delete(d.waiters, id)
	d.mu.Unlock()
}

// deliver records r (or list) from member k for operation id, if awaited.
func (d *Deployer) deliver(id opID, k tribes.MemberKey, r *result, list *listAnswer) bool {
	d.mu.Lock()
	w := d.waiters[id]
	d.mu.Unlock()
	if w == nil {
		return false
	}
	w.mu.Lock()
	if r != nil {
		w.results[k] = *r
	} else {
		w.lists[k] = *list
	}
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default:
	}
	return true
}

// ClusterApps asks every member which apps it serves and returns the
// cluster view: each path and digest with the members serving it. Members
// that do not answer within 5 s (or before ctx ends) are listed as
// unanswered.
func (d *Deployer) ClusterApps(ctx context.Context) (*ClusterApps, error) {
	if !d.isRunning() {
		return nil, ErrClosed
	}
	type key struct {
		path string
		dg   digest
	}
	byKey := map[key]*AppStatus{}
	add := func(member string, apps []appEntry) {
		for _, a := range apps {
			if a.Undeployed {
				continue // not served
			}
			k := key{a.Path, a.Digest}
			s := byKey[k]
			if s == nil {
				s = &AppStatus{Path: a.Path, Digest: a.Digest.String()}
				byKey[k] = s
			}
			if a.Size > 0 {
				s.Size = a.Size
			}
			s.Members = append(s.Members, member)
		}
	}
	out := &ClusterApps{Members: []string{d.localName()}}
	add(d.localName(), d.localApps())

	members := d.ch.Members()
	if len(members) > 0 {
		id := newID()
		w := d.addWaiter(id)
		defer d.removeWaiter(id)
		failed := d.sendTo(ctx, members, d.encode(nil, &message{Type: msgListReq, ID: id}))
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		pending := map[tribes.MemberKey]*tribes.Member{}
		for _, m := range members {
			if _, ok := failed[m.Key()]; !ok {
				pending[m.Key()] = m
			}
		}
		for len(pending) > 0 {
			w.mu.Lock()
			for k, list := range w.lists {
				if m, ok := pending[k]; ok {
					delete(pending, k)
					name := d.memberResult(m, "").Member
					out.Members = append(out.Members, name)
					add(name, list.apps)
				}
			}
			w.mu.Unlock()
			if len(pending) == 0 {
				break
			}
			select {
			case <-w.notify:
				continue
			case <-ctx.Done():
			}
			break
		}
		for _, m := range members {
			if _, ok := failed[m.Key()]; ok {
				out.Unanswered = append(out.Unanswered, d.memberResult(m, "").Label())
			} else if _, ok := pending[m.Key()]; ok {
				out.Unanswered = append(out.Unanswered, d.memberResult(m, "").Label())
			}
		}
	}
	for _, s := range byKey {
		sort.Strings(s.Members)
		out.Apps = append(out.Apps, *s)
	}
	sort.Slice(out.Apps, func(i, j int) bool {
		a, b := out.Apps[i], out.Apps[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Digest < b.Digest
	})
	sort.Strings(out.Members[1:])
	return out, nil
}

// localApps lists the host's apps, marking the farmed ones.
func (d *Deployer) localApps() []appEntry {
	apps := d.host.Apps()
	out := make([]appEntry, 0, len(apps))
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range apps {
		e := appEntry{Path: a.Path, Digest: parseDigest(a.Digest)}
		if r, ok := d.index[a.Path]; ok && r.digest == e.Digest {
			e.Farmed, e.Size = true, r.size
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	if len(out) > maxListApps {
		out = out[:maxListApps]
	}
	return out
}

// listMessage is this member's answer to list request id: its apps and
// whether it synced, and when it is cold, the paths it saw undeployed.
func (d *Deployer) listMessage(id opID) *message {
	m := &message{Type: msgList, ID: id, Name: d.localName(), Apps: d.localApps()}
	d.mu.Lock()
	defer d.mu.Unlock()
	m.Unsynced, m.Cold = !d.synced, d.synced && d.cold
	if !m.Cold {
		// A warm list names no undeployed apps: its silence says it, and
		// older members refuse the entries.
		return m
	}
	for _, path := range sortedKeys(d.gone) {
		if len(m.Apps) >= maxListApps {
			break // a member catching up keeps the modules of those left out
		}
		if _, ok := d.index[path]; !ok {
			m.Apps = append(m.Apps, appEntry{Path: path, Undeployed: true})
		}
	}
	return m
}

// hashFile returns the size and SHA-256 of a file.
func hashFile(name string) (int64, digest, error) {
	var dg digest
	f, err := os.Open(name)
	if err != nil {
		return 0, dg, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, dg, err
	}
	h.Sum(dg[:0])
	return n, dg, nil
}

// transfer is an incoming module.
type transfer struct {
	mu      sync.Mutex
	id      opID
	from    *tribes.Member
	kind    byte
	path    string
	name    string
	size    int64
	digest  digest
	f       *os.File
	h       hash.Hash
	written int64
	last    time.Time
}

// discard closes and removes the temp file.
func (t *transfer) discard() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.f != nil {
		t.f.Close()
		removePart(t.f.Name())
		t.f = nil
	}
}
