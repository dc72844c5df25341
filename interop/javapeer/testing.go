package javapeer

import (
	"context"
	"errors"
	"testing"
)

// Require returns the toolchain, or skips t when Java or the Tribes jars
// are missing ("interop: java or catalina-tribes.jar not found: ...") or
// when the test runs with -short (a JVM takes seconds to start). Other
// failures fail t.
func Require(t testing.TB) *Toolchain {
	t.Helper()
	if testing.Short() {
		t.Skip("interop: skipped with -short (starts a JVM running Apache Tribes)")
	}
	tc, err := FindToolchain()
	if nf := (*NotFoundError)(nil); errors.As(err, &nf) {
		t.Skip("interop: java or catalina-tribes.jar not found: " + nf.Details())
	}
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// StartT starts a peer for the test t (cfg.Toolchain defaults to
// Require(t)), closes it when the test ends, and then logs the Java logs
// and any stray output if the test failed.
func StartT(t testing.TB, cfg Config) *Peer {
	t.Helper()
	if cfg.Toolchain == nil {
		cfg.Toolchain = Require(t)
	}
	p, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		err := p.Close()
		if err != nil {
			t.Errorf("closing the Java peer: %v", err)
		}
		if t.Failed() {
			t.Logf("Java peer (pid %d) stderr, last 64 KiB:\n%s", p.PID(), p.Stderr())
			for _, n := range p.Noise() {
				t.Logf("Java peer stray output: %s", n)
			}
		}
	})
	return p
}
