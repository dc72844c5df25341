package farm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Partial files: a module being received is written to
// TempDir/farm-<transfer id>.part, and one uploaded to Deploy is spooled
// to TempDir/upload-<random>.part; each is renamed into DeployDir or
// removed when done. A crash (or a kill) leaves them behind: Start and
// then the janitor remove those old enough (partStaleAge).

// liveParts counts the partial files this process holds, by name, so
// that a deployer starting on a TempDir that another deployer of this
// process shares does not take theirs for a crash's leftovers. Names, not
// paths: two spellings of one TempDir (relative, through a symlink) give
// one name, and names are unique (a random transfer id, CreateTemp's
// random number). A count: deployers of one process in different TempDirs
// receive the same transfer under the same name. Creating a partial file
// and the scan for stale ones hold the lock, so the scan never sees a new
// file before it is counted.
var liveParts = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

// createPart creates a partial file with create and counts it live.
func createPart(create func() (*os.File, error)) (*os.File, error) {
	liveParts.Lock()
	defer liveParts.Unlock()
	f, err := create()
	if err == nil {
		liveParts.n[filepath.Base(f.Name())]++
	}
	return f, err
}

// releasePart stops counting the partial file name once it was renamed or
// removed; names never counted are ignored.
func releasePart(name string) {
	base := filepath.Base(name)
	liveParts.Lock()
	defer liveParts.Unlock()
	switch n := liveParts.n[base]; {
	case n > 1:
		liveParts.n[base] = n - 1
	case n == 1:
		delete(liveParts.n, base)
	}
}

// removePart removes the partial file name and stops counting it.
func removePart(name string) {
	os.Remove(name)
	releasePart(name)
}

// isPartName reports whether name is one the farm gives partial files:
// farm-<32 hex digits>.part or upload-<digits>.part. Only those are
// removed: TempDir may be shared (with /tmp, say), and browsers name the
// downloads they are writing *.part too.
func isPartName(name string) bool {
	stem, ok := strings.CutSuffix(name, ".part")
	if !ok {
		return false
	}
	if id, ok := strings.CutPrefix(stem, "farm-"); ok {
		return len(id) == 2*idLen && strings.Trim(id, "0123456789abcdef") == ""
	}
	if n, ok := strings.CutPrefix(stem, "upload-"); ok {
		return n != "" && strings.Trim(n, "0123456789") == ""
	}
	return false
}

// partStaleAge is how long a partial file no deployer of this process
// holds must have gone unmodified before it is taken for a leftover: a
// live transfer writes at least every TransferTimeout (else it expires),
// and an upload is read while its deploy waits for results, so a younger
// one may be another process's (two nodes sharing a data directory).
func (d *Deployer) partStaleAge() time.Duration { return d.partStale }

// minPartStaleAge is partStaleAge's floor (a variable for tests; New
// reads it).
var minPartStaleAge = 10 * time.Minute

// removeStaleParts removes the partial files in dir that no deployer of
// this process holds and that went unmodified for partStaleAge: left by
// an earlier run, they would stay forever. Start calls it, and the
// janitor once per partStaleAge, for those a run that crashed just before
// left too young.
func (d *Deployer) removeStaleParts(dir string) {
	liveParts.Lock()
	defer liveParts.Unlock()
	entries, err := os.ReadDir(dir)
	if err != nil {
		d.log.Warn("farm: looking for partial files left by an earlier run", "dir", dir, "err", err)
		return
	}
	var removed []string
	cutoff := time.Now().Add(-d.partStaleAge())
	for _, e := range entries {
		if !e.Type().IsRegular() || !isPartName(e.Name()) || liveParts.n[e.Name()] > 0 {
			continue
		}
		if fi, err := e.Info(); err != nil || fi.ModTime().After(cutoff) {
			continue // gone meanwhile, or possibly another process's
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.log.Warn("farm: removing a partial file left by an earlier run", "dir", dir, "file", e.Name(), "err", err)
			continue
		}
		removed = append(removed, e.Name())
	}
	if len(removed) > 0 {
		d.log.Info("farm: removed partial files an earlier run left (it stopped during transfers or uploads)", "dir", dir, "files", removed)
	}
}
