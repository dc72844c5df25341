package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// appFlags collects repeated -app PATH=MODULE flags.
type appFlags []appSpec

type appSpec struct{ path, source string }

func (a *appFlags) String() string {
	var s []string
	for _, x := range *a {
		s = append(s, x.path+"="+x.source)
	}
	return strings.Join(s, ",")
}

func (a *appFlags) Set(v string) error {
	path, src, ok := strings.Cut(v, "=")
	if !ok || !strings.HasPrefix(path, "/") || src == "" {
		return fmt.Errorf("want /path=file.wasm or /path=builtin:NAME, got %q", v)
	}
	*a = append(*a, appSpec{path, src})
	return nil
}

// loadModule reads a module file or an embedded sample ("builtin:counter").
func loadModule(src string) ([]byte, string, error) {
	if name, ok := strings.CutPrefix(src, "builtin:"); ok {
		b, ok := wasmapps.Lookup(name)
		if !ok {
			return nil, "", fmt.Errorf("no builtin app %q (have %s)", name, strings.Join(wasmapps.Names(), ", "))
		}
		return b, src, nil
	}
	b, err := os.ReadFile(src)
	return b, filepath.Base(src), err
}

// runNode runs one wasmfarm node (no cluster yet) serving the given apps
// until ctx ends, then shuts down gracefully.
func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := host.DefaultConfig()
	var (
		apps        appFlags
		addr        = fs.String("http", "127.0.0.1:8080", "HTTP listen address")
		route       = fs.String("jvm-route", "", "the node's jvmRoute, suffixed to session ids (e.g. jvm_a)")
		cacheDir    = fs.String("cache-dir", "", `wazero compilation cache directory ("" = user cache dir, "-" = none)`)
		poolSize    = fs.Int("pool-size", def.PoolSize, "wasm instances per app")
		deadline    = fs.Duration("deadline", def.RequestDeadline, "per-request deadline of a guest")
		memMiB      = fs.Int("memory-limit", int(def.MemoryLimit>>20), "memory limit per instance, MiB")
		maxBody     = fs.Int64("max-body", def.MaxRequestBodyBytes, "request body limit, bytes")
		maxSessions = fs.Int("max-sessions", 0, "maxActiveSessions per app (0 = unlimited)")
		timeout     = fs.Duration("session-timeout", def.Sessions.MaxInactiveInterval, "default maxInactiveInterval of sessions")
		logLevel    = fs.String("log-level", "info", "debug, info, warn or error")
		shutdown    = fs.Duration("shutdown-timeout", 10*time.Second, "how long to wait for running requests at shutdown")
	)
	fs.Var(&apps, "app", "deploy an app: /path=file.wasm or /path=builtin:counter (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: wasmfarm node [flags]\n\nRuns a wasmfarm node serving WebAssembly apps (no cluster yet).\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg := def
	cfg.JvmRoute = *route
	cfg.CacheDir = *cacheDir
	cfg.PoolSize = *poolSize
	cfg.RequestDeadline = *deadline
	cfg.MemoryLimit = uint64(*memMiB) << 20
	cfg.MaxRequestBodyBytes = *maxBody
	cfg.Sessions.MaxActiveSessions = *maxSessions
	cfg.Sessions.MaxInactiveInterval = *timeout
	cfg.Logger = log
	srv, err := host.New(cfg)
	if err != nil {
		return err
	}
	deployed := 0
	for _, a := range apps {
		mod, name, err := loadModule(a.source)
		if err == nil {
			err = srv.DeployApp(ctx, a.path, mod, host.AppConfig{Name: name})
		}
		if err != nil {
			// Other apps keep serving: log the refusal and go on.
			log.Error("app not deployed", "context", a.path, "module", a.source, "err", err)
			continue
		}
		deployed++
	}
	if len(apps) > 0 && deployed == 0 {
		srv.Shutdown(context.Background())
		return errors.New("no app could be deployed")
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		srv.Shutdown(context.Background())
		return err
	}
	fmt.Fprintf(stdout, "wasmfarm node %q serving %d app(s) on http://%s\n", *route, deployed, l.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		srv.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", *shutdown)
	sctx, cancel := context.WithTimeout(context.Background(), *shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
