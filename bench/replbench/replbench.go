package replbench

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/wasmfarm/wasmfarm/bench/httpbench"
	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/host/cluster"
	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// Target is one configuration driven by the throughput benchmark.
type Target struct {
	Name    string
	Members int // 1: no cluster
	Kind    cluster.Kind
	Options tribes.Options
}

// DefaultTargets are the configurations of the Tomcat figures.
func DefaultTargets() []Target {
	return []Target{
		{Name: "plain", Members: 1},
		{Name: "delta-async-2", Members: 2, Kind: cluster.KindDelta, Options: cluster.AsyncOptions},
		{Name: "delta-sync-2", Members: 2, Kind: cluster.KindDelta, Options: cluster.SyncOptions},
		{Name: "backup-2", Members: 2, Kind: cluster.KindBackup, Options: cluster.SyncOptions},
		{Name: "delta-async-3", Members: 3, Kind: cluster.KindDelta, Options: cluster.AsyncOptions},
		{Name: "delta-sync-3", Members: 3, Kind: cluster.KindDelta, Options: cluster.SyncOptions},
	}
}

// Config configures [Run].
type Config struct {
	Load     httpbench.Config // connections, duration per target, warmup, rounds, load tool
	Targets  []Target
	CacheDir string
	Logger   *slog.Logger
}

// Result is one target's figures.
type Result struct {
	Target
	httpbench.Result
	Ratio float64 `json:"ratio"` // req/s ÷ plain's req/s
	// RoundRatios is each round's req/s ÷ plain's req/s in the same round.
	// The targets alternate, so the two ran seconds apart; the spread of
	// these shows how much the machine's own noise moves Ratio.
	RoundRatios []float64 `json:"roundRatios"`
	// ReplicatedPerRequest is the cluster messages the other members
	// received per request driven (warmups included): about 1 with one
	// other member, 2 with two; 0 for plain. A replicated target that
	// shows none is an error, not a figure.
	ReplicatedPerRequest float64 `json:"replicatedPerRequest"`
	// FramesPerWrite is how many frames member 0's sender wrote per system
	// call on its batching paths, the asynchronous queue and the pipelined
	// acknowledged connection (tribes.SenderStats: AsyncFrames+AckFrames ÷
	// AsyncBatches+AckBatches); 0 when it sent nothing on them.
	FramesPerWrite float64 `json:"framesPerWrite"`
}

// group is one target's running members.
type group struct {
	servers []*host.Server
	chans   []*tribes.Channel
	members []*cluster.Member
	addr    string // member 0's HTTP address
}

func (g *group) close() {
	for _, m := range g.members {
		m.Cluster.Close()
	}
	for _, s := range g.servers {
		s.Shutdown(context.Background())
	}
	for _, c := range g.chans {
		c.Stop(context.Background())
	}
}

func cacheDir(d string) string {
	if d == "" {
		return filepath.Join(os.TempDir(), "wasmfarm-bench-cache")
	}
	return d
}

// localChannel starts a channel on loopback in its own multicast group.
func localChannel(ctx context.Context, port int, domain string, log *slog.Logger) (*tribes.Channel, error) {
	cfg := tribes.LocalConfig()
	cfg.Mcast.Port = port
	cfg.Domain = []byte(domain)
	cfg.Logger = log
	ch, err := tribes.New(cfg)
	if err != nil {
		return nil, err
	}
	return ch, ch.Start(ctx)
}

// start runs the members of t, each with the counter app.
func start(ctx context.Context, t Target, cfg Config, poolSize int) (*group, error) {
	g := &group{}
	port := 47000 + rand.IntN(2000)
	domain := fmt.Sprintf("replbench-%d-%d", os.Getpid(), port)
	for i := range t.Members {
		hc := host.DefaultConfig()
		hc.JvmRoute = "jvm_" + strconv.Itoa(i)
		hc.CacheDir = cacheDir(cfg.CacheDir)
		hc.PoolSize = poolSize
		hc.Logger = cfg.Logger
		if cfg.Load.Connector != "" {
			hc.Connector = cfg.Load.Connector
		}
		var srv *host.Server
		if t.Members == 1 {
			s, err := host.New(hc)
			if err != nil {
				g.close()
				return nil, err
			}
			srv = s
		} else {
			ch, err := localChannel(ctx, port, domain, cfg.Logger)
			if err != nil {
				g.close()
				return nil, err
			}
			g.chans = append(g.chans, ch)
			if i > 0 {
				actx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := ch.AwaitMembers(actx, i)
				cancel()
				if err != nil {
					g.close()
					return nil, fmt.Errorf("replbench: members did not see each other: %w", err)
				}
			}
			mc := cluster.DefaultManagerConfig(t.Kind)
			mc.SendOptions = t.Options
			m, err := cluster.NewMember(cluster.MemberConfig{Host: hc, Cluster: cluster.Config{Channel: ch, Manager: mc, Logger: cfg.Logger}})
			if err != nil {
				g.close()
				return nil, err
			}
			g.members = append(g.members, m)
			srv = m.Server
		}
		g.servers = append(g.servers, srv)
		if err := srv.Deploy(ctx, "/counter", wasmapps.Counter()); err != nil {
			g.close()
			return nil, err
		}
		c, _ := srv.Engine().Context("/counter")
		if err := c.Warm(ctx, poolSize); err != nil {
			g.close()
			return nil, err
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.close()
		return nil, err
	}
	go g.servers[0].Serve(l)
	g.addr = l.Addr().String()
	// Every member must know the others run the app before the load.
	deadline := time.Now().Add(10 * time.Second)
	for _, m := range g.members {
		for len(m.Cluster.Peers()) < t.Members-1 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return g, nil
}

// Run drives member 0 of every target in alternating rounds and returns
// the figures, plain first.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Targets) == 0 {
		cfg.Targets = DefaultTargets()
	}
	pool := 2 * runtime.GOMAXPROCS(0)
	groups := make([]*group, len(cfg.Targets))
	defer func() {
		for _, g := range groups {
			if g != nil {
				g.close()
			}
		}
	}()
	for i, t := range cfg.Targets {
		g, err := start(ctx, t, cfg, pool)
		if err != nil {
			return nil, fmt.Errorf("replbench: %s: %w", t.Name, err)
		}
		groups[i] = g
	}
	if cfg.Load.Connections <= 0 {
		cfg.Load.Connections = httpbench.DefaultConfig().Connections
	}
	rounds := max(cfg.Load.Rounds, 1)
	slice := cfg.Load
	slice.Duration = cfg.Load.Duration / time.Duration(rounds)
	per := make([][]httpbench.Result, len(cfg.Targets))
	for round := range rounds {
		for i, t := range cfg.Targets {
			url := "http://" + groups[i].addr + "/counter/json"
			cfg.Logger.Info("driving", "target", t.Name, "round", round)
			stopProfile, err := httpbench.StartProfile(cfg.Load.CPUProfile, t.Name, round)
			if err != nil {
				return nil, err
			}
			r, err := httpbench.Drive(ctx, slice, url)
			stopProfile()
			if err != nil {
				return nil, fmt.Errorf("replbench: %s: %w", t.Name, err)
			}
			per[i] = append(per[i], r)
		}
	}
	out := make([]Result, len(cfg.Targets))
	for i, t := range cfg.Targets {
		out[i] = Result{Target: t, Result: httpbench.Combine(per[i])}
		out[i].Result.Target = t.Name
		var received int64
		for _, m := range groups[i].members[min(1, len(groups[i].members)):] {
			received += m.Cluster.Stats().Received
		}
		if n := out[i].AllRequests; n > 0 {
			out[i].ReplicatedPerRequest = float64(received) / float64(n)
		}
		if len(groups[i].chans) > 0 {
			if nt, ok := groups[i].chans[0].Transport().(*tribes.NioTransport); ok {
				if st := nt.Sender().Stats(); st.AsyncBatches+st.AckBatches > 0 {
					out[i].FramesPerWrite = float64(st.AsyncFrames+st.AckFrames) / float64(st.AsyncBatches+st.AckBatches)
				}
			}
		}
		if c, ok := groups[i].servers[0].Engine().Context("/counter"); ok {
			out[i].Sessions = c.Manager().Len()
		}
		if err := httpbench.CheckSessions(out[i].Result, rounds, cfg.Load.Connections); err != nil {
			return nil, fmt.Errorf("replbench: %w", err)
		}
		if len(groups[i].members) > 1 && out[i].ReplicatedPerRequest < 0.5 {
			return nil, fmt.Errorf("replbench: %s: the other members received %d messages for %d requests: replication is not happening", t.Name, received, out[i].AllRequests)
		}
	}
	for i := range out {
		if out[0].ReqPerSec > 0 {
			out[i].Ratio = out[i].ReqPerSec / out[0].ReqPerSec
		}
		for r := range per[i] {
			if p := per[0][r].ReqPerSec; p > 0 {
				out[i].RoundRatios = append(out[i].RoundRatios, per[i][r].ReqPerSec/p)
			}
		}
	}
	return out, nil
}

// TransferReport is the result of [MeasureTransfer].
type TransferReport struct {
	Sessions        int     `json:"sessions"`
	AttributeBytes  int     `json:"attributeBytesPerSession"`
	TransferMs      float64 `json:"transferMs"`       // the joiner's state transfer (ask, receive, apply)
	DeployMs        float64 `json:"deployMs"`         // the joiner's whole deploy of the app, transfer included
	BaselineMs      float64 `json:"baselineDeployMs"` // the same deploy with no sessions to receive
	HeapPerSession  float64 `json:"heapPerSessionBytes"`
	OverheadPerSess float64 `json:"overheadPerSessionBytes"` // heap per session minus its attribute bytes
	Complete        bool    `json:"complete"`
}

// MeasureTransfer fills a member with n sessions (a counter and a
// valueBytes attribute each), starts a second member and measures its
// state transfer and the heap the received sessions take.
func MeasureTransfer(ctx context.Context, n, valueBytes int, cacheDir0 string, log *slog.Logger) (*TransferReport, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	port := 47000 + rand.IntN(2000)
	domain := fmt.Sprintf("replbench-xfer-%d-%d", os.Getpid(), port)
	mk := func(route string) (*tribes.Channel, *cluster.Member, error) {
		ch, err := localChannel(ctx, port, domain, log)
		if err != nil {
			return nil, nil, err
		}
		hc := host.DefaultConfig()
		hc.JvmRoute = route
		hc.CacheDir = cacheDir(cacheDir0)
		hc.PoolSize = 1
		hc.Logger = log
		mc := cluster.DefaultManagerConfig(cluster.KindDelta)
		m, err := cluster.NewMember(cluster.MemberConfig{Host: hc, Cluster: cluster.Config{Channel: ch, Manager: mc, Logger: log}})
		if err != nil {
			ch.Stop(ctx)
			return nil, nil, err
		}
		return ch, m, nil
	}
	// A member leaves as group.close does: cluster, server, channel.
	leave := func(ch *tribes.Channel, m *cluster.Member) {
		m.Cluster.Close()
		m.Server.Shutdown(ctx)
		ch.Stop(ctx)
	}
	chA, a, err := mk("jvm_a")
	if err != nil {
		return nil, err
	}
	defer leave(chA, a)
	mod := wasmapps.Counter()
	for _, p := range []string{"/counter", "/empty"} {
		if err := a.Server.Deploy(ctx, p, mod); err != nil {
			return nil, err
		}
	}
	c, _ := a.Server.Engine().Context("/counter")
	value := make([]byte, valueBytes)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	m := c.Manager()
	now := time.Now().UnixMilli()
	for i := range n {
		id, err := m.NewID()
		if err != nil {
			return nil, err
		}
		d := session.Delta{ID: id, Created: true, CreationTime: now, Accessed: now,
			Ops: []session.Op{{Kind: session.OpSet, Key: "counter", Value: []byte(strconv.Itoa(i))}, {Kind: session.OpSet, Key: "data", Value: value}}}
		if err := m.Commit(&d); err != nil {
			return nil, err
		}
	}
	attrBytes := 0
	m.Range(func(s *session.Session) bool { attrBytes = s.Size(); return false })

	chB, b, err := mk("jvm_b")
	if err != nil {
		return nil, err
	}
	defer leave(chB, b)
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := chB.AwaitMembers(actx, 1); err != nil {
		return nil, err
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	h0 := heap()
	t0 := time.Now()
	if err := b.Server.Deploy(ctx, "/empty", mod); err != nil {
		return nil, err
	}
	base := time.Since(t0)
	h1 := heap()
	t1 := time.Now()
	if err := b.Server.Deploy(ctx, "/counter", mod); err != nil {
		return nil, err
	}
	dep := time.Since(t1)
	h2 := heap()
	st := b.Cluster.Managers()["/counter"]
	if st.StateTransferred != n {
		return nil, fmt.Errorf("replbench: the joiner received %d of %d sessions", st.StateTransferred, n)
	}
	per := (float64(h2-h1) - float64(h1-h0)) / float64(n)
	return &TransferReport{Sessions: n, AttributeBytes: attrBytes, TransferMs: float64(st.StateTransfer.Microseconds()) / 1000,
		DeployMs: float64(dep.Microseconds()) / 1000, BaselineMs: float64(base.Microseconds()) / 1000,
		HeapPerSession: per, OverheadPerSess: per - float64(attrBytes), Complete: st.StateComplete}, nil
}
