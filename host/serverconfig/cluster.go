package serverconfig

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"regexp/syntax"
	"strings"
	"time"

	"github.com/wasmfarm/wasmfarm/host/cluster"
	"github.com/wasmfarm/wasmfarm/internal/serverxml"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/tribesconfig"
)

// Element kinds of the <Cluster> subtree, as in a [serverxml.Registry].
const (
	KindCluster         = "Cluster"
	KindManager         = "Manager"
	KindValve           = "Valve"
	KindClusterListener = "ClusterListener"
	KindDeployer        = "Deployer"
)

// Tomcat class names read in a <Cluster>. Short names ("DeltaManager") and
// Tomcat 5.5's org.apache.catalina.cluster.* names are accepted too, the
// latter with a warning.
const (
	SimpleTcpCluster                = "org.apache.catalina.ha.tcp.SimpleTcpCluster"
	DeltaManager                    = "org.apache.catalina.ha.session.DeltaManager"
	BackupManager                   = "org.apache.catalina.ha.session.BackupManager"
	ReplicationValve                = "org.apache.catalina.ha.tcp.ReplicationValve"
	JvmRouteBinderValve             = "org.apache.catalina.ha.session.JvmRouteBinderValve"
	ClusterSessionListener          = "org.apache.catalina.ha.session.ClusterSessionListener"
	JvmRouteSessionIDBinderListener = "org.apache.catalina.ha.session.JvmRouteSessionIDBinderListener"
	FarmWarDeployer                 = "org.apache.catalina.ha.deploy.FarmWarDeployer"
)

// factory reads the element of one class into c.
type factory func(ld *loader, b *serverxml.Binder, c *Cluster) error

func registry() *serverxml.Registry[factory] {
	r := &serverxml.Registry[factory]{}
	r.Register(KindCluster, SimpleTcpCluster, func(*loader, *serverxml.Binder, *Cluster) error { return nil })
	r.Register(KindManager, DeltaManager, manager(cluster.KindDelta))
	r.Register(KindManager, BackupManager, manager(cluster.KindBackup))
	r.Register(KindValve, ReplicationValve, replicationValve)
	r.Register(KindValve, JvmRouteBinderValve, jvmRouteBinderValve)
	r.Register(KindClusterListener, ClusterSessionListener, func(*loader, *serverxml.Binder, *Cluster) error { return nil })
	r.Register(KindClusterListener, JvmRouteSessionIDBinderListener, func(_ *loader, b *serverxml.Binder, _ *Cluster) error {
		b.Note("className", "Tomcat 6 and 7 only; what it did (moving a session to its new id after a failover) is built into wasmfarm's JvmRouteBinderValve, so it is not needed")
		return nil
	})
	r.Register(KindDeployer, FarmWarDeployer, farmWarDeployer)
	return r
}

// cluster reads a <Cluster> element: its channel (through tribesconfig),
// its own attributes and its other children.
func (ld *loader) cluster(el *serverxml.Element) *Cluster {
	ld.clusterEl = el
	c := &Cluster{ChannelSendOptions: tribes.OptAsynchronous}
	cfg, tws, err := ld.tribes.FromCluster(el)
	ld.ws = append(ld.ws, tws...)
	ld.addErr(err)
	c.Channel = cfg
	if err == nil {
		c.Interceptors, c.StaticMembers = ld.channelSummary(el, cfg)
	}

	reg := registry()
	b := el.Bind()
	// apply resolves el's class under kind and runs its factory.
	apply := func(el *serverxml.Element, kind, def string) (string, bool) {
		eb := el.Bind()
		f, class, err := reg.Bind(eb, kind, def)
		if err == nil {
			err = f(ld, eb, c)
		}
		ld.done(eb)
		ld.addErr(err)
		return class, err == nil
	}
	if f, _, err := reg.Bind(b, KindCluster, SimpleTcpCluster); err != nil {
		ld.addErr(err)
	} else {
		ld.addErr(f(ld, b, c))
	}
	b.Func("channelSendOptions", func(v string) error {
		o, err := tribes.ParseOptions(v)
		if err != nil {
			return errors.New("is not a number or a list of send options (such as 8, 6, \"asynchronous\" or \"use_ack,synchronized_ack\")")
		}
		c.ChannelSendOptions = o
		return nil
	})
	b.Ignore("the channel starts whole", "channelStartOptions")
	b.Ignore(noteNoTomcat, "heartbeatBackgroundEnabled", "notifyLifecycleListenerOnFailure", "clusterName", "doClusterLog", "clusterLogName")
	// The channel's elements are tribesconfig's: FromCluster (above)
	// reads them, or reports those it does not read (written next to the
	// <Channel>), so they get no "unknown element" warning here.
	b.SkipChildren("Channel", tribesconfig.KindMembership, tribesconfig.KindReceiver, tribesconfig.KindSender, tribesconfig.KindInterceptor,
		tribesconfig.KindTransport, tribesconfig.KindMember, "LocalMember")

	c.Manager = cluster.DefaultManagerConfig(cluster.KindDelta)
	c.Manager.SendOptions = c.ChannelSendOptions
	if m := b.Child(KindManager); m != nil {
		if class, ok := apply(m, KindManager, ""); ok {
			c.ManagerClass = class
		}
	}

	valves := b.Children(KindValve)
	var repl *serverxml.Element
	for _, v := range valves {
		class, ok := apply(v, KindValve, "")
		if !ok {
			continue
		}
		switch class {
		case ReplicationValve:
			if repl != nil {
				ld.ws = append(ld.ws, serverxml.WarningAt(v, "", serverxml.LevelWarning,
					"a second ReplicationValve replaces the one on line %d (a cluster runs one)", repl.Line))
			}
			repl = v
		case JvmRouteBinderValve:
			if ld.binderValve != nil {
				ld.ws = append(ld.ws, serverxml.WarningAt(v, "", serverxml.LevelWarning,
					"a second JvmRouteBinderValve replaces the one on line %d (a cluster runs one)", ld.binderValve.Line))
			}
			ld.binderValve = v
		}
	}
	if len(valves) == 0 {
		c.ValvesImplied = true
		c.ReplicationValve = &cluster.ReplicationValveConfig{}
		c.JvmRouteBinder = &cluster.JvmRouteBinderConfig{SessionIDAttribute: cluster.DefaultSessionIDAttribute}
		b.Note("", "no <Valve>: ReplicationValve and JvmRouteBinderValve added with their defaults, as SimpleTcpCluster does")
	}

	for _, l := range b.Children(KindClusterListener) {
		if class, ok := apply(l, KindClusterListener, ""); ok {
			c.Listeners = append(c.Listeners, class)
		}
	}
	if c.Listeners == nil && len(b.Element().Find(KindClusterListener)) == 0 {
		c.Listeners = []string{ClusterSessionListener}
	}

	if d := b.Child(KindDeployer); d != nil {
		apply(d, KindDeployer, "")
	}
	ld.done(b)
	return c
}

// channelSummary lists, for display, the simple class names of the
// channel's interceptors (nil for the default stack) and the host:port of
// its static members, as written.
func (ld *loader) channelSummary(el *serverxml.Element, cfg tribes.Config) (ics, members []string) {
	scope := el
	if chs := el.Find("Channel"); len(chs) > 0 {
		scope = chs[len(chs)-1]
	}
	reg := ld.tribes.Registry
	if reg == nil {
		reg = tribesconfig.DefaultRegistry()
	}
	if cfg.Interceptors != nil {
		ics = []string{}
		for _, ic := range scope.Find(tribesconfig.KindInterceptor) {
			class, _ := ic.Attr("className")
			if _, canonical, _, ok := reg.Resolve(tribesconfig.KindInterceptor, class); ok {
				class = canonical
			}
			ics = append(ics, class[strings.LastIndexByte(class, '.')+1:])
		}
		if len(ics) != len(cfg.Interceptors) {
			// A factory added more or fewer than one: show the types.
			ics = ics[:0]
			for _, ic := range cfg.Interceptors {
				ics = append(ics, strings.TrimPrefix(fmt.Sprintf("%T", ic), "*"))
			}
		}
	}
	for _, m := range scope.FindAll("Member") {
		h, _ := m.Attr("host")
		p, _ := m.Attr("port")
		members = append(members, net.JoinHostPort(h, p))
	}
	return ics, members
}

// manager returns the factory of a DeltaManager or BackupManager.
func manager(kind cluster.Kind) factory {
	return func(ld *loader, b *serverxml.Binder, c *Cluster) error {
		m := cluster.DefaultManagerConfig(kind)
		sendOptions := func(name string, dst *tribes.Options) {
			b.Func(name, func(v string) error {
				o, err := tribes.ParseOptions(v)
				if err != nil {
					return errors.New("is not a number or a list of send options")
				}
				*dst = o
				return nil
			})
		}
		if kind == cluster.KindDelta {
			// DeltaManager sends with the cluster's channelSendOptions,
			// unless it has its own.
			m.SendOptions = c.ChannelSendOptions
			sendOptions("channelSendOptions", &m.SendOptions)
			var secs int
			if b.Int("stateTransferTimeout", &secs) {
				if secs > 0 {
					m.StateTransferTimeout = time.Duration(min(secs, 1<<31)) * time.Second
				} else {
					b.Warn("stateTransferTimeout", "%d waits forever in Tomcat; a wasmfarm node does not open its port unbounded: %v used", secs, m.StateTransferTimeout)
				}
			}
			var all = true
			if b.Bool("sendAllSessions", &all) && !all {
				b.Note("sendAllSessions", `"false" ignored: sessions always go in acknowledged blocks of sendAllSessionsSize`)
			}
			if b.Int("sendAllSessionsSize", &m.SendAllSessionsSize) && m.SendAllSessionsSize < 1 {
				b.Fail("sendAllSessionsSize", nil, "sendAllSessionsSize must be at least 1")
			}
			var wait time.Duration
			if b.Duration("sendAllSessionsWaitTime", time.Millisecond, &wait) {
				if wait <= 0 {
					b.Fail("sendAllSessionsWaitTime", nil, "sendAllSessionsWaitTime must be positive")
				} else {
					m.SendAllSessionsWaitTime = wait
				}
			}
			drop := true
			if b.Bool("stateTimestampDrop", &drop) {
				m.NoStateTimestampDrop = !drop
			}
			b.Ignore(noteNoTomcat, "notifyContainerListenersOnReplication", "stateTransferCreateSendTime")
		} else {
			sendOptions("mapSendOptions", &m.SendOptions)
			var rpc time.Duration
			if b.Duration("rpcTimeout", time.Millisecond, &rpc) {
				if rpc <= 0 {
					b.Fail("rpcTimeout", nil, "rpcTimeout must be positive")
				} else {
					m.FetchTimeout = rpc
				}
			}
			b.Ignore(noteNoTomcat, "terminateOnStartFailure", "accessTimeout")
		}
		b.Bool("expireSessionsOnShutdown", &m.ExpireSessionsOnShutdown)
		notify := true
		if b.Bool("notifyListenersOnReplication", &notify) {
			m.NoNotifyListenersOnReplication = !notify
		}
		if b.Bool("notifySessionListenersOnReplication", &notify) {
			m.NoNotifyListenersOnReplication = !notify
		}
		domainOnly := true
		if b.Bool("sendClusterDomainOnly", &domainOnly) {
			m.NoSendClusterDomainOnly = !domainOnly
		}
		var maxActive int
		if b.Int("maxActiveSessions", &maxActive) {
			// Tomcat's -1 (and 0 here) mean no limit.
			ld.node.MaxActiveSessions = max(maxActive, 0)
		}
		b.Ignore("the cluster names each app's manager after its context path", "name")
		b.Ignore("statistics are always kept (see the node's /status)", "enableStatistics", "recordAllActions")
		b.Ignore("attributes are opaque bytes: nothing is deserialised", "sessionAttributeNameFilter",
			"sessionAttributeValueClassNameFilter", "warnOnSessionAttributeFilterFailure")
		b.Ignore(noteNoTomcat, "processExpiresFrequency", "secureRandomClass", "secureRandomAlgorithm", "secureRandomProvider", "persistAuthentication")
		c.Manager = m
		return nil
	}
}

// replicationValve reads a ReplicationValve.
func replicationValve(_ *loader, b *serverxml.Binder, c *Cluster) error {
	v := &cluster.ReplicationValveConfig{}
	b.Func("filter", func(s string) error {
		if err := checkFilter(s); err != nil {
			return err
		}
		v.Filter = s
		return nil
	})
	b.Bool("primaryIndicator", &v.PrimaryIndicator)
	b.String("primaryIndicatorName", &v.PrimaryIndicatorName)
	b.Bool("statistics", &v.Statistics)
	b.Ignore(noteNoTomcat, "asyncSupported", "doProcessingStats")
	c.ReplicationValve = v
	return nil
}

// checkFilter checks a ReplicationValve filter as cluster.ParseFilter
// compiles it: a regular expression, or Tomcat 5 and 6's list of them
// separated by ';', matched against the whole path.
func checkFilter(filter string) error {
	var parts []string
	for p := range strings.SplitSeq(strings.TrimSpace(filter), ";") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, "(?:"+p+")")
		}
	}
	if len(parts) == 0 {
		return nil
	}
	if _, err := regexp.Compile("^(?:" + strings.Join(parts, "|") + ")$"); err != nil {
		var re *syntax.Error
		if errors.As(err, &re) {
			return fmt.Errorf("is not a regular expression: %s", re.Code)
		}
		return errors.New("is not a regular expression")
	}
	return nil
}

// jvmRouteBinderValve reads a JvmRouteBinderValve.
func jvmRouteBinderValve(_ *loader, b *serverxml.Binder, c *Cluster) error {
	v := &cluster.JvmRouteBinderConfig{SessionIDAttribute: cluster.DefaultSessionIDAttribute}
	enabled := true
	if b.Bool("enabled", &enabled) {
		v.Disabled = !enabled
	}
	b.String("sessionIdAttribute", &v.SessionIDAttribute)
	b.Ignore(noteNoTomcat, "asyncSupported")
	c.JvmRouteBinder = v
	return nil
}

// farmWarDeployer reads a FarmWarDeployer.
func farmWarDeployer(ld *loader, b *serverxml.Binder, c *Cluster) error {
	d := &DeployerConfig{ProcessDeployFrequency: DefaultProcessDeployFrequency}
	for _, dir := range []struct {
		name string
		dst  *string
	}{{"tempDir", &d.TempDir}, {"deployDir", &d.DeployDir}, {"watchDir", &d.WatchDir}} {
		if b.String(dir.name, dir.dst) && *dir.dst != "" {
			*dir.dst = ld.resolve(*dir.dst)
		}
	}
	b.Bool("watchEnabled", &d.WatchEnabled)
	if b.Int("processDeployFrequency", &d.ProcessDeployFrequency) && d.ProcessDeployFrequency < 1 {
		b.Fail("processDeployFrequency", nil, "processDeployFrequency must be at least 1")
	}
	if d.WatchEnabled && d.WatchDir == "" {
		b.Fail("watchDir", ErrMissing, "watchEnabled=\"true\" needs a watchDir")
	}
	b.Ignore("modules are sent in acknowledged chunks, each checked", "maxValidTime")
	c.Deployer = d
	return nil
}
