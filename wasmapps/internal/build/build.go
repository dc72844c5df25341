// Package build compiles the sample apps to WebAssembly reproducibly and
// records what it built, for `go generate` and the drift test.
package build

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// App is one guest module built from a package of this module.
type App struct {
	Name string // the output is build/<Name>.wasm
	Pkg  string // the package directory, relative to wasmapps/
}

// Apps lists every module the generator builds.
var Apps = []App{
	{"counter", "counter"},
	{"cart", "cart"},
	{"static", "static"},
	{"faulty", "internal/faulty"},
}

// SourceDirs are the directories (relative to wasmapps/) whose Go and
// embedded files make up the guests' sources, for the source hash.
var SourceDirs = []string{"counter", "cart", "static", "internal/faulty", "sdk", "../host/abi"}

// Manifest records a generation: the toolchain, the flags, and per app the
// hash of its output; plus a hash of every source file.
type Manifest struct {
	Toolchain  string            `json:"toolchain"`
	Flags      []string          `json:"flags"`
	SourceHash string            `json:"sourceHash"`
	Outputs    map[string]string `json:"outputs"` // name -> sha256 of build/<name>.wasm
}

// Flags are the go build flags: a reactor, reproducible (no paths, no VCS
// stamp).
var Flags = []string{"-buildmode=c-shared", "-trimpath", "-buildvcs=false"}

// Build compiles app from the wasmapps directory dir into out.
func Build(dir string, app App, out string) error {
	args := append([]string{"build"}, Flags...)
	args = append(args, "-o", out, "./"+app.Pkg)
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", app.Pkg, err, stderr.String())
	}
	return nil
}

func goTool() string {
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "go"
}

// SourceHash hashes every file under SourceDirs (names and contents, in
// order), ignoring tests and build outputs.
func SourceHash(dir string) (string, error) {
	h := sha256.New()
	var files []string
	for _, d := range SourceDirs {
		err := filepath.WalkDir(filepath.Join(dir, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() || strings.HasSuffix(p, "_test.go") || strings.HasSuffix(p, ".wasm") {
				return nil
			}
			files = append(files, p)
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	slices.Sort(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(dir, f)
		fmt.Fprintf(h, "%s %d\n", filepath.ToSlash(rel), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Toolchain returns the version of the go command that builds the apps.
func Toolchain(dir string) (string, error) {
	cmd := exec.Command(goTool(), "env", "GOVERSION")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env GOVERSION: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// FileHash returns the hex SHA-256 of a file.
func FileHash(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// ManifestFile is the manifest's path relative to wasmapps/.
const ManifestFile = "build/MANIFEST.json"

// ReadManifest reads the manifest from the wasmapps directory dir.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return m, err
	}
	err = json.Unmarshal(b, &m)
	return m, err
}

// Generate builds every app into dir/build and writes the manifest.
func Generate(dir string) (Manifest, error) {
	m := Manifest{Flags: Flags, Outputs: map[string]string{}}
	var err error
	if m.Toolchain, err = Toolchain(dir); err != nil {
		return m, err
	}
	if m.SourceHash, err = SourceHash(dir); err != nil {
		return m, err
	}
	for _, app := range Apps {
		out := filepath.Join(dir, "build", app.Name+".wasm")
		if err := Build(dir, app, out); err != nil {
			return m, err
		}
		if m.Outputs[app.Name], err = FileHash(out); err != nil {
			return m, err
		}
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	return m, os.WriteFile(filepath.Join(dir, ManifestFile), append(b, '\n'), 0o644)
}
