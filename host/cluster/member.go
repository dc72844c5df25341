package cluster

import (
	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/host/session"
)

// MemberConfig assembles a clustered host: the host's configuration, the
// cluster's, and the valves SimpleTcpCluster adds.
type MemberConfig struct {
	Host    host.Config
	Cluster Config
	// ReplicationValve and JvmRouteBinder configure the two valves; nil
	// means their defaults (both are always installed, as Tomcat's
	// SimpleTcpCluster does when no valve is configured; disable the
	// binder with JvmRouteBinder.Disabled).
	ReplicationValve *ReplicationValveConfig
	JvmRouteBinder   *JvmRouteBinderConfig
	// Local lists the context paths of apps that are not distributable:
	// they keep their sessions on this member (a StandardManager).
	Local []string
}

// Member is a clustered host: the server, its cluster and its valves.
type Member struct {
	Server      *host.Server
	Cluster     *Cluster
	Replication *ReplicationValve
	Binder      *JvmRouteBinderValve
}

// NewMember builds a clustered host on cfg.Cluster.Channel, which must be
// started before apps are deployed (each distributable app's manager
// receives the others' sessions as it is created). The JvmRoute of the
// cluster defaults to the host's.
func NewMember(cfg MemberConfig) (*Member, error) {
	if cfg.Cluster.JvmRoute == "" {
		cfg.Cluster.JvmRoute = cfg.Host.JvmRoute
	}
	if cfg.Cluster.Logger == nil {
		cfg.Cluster.Logger = cfg.Host.Logger
	}
	c, err := New(cfg.Cluster)
	if err != nil {
		return nil, err
	}
	rv := ReplicationValveConfig{}
	if cfg.ReplicationValve != nil {
		rv = *cfg.ReplicationValve
	}
	repl, err := NewReplicationValve(rv, cfg.Cluster.Logger)
	if err != nil {
		c.Close()
		return nil, err
	}
	bc := JvmRouteBinderConfig{}
	if cfg.JvmRouteBinder != nil {
		bc = *cfg.JvmRouteBinder
	}
	binder := NewJvmRouteBinderValve(bc, cfg.Cluster.JvmRoute, cfg.Cluster.Logger)
	local := map[string]bool{}
	for _, p := range cfg.Local {
		local[p] = true
	}
	hc := cfg.Host
	hc.Valves = append([]host.Valve{binder, repl}, hc.Valves...)
	hc.NewManager = func(path string, scfg session.Config) (session.Manager, error) {
		if local[path] {
			return session.NewStandardManager(scfg)
		}
		return c.NewManager(path, scfg)
	}
	srv, err := host.New(hc)
	if err != nil {
		c.Close()
		return nil, err
	}
	return &Member{Server: srv, Cluster: c, Replication: repl, Binder: binder}, nil
}
