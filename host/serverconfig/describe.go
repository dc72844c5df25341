package serverconfig

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/wasmfarm/wasmfarm/host/cluster"
	"github.com/wasmfarm/wasmfarm/tribes"
)

// Describe writes a summary of n for people, what `wasmfarm node -config
// FILE -check` prints: the HTTP address, the jvmRoute, the apps with
// their modules and managers, and the cluster (membership, receiver,
// interceptors in order, manager and its send options, valves,
// listeners, deployer). Values the file leaves to flags say so. It
// returns the first write error.
func (n *Node) Describe(w io.Writer) error {
	p := &printer{w: w}
	p.line(0, "node", n.File)
	if n.HTTPAddr != "" {
		s := n.HTTPAddr
		if n.ConnectionTimeout > 0 {
			s += ", connectionTimeout " + n.ConnectionTimeout.String()
		}
		if n.KeepAliveTimeout > 0 {
			s += ", keepAliveTimeout " + n.KeepAliveTimeout.String()
		}
		if n.ConnectionUploadTimeout > 0 {
			s += ", connectionUploadTimeout " + n.ConnectionUploadTimeout.String()
		}
		if n.MaxHeaderBytes > 0 {
			s += ", maxHttpHeaderSize " + strconv.Itoa(n.MaxHeaderBytes)
		}
		p.line(1, "http", s)
	} else {
		p.line(1, "http", "(not in the file: the -http flag)")
	}
	if n.JvmRoute != "" {
		p.line(1, "jvmRoute", n.JvmRoute)
	} else {
		p.line(1, "jvmRoute", "(none: session ids carry no route; the -jvm-route flag)")
	}
	if n.EngineName != "" || n.HostName != "" {
		s := orDash(n.EngineName) + ", host " + orDash(n.HostName)
		if n.AppBase != "" {
			s += ", appBase " + n.AppBase
		}
		p.line(1, "engine", s)
	}
	if len(n.Contexts) == 0 {
		p.line(1, "apps", "(none in the file: the -app flag)")
	} else {
		p.line(1, "apps", strconv.Itoa(len(n.Contexts)))
	}
	for _, c := range n.Contexts {
		var parts []string
		switch {
		case !c.Distributable:
			parts = append(parts, "local sessions")
		case n.Cluster != nil:
			parts = append(parts, "distributable, "+managerName(n.Cluster.Manager.Kind))
		}
		maxActive := c.MaxActiveSessions
		if maxActive == 0 {
			maxActive = n.MaxActiveSessions
		}
		switch {
		case maxActive > 0:
			parts = append(parts, fmt.Sprintf("maxActiveSessions %d", maxActive))
		case maxActive < 0 && n.MaxActiveSessions > 0:
			parts = append(parts, "no session limit")
		}
		switch {
		case c.SessionTimeout < 0:
			parts = append(parts, "sessions never expire")
		case c.SessionTimeout > 0:
			parts = append(parts, "sessionTimeout "+c.SessionTimeout.String())
		}
		p.line(2, c.Path, c.Module+"  "+strings.Join(parts, ", "))
	}
	if n.Cluster == nil {
		p.line(1, "cluster", "(none: the node runs alone)")
		return p.err
	}
	c := n.Cluster
	p.line(1, "cluster", "SimpleTcpCluster, channelSendOptions "+opts(c.ChannelSendOptions))
	describeChannel(p, c)
	m := c.Manager
	class := "DeltaManager"
	if m.Kind == cluster.KindBackup {
		class = "BackupManager"
	}
	if c.ManagerClass == "" {
		class += " (default)"
	}
	ms := []string{"send options " + opts(m.SendOptions)}
	if m.Kind == cluster.KindBackup {
		ms[0] = "mapSendOptions " + opts(m.SendOptions)
		ms = append(ms, "rpcTimeout "+m.FetchTimeout.String())
	} else {
		ms = append(ms, "stateTransferTimeout "+m.StateTransferTimeout.String(),
			fmt.Sprintf("sendAllSessionsSize %d", m.SendAllSessionsSize),
			"sendAllSessionsWaitTime "+m.SendAllSessionsWaitTime.String(),
			fmt.Sprintf("stateTimestampDrop %t", !m.NoStateTimestampDrop))
	}
	ms = append(ms, fmt.Sprintf("expireSessionsOnShutdown %t", m.ExpireSessionsOnShutdown),
		fmt.Sprintf("notifyListenersOnReplication %t", !m.NoNotifyListenersOnReplication),
		fmt.Sprintf("sendClusterDomainOnly %t", !m.NoSendClusterDomainOnly))
	if n.MaxActiveSessions > 0 {
		ms = append(ms, fmt.Sprintf("maxActiveSessions %d", n.MaxActiveSessions))
	}
	p.line(2, "manager", class+": "+strings.Join(ms, ", "))

	var valves []string
	if v := c.ReplicationValve; v != nil {
		s := "ReplicationValve"
		if v.Filter != "" {
			s += ` filter "` + v.Filter + `"`
		} else {
			s += " (no filter)"
		}
		if v.PrimaryIndicator {
			s += ", primaryIndicator " + orDefault(v.PrimaryIndicatorName, "org.apache.catalina.ha.tcp.isPrimarySession")
		}
		valves = append(valves, s)
	}
	if v := c.JvmRouteBinder; v != nil {
		s := "JvmRouteBinderValve"
		if v.Disabled {
			s += " (disabled)"
		} else if v.SessionIDAttribute != cluster.DefaultSessionIDAttribute {
			s += " sessionIdAttribute " + strconv.Quote(v.SessionIDAttribute)
		}
		valves = append(valves, s)
	}
	vs := strings.Join(valves, "; ")
	switch {
	case vs == "":
		vs = "(none)"
	case c.ValvesImplied:
		vs += " (default)"
	}
	p.line(2, "valves", vs)
	var ls []string
	for _, l := range c.Listeners {
		ls = append(ls, simple(l))
	}
	p.line(2, "listeners", orDefault(strings.Join(ls, ", "), "(none)"))
	if d := c.Deployer; d != nil {
		watch := "watch off"
		if d.WatchEnabled {
			watch = "watch every " + d.WatchInterval().String()
		}
		p.line(2, "deployer", fmt.Sprintf("FarmWarDeployer tempDir %s, deployDir %s, watchDir %s (%s)",
			orDash(d.TempDir), orDash(d.DeployDir), orDash(d.WatchDir), watch))
	} else {
		p.line(2, "deployer", "(none)")
	}
	return p.err
}

func describeChannel(p *printer, c *Cluster) {
	cfg := c.Channel
	switch m := cfg.Membership.(type) {
	case nil:
		mc := cfg.Mcast
		s := fmt.Sprintf("multicast %s:%d", mc.Address, mc.Port)
		if mc.Bind != "" {
			s += ", bind " + mc.Bind
		}
		if mc.TTL >= 0 {
			s += fmt.Sprintf(", ttl %d", mc.TTL)
		}
		s += fmt.Sprintf(", frequency %v, dropTime %v", mc.Frequency, mc.DropTime)
		p.line(2, "membership", s)
	case *tribes.StaticMembership:
		p.line(2, "membership", "static (members checked with a TCP connect)")
	case *tribes.DNSMembership:
		p.line(2, "membership", "DNS")
	default:
		p.line(2, "membership", strings.TrimPrefix(fmt.Sprintf("%T", m), "*"))
	}
	if len(c.StaticMembers) > 0 {
		p.line(2, "members", strings.Join(c.StaticMembers, ", "))
	}
	r := cfg.Receiver
	if cfg.Transport != nil {
		p.line(2, "receiver", strings.TrimPrefix(fmt.Sprintf("%T transport", cfg.Transport), "*"))
	} else {
		s := fmt.Sprintf("%s:%d", r.Address, r.Port)
		if r.Port == tribes.AnyPort {
			s = r.Address + ":(any free port)"
		}
		var extra []string
		if r.AutoBind > 0 {
			extra = append(extra, fmt.Sprintf("autoBind %d", r.AutoBind))
		}
		if r.MaxThreads > 0 {
			extra = append(extra, fmt.Sprintf("maxThreads %d", r.MaxThreads))
		}
		if len(extra) > 0 {
			s += " (" + strings.Join(extra, ", ") + ")"
		}
		p.line(2, "receiver", s)
	}
	if c.Interceptors == nil {
		p.line(2, "interceptors", "(default) MessageDispatchInterceptor, TcpFailureDetector")
	} else {
		p.line(2, "interceptors", orDefault(strings.Join(c.Interceptors, ", "), "(none)"))
	}
}

// printer writes "key  value" lines, indented, keeping the first error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) line(indent int, key, value string) {
	if p.err != nil {
		return
	}
	pad := strings.Repeat("  ", indent)
	width := 16 - len(pad)
	_, p.err = fmt.Fprintf(p.w, "%s%-*s %s\n", pad, width, key, value)
}

func opts(o tribes.Options) string { return fmt.Sprintf("%s (%d)", o, uint32(o)) }

func managerName(k cluster.Kind) string {
	if k == cluster.KindBackup {
		return "BackupManager"
	}
	return "DeltaManager"
}

func simple(class string) string { return class[strings.LastIndexByte(class, '.')+1:] }

func orDash(s string) string { return orDefault(s, "-") }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
