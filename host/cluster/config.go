package cluster

import (
	"log/slog"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// Send options of the managers, as Tomcat's channelSendOptions and
// mapSendOptions.
const (
	// AsyncOptions (8) queues a message and returns at once: the response
	// does not wait for the other members (DeltaManager's default).
	AsyncOptions = tribes.OptAsynchronous
	// SyncOptions (6) waits until every member applied the message: the
	// response waits for the acks (BackupManager's default).
	SyncOptions = tribes.OptUseAck | tribes.OptSynchronizedAck
)

// Kind names a replicating manager.
type Kind string

// The managers a distributable app can have.
const (
	// KindDelta is Tomcat's DeltaManager: every member running the app
	// holds every session (all-to-all).
	KindDelta Kind = "delta"
	// KindBackup is Tomcat's BackupManager: the creating member is
	// primary, one other member holds a backup, the rest a pointer.
	KindBackup Kind = "backup"
)

// ManagerConfig configures the replicating manager of each distributable
// app (Tomcat's <Manager> in a <Cluster>). The zero value of a field means
// its default (see [DefaultManagerConfig]).
type ManagerConfig struct {
	// Kind is delta (default) or backup.
	Kind Kind
	// SendOptions are the options of replication messages (delta:
	// channelSendOptions, 8 asynchronous by default; backup: mapSendOptions,
	// 6 synchronous by default).
	SendOptions tribes.Options
	// ExpireSessionsOnShutdown expires (and tells the cluster about) every
	// session this member holds when it stops; default false: the others
	// keep them.
	ExpireSessionsOnShutdown bool
	// NoNotifyListenersOnReplication turns off running the app's session
	// hooks (created, destroyed) for sessions replicated from other
	// members (Tomcat's notifyListenersOnReplication="false").
	NoNotifyListenersOnReplication bool
	// StateTransferTimeout bounds how long a starting member waits for the
	// sessions of the others (60 s); past it the member starts with what
	// it has and logs a warning.
	StateTransferTimeout time.Duration
	// SendAllSessionsSize is the number of sessions per state-transfer
	// block (1000). Blocks are sent one at a time, each acknowledged after
	// the joiner applied it.
	SendAllSessionsSize int
	// SendAllSessionsWaitTime bounds the wait for one block's
	// acknowledgement (2 s; Tomcat's pause between blocks, which acks make
	// unnecessary here).
	SendAllSessionsWaitTime time.Duration
	// StateTimestampDrop drops messages queued during the state transfer
	// that the sending member sent before it took the snapshot (default
	// true: the snapshot already holds them). Replaying them instead is
	// also safe, since deltas replayed in order converge. DeltaManager
	// only, as in Tomcat: a BackupManager's snapshot holds where the
	// sessions live, not their data, so it applies every queued message.
	NoStateTimestampDrop bool
	// SendClusterDomainOnly sends replication messages only to members of
	// this member's cluster domain (default true in Tomcat).
	NoSendClusterDomainOnly bool
	// AccessReplicateInterval bounds how stale the other members' view of
	// a session's last access may get when requests only read it: such
	// requests replicate their access time when the last replicated one is
	// older than this (default: a quarter of the session's idle limit).
	// Requests that change the session always replicate.
	AccessReplicateInterval time.Duration
	// FetchTimeout bounds a BackupManager's fetch of a session it only
	// points to (5 s).
	FetchTimeout time.Duration
}

// DefaultManagerConfig returns the defaults of a manager of the given kind.
func DefaultManagerConfig(kind Kind) ManagerConfig {
	c := ManagerConfig{
		Kind:                    kind,
		SendOptions:             AsyncOptions,
		StateTransferTimeout:    60 * time.Second,
		SendAllSessionsSize:     1000,
		SendAllSessionsWaitTime: 2 * time.Second,
		FetchTimeout:            5 * time.Second,
	}
	if kind == KindBackup {
		c.SendOptions = SyncOptions
	}
	return c
}

func (c ManagerConfig) withDefaults() ManagerConfig {
	if c.Kind == "" {
		c.Kind = KindDelta
	}
	d := DefaultManagerConfig(c.Kind)
	if c.SendOptions == 0 {
		c.SendOptions = d.SendOptions
	}
	if c.StateTransferTimeout <= 0 {
		c.StateTransferTimeout = d.StateTransferTimeout
	}
	if c.SendAllSessionsSize <= 0 {
		c.SendAllSessionsSize = d.SendAllSessionsSize
	}
	if c.SendAllSessionsWaitTime <= 0 {
		c.SendAllSessionsWaitTime = d.SendAllSessionsWaitTime
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = d.FetchTimeout
	}
	return c
}

// ReplicationValveConfig configures the [ReplicationValve].
type ReplicationValveConfig struct {
	// Filter is a regular expression; requests whose path matches it do
	// not replicate their access time (static files). Tomcat's form with
	// '|' between alternatives and the older form with ';' are both
	// accepted (see [ParseFilter]). Requests that change their session
	// replicate even when filtered, so no change is lost.
	Filter string
	// PrimaryIndicator sets a request attribute telling whether this
	// member is the session's primary (Tomcat's primaryIndicator).
	PrimaryIndicator     bool
	PrimaryIndicatorName string
	// Statistics is accepted for Tomcat configs; counters are always on.
	Statistics bool
}

// JvmRouteBinderConfig configures the [JvmRouteBinderValve].
type JvmRouteBinderConfig struct {
	// Disabled turns the valve off (Tomcat's enabled="false").
	Disabled bool
	// SessionIDAttribute names the request attribute that keeps the
	// session id as the client sent it (Tomcat's default
	// "org.apache.catalina.ha.session.JvmRouteOrignalSessionID").
	SessionIDAttribute string
}

// DefaultSessionIDAttribute is Tomcat's name (typo included) of the request
// attribute holding the original session id after a failover.
const DefaultSessionIDAttribute = "org.apache.catalina.ha.session.JvmRouteOrignalSessionID"

// Config configures a [Cluster] (Tomcat's SimpleTcpCluster).
type Config struct {
	// Channel carries the cluster's messages; the cluster adds its
	// listeners but does not start or stop it.
	Channel *tribes.Channel
	// JvmRoute is this member's route (the Engine's jvmRoute).
	JvmRoute string
	// Manager configures the manager of each distributable app.
	Manager ManagerConfig
	// Logger receives the cluster's logs; nil discards them.
	Logger *slog.Logger
}
