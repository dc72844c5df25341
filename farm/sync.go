package farm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// listTimeout bounds the wait for one member's app list.
const listTimeout = 10 * time.Second

// Sync catches this member up with the cluster; a node calls it after
// Start and before it opens its HTTP port. It asks the members in turn for
// their farmed apps and their digests, and follows the first that has
// synced itself: it deploys each of its apps, from DeployDir when the
// module there has the same digest (nothing is sent), else fetched from
// that member. When no member that answers has synced (the whole cluster
// is starting) or no other member is up, DeployDir is the truth and its
// modules are deployed as they are. Apps a farm deploy or undeploy
// changed since Start (one received, or from this member) are left as
// they are: they are newer than any member's list. Sync returns when every
// app is deployed, with the errors of those that failed; [ErrNoPeer] when
// members exist but none answered (DeployDir was deployed then).
//
// Until a Sync of it returns (with or without errors, but not because ctx
// ended), a member answers list requests as not synced, so that no one
// follows it: a member whose Sync is never called is never followed.
//
// # Cold members
//
// What becomes of the modules in DeployDir that the followed member does
// not list depends on whether that member can vouch that its list is all
// the cluster farms. A member is cold, and says so in its list answers,
// when its Sync followed no one (the cluster was starting, or it was
// alone), followed a cold member, or failed to deploy or fetch an app the
// member it followed listed. Its list may lack an app because it never had
// it (a new machine with an empty deploy dir, a member that was down when
// the app was deployed, a fetch that failed), not because the cluster
// dropped it. So a member following a cold member keeps and deploys its own
// modules that list lacks, and is cold itself: whole-cluster restarts
// delete nothing, whichever member is up first. The exception are the paths
// the cold member saw the farm undeploy since it started, or took as
// undeployed at its own Sync, with no deploy of them announced since: its
// list names them, and those modules are removed. An app both hold in
// different versions takes the followed member's version, cold or not:
// neither can tell which is newer.
//
// A cold member stays cold until a later Sync of it follows a member that
// is not cold and gets all its apps: no farm deploy or undeploy it receives
// tells it of apps it never had, so none can make its list the cluster's.
// The cost is that an undeploy made while a member was down is not repeated
// on it when it rejoins a cluster whose member it follows has restarted
// since that undeploy: it keeps serving the app locally, as it would with
// Tomcat's FarmWarDeployer (which removes nothing at start), until a farm
// undeploy of that path. Only a member that follows a member that is not
// cold (one of an older version, which does not mark its list, or one that
// followed such a member) removes the modules that member does not list, as
// members did before the flag.
//
// # Why the joiner pulls
//
// Nothing is pushed to a member that appears: it would race with the
// joiner's own Sync, and a member restarting after a crash must catch up
// before it serves, which only it can know. Members already up ignore
// joins.
func (d *Deployer) Sync(ctx context.Context) error {
	if !d.isRunning() {
		return ErrClosed
	}
	d.opMu.Lock()
	defer d.opMu.Unlock()
	cold := true // unless it follows a member that is not
	defer func() {
		if ctx.Err() == nil { // else it gave up half-way
			d.mu.Lock()
			d.synced, d.cold = true, cold
			d.mu.Unlock()
		}
	}()
	local := d.scanDeployDir()
	members := d.ch.Members()
	var (
		peer     *tribes.Member
		ans      listAnswer
		errs     []error
		unsynced []string // members that answered but have not synced
	)
	for _, m := range members {
		a, err := d.requestList(ctx, m)
		if err == nil && !a.unsynced {
			peer, ans = m, a
			break
		}
		if err == nil {
			unsynced = append(unsynced, d.memberResult(m, "").Label())
			continue
		}
		errs = append(errs, fmt.Errorf("%s: %w", d.memberResult(m, "").Label(), err))
		if ctx.Err() != nil {
			break
		}
	}
	if peer == nil {
		if len(unsynced) > 0 {
			d.log.Info("farm: no member has synced yet (the cluster is starting): deploying the deploy dir", "unsynced", unsynced, "apps", len(local))
		}
		for _, path := range sortedKeys(local) {
			if _, err := d.deployLocal(ctx, path, local[path]); err != nil {
				errs = append(errs, err)
			}
		}
		if len(members) > 0 && len(unsynced) == 0 {
			return fmt.Errorf("%w: %w", ErrNoPeer, errors.Join(errs...))
		}
		return errors.Join(errs...)
	}
	cold = ans.cold
	want := map[string]appEntry{}
	gone := map[string]bool{} // undeployed, says a cold peer
	for _, a := range ans.apps {
		if CheckPath(a.Path) != nil {
			continue
		}
		if a.Undeployed {
			gone[a.Path] = true
		} else if a.Farmed {
			want[a.Path] = a
		}
	}
	d.log.Info("farm: catching up", "peer", peer.AddrPort().String(), "apps", len(want), "cold", ans.cold)
	for _, path := range sortedKeys(want) {
		a := want[path]
		if lf, ok := local[path]; ok && lf.digest == a.Digest {
			done, err := d.deployLocal(ctx, path, lf)
			if err != nil {
				errs = append(errs, err)
				cold = true // it lacks path: its list is not the cluster's
			}
			if done {
				d.st.syncLocalReuse.Add(1)
			}
			continue
		}
		if d.changedSinceStart(path) {
			continue // the apply loop would drop what we fetch
		}
		d.st.syncFetches.Add(1)
		if err := d.fetch(ctx, peer, a); err != nil {
			errs = append(errs, fmt.Errorf("farm: catching up %s: %w", path, err))
			cold = true
		}
	}
	for _, path := range sortedKeys(local) {
		if _, ok := want[path]; ok {
			continue
		}
		if ans.cold && !gone[path] {
			// The peer may never have had it: keep it.
			if _, err := d.deployLocal(ctx, path, local[path]); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := d.removeLocal(ctx, path, local[path]); err != nil {
			errs = append(errs, fmt.Errorf("farm: removing %s: %w", path, err))
		}
	}
	d.inheritGone(gone)
	return errors.Join(errs...)
}

// inheritGone records as gone the paths a cold peer saw undeployed that
// this member neither serves nor saw a farm operation on since Start, so
// that members catching up from it remove them too.
func (d *Deployer) inheritGone(gone map[string]bool) {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	for path := range gone {
		if _, served := d.index[path]; !served && !d.changed[path] {
			d.gone[path] = true
		}
	}
}

// changedSinceStart reports whether a farm deploy or undeploy changed path
// since Start.
func (d *Deployer) changedSinceStart(path string) bool {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	return d.changed[path]
}

// deployLocal deploys the module lf of DeployDir at path for Sync, unless a
// farm deploy or undeploy changed path since Start (which may have
// replaced that very file); done says whether it was deployed.
func (d *Deployer) deployLocal(ctx context.Context, path string, lf localFile) (done bool, err error) {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	if d.changed[path] {
		return false, nil
	}
	return true, d.deployFile(ctx, path, filepath.Base(lf.file), lf.file, lf.digest, lf.size)
}

// removeLocal removes the module lf of DeployDir, which the cluster does
// not farm, for Sync (undeploying it if it was deployed), unless a farm
// deploy or undeploy changed path since Start.
func (d *Deployer) removeLocal(ctx context.Context, path string, lf localFile) error {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	if d.changed[path] {
		return nil
	}
	d.log.Info("farm: removing a module the cluster no longer farms", "context", path)
	d.mu.Lock()
	_, farmed := d.index[path]
	d.mu.Unlock()
	if farmed {
		if err := d.undeployLocal(ctx, path); err != nil && !errors.Is(err, ErrAppNotFound) {
			return err
		}
	} else if err := os.Remove(lf.file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	d.markGone(path)
	return nil
}

type localFile struct {
	file   string
	size   int64
	digest digest
}

// scanDeployDir returns the modules in DeployDir by context path.
func (d *Deployer) scanDeployDir() map[string]localFile {
	out := map[string]localFile{}
	entries, err := os.ReadDir(d.cfg.DeployDir)
	if err != nil {
		d.log.Warn("farm: reading the deploy dir", "err", err)
		return out
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ModuleExt) {
			continue
		}
		path, err := ContextPath(e.Name())
		if err != nil {
			continue
		}
		file := filepath.Join(d.cfg.DeployDir, e.Name())
		size, dg, err := hashFile(file)
		if err != nil || size > d.cfg.MaxModuleBytes {
			d.log.Warn("farm: skipping a module in the deploy dir", "file", file, "bytes", size, "err", err)
			continue
		}
		out[path] = localFile{file: file, size: size, digest: dg}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// requestList asks m for its apps.
func (d *Deployer) requestList(ctx context.Context, m *tribes.Member) (listAnswer, error) {
	id := newID()
	w := d.addWaiter(id)
	defer d.removeWaiter(id)
	if failed := d.sendTo(ctx, []*tribes.Member{m}, d.encode(nil, &message{Type: msgListReq, ID: id})); failed != nil {
		return listAnswer{}, errors.New(failed[m.Key()])
	}
	timer := time.NewTimer(listTimeout)
	defer timer.Stop()
	for {
		w.mu.Lock()
		ans, ok := w.lists[m.Key()]
		w.mu.Unlock()
		if ok {
			return ans, nil
		}
		select {
		case <-w.notify:
		case <-timer.C:
			return listAnswer{}, fmt.Errorf("no app list within %v", listTimeout)
		case <-ctx.Done():
			return listAnswer{}, ctx.Err()
		case <-d.stop:
			return listAnswer{}, ErrClosed
		}
	}
}

// fetch asks peer to push app a and waits until it is deployed here.
func (d *Deployer) fetch(ctx context.Context, peer *tribes.Member, a appEntry) error {
	id := newID()
	w := d.addWaiter(id)
	defer d.removeWaiter(id)
	if failed := d.sendTo(ctx, []*tribes.Member{peer}, d.encode(nil, &message{Type: msgFetch, ID: id, Path: a.Path, Digest: a.Digest})); failed != nil {
		return errors.New(failed[peer.Key()])
	}
	timer := time.NewTimer(d.cfg.ResultTimeout)
	defer timer.Stop()
	for {
		w.mu.Lock()
		r, done := w.results[localKey]
		if !done {
			r, done = w.results[peer.Key()] // the peer could not serve it
		}
		w.mu.Unlock()
		if done {
			if r.err != "" {
				return errors.New(r.err)
			}
			return nil
		}
		select {
		case <-w.notify:
		case <-timer.C:
			return fmt.Errorf("not received within %v", d.cfg.ResultTimeout)
		case <-ctx.Done():
			return ctx.Err()
		case <-d.stop:
			return ErrClosed
		}
	}
}
