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
	"net/url"
	"strings"
	"time"

	"github.com/wasmfarm/wasmfarm/balance"
)

// memberFlags collects repeatable -member route=URL flags.
type memberFlags []balance.Member

func (m *memberFlags) String() string {
	parts := make([]string, len(*m))
	for i, x := range *m {
		parts[i] = x.Route + "=" + x.URL.String()
	}
	return strings.Join(parts, ",")
}

func (m *memberFlags) Set(s string) error {
	route, raw, ok := strings.Cut(s, "=")
	if !ok || route == "" || raw == "" {
		return fmt.Errorf("want jvmRoute=URL, e.g. jvm_a=http://127.0.0.1:8081, got %q", s)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	*m = append(*m, balance.Member{Route: route, URL: u})
	return nil
}

// runBalance runs "wasmfarm balance": a sticky HTTP load balancer in front
// of the members, routing by the jvmRoute suffix of session ids.
func runBalance(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("balance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := balance.DefaultConfig()
	var (
		members        memberFlags
		addr           = fs.String("http", "127.0.0.1:8080", "HTTP listen address")
		healthPath     = fs.String("health-path", def.HealthPath, "path probed on each member (any HTTP response counts as alive)")
		healthInterval = fs.Duration("health-interval", def.HealthInterval, "time between active health probes (negative: off)")
		failTimeout    = fs.Duration("fail-timeout", def.FailTimeout, "how long a member that failed a request rests unless a probe revives it")
		maxRetryBody   = fs.Int64("max-retry-body", def.MaxRetryBody, "largest request body buffered so the request can be retried on another member, bytes")
		logLevel       = fs.String("log-level", "info", "debug, info, warn or error")
		shutdown       = fs.Duration("shutdown-timeout", 10*time.Second, "how long to wait for running requests at shutdown")
		readTimeout    = fs.Duration("read-timeout", 5*time.Minute, "how long a client may take to send a whole request, body included (0: no bound); raise it for large uploads on slow links")
	)
	fs.Var(&members, "member", "a member: jvmRoute=URL, e.g. jvm_a=http://127.0.0.1:8081 (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: wasmfarm balance -member jvm_a=http://127.0.0.1:8081 -member jvm_b=http://127.0.0.1:8082 [flags]\n\nA sticky HTTP load balancer: requests whose session id (JSESSIONID cookie or ;jsessionid=)\nends in .<jvmRoute> go to that member, others round robin; a dead member's requests go to\nanother member without the client seeing an error.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if len(members) == 0 {
		return errors.New("no -member given")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg := def
	cfg.Members = members
	cfg.HealthPath = *healthPath
	cfg.HealthInterval = *healthInterval
	cfg.FailTimeout = *failTimeout
	cfg.MaxRetryBody = *maxRetryBody
	cfg.Logger = log
	bal, err := balance.New(cfg)
	if err != nil {
		return err
	}
	defer bal.Close()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           bal,
		ReadHeaderTimeout: 30 * time.Second,
		// A client trickling its body would hold a goroutine, and a body
		// buffered for a retry up to MaxRetryBody, for as long as it likes.
		ReadTimeout: *readTimeout,
		IdleTimeout: 2 * time.Minute, // an idle keep-alive client does not hold a connection forever
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(stdout, "wasmfarm balance on http://%s for %d member(s): %s\n", l.Addr(), len(members), members.String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
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
	for _, s := range bal.Stats() {
		log.Info("member", "route", s.Route, "url", s.URL, "up", s.Up, "requests", s.Requests, "failures", s.Failures)
	}
	return nil
}
