package monitor

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/wasmfarm/wasmfarm/farm"
	"github.com/wasmfarm/wasmfarm/host/cluster"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
)

// Snapshot is a node's state at one moment: the objects Tomcat exposes as
// MBeans. The pointer fields are nil when the node has no such part (a
// standalone node has no Valve, Cluster or Channel; a node without a farm
// has no Deployer).
//
// Its JSON form (the /status document) names every field in lowerCamel
// case, including those of the cluster and farm statistics it embeds;
// durations in those are integer nanoseconds, in fields ending in Nanos.
type Snapshot struct {
	Time     time.Time      `json:"time"` // when the snapshot was taken
	Node     Node           `json:"node"`
	Members  []Member       `json:"members"` // the other members, sorted by jvmRoute
	Apps     []App          `json:"apps"`
	Valve    *ValveStatus   `json:"replicationValve,omitempty"`
	Cluster  *cluster.Stats `json:"cluster,omitempty"`
	Channel  *ChannelStatus `json:"channel,omitempty"`
	Deployer *farm.Stats    `json:"deployer,omitempty"`
}

// Node is this member.
type Node struct {
	JvmRoute  string    `json:"jvmRoute"`
	Member    string    `json:"member,omitempty"` // its tribes member (empty: standalone)
	Ready     bool      `json:"ready"`            // took its sessions and opened its HTTP port
	StartedAt time.Time `json:"startedAt"`
	// BadRequests counts requests the HTTP connector refused as malformed
	// or too large before they reached an app (host.Server.BadRequests).
	BadRequests int64 `json:"badRequests"`
	// SlowClients counts connections the HTTP connector closed because
	// their client read no response for WriteTimeout, or did not send a
	// request's body within ReadTimeout (host.Server.SlowClients).
	SlowClients int64 `json:"slowClients"`
}

// Member is another member of the cluster, as it announced itself.
type Member struct {
	Name     string   `json:"name"`
	JvmRoute string   `json:"jvmRoute"`
	Apps     []string `json:"apps"` // its distributable apps' context paths
}

// App is a deployed web app (a context) and its session manager.
type App struct {
	Path           string                `json:"path"`
	Digest         string                `json:"digest"` // of its module, hex
	ActiveSessions int                   `json:"activeSessions"`
	Manager        *cluster.ManagerStats `json:"manager,omitempty"` // nil: not replicated
}

// ValveStatus is the replication valve: its counters, its filter and the
// jvmRoute binder's rewrites.
type ValveStatus struct {
	cluster.ValveStats
	Filter           string `json:"filter"` // the regexp of requests not replicated ("": none)
	JvmRouteRewrites int64  `json:"jvmRouteRewrites"`
}

// ChannelStatus is the tribes channel: its interceptor stack and its
// traffic as counted by a Throughput interceptor.
type ChannelStatus struct {
	Interceptors []string `json:"interceptors"` // type names, top first
	// Throughput says whether the stack has a Throughput interceptor;
	// without one the counters below stay zero.
	Throughput bool  `json:"throughput"`
	TxMessages int64 `json:"txMessages"`
	TxBytes    int64 `json:"txBytes"` // times the number of destinations
	RxMessages int64 `json:"rxMessages"`
	RxBytes    int64 `json:"rxBytes"`
}

// NewChannelStatus describes an interceptor stack, top first (as
// [tribes.Channel.Interceptors] returns it): the type name of each, and
// the counters of the first [interceptors.Throughput] in it.
func NewChannelStatus(stack []tribes.Interceptor) *ChannelStatus {
	cs := &ChannelStatus{Interceptors: make([]string, 0, len(stack))}
	for _, ic := range stack {
		cs.Interceptors = append(cs.Interceptors, strings.TrimPrefix(fmt.Sprintf("%T", ic), "*"))
		if t, ok := ic.(*interceptors.Throughput); ok && !cs.Throughput {
			st := t.Stats()
			cs.Throughput = true
			cs.TxMessages, cs.TxBytes = st.TxMessages, st.TxBytes
			cs.RxMessages, cs.RxBytes = st.RxMessages, st.RxBytes
		}
	}
	return cs
}

// The JSON forms of the cluster and farm statistics, which carry no tags.
// Each has exactly the fields of its original, so a conversion between
// the two compiles only while they agree: a field added there breaks the
// build here rather than vanishing from /status.

type managerJSON struct {
	Kind             cluster.Kind  `json:"kind"`
	ActiveSessions   int           `json:"activeSessions"`
	PrimarySessions  int           `json:"primarySessions"`
	Proxies          int           `json:"proxies"`
	SessionsCreated  int64         `json:"sessionsCreated"`
	SessionsExpired  int64         `json:"sessionsExpired"`
	Replicated       int64         `json:"replicated"`
	ReplicatedBytes  int64         `json:"replicatedBytes"`
	Received         int64         `json:"received"`
	ReceivedBytes    int64         `json:"receivedBytes"`
	Missing          int64         `json:"missing"`
	SendErrors       int64         `json:"sendErrors"`
	Skipped          int64         `json:"skipped"`
	Fetched          int64         `json:"fetched"`
	Promoted         int64         `json:"promoted"`
	StateTransferred int           `json:"stateTransferred"`
	StateTransfer    time.Duration `json:"stateTransferNanos"`
	StateComplete    bool          `json:"stateComplete"`
	Ready            bool          `json:"ready"`
}

type valveJSON struct {
	Requests     int64         `json:"requests"`
	Filtered     int64         `json:"filtered"`
	Replications int64         `json:"replications"`
	Failures     int64         `json:"failures"`
	Bytes        int64         `json:"bytes"`
	Time         time.Duration `json:"timeNanos"`
}

type clusterJSON struct {
	Received     int64 `json:"received"`
	Bad          int64 `json:"bad"`
	Ignored      int64 `json:"ignored"`
	SendErrors   int64 `json:"sendErrors"`
	HelloRetries int64 `json:"helloRetries"`
}

type deployerJSON struct {
	Received           int64 `json:"received"`
	Ignored            int64 `json:"ignored"`
	DecodeErrors       int64 `json:"decodeErrors"`
	Unauthenticated    int64 `json:"unauthenticated"`
	Refused            int64 `json:"refused"`
	ChunksReceived     int64 `json:"chunksReceived"`
	BytesReceived      int64 `json:"bytesReceived"`
	TransfersCompleted int64 `json:"transfersCompleted"`
	TransfersCorrupt   int64 `json:"transfersCorrupt"`
	TransfersExpired   int64 `json:"transfersExpired"`
	Deploys            int64 `json:"deploys"`
	DeployFailures     int64 `json:"deployFailures"`
	Undeploys          int64 `json:"undeploys"`
	BytesSent          int64 `json:"bytesSent"`
	WatchDeploys       int64 `json:"watchDeploys"`
	WatchUndeploys     int64 `json:"watchUndeploys"`
	ManifestErrors     int64 `json:"manifestErrors"`
	SyncFetches        int64 `json:"syncFetches"`
	SyncLocalReused    int64 `json:"syncLocalReused"`
}

// snapshotAlias has Snapshot's fields without its methods.
type snapshotAlias Snapshot

// MarshalJSON writes the snapshot with lowerCamel names throughout.
func (s Snapshot) MarshalJSON() ([]byte, error) {
	if s.Members == nil {
		s.Members = []Member{}
	}
	if s.Apps == nil {
		s.Apps = []App{}
	}
	return json.Marshal(struct {
		snapshotAlias
		Cluster  *clusterJSON  `json:"cluster,omitempty"`
		Deployer *deployerJSON `json:"deployer,omitempty"`
	}{snapshotAlias(s), (*clusterJSON)(s.Cluster), (*deployerJSON)(s.Deployer)})
}

// UnmarshalJSON reads what [Snapshot.MarshalJSON] writes.
func (s *Snapshot) UnmarshalJSON(b []byte) error {
	var v struct {
		*snapshotAlias
		Cluster  *clusterJSON  `json:"cluster,omitempty"`
		Deployer *deployerJSON `json:"deployer,omitempty"`
	}
	v.snapshotAlias = (*snapshotAlias)(s)
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	s.Cluster, s.Deployer = (*cluster.Stats)(v.Cluster), (*farm.Stats)(v.Deployer)
	return nil
}

type appAlias App

// MarshalJSON writes the app with its manager's fields in lowerCamel.
func (a App) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		appAlias
		Manager *managerJSON `json:"manager,omitempty"`
	}{appAlias(a), (*managerJSON)(a.Manager)})
}

// UnmarshalJSON reads what [App.MarshalJSON] writes.
func (a *App) UnmarshalJSON(b []byte) error {
	var v struct {
		*appAlias
		Manager *managerJSON `json:"manager,omitempty"`
	}
	v.appAlias = (*appAlias)(a)
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	a.Manager = (*cluster.ManagerStats)(v.Manager)
	return nil
}

type valveStatusJSON struct {
	valveJSON
	Filter           string `json:"filter"`
	JvmRouteRewrites int64  `json:"jvmRouteRewrites"`
}

// MarshalJSON writes the valve's counters next to its filter, in
// lowerCamel.
func (v ValveStatus) MarshalJSON() ([]byte, error) {
	return json.Marshal(valveStatusJSON{valveJSON(v.ValveStats), v.Filter, v.JvmRouteRewrites})
}

// UnmarshalJSON reads what [ValveStatus.MarshalJSON] writes.
func (v *ValveStatus) UnmarshalJSON(b []byte) error {
	var j valveStatusJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*v = ValveStatus{cluster.ValveStats(j.valveJSON), j.Filter, j.JvmRouteRewrites}
	return nil
}
