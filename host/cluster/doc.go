// Package cluster replicates the sessions of a wasmfarm host's apps across
// the members of a Tribes channel: Tomcat's SimpleTcpCluster with its
// DeltaManager, BackupManager, ReplicationValve, JvmRouteBinderValve and
// ClusterSessionListener.
//
// # Assembly
//
// [NewMember] builds a clustered host from a host.Config and a started
// *tribes.Channel: a [Cluster] on the channel, its [ReplicationValve] and
// [JvmRouteBinderValve] in front of the host's valves, and the host's
// NewManager hook pointing at [Cluster.NewManager], so that every
// distributable app gets a [DeltaManager] (every member holds every
// session) or a [BackupManager] (the creating member is primary, one other
// member holds a backup, the rest know where the session lives).
//
// # What travels
//
// A request's session reads never change shared state, so the host knows
// exactly what it changed: its session.Delta (creation, attribute sets and
// removes in order, access time, idle limit, id change, invalidation). The
// ReplicationValve hands each committed delta to the manager's Replicate:
// with asynchronous send options (8, the DeltaManager's default) the
// response does not wait; with synchronous ones (6) it waits until the
// other members applied it. Expiries and invalidations made outside a
// request travel too. The messages are Tribes byte messages starting with
// [Magic]; other components (the farm) share the channel.
//
// # Joining
//
// A manager created while other members run the app asks the oldest of
// them for every session (the state transfer), applies the blocks as they
// arrive, each acknowledged after it was applied, queues the messages that
// arrive meanwhile and applies them afterwards; only then does
// Cluster.NewManager return, so the host deploys the app, and a node opens
// its HTTP port, with the sessions in place ([Cluster.Ready]). Members
// starting together answer each other at once.
//
// # Failover
//
// A session id ends with its member's jvmRoute. When a balancer sends a
// request for a session of a dead member elsewhere, the JvmRouteBinderValve
// of the member that gets it rewrites the id to its own route, replicates
// the change and sends the new cookie. A member's copy of a session is a
// replica from the moment another member's change to it arrives until a
// request is served on it here, as Tomcat's DeltaSession is primary only
// on the member that served it last; a replica expires only after twice
// its idle limit, since its access time may be a quarter limit old. The
// expiry of a session a member serves is told to the others, who drop it.
// The DeltaManager tells the expiry of a replica too (the seed documents'
// step 9), and a member told drops its copy only if it is idle past its
// limit there as well: one used within its limit by requests whose access
// was not replicated stays. Concurrent requests on one session: the last
// writer wins, as in Tomcat.
package cluster
