package serverconfig

import (
	"time"

	"github.com/wasmfarm/wasmfarm/host/cluster"
	"github.com/wasmfarm/wasmfarm/tribes"
)

// DefaultAddress is the address an HTTP <Connector> without an address
// attribute listens on. Tomcat listens on every address then; wasmfarm
// stays on the loopback interface, with a warning, so that a pasted
// configuration exposes nothing by surprise: write address="0.0.0.0" to
// listen on all of them.
const DefaultAddress = "127.0.0.1"

// Node is one wasmfarm node as a server.xml describes it. Fields the file
// does not set keep their zero value, which the node command fills from
// its flags (and flags given explicitly override the file).
type Node struct {
	// File is the name the configuration was read under (as given to
	// Parse, or the base name of Load's path), and Dir the directory
	// relative paths in it are resolved against: the config file's
	// directory.
	File string
	Dir  string

	// HTTPAddr is "host:port" of the HTTP <Connector> (address, default
	// [DefaultAddress], and port; port 0 means any free port). It is ""
	// when the file has no HTTP connector, e.g. a bare <Cluster>.
	HTTPAddr string
	// ConnectionTimeout, KeepAliveTimeout and MaxHeaderBytes are the HTTP
	// connector's connectionTimeout (host.Config.ReadHeaderTimeout: how
	// long a request's head may take, and WriteTimeout: how long a client
	// may leave a response unread), keepAliveTimeout (IdleTimeout; in
	// Tomcat it defaults to connectionTimeout) and maxHttpHeaderSize
	// (MaxHeaderBytes). Zero when the file does not set them: the node's
	// flags (and defaults) then apply.
	ConnectionTimeout time.Duration
	KeepAliveTimeout  time.Duration
	MaxHeaderBytes    int
	// ConnectionUploadTimeout is the HTTP connector's
	// connectionUploadTimeout when its disableUploadTimeout is "false"
	// (Tomcat ignores it otherwise; so does the loader, with a note):
	// host.Config.ReadTimeout, how long a whole request, body included,
	// may take to arrive. Tomcat bounds the time between two packets of
	// the upload with it, a node the whole request; connectionTimeout
	// does not set ReadTimeout, as it would cut off every upload longer
	// than it. Zero when the file does not set it.
	ConnectionUploadTimeout time.Duration
	// ServiceName, EngineName and HostName are the name attributes of
	// <Service>, <Engine> and the <Host> whose contexts are read (for
	// display; Tomcat's defaults "Catalina" and "localhost" are not
	// assumed).
	ServiceName string
	EngineName  string
	HostName    string
	// JvmRoute is the Engine's jvmRoute: the suffix of session ids and
	// the balancer's route. "" when not set.
	JvmRoute string
	// AppBase is the Host's appBase resolved against Dir, "" when the
	// Host has none (relative docBases are then resolved against Dir).
	AppBase string

	// MaxActiveSessions caps the sessions of each app (the maxActiveSessions
	// of the cluster's <Manager>); 0 means no limit. A context's own
	// <Manager maxActiveSessions> overrides it (Context.MaxActiveSessions).
	MaxActiveSessions int

	// Contexts are the apps, in file order.
	Contexts []Context

	// Cluster is the <Cluster> (in the Engine or the Host), nil when the
	// file has none: the node then runs alone with local sessions.
	Cluster *Cluster
}

// Context is one app: a <Context path docBase> of the Host.
type Context struct {
	// Path is the context path, "/" for the root context (Tomcat's
	// path="").
	Path string
	// DocBase is the docBase attribute as written; Module is what to
	// load: "builtin:NAME" as written, or a file path resolved against
	// the Host's appBase, else the config file's directory.
	DocBase string
	Module  string
	// Distributable tells whether the app's sessions replicate: the
	// distributable attribute, true by default when the node has a
	// cluster ("false" keeps the app's sessions local), false without one.
	Distributable bool
	// NotDistributable is true when the <Context> says
	// distributable="false": its sessions stay local even on a node made a
	// cluster member some other way (node -cluster), where the other
	// contexts of a file without a <Cluster> replicate.
	NotDistributable bool
	// MaxActiveSessions is the maxActiveSessions of a <Manager> inside
	// the <Context>: 0 means the node's (Node.MaxActiveSessions), a
	// negative value no limit for this app (Tomcat's -1).
	MaxActiveSessions int
	// SessionTimeout is the sessionTimeout attribute (minutes, as
	// Tomcat's web.xml <session-timeout>); 0 means the node's default.
	SessionTimeout time.Duration
	// Line is where the <Context> starts in the file.
	Line int
}

// Cluster is a <Cluster> element (Tomcat's SimpleTcpCluster): the channel,
// the manager of distributable apps, the valves, the listeners and the
// farm deployer.
type Cluster struct {
	// Channel is the <Channel> converted by tribes/tribesconfig.
	Channel tribes.Config
	// ChannelSendOptions is the cluster's channelSendOptions (default 8,
	// asynchronous): the send options of the DeltaManager unless its own
	// channelSendOptions says otherwise. The BackupManager's replication
	// uses its mapSendOptions (default 6).
	ChannelSendOptions tribes.Options

	// Manager configures every distributable app's manager; Manager.Kind
	// says which (delta unless a <Manager> names BackupManager).
	// ManagerClass is the <Manager>'s class name, "" when the cluster
	// has no <Manager> (DeltaManager is implied, as in Tomcat).
	Manager      cluster.ManagerConfig
	ManagerClass string

	// ReplicationValve and JvmRouteBinder are the cluster's valves, nil
	// when not configured. When the cluster has no <Valve> at all both
	// are added with their defaults, as SimpleTcpCluster does, and
	// ValvesImplied is true.
	ReplicationValve *cluster.ReplicationValveConfig
	JvmRouteBinder   *cluster.JvmRouteBinderConfig
	ValvesImplied    bool

	// Listeners are the class names of the <ClusterListener>s, in file
	// order (ClusterSessionListener when there is none, as in Tomcat).
	// Both listeners Tomcat ships are built into wasmfarm: the list is
	// for display.
	Listeners []string

	// Deployer is the <Deployer> (FarmWarDeployer), nil when none.
	Deployer *DeployerConfig

	// Interceptors are the simple class names of the channel's
	// interceptors, top first, as written (for display; the instances
	// are in Channel.Interceptors). nil means the default stack.
	Interceptors []string
	// StaticMembers are "host:port" of the <Member> elements of the
	// channel (static membership), for display.
	StaticMembers []string
}

// DeployerConfig is a <Deployer className="...FarmWarDeployer">: the
// farm's directories and its watcher. Relative directories are resolved
// against the config file's directory.
type DeployerConfig struct {
	// TempDir receives modules while their chunks arrive.
	TempDir string
	// DeployDir is where received modules are moved and deployed from.
	DeployDir string
	// WatchDir is watched for modules to deploy to the whole farm, when
	// WatchEnabled.
	WatchDir     string
	WatchEnabled bool
	// ProcessDeployFrequency is how often the watch dir is scanned, in
	// Tomcat's unit: background processor runs of 10 s (default 2, 20 s).
	ProcessDeployFrequency int
}

// DefaultProcessDeployFrequency is FarmWarDeployer's default
// processDeployFrequency.
const DefaultProcessDeployFrequency = 2

// BackgroundProcessorDelay is Tomcat's background processor period, the
// unit of processDeployFrequency.
const BackgroundProcessorDelay = 10 * time.Second

// WatchInterval returns the period of the watch-dir scan:
// ProcessDeployFrequency background processor runs (20 s by default).
func (d *DeployerConfig) WatchInterval() time.Duration {
	n := d.ProcessDeployFrequency
	if n <= 0 {
		n = DefaultProcessDeployFrequency
	}
	return time.Duration(n) * BackgroundProcessorDelay
}
