package farm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// watcher polls WatchDir (Tomcat's WarWatcher). Its state belongs to its
// goroutine.
type watcher struct {
	d     *Deployer
	ctx   context.Context     // ends with the deployer
	files map[string]*watched // by file name
	scans atomic.Int64        // scans completed, for tests
}

type watched struct {
	size    int64
	mtime   time.Time
	pending bool   // changed at the last scan: deploy if unchanged at the next
	path    string // the context path it serves, once deployed
}

func newWatcher(d *Deployer) *watcher { return &watcher{d: d, files: map[string]*watched{}} }

func (w *watcher) run() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.ctx = ctx
	go func() {
		select {
		case <-w.d.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(w.d.cfg.ProcessDeployFrequency)
	defer t.Stop()
	w.scan()
	for {
		select {
		case <-w.d.stop:
			return
		case <-t.C:
			w.scan()
		}
	}
}

// scan compares the watch dir with the last scan: a new or changed module
// is deployed once it has stayed the same for one interval (so a file
// still being written is not shipped) and only if the host does not serve
// that very module already; a removed one is undeployed.
func (w *watcher) scan() {
	defer w.scans.Add(1)
	d := w.d
	entries, err := os.ReadDir(d.cfg.WatchDir)
	if err != nil {
		d.log.Warn("farm: reading the watch dir", "dir", d.cfg.WatchDir, "err", err)
		return
	}
	seen := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if !isWatchedModule(e) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		seen[name] = true
		f := w.files[name]
		if f == nil {
			f = &watched{}
			w.files[name] = f
		}
		if f.size != info.Size() || !f.mtime.Equal(info.ModTime()) {
			f.size, f.mtime, f.pending = info.Size(), info.ModTime(), true
			continue
		}
		if f.pending {
			f.pending = false
			w.deploy(name, f)
		}
	}
	for name, f := range w.files {
		if seen[name] {
			continue
		}
		delete(w.files, name)
		if f.path == "" {
			continue
		}
		d.st.watchUndeploys.Add(1)
		rep, err := d.undeploy(w.ctx, f.path, false)
		switch {
		case errors.Is(err, ErrAppNotFound):
		case err != nil:
			d.log.Warn("farm: watch dir undeploy", "file", name, "context", f.path, "err", err)
		default:
			d.log.Info("farm: watch dir undeploy", "file", name, "context", f.path, "members", len(rep.Members))
		}
	}
}

// isWatchedModule reports whether the watch dir entry e is a module the
// watch deploys: a regular, not hidden, file of [ModuleExt].
func isWatchedModule(e os.DirEntry) bool {
	name := e.Name()
	return e.Type().IsRegular() && strings.HasSuffix(name, ModuleExt) && !strings.HasPrefix(name, ".")
}

func (w *watcher) deploy(name string, f *watched) {
	d := w.d
	file := filepath.Join(d.cfg.WatchDir, name)
	path, err := d.pathOf(file)
	if err != nil {
		d.log.Warn("farm: watch dir module skipped", "file", name, "err", err)
		return
	}
	if _, dg, err := hashFile(file); err == nil && d.hostDigest(path) == dg {
		f.path = path // served already (e.g. caught up at Sync)
		return
	}
	d.st.watchDeploys.Add(1)
	rep, err := d.DeployFile(w.ctx, file, DeployOptions{})
	if rep != nil {
		f.path = path
	}
	if err != nil {
		d.log.Warn("farm: watch dir deploy", "file", name, "context", path, "err", err)
		return
	}
	d.log.Info("farm: watch dir deploy", "file", name, "context", path, "members", len(rep.Members))
}
