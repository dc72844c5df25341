// Package serverconfig reads a Tomcat server.xml into the configuration of
// one wasmfarm node: its HTTP address, its jvmRoute, its apps and its
// cluster.
//
//	node, warnings, err := serverconfig.Load("server.xml")
//	for _, w := range warnings {
//		log.Print(w) // server.xml:36:1: warning: [Server/Service/Engine/Cluster/Channel/Receiver] attribute "seceltorTimeout": ... did you mean "selectorTimeout"?
//	}
//	if err != nil {
//		return err // every bad value, unknown class and missing attribute, with file:line
//	}
//	node.Describe(os.Stdout) // what `wasmfarm node -config server.xml -check` prints
//
// [Load] and [Parse] accept a whole <Server>, or the part of one a user
// pastes: a <Service>, an <Engine>, a <Host> or a bare <Cluster> (the
// node then has no connector and no contexts from the file: the node
// command's flags supply them). The XML is read by package
// internal/serverxml, whose leniency (missing blanks between attributes,
// typographic quotes, names in the wrong case, a lost <Channel> start tag)
// turns the mistakes of configurations copied from web pages into
// warnings; the <Channel> is converted by [tribesconfig.Loader.FromCluster],
// which also reports channel elements written outside it (an
// EncryptInterceptor there is an error: see tribesconfig's "Misplaced
// elements").
// An attribute that maps to nothing is a warning with a did-you-mean
// suggestion; a Tomcat attribute wasmfarm does not need is a note; a value
// that cannot be used, an unknown className or a missing required
// attribute is an error naming the file, the line and the attribute.
//
// # Mapping
//
//	<Server>                      port, shutdown, address: notes (stop a node with a signal);
//	                              <Listener>, <GlobalNamingResources>: notes. One <Service>.
//	<Service name>                Node.ServiceName; <Executor>: note
//	<Connector>                   the first HTTP one: Node.HTTPAddr = address:port. No address:
//	                              DefaultAddress (127.0.0.1) with a warning, where Tomcat listens on
//	                              every address. protocol AJP/1.3, SSLEnabled="true" and further
//	                              HTTP connectors: skipped with a warning. Thread, timeout and
//	                              limit attributes: notes (the node's flags set them).
//	<Engine name jvmRoute>        Node.EngineName, Node.JvmRoute (no blanks, quotes, ';', ',', '=');
//	                              the <Host> named by defaultHost (or the only one); a <Cluster>.
//	                              <Valve>s of the Engine or Host are Java: warnings.
//	<Host name appBase>           Node.HostName, Node.AppBase (resolved against the file's directory);
//	                              autoDeploy, unpackWARs and the like: notes; a <Cluster>.
//	<Context path docBase>        Node.Contexts: path ("" or "/" is the root), docBase: a .wasm file
//	                              (relative to appBase, else to the file's directory; a warning when
//	                              it is missing) or "builtin:NAME" (a sample app of package wasmapps);
//	                              distributable (default true when the node has a cluster; "false"
//	                              keeps the app's sessions local); sessionTimeout (minutes, <= 0:
//	                              never). A <Manager> inside it (StandardManager) gives the app's
//	                              maxActiveSessions and maxInactiveInterval (seconds).
//	<Cluster className=SimpleTcpCluster>
//	                              channelSendOptions (number or names, tribes.ParseOptions; default 8)
//	  <Channel> ...               Cluster.Channel, by tribesconfig
//	  <Manager className=
//	    DeltaManager              Cluster.Manager (cluster.ManagerConfig, Kind delta): channelSendOptions
//	                              (default: the cluster's), stateTransferTimeout (s), sendAllSessionsSize,
//	                              sendAllSessionsWaitTime (ms), stateTimestampDrop
//	    BackupManager             Kind backup: mapSendOptions (default 6), rpcTimeout (ms, the fetch
//	                              timeout)
//	                              both: expireSessionsOnShutdown, notifyListenersOnReplication (or
//	                              notifySessionListenersOnReplication), sendClusterDomainOnly,
//	                              maxActiveSessions (Node.MaxActiveSessions; -1: no limit)
//	  <Valve className=
//	    ReplicationValve          Cluster.ReplicationValve: filter (a regular expression, or Tomcat 6's
//	                              ';' separated list), primaryIndicator, primaryIndicatorName, statistics
//	    JvmRouteBinderValve       Cluster.JvmRouteBinder: enabled, sessionIdAttribute
//	  <ClusterListener className=
//	    ClusterSessionListener    Cluster.Listeners (built in)
//	    JvmRouteSessionIDBinderListener  a note: Tomcat 6 and 7 only, built into the binder valve here
//	  <Deployer className=
//	    FarmWarDeployer           Cluster.Deployer: tempDir, deployDir, watchDir (resolved against the
//	                              file's directory), watchEnabled, processDeployFrequency
//
// Class names are Tomcat's (org.apache.catalina.ha.*); short names
// ("DeltaManager") are accepted, and Tomcat 5.5's org.apache.catalina.cluster.*
// names with a warning. As in SimpleTcpCluster, a <Cluster> without
// <Manager> gets a DeltaManager, one without any <Valve> gets both
// valves (with a note), one without <ClusterListener> the
// ClusterSessionListener. A second ReplicationValve or JvmRouteBinderValve
// replaces the first, with a warning (a cluster runs one of each).
//
// # Accepted but not used
//
// Each of these present gets a note, not an unknown-attribute warning:
// DeltaManager's sendAllSessions="false" (blocks are always used),
// notifyContainerListenersOnReplication and stateTransferCreateSendTime;
// BackupManager's terminateOnStartFailure and accessTimeout; both
// managers' name, enableStatistics, recordAllActions,
// processExpiresFrequency, the session attribute filters
// (sessionAttributeNameFilter, sessionAttributeValueClassNameFilter,
// warnOnSessionAttributeFilterFailure: attributes are opaque bytes) and
// the secureRandom settings; the cluster's channelStartOptions,
// heartbeatBackgroundEnabled, notifyLifecycleListenerOnFailure,
// clusterName, doClusterLog and clusterLogName; FarmWarDeployer's
// maxValidTime; the valves' asyncSupported. A stateTransferTimeout of
// zero or less (Tomcat: wait forever) is a warning and the default 60 s
// is kept: a node never waits unbounded before opening its port.
//
// # Limits
//
// The file is read by a [serverxml.Parser] (Loader.Parser): at most 4 MiB,
// 10000 elements, 64 levels, 256 attributes per element and names of 256
// bytes by default. At most 1000 warnings are returned
// ([serverxml.MaxWarnings], the parser's and the loaders' together), then
// one counting the others. Tomcat's ${property} substitution is not done.
// Parse looks at the file system only to check that .wasm docBases exist.
package serverconfig
