package wasm

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultCacheMaxBytes is the size the compilation cache is pruned to
// when Config.CacheMaxBytes is 0.
const DefaultCacheMaxBytes = 512 << 20

// staleTempAge is how old a leftover temporary file of wazero's cache
// (one written by a process that died before renaming it) must be before
// pruning removes it: younger ones may still be being written.
const staleTempAge = time.Hour

// diskCache bounds wazero's compilation cache on disk.
//
// wazero v1.12.0 (internal/filecache) keeps one file per compiled module
// in dir/wazero-<version>-<GOARCH>-<GOOS>/, named by the 64 hex digits of
// its key, written to "<name>.<random>.tmp" and renamed; it never removes
// one (but one it finds written by another wazero version). An entry is
// only opened and read whole when a module with that key is compiled (the
// machine code is copied into memory that wazero maps itself), so
// removing one while the runtime is open costs at most a recompilation.
// wazero does not touch an entry it reads (os.Open: the mtime is that of
// its writing, the atime depends on the mount): Runtime.compile sets the
// mtime to the time of each compile instead, and prune removes the least
// recently compiled entries first, never one of a module this process
// holds open (deployed). Processes sharing a directory (members on one
// machine, by default) do not know each other's open modules: one may
// remove an entry another has deployed, which costs that one a
// recompilation the next time it compiles that version, nothing before.
type diskCache struct {
	dir string // the directory given to wazero (it holds wazero-* directories)
	max int64  // < 0: unbounded
	log *slog.Logger

	mu     sync.Mutex
	inUse  map[string]int // entry path -> open Modules compiled from it
	cpu    int            // the CPU word of wazero's keys; -1 until learned
	warned bool           // the "cannot find a module's entry" warning was logged

	pruneMu sync.Mutex // one prune at a time
}

func newDiskCache(dir string, max int64, log *slog.Logger) *diskCache {
	return &diskCache{dir: dir, max: max, log: log, inUse: map[string]int{}, cpu: -1}
}

// entry returns the path of code's entry, "" if none is found. wazero's
// key is, for a module compiled without function listeners and without
// WithCloseOnContextDone (as Runtime does),
//
//	sha256(sha256(code || 0x00) || "WAZEVO" || little-endian uint64 CPU features)
//
// (wasm.Module.AssignModuleID, wazevo.fileCacheKey), where the CPU
// features word is a combination of at most three low bits
// (platform.CpuFeatures). The word is learned at the first entry found.
func (c *diskCache) entry(code []byte) string {
	dirs, _ := filepath.Glob(filepath.Join(c.dir, "wazero-*"))
	if len(dirs) == 0 {
		return ""
	}
	h := sha256.New()
	h.Write(code)
	h.Write([]byte{0}) // withEnsureTermination: false
	id := h.Sum(nil)
	key := func(cpu int) string {
		k := sha256.New()
		k.Write(id)
		k.Write([]byte("WAZEVO"))
		k.Write(binary.LittleEndian.AppendUint64(nil, uint64(cpu)))
		return hex.EncodeToString(k.Sum(nil))
	}
	find := func(name string) string {
		for _, d := range dirs {
			p := filepath.Join(d, name)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				return p
			}
		}
		return ""
	}
	c.mu.Lock()
	cpu := c.cpu
	c.mu.Unlock()
	if cpu >= 0 {
		return find(key(cpu))
	}
	for cpu := range 8 {
		if p := find(key(cpu)); p != "" {
			c.mu.Lock()
			c.cpu = cpu
			c.mu.Unlock()
			return p
		}
	}
	return ""
}

// compiled records that a module was compiled from code: its entry is
// touched (it counts as recently used) and held until the release
// returned is called (at Module.Close); then the cache is pruned.
// A nil c (no disk cache) returns nil.
func (c *diskCache) compiled(code []byte) (release func()) {
	if c == nil {
		return nil
	}
	p := c.entry(code)
	if p == "" {
		c.mu.Lock()
		warn := !c.warned
		c.warned = true
		c.mu.Unlock()
		if warn {
			c.log.Warn("wasm: a compiled module's entry is not in the compilation cache under the key expected of wazero v1.12.0: pruning the cache cannot tell the entries of deployed modules (it keeps removing the least recently written)", "dir", c.dir)
		}
		c.prune()
		return nil
	}
	now := time.Now()
	_ = os.Chtimes(p, now, now)
	c.mu.Lock()
	c.inUse[p]++
	c.mu.Unlock()
	c.prune()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			if c.inUse[p]--; c.inUse[p] <= 0 {
				delete(c.inUse, p)
			}
			c.mu.Unlock()
		})
	}
}

// refused is called after a module compiled but refused: its entry was
// written (or read) too, and is not held.
func (c *diskCache) refused() {
	if c != nil {
		c.prune()
	}
}

type cacheEntry struct {
	path  string
	size  int64
	mtime time.Time
}

// isKey reports whether name is 64 lower-case hex digits: an entry.
func isKey(name string) bool {
	if len(name) != 2*sha256.Size {
		return false
	}
	for _, r := range name {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// prune removes the least recently used entries, of every wazero-*
// directory (those of other wazero versions are never read again by
// this one), until the entries add up to at most c.max bytes, skipping
// the entries of open Modules. It also removes temporary files older
// than staleTempAge. It logs what it removed.
func (c *diskCache) prune() {
	if c.max < 0 {
		return
	}
	c.pruneMu.Lock()
	defer c.pruneMu.Unlock()
	dirs, _ := filepath.Glob(filepath.Join(c.dir, "wazero-*"))
	var entries []cacheEntry
	var total int64
	now := time.Now()
	for _, d := range dirs {
		des, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, de := range des {
			if !de.Type().IsRegular() {
				continue
			}
			name := de.Name()
			p := filepath.Join(d, name)
			info, err := de.Info()
			if err != nil {
				continue // removed meanwhile
			}
			switch {
			case isKey(name):
				entries = append(entries, cacheEntry{p, info.Size(), info.ModTime()})
				total += info.Size()
			case strings.HasSuffix(name, ".tmp") && len(name) > 2*sha256.Size && isKey(name[:2*sha256.Size]) && now.Sub(info.ModTime()) > staleTempAge:
				_ = os.Remove(p)
			}
		}
	}
	if total <= c.max {
		return
	}
	slices.SortFunc(entries, func(a, b cacheEntry) int { return a.mtime.Compare(b.mtime) })
	c.mu.Lock()
	inUse := make(map[string]bool, len(c.inUse))
	for p := range c.inUse {
		inUse[p] = true
	}
	c.mu.Unlock()
	before, removed, kept := total, 0, 0
	for _, e := range entries {
		if total <= c.max {
			break
		}
		if inUse[e.path] {
			kept++
			continue
		}
		if err := os.Remove(e.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("wasm: compilation cache: cannot remove an entry", "err", err)
			continue
		}
		total -= e.size
		removed++
	}
	c.log.Info("wasm: compilation cache pruned, least recently used entries first",
		"dir", c.dir, "removed", removed, "freed_bytes", before-total, "bytes", total, "max_bytes", c.max)
	if total > c.max {
		c.log.Warn("wasm: compilation cache is still over its limit: the rest are entries of deployed modules",
			"dir", c.dir, "bytes", total, "max_bytes", c.max, "deployed_entries_kept", kept)
	}
}
