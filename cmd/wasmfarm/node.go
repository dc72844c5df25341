package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/farm"
	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/host/cluster"
	"github.com/wasmfarm/wasmfarm/host/serverconfig"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// appFlags collects repeated -app PATH=MODULE flags.
type appFlags []appSpec

type appSpec struct {
	path, source string
	local        bool // not distributable: sessions stay on this member
	// From the <Context> (and its <Manager>): zero keeps the node's.
	maxActive int
	timeout   time.Duration
}

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
	*a = append(*a, appSpec{path: path, source: src})
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

// nodeSpec is everything a node runs with: from flags, or from a
// server.xml with flags on top.
type nodeSpec struct {
	httpAddr  string
	adminAddr string
	apps      []appSpec
	host      host.Config
	shutdown  time.Duration

	cluster     bool
	channel     tribes.Config
	manager     cluster.ManagerConfig
	replication *cluster.ReplicationValveConfig
	binder      *cluster.JvmRouteBinderConfig
	// settle is how long to listen for members before the apps' state
	// transfers begin (Tomcat sleeps likewise at start).
	settle time.Duration

	dataDir    string      // the node's state: farm dirs, admin token
	farm       farm.Config // the farm deployer (clustered nodes); dirs default under dataDir
	adminToken string      // "" = $WASMFARM_ADMIN_TOKEN, else generated into dataDir
}

// clusterFlags are the flags of a clustered node.
type clusterFlags struct {
	enabled              *bool
	manager, sendOptions *string
	mcastAddr, mcastBind *string
	mcastPort            *int
	mcastFreq, mcastDrop *time.Duration
	receiver             *string
	domain               *string
	stateTransferTimeout *time.Duration
	expireOnShutdown     *bool
	filter               *string
	noBinder             *bool
	settle               *time.Duration
}

func addClusterFlags(fs *flag.FlagSet) clusterFlags {
	return clusterFlags{
		enabled:              fs.Bool("cluster", false, "join a cluster: replicate sessions of the apps to the other members"),
		manager:              fs.String("manager", "delta", "session manager of clustered apps: delta (all-to-all) or backup (primary/backup)"),
		sendOptions:          fs.String("send-options", "", `replication send options: "async" (8), "sync" (6) or Tribes' numbers/names; default async for delta, sync for backup`),
		mcastAddr:            fs.String("mcast-address", "228.0.0.4", "multicast group of the membership"),
		mcastPort:            fs.Int("mcast-port", 45564, "multicast port of the membership (members with the same group and port form a cluster)"),
		mcastBind:            fs.String("mcast-bind", "127.0.0.1", `interface address (or name) for multicast; 127.0.0.1 keeps the cluster on this machine (TTL 0); "" lets the OS choose`),
		mcastFreq:            fs.Duration("mcast-frequency", 500*time.Millisecond, "heartbeat interval"),
		mcastDrop:            fs.Duration("mcast-droptime", 3*time.Second, "a member silent this long is dropped"),
		receiver:             fs.String("receiver", "127.0.0.1:0", `replication receiver address (port 0: any free port; "auto:4000" Tomcat's first free port from 4000)`),
		domain:               fs.String("domain", "", "cluster domain (members of other domains are ignored)"),
		stateTransferTimeout: fs.Duration("state-transfer-timeout", 60*time.Second, "how long a starting member waits for the sessions of the others"),
		expireOnShutdown:     fs.Bool("expire-sessions-on-shutdown", false, "expire this member's sessions cluster-wide when it stops"),
		filter:               fs.String("replication-filter", "", `ReplicationValve filter: requests whose path matches do not replicate a mere access (e.g. ".*\.css|.*\.png")`),
		noBinder:             fs.Bool("no-jvmroute-binder", false, "do not rewrite a failed-over session id to this member's route"),
		settle:               fs.Duration("membership-wait", 0, "how long to listen for members before receiving sessions (default 3 heartbeats)"),
	}
}

// apply fills the cluster part of spec from the flags.
func (f clusterFlags) apply(spec *nodeSpec, log *slog.Logger) error {
	spec.cluster = *f.enabled
	if !spec.cluster {
		return nil
	}
	kind := cluster.Kind(*f.manager)
	if kind != cluster.KindDelta && kind != cluster.KindBackup {
		return fmt.Errorf("-manager: want delta or backup, got %q", *f.manager)
	}
	spec.manager = cluster.DefaultManagerConfig(kind)
	if *f.sendOptions != "" {
		o, err := parseSendOptions(*f.sendOptions)
		if err != nil {
			return fmt.Errorf("-send-options: %w", err)
		}
		spec.manager.SendOptions = o
	}
	spec.manager.StateTransferTimeout = *f.stateTransferTimeout
	spec.manager.ExpireSessionsOnShutdown = *f.expireOnShutdown

	ch := tribes.DefaultConfig()
	ch.Mcast.Address = *f.mcastAddr
	ch.Mcast.Port = *f.mcastPort
	ch.Mcast.Bind = *f.mcastBind
	ch.Mcast.Frequency = *f.mcastFreq
	ch.Mcast.DropTime = *f.mcastDrop
	if isLoopback(*f.mcastBind) {
		ch.Mcast.TTL = 0 // never leaves this machine
	}
	host, port, err := parseReceiver(*f.receiver)
	if err != nil {
		return fmt.Errorf("-receiver: %w", err)
	}
	ch.Receiver.Address, ch.Receiver.Port = host, port
	if port == tribes.AnyPort {
		ch.Receiver.AutoBind = 0
	}
	ch.Domain = []byte(*f.domain)
	ch.Logger = log
	spec.channel = ch
	spec.settle = *f.settle
	if spec.settle <= 0 {
		spec.settle = 3 * ch.Mcast.Frequency
	}
	spec.replication = &cluster.ReplicationValveConfig{Filter: *f.filter}
	spec.binder = &cluster.JvmRouteBinderConfig{Disabled: *f.noBinder}
	return nil
}

func isLoopback(addr string) bool {
	if addr == "lo" {
		return true
	}
	ip := net.ParseIP(addr)
	return ip != nil && ip.IsLoopback()
}

// parseSendOptions reads "async", "sync" or Tribes' option syntax.
func parseSendOptions(s string) (tribes.Options, error) {
	switch strings.ToLower(s) {
	case "async", "asynchronous":
		return cluster.AsyncOptions, nil
	case "sync", "synchronous":
		return cluster.SyncOptions, nil
	}
	return tribes.ParseOptions(s)
}

// parseReceiver reads host:port, with port 0 meaning any free port and
// "auto" as the host meaning Tribes' address="auto".
func parseReceiver(s string) (string, int, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	var port int
	if _, err := fmt.Sscan(p, &port); err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	if port == 0 {
		port = tribes.AnyPort
	}
	return h, port, nil
}

// runNode runs one wasmfarm node serving the given apps until ctx ends,
// then shuts down gracefully.
func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := host.DefaultConfig()
	var (
		apps         appFlags
		localApps    appFlags
		addr         = fs.String("http", "127.0.0.1:8080", "HTTP listen address")
		admin        = fs.String("admin", "", "admin (status, readiness) listen address, e.g. 127.0.0.1:9090; empty: none")
		route        = fs.String("jvm-route", "", "the node's jvmRoute, suffixed to session ids (e.g. jvm_a)")
		cacheDir     = fs.String("cache-dir", "", `wazero compilation cache directory ("" = user cache dir, "-" = none)`)
		cacheMiB     = fs.Int64("cache-max", def.CacheMaxBytes>>20, "compilation cache size limit, MiB: past it the least recently compiled app versions are removed, never those deployed here (-1 = unbounded)")
		poolSize     = fs.Int("pool-size", def.PoolSize, "wasm instances per app")
		deadline     = fs.Duration("deadline", def.RequestDeadline, "per-request deadline of a guest")
		memMiB       = fs.Int("memory-limit", int(def.MemoryLimit>>20), "memory limit per instance, MiB")
		maxBody      = fs.Int64("max-body", def.MaxRequestBodyBytes, "request body limit, bytes")
		maxSessions  = fs.Int("max-sessions", 0, "maxActiveSessions per app (0 = unlimited)")
		timeout      = fs.Duration("session-timeout", def.Sessions.MaxInactiveInterval, "default maxInactiveInterval of sessions")
		expireEvery  = fs.Duration("session-expire-interval", def.Sessions.ExpireInterval, "how often idle sessions are expired (Tomcat's background processing)")
		logLevel     = fs.String("log-level", "info", `debug, info, warn or error; "messages" also logs every cluster message sent and received (Tomcat's org.apache.catalina.tribes.MESSAGES)`)
		shutdown     = fs.Duration("shutdown-timeout", 10*time.Second, "how long to wait for running requests at shutdown; after it, the requests still running are cut off and their guests stopped")
		connector    = fs.String("connector", def.Connector, `HTTP connector: "h1" (the host's own HTTP/1.1) or "net/http" (Go's server)`)
		headTimeout  = fs.Duration("read-header-timeout", def.ReadHeaderTimeout, "how long a request's head may take to arrive (a <Connector connectionTimeout>)")
		idleTimeout  = fs.Duration("idle-timeout", def.IdleTimeout, "how long a keep-alive connection may wait for its next request (keepAliveTimeout)")
		writeTimeout = fs.Duration("write-timeout", def.WriteTimeout, "how long a client may leave a response unread before its connection closes (a <Connector connectionTimeout>)")
		readTimeout  = fs.Duration("read-timeout", def.ReadTimeout, `how long a whole request, body included, may take to arrive; a late body gets 408 (a <Connector connectionUploadTimeout> with disableUploadTimeout="false")`)
		maxHeader    = fs.Int("max-header-bytes", def.MaxHeaderBytes, "request head limit, bytes (maxHttpHeaderSize); larger heads get 431")
	)
	dataDir := fs.String("data-dir", "", "the node's state directory: farm temp and deploy dirs, admin token (default: the user cache dir's wasmfarm/<jvm-route>); a clustered node locks it, one node per directory")
	adminToken := fs.String("admin-token", "", "bearer token of the admin API (default $"+adminTokenEnv+", else generated at first start into the data dir, mode 0600)")
	watchDir := fs.String("watch-dir", "", "farm: deploy .wasm files placed in this directory to every member (FarmWarDeployer's watchDir)")
	configFile := fs.String("config", "", "a Tomcat-style server.xml (Connector, Engine jvmRoute, Host, Cluster, Context path docBase=*.wasm); flags given explicitly override it")
	check := fs.Bool("check", false, "with -config: load and validate the file, print its warnings and the resulting node, and exit")
	fs.Var(&apps, "app", "deploy an app: /path=file.wasm or /path=builtin:counter (repeatable)")
	fs.Var(&localApps, "local-app", "deploy an app that is not distributable: its sessions stay on this member (repeatable)")
	cf := addClusterFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: wasmfarm node [flags]\n\nRuns a wasmfarm node serving WebAssembly apps, alone or as a cluster member (-cluster).\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var level slog.Level
	if *logLevel == "messages" {
		level = interceptors.LevelMessages // Tomcat's org.apache.catalina.tribes.MESSAGES
	} else if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.LevelKey && a.Value.Any() == interceptors.LevelMessages {
			a.Value = slog.StringValue("MESSAGES")
		}
		return a
	}}))

	spec := nodeSpec{httpAddr: *addr, adminAddr: *admin, shutdown: *shutdown, dataDir: *dataDir, adminToken: *adminToken}
	spec.farm = farm.DefaultConfig()
	if *watchDir != "" {
		spec.farm.WatchDir, spec.farm.WatchEnabled = *watchDir, true
	}
	cfg := def
	cfg.JvmRoute = *route
	cfg.CacheDir = *cacheDir
	switch {
	case *cacheMiB < 0:
		cfg.CacheMaxBytes = -1
	case *cacheMiB > 1<<42:
		return fmt.Errorf("-cache-max: %d MiB is too large (use -1 for unbounded)", *cacheMiB)
	default:
		cfg.CacheMaxBytes = *cacheMiB << 20 // 0: the default
	}
	cfg.PoolSize = *poolSize
	cfg.RequestDeadline = *deadline
	cfg.MemoryLimit = uint64(*memMiB) << 20
	cfg.MaxRequestBodyBytes = *maxBody
	cfg.Connector = *connector
	cfg.ReadHeaderTimeout = *headTimeout
	cfg.IdleTimeout = *idleTimeout
	cfg.WriteTimeout = *writeTimeout
	cfg.ReadTimeout = *readTimeout
	cfg.MaxHeaderBytes = *maxHeader
	cfg.Sessions.MaxActiveSessions = *maxSessions
	cfg.Sessions.MaxInactiveInterval = *timeout
	cfg.Sessions.ExpireInterval = *expireEvery
	cfg.Logger = log
	spec.host = cfg
	spec.apps = apps
	for _, a := range localApps {
		a.local = true
		spec.apps = append(spec.apps, a)
	}
	if *configFile == "" {
		if *check {
			return errors.New("-check needs -config FILE")
		}
		if err := cf.apply(&spec, log); err != nil {
			return err
		}
		return serveNode(ctx, spec, log, stdout)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	file, warns, err := serverconfig.Load(*configFile)
	for _, w := range warns {
		fmt.Fprintln(stderr, w.String())
	}
	if err != nil {
		return err
	}
	if *check {
		fmt.Fprintf(stdout, "%s: %d warning(s)\n", *configFile, len(warns))
		return file.Describe(stdout)
	}
	if err := spec.fromFile(file, set, cf, log); err != nil {
		return err
	}
	return serveNode(ctx, spec, log, stdout)
}

// fromFile fills spec from a loaded server.xml; the flags the user gave
// (set) override the file.
func (spec *nodeSpec) fromFile(file *serverconfig.Node, set map[string]bool, cf clusterFlags, log *slog.Logger) error {
	if !set["http"] && file.HTTPAddr != "" {
		spec.httpAddr = file.HTTPAddr
	}
	if !set["jvm-route"] && file.JvmRoute != "" {
		spec.host.JvmRoute = file.JvmRoute
	}
	if !set["read-header-timeout"] && file.ConnectionTimeout > 0 {
		spec.host.ReadHeaderTimeout = file.ConnectionTimeout
	}
	if !set["write-timeout"] && file.ConnectionTimeout > 0 {
		spec.host.WriteTimeout = file.ConnectionTimeout // Tomcat applies connectionTimeout to writes too
	}
	if !set["read-timeout"] && file.ConnectionUploadTimeout > 0 {
		spec.host.ReadTimeout = file.ConnectionUploadTimeout // not connectionTimeout: see serverconfig.Node
	}
	if !set["idle-timeout"] {
		if file.KeepAliveTimeout > 0 {
			spec.host.IdleTimeout = file.KeepAliveTimeout
		} else if file.ConnectionTimeout > 0 {
			spec.host.IdleTimeout = file.ConnectionTimeout // Tomcat's default keepAliveTimeout
		}
	}
	if !set["max-header-bytes"] && file.MaxHeaderBytes > 0 {
		spec.host.MaxHeaderBytes = file.MaxHeaderBytes
	}
	if !set["max-sessions"] && file.MaxActiveSessions > 0 {
		spec.host.Sessions.MaxActiveSessions = file.MaxActiveSessions
	}
	var apps []appSpec
	flagged := map[string]bool{}
	for _, a := range spec.apps {
		flagged[a.path] = true
	}
	for _, c := range file.Contexts {
		if flagged[c.Path] {
			continue // -app overrides the file's context at the same path
		}
		local := !c.Distributable
		if file.Cluster == nil && *cf.enabled {
			// -cluster makes the node a member: its contexts replicate as
			// those of a file with a <Cluster> do, unless they say
			// distributable="false".
			local = c.NotDistributable
		}
		apps = append(apps, appSpec{path: c.Path, source: c.Module, local: local,
			maxActive: c.MaxActiveSessions, timeout: c.SessionTimeout})
	}
	spec.apps = append(apps, spec.apps...)
	if file.Cluster == nil {
		return cf.apply(spec, log) // -cluster may still make it a member
	}
	c := file.Cluster
	spec.cluster = true
	spec.channel = c.Channel
	spec.channel.Logger = log
	spec.manager = c.Manager
	if spec.manager.SendOptions == 0 {
		spec.manager.SendOptions = c.ChannelSendOptions
	}
	spec.replication = c.ReplicationValve
	if spec.replication == nil {
		spec.replication = &cluster.ReplicationValveConfig{}
	}
	if d := c.Deployer; d != nil {
		if d.TempDir != "" {
			spec.farm.TempDir = d.TempDir
		}
		if d.DeployDir != "" {
			spec.farm.DeployDir = d.DeployDir
		}
		if d.WatchDir != "" && !set["watch-dir"] {
			spec.farm.WatchDir, spec.farm.WatchEnabled = d.WatchDir, d.WatchEnabled
			spec.farm.ProcessDeployFrequency = d.WatchInterval()
		}
	}
	spec.binder = c.JvmRouteBinder
	if spec.binder == nil {
		spec.binder = &cluster.JvmRouteBinderConfig{Disabled: true} // configured valves without it
	}
	// Flags override the file's common settings.
	mc := &spec.channel.Mcast
	if set["mcast-address"] {
		mc.Address = *cf.mcastAddr
	}
	if set["mcast-port"] {
		mc.Port = *cf.mcastPort
	}
	if set["mcast-bind"] {
		mc.Bind = *cf.mcastBind
		if isLoopback(mc.Bind) {
			mc.TTL = 0
		}
	}
	if set["mcast-frequency"] {
		mc.Frequency = *cf.mcastFreq
	}
	if set["mcast-droptime"] {
		mc.DropTime = *cf.mcastDrop
	}
	if set["receiver"] {
		h, p, err := parseReceiver(*cf.receiver)
		if err != nil {
			return fmt.Errorf("-receiver: %w", err)
		}
		spec.channel.Receiver.Address, spec.channel.Receiver.Port = h, p
		if p == tribes.AnyPort {
			spec.channel.Receiver.AutoBind = 0
		}
	}
	if set["domain"] {
		spec.channel.Domain = []byte(*cf.domain)
	}
	if set["manager"] {
		k := cluster.Kind(*cf.manager)
		if k != cluster.KindDelta && k != cluster.KindBackup {
			return fmt.Errorf("-manager: want delta or backup, got %q", *cf.manager)
		}
		if k != spec.manager.Kind {
			// The file's send options were its manager's: take those of
			// the manager chosen, as without a file (a DeltaManager's are
			// the cluster's channelSendOptions, a BackupManager's
			// mapSendOptions default to synchronous).
			spec.manager.SendOptions = cluster.DefaultManagerConfig(k).SendOptions
			if k == cluster.KindDelta && c.ChannelSendOptions != 0 {
				spec.manager.SendOptions = c.ChannelSendOptions
			}
		}
		spec.manager.Kind = k
	}
	if set["send-options"] {
		o, err := parseSendOptions(*cf.sendOptions)
		if err != nil {
			return fmt.Errorf("-send-options: %w", err)
		}
		spec.manager.SendOptions = o
	}
	if set["state-transfer-timeout"] {
		spec.manager.StateTransferTimeout = *cf.stateTransferTimeout
	}
	if set["expire-sessions-on-shutdown"] {
		spec.manager.ExpireSessionsOnShutdown = *cf.expireOnShutdown
	}
	if set["replication-filter"] {
		spec.replication.Filter = *cf.filter
	}
	if set["no-jvmroute-binder"] {
		spec.binder.Disabled = *cf.noBinder
	}
	spec.settle = *cf.settle
	if spec.settle <= 0 {
		f := mc.Frequency
		if f <= 0 {
			f = tribes.DefaultMcastConfig().Frequency
		}
		spec.settle = 3 * f
	}
	return nil
}

// node is a running node's parts.
type node struct {
	spec   nodeSpec
	srv    *host.Server
	ch     *tribes.Channel
	member *cluster.Member
	farm   *farm.Deployer
	ready  chan struct{} // closed when the HTTP port opens
	// stopping is set when the graceful shutdown begins: the HTTP port
	// takes no new requests, so the node is no longer ready.
	stopping atomic.Bool
	started  time.Time
	log      *slog.Logger
}

// serveNode starts the channel (if clustered), the admin endpoint, the
// apps (receiving their sessions from the other members), and only then
// the HTTP port; it serves until ctx ends.
func serveNode(ctx context.Context, spec nodeSpec, log *slog.Logger, stdout io.Writer) error {
	n := &node{spec: spec, ready: make(chan struct{}), started: time.Now(), log: log}
	if spec.dataDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		name := spec.host.JvmRoute
		if name == "" {
			name = "node"
		}
		spec.dataDir = filepath.Join(base, "wasmfarm", name)
		n.spec.dataDir = spec.dataDir
	}
	// endStartup reports false once a signal came while the node started.
	endStartup := func() bool { return true }
	if spec.cluster {
		// The farm keeps its modules in the data directory: one node each.
		release, err := lockDataDir(spec.dataDir)
		if err != nil {
			return err
		}
		defer release()
		ics := spec.channel.Interceptors
		if ics == nil {
			ics = tribes.DefaultInterceptors()
		}
		// Count the traffic for the monitoring (messages and bytes per
		// second on the dashboard), unless the stack counts already.
		counted := false
		for _, ic := range ics {
			if _, ok := ic.(*interceptors.Throughput); ok {
				counted = true
			}
		}
		if !counted {
			ics = append([]tribes.Interceptor{interceptors.NewThroughput(interceptors.ThroughputConfig{Interval: math.MaxInt32})}, ics...)
		}
		if log.Enabled(ctx, interceptors.LevelMessages) {
			ics = append([]tribes.Interceptor{interceptors.NewMessageLog(log)}, ics...)
		}
		spec.channel.Interceptors = ics
		ch, err := tribes.New(spec.channel)
		if err != nil {
			return err
		}
		if err := ch.Start(ctx); err != nil {
			return fmt.Errorf("starting the channel: %w", err)
		}
		n.ch = ch
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ch.Stop(sctx)
		}()
		local := ch.LocalMember()
		log.Info("cluster channel started", "member", local, "mcast", fmt.Sprintf("%s:%d", spec.channel.Mcast.Address, spec.channel.Mcast.Port),
			"manager", spec.manager.Kind, "sendOptions", spec.manager.SendOptions)
		var local2 []string
		for _, a := range spec.apps {
			if a.local {
				local2 = append(local2, a.path)
			}
		}
		m, err := cluster.NewMember(cluster.MemberConfig{Host: spec.host,
			Cluster:          cluster.Config{Channel: ch, JvmRoute: spec.host.JvmRoute, Manager: spec.manager, Logger: log},
			ReplicationValve: spec.replication, JvmRouteBinder: spec.binder, Local: local2})
		if err != nil {
			return err
		}
		n.member = m
		n.srv = m.Server
		defer m.Cluster.Close()
		// A signal while the node starts closes the cluster at once: an
		// app's state transfer waiting for a member that does not answer
		// would otherwise hold the stop for StateTransferTimeout.
		endStartup = context.AfterFunc(ctx, func() { m.Cluster.Close() })
		fc := spec.farm
		if fc.TempDir == "" {
			fc.TempDir = filepath.Join(spec.dataDir, "farm-temp")
		}
		if fc.DeployDir == "" {
			fc.DeployDir = filepath.Join(spec.dataDir, "farm-deploy")
		}
		if fc.Name == "" {
			fc.Name = spec.host.JvmRoute
		}
		fc.Logger = log
		d, err := farm.New(fc, ch, farm.ServerHost(m.Server))
		if err != nil {
			m.Server.Shutdown(context.Background())
			return err
		}
		if err := d.Start(ctx); err != nil {
			m.Server.Shutdown(context.Background())
			return err
		}
		n.farm = d
		defer d.Close()
	} else {
		srv, err := host.New(spec.host)
		if err != nil {
			return err
		}
		n.srv = srv
	}
	var adminErr chan error
	if spec.adminAddr != "" {
		tok, err := n.loadAdminToken(stdout)
		if err != nil {
			n.srv.Shutdown(context.Background())
			return err
		}
		n.spec.adminToken = tok
		l, err := net.Listen("tcp", spec.adminAddr)
		if err != nil {
			n.srv.Shutdown(context.Background())
			return fmt.Errorf("admin: %w", err)
		}
		as := &http.Server{Handler: n.adminHandler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		adminErr = make(chan error, 1)
		go func() { adminErr <- as.Serve(l) }()
		defer as.Close()
		fmt.Fprintf(stdout, "admin on http://%s\n", l.Addr())
	}
	// A signal while the node starts stops it as one while it serves
	// does: cleanly, without opening the HTTP port. Nothing failed.
	stoppedEarly := func() error {
		n.srv.Shutdown(context.Background())
		log.Info("stopped while starting: the HTTP port was not opened")
		return nil
	}
	if n.ch != nil {
		// Listen for the other members before asking them for sessions.
		if err := waitSettle(ctx, spec.settle); err != nil {
			return stoppedEarly()
		}
		log.Info("members seen", "count", len(n.ch.Members()))
		// Farmed apps first: the cluster's current modules (by digest; what
		// the deploy dir already holds is not fetched again).
		if err := n.farm.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return stoppedEarly()
			}
			log.Warn("farm catch-up incomplete", "err", err)
		}
	}
	deployed := 0
	for _, a := range spec.apps {
		if ctx.Err() != nil {
			return stoppedEarly()
		}
		mod, name, err := loadModule(a.source)
		if err == nil {
			err = n.srv.DeployApp(ctx, a.path, mod, host.AppConfig{Name: name, MaxActiveSessions: a.maxActive, SessionTimeout: a.timeout})
		}
		if err != nil && ctx.Err() != nil {
			return stoppedEarly()
		}
		if err != nil {
			// Other apps keep serving: log the refusal and go on.
			log.Error("app not deployed", "context", a.path, "module", a.source, "err", err)
			continue
		}
		deployed++
	}
	if len(spec.apps) > 0 && deployed == 0 {
		n.srv.Shutdown(context.Background())
		return errors.New("no app could be deployed")
	}
	// The compiler's garbage (tens of MiB for a Go app) goes back to the
	// OS before serving: an idle member's RSS is then what it holds.
	debug.FreeOSMemory()
	if !endStartup() || ctx.Err() != nil {
		return stoppedEarly()
	}
	l, err := net.Listen("tcp", spec.httpAddr)
	if err != nil {
		n.srv.Shutdown(context.Background())
		return err
	}
	close(n.ready)
	fmt.Fprintf(stdout, "wasmfarm node %q serving %d app(s) on http://%s\n", spec.host.JvmRoute, deployed, l.Addr())
	errc := make(chan error, 1)
	go func() { errc <- n.srv.Serve(l) }()
	// A server failing while the node serves stops it within
	// -shutdown-timeout too: running requests get that long to finish.
	bounded := func() {
		sctx, cancel := context.WithTimeout(context.Background(), spec.shutdown)
		defer cancel()
		n.stopping.Store(true)
		n.srv.Shutdown(sctx)
	}
	select {
	case err := <-errc:
		bounded()
		return err
	case err := <-adminErr:
		bounded()
		return fmt.Errorf("admin: %w", err)
	case <-ctx.Done():
	}
	n.stopping.Store(true)
	log.Info("shutting down", "timeout", spec.shutdown)
	sctx, cancel := context.WithTimeout(context.Background(), spec.shutdown)
	defer cancel()
	if err := n.srv.Shutdown(sctx); err != nil {
		return shutdownError(err, spec.shutdown)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// shutdownError says in the node's terms why its shutdown was not clean:
// the shutdown timeout, which the server reports as its context's error
// (once per part it stopped), passed with requests still running.
func shutdownError(err error, timeout time.Duration) error {
	var rest []error
	timedOut := false
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if errors.Is(e, context.DeadlineExceeded) {
			timedOut = true
			return
		}
		rest = append(rest, e)
	}
	walk(err)
	if timedOut {
		rest = append([]error{fmt.Errorf("requests still running after -shutdown-timeout %s were cut off", timeout)}, rest...)
	}
	return fmt.Errorf("shutdown: %w", errors.Join(rest...))
}

// loadAdminToken returns the admin API's bearer token: -admin-token,
// $WASMFARM_ADMIN_TOKEN, or the one stored in the data dir (generated and
// printed at first start).
func (n *node) loadAdminToken(stdout io.Writer) (string, error) {
	if n.spec.adminToken != "" {
		return n.spec.adminToken, nil
	}
	if t := os.Getenv(adminTokenEnv); t != "" {
		return t, nil
	}
	if err := os.MkdirAll(n.spec.dataDir, 0o700); err != nil {
		return "", err
	}
	file := filepath.Join(n.spec.dataDir, "admin-token")
	tok, created, err := farm.LoadOrCreateToken(file)
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	if created {
		fmt.Fprintf(stdout, "admin token (new, stored in %s): %s\n", file, tok)
	} else {
		fmt.Fprintf(stdout, "admin token in %s\n", file)
	}
	return tok, nil
}

func waitSettle(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
