package farm

import (
	"sort"
	"time"
)

// MemberResult is the outcome of an operation on one member.
type MemberResult struct {
	// Member names the member: its Config.Name, else its address.
	Member string `json:"member"`
	// Addr is its receiver address ("127.0.0.1:4000").
	Addr string `json:"addr,omitempty"`
	// Local is true for the member that ran the operation.
	Local bool `json:"local,omitempty"`
	// Error says why it failed there; empty means the app is deployed
	// (undeployed) there.
	Error string `json:"error,omitempty"`
}

// OK reports whether the operation succeeded on the member.
func (r MemberResult) OK() bool { return r.Error == "" }

// Label returns "name (addr)", or the address alone when it is the name.
func (r MemberResult) Label() string {
	if r.Addr == "" || r.Addr == r.Member {
		return r.Member
	}
	return r.Member + " (" + r.Addr + ")"
}

// Report is the outcome of a farm deploy or undeploy on every member.
type Report struct {
	Op      string         `json:"op"` // "deploy" or "undeploy"
	Path    string         `json:"path"`
	Digest  string         `json:"digest,omitempty"` // hex SHA-256 of the module (deploy)
	Size    int64          `json:"size,omitempty"`   // module bytes (deploy)
	Members []MemberResult `json:"members"`          // the local member first, then by address
	Elapsed time.Duration  `json:"elapsed_ns"`
}

// Failed returns the members the operation failed on.
func (r *Report) Failed() []MemberResult {
	var f []MemberResult
	for _, m := range r.Members {
		if !m.OK() {
			f = append(f, m)
		}
	}
	return f
}

// Err returns a [*MembersError] naming the failed members, or nil.
func (r *Report) Err() error {
	if f := r.Failed(); len(f) > 0 {
		return &MembersError{Op: r.Op, Path: r.Path, Failed: f}
	}
	return nil
}

func (r *Report) sort() {
	sort.SliceStable(r.Members, func(i, j int) bool {
		a, b := r.Members[i], r.Members[j]
		if a.Local != b.Local {
			return a.Local
		}
		return a.Addr < b.Addr
	})
}

// Progress is reported during a deploy, for progress bars.
type Progress struct {
	// Phase is "deploy" (compiling on this member), "transfer" (Done of
	// Total bytes sent to every member) or "results" (Done of Total
	// members reported).
	Phase string `json:"phase"`
	Done  int64  `json:"done"`
	Total int64  `json:"total"`
}

// DeployOptions are the optional arguments of [Deployer.Deploy].
type DeployOptions struct {
	// Name names the module in logs and errors (default: its file name).
	Name string
	// Progress, if set, is called from the deploying goroutine as the
	// deploy advances; it must not block.
	Progress func(Progress)
}

// AppStatus is one app of the cluster view: a context path and a module
// digest, and the members that serve exactly that module there. Two
// members with different modules at one path give two AppStatus.
type AppStatus struct {
	Path    string   `json:"path"`
	Digest  string   `json:"digest"`
	Size    int64    `json:"size,omitempty"` // 0 when no member farmed it (deployed outside the farm)
	Members []string `json:"members"`
}

// ClusterApps is the cluster view of [Deployer.ClusterApps].
type ClusterApps struct {
	// Members are the members that answered, this one first.
	Members []string `json:"members"`
	// Unanswered are the members that did not answer in time.
	Unanswered []string `json:"unanswered,omitempty"`
	// Apps are sorted by path, then digest.
	Apps []AppStatus `json:"apps"`
}

// Stats are the deployer's counters since New.
type Stats struct {
	Received        int64 // farm messages decoded and accepted
	Ignored         int64 // channel messages without the farm's magic
	DecodeErrors    int64 // malformed farm messages (dropped)
	Unauthenticated int64 // farm messages without a valid HMAC (dropped)
	Refused         int64 // well-formed messages refused (unknown transfer, out of order, over a limit)

	ChunksReceived     int64 // chunks written to the temp dir
	BytesReceived      int64 // module bytes written to the temp dir
	TransfersCompleted int64 // incoming transfers whose size and digest matched
	TransfersCorrupt   int64 // incoming transfers with the wrong size or digest
	TransfersExpired   int64 // incoming transfers dropped after TransferTimeout or Abort

	Deploys         int64 // modules deployed into the host (local and remote)
	DeployFailures  int64 // modules the host refused
	Undeploys       int64 // apps undeployed
	BytesSent       int64 // module bytes sent (once per chunk, whatever the number of members)
	WatchDeploys    int64 // deploys started by the watch dir
	WatchUndeploys  int64 // undeploys started by the watch dir
	ManifestErrors  int64 // bad manifests in the watch dir
	SyncFetches     int64 // apps fetched from a peer by Sync
	SyncLocalReused int64 // apps Sync deployed from the deploy dir without a transfer
}
