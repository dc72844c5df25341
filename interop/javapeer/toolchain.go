package javapeer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wasmfarm/wasmfarm/interop"
)

// Environment variables that override where the toolchain is looked for.
const (
	EnvTribesJar = "TRIBES_JAR" // path of catalina-tribes.jar
	EnvJuliJar   = "JULI_JAR"   // path of tomcat-juli.jar
)

// Places where Debian's libtomcat10-java and a Tomcat distribution keep
// the jars, tried in order after the environment variables.
var (
	tribesJarCandidates = []string{
		"/usr/share/java/tomcat10-tribes.jar",
		"/usr/share/java/catalina-tribes.jar",
		"/usr/share/tomcat10/lib/catalina-tribes.jar",
	}
	juliJarCandidates = []string{
		"/usr/share/java/tomcat10-juli.jar",
		"/usr/share/java/tomcat-juli.jar",
		"/usr/share/tomcat10/bin/tomcat-juli.jar",
	}
)

// NotFoundError lists what FindToolchain could not find. errors.Is(err,
// ErrNotFound) is true for it.
type NotFoundError struct {
	Missing []string // one entry per missing piece, saying where it was looked for
}

// Error returns, for example, "javapeer: java or catalina-tribes.jar not
// found: javac not in $JAVA_HOME/bin or $PATH".
func (e *NotFoundError) Error() string {
	return ErrNotFound.Error() + ": " + e.Details()
}

// Details returns the missing pieces, separated by "; ".
func (e *NotFoundError) Details() string { return strings.Join(e.Missing, "; ") }

// Is reports whether target is [ErrNotFound].
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Toolchain is what running the harness needs: a JDK and the Tribes jars.
type Toolchain struct {
	Java      string // the java launcher
	Javac     string // the compiler
	TribesJar string // catalina-tribes.jar
	JuliJar   string // tomcat-juli.jar (Tribes logs through it)
}

// FindToolchain looks for java and javac ($JAVA_HOME/bin first, then
// $PATH) and for the jars ($TRIBES_JAR and $JULI_JAR first, then
// $CATALINA_HOME, then the Debian and Tomcat locations). When something is
// missing the error is a *[NotFoundError] (errors.Is(err, ErrNotFound)).
func FindToolchain() (*Toolchain, error) {
	var tc Toolchain
	var missing []string
	var err error
	if tc.Java, err = findTool("java"); err != nil {
		missing = append(missing, err.Error())
	}
	if tc.Javac, err = findTool("javac"); err != nil {
		missing = append(missing, err.Error())
	}
	home := os.Getenv("CATALINA_HOME")
	if tc.TribesJar = findFile(os.Getenv(EnvTribesJar), home, "lib/catalina-tribes.jar", tribesJarCandidates); tc.TribesJar == "" {
		missing = append(missing, "catalina-tribes.jar (set "+EnvTribesJar+" or install libtomcat10-java)")
	}
	if tc.JuliJar = findFile(os.Getenv(EnvJuliJar), home, "bin/tomcat-juli.jar", juliJarCandidates); tc.JuliJar == "" {
		missing = append(missing, "tomcat-juli.jar (set "+EnvJuliJar+" or install libtomcat10-java)")
	}
	if missing != nil {
		return nil, &NotFoundError{Missing: missing}
	}
	return &tc, nil
}

func findTool(name string) (string, error) {
	if jh := os.Getenv("JAVA_HOME"); jh != "" {
		p := filepath.Join(jh, "bin", name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not in $JAVA_HOME/bin or $PATH", name)
	}
	return p, nil
}

func findFile(env, home, rel string, candidates []string) string {
	list := make([]string, 0, len(candidates)+2)
	if env != "" {
		list = append(list, env)
	}
	if home != "" {
		list = append(list, filepath.Join(home, rel))
	}
	for _, p := range append(list, candidates...) {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// Classpath returns the classpath that runs the harness compiled in dir.
func (tc *Toolchain) Classpath(dir string) string {
	return strings.Join([]string{dir, tc.TribesJar, tc.JuliJar}, string(os.PathListSeparator))
}

// Build compiles TribesPeer.java and returns the directory holding its
// classes. The classes are cached under the user cache directory (or the
// temporary directory), keyed by the source, the compiler and the jars, so
// a test process compiles at most once and later processes not at all.
// Concurrent calls, from one process or several, are safe.
func (tc *Toolchain) Build(ctx context.Context) (string, error) {
	key, err := tc.cacheKey()
	if err != nil {
		return "", err
	}
	base, err := os.UserCacheDir()
	if err != nil || base == "" {
		base = os.TempDir()
	}
	root := filepath.Join(base, "wasmfarm", "javapeer")
	dir := filepath.Join(root, key)
	if _, err := os.Stat(filepath.Join(dir, "TribesPeer.class")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("javapeer: build: %w", err)
	}
	tmp, err := os.MkdirTemp(root, "build-")
	if err != nil {
		return "", fmt.Errorf("javapeer: build: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	src := filepath.Join(tmp, "src", "TribesPeer.java")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		return "", fmt.Errorf("javapeer: build: %w", err)
	}
	if err := os.WriteFile(src, []byte(interop.TribesPeerJava()), 0o644); err != nil {
		return "", fmt.Errorf("javapeer: build: %w", err)
	}
	out := filepath.Join(tmp, "classes")
	cmd := exec.CommandContext(ctx, tc.Javac, "-nowarn", "-encoding", "UTF-8", "-d", out,
		"-cp", tc.TribesJar+string(os.PathListSeparator)+tc.JuliJar, src)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("javapeer: javac: %w\n%s", err, msg)
	}
	if err := os.Rename(out, dir); err != nil {
		// Another builder won the race: use its classes.
		if _, serr := os.Stat(filepath.Join(dir, "TribesPeer.class")); serr == nil {
			return dir, nil
		}
		return "", fmt.Errorf("javapeer: build: %w", err)
	}
	return dir, nil
}

// cacheKey hashes what the compiled classes depend on.
func (tc *Toolchain) cacheKey() (string, error) {
	h := sha256.New()
	io.WriteString(h, interop.TribesPeerJava())
	for _, p := range []string{tc.Javac, tc.TribesJar, tc.JuliJar} {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return "", fmt.Errorf("javapeer: %w", err)
		}
		st, err := os.Stat(real)
		if err != nil {
			return "", fmt.Errorf("javapeer: %w", err)
		}
		io.WriteString(h, "\x00"+real+"\x00"+strconv.FormatInt(st.Size(), 10)+"\x00"+
			strconv.FormatInt(st.ModTime().UnixNano(), 10))
	}
	return hex.EncodeToString(h.Sum(nil)[:12]), nil
}
