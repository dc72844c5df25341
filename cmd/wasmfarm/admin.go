package main

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/wasmfarm/wasmfarm/farm"
	"github.com/wasmfarm/wasmfarm/host/cluster"
	"github.com/wasmfarm/wasmfarm/host/monitor"
	"github.com/wasmfarm/wasmfarm/host/session"
)

// authorized checks the admin bearer token (constant time).
func (n *node) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && n.spec.adminToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(n.spec.adminToken)) == 1
}

func (n *node) isReady() bool {
	select {
	case <-n.ready:
	default:
		return false
	}
	if n.stopping.Load() || n.srv.Draining() {
		return false
	}
	return n.member == nil || n.member.Cluster.Ready()
}

// status is the node's monitoring snapshot (admin /status, /metrics and
// the dashboard).
func (n *node) status() monitor.Snapshot {
	st := monitor.Snapshot{Time: time.Now(), Members: []monitor.Member{}, Apps: []monitor.App{},
		Node: monitor.Node{JvmRoute: n.spec.host.JvmRoute, Ready: n.isReady(), StartedAt: n.started, BadRequests: n.srv.BadRequests(), SlowClients: n.srv.SlowClients()}}
	var mgrs map[string]cluster.ManagerStats
	if n.member != nil {
		c := n.member.Cluster
		if lm := n.ch.LocalMember(); lm != nil {
			st.Node.Member = lm.String()
		}
		for _, p := range c.Peers() {
			st.Members = append(st.Members, monitor.Member{Name: p.Member.String(), JvmRoute: p.JvmRoute, Apps: p.Contexts})
		}
		mgrs = c.Managers()
		cs := c.Stats()
		st.Cluster = &cs
		v := &monitor.ValveStatus{ValveStats: n.member.Replication.Stats(), JvmRouteRewrites: n.member.Binder.Rewrites()}
		if re := n.member.Replication.Filter(); re != nil {
			v.Filter = re.String()
		}
		st.Valve = v
		st.Channel = monitor.NewChannelStatus(n.ch.Interceptors())
	}
	if n.farm != nil {
		fs := n.farm.Stats()
		st.Deployer = &fs
	}
	for _, c := range n.srv.Engine().Contexts() {
		a := monitor.App{Path: c.Path(), Digest: c.Digest(), ActiveSessions: c.Manager().Len()}
		if m, ok := mgrs[c.Path()]; ok {
			a.Manager = &m
		}
		st.Apps = append(st.Apps, a)
	}
	return st
}

// adminHandler serves the node's admin endpoint: /ready (200 once the
// node took its sessions and opened its HTTP port, else 503, also while
// draining or shutting down: for a balancer or a Kubernetes readiness
// probe), /health, the monitoring
// (/status JSON, /metrics for Prometheus, the dashboard at /),
// /session?app=/path&id=ID (whether this member holds a session), and with
// the bearer token POST /drain (take no new sessions, hand the sessions a
// BackupManager serves here to other members; then stop the member) and
// /apps (the farm).
func (n *node) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		if !n.isReady() {
			why := "not ready: receiving sessions or deploying apps"
			if n.stopping.Load() {
				why = "shutting down: takes no new requests"
			} else if n.srv.Draining() {
				why = "draining: takes no new sessions"
			}
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	// The monitoring: /status (JSON), /metrics (Prometheus), / (dashboard).
	mux.Handle("/", monitor.NewHandler(monitor.HandlerConfig{Snapshot: n.status, Logger: n.log}))
	if n.farm != nil {
		mux.Handle("/apps", farm.NewAdminHandler(n.farm, n.spec.adminToken))
	} else {
		mux.HandleFunc("/apps", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "this node is not a cluster member: no farm (start it with -cluster or a <Cluster>)", http.StatusNotFound)
		})
	}
	mux.HandleFunc("POST /drain", func(w http.ResponseWriter, r *http.Request) {
		if !n.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wasmfarm admin"`)
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		n.srv.SetDraining(true)
		handed := 0
		var err error
		if n.member != nil {
			handed, err = n.member.Cluster.HandOff(r.Context())
		}
		w.Header().Set("Content-Type", "application/json")
		out := map[string]any{"draining": true, "handedOff": handed}
		if err != nil {
			out["error"] = err.Error()
			w.WriteHeader(http.StatusInternalServerError)
		}
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /session", func(w http.ResponseWriter, r *http.Request) {
		c, ok := n.srv.Engine().Context(r.FormValue("app"))
		if !ok {
			http.Error(w, "no such app", http.StatusNotFound)
			return
		}
		id := r.FormValue("id")
		var out sessionJSON
		// Range, not Find: looking must neither touch nor expire it.
		c.Manager().Range(func(s *session.Session) bool {
			if s.ID() != id {
				return true
			}
			out = sessionJSON{Found: true, ID: id, Created: s.CreationTime().UnixMilli(), LastAccessed: s.LastAccessedTime().UnixMilli(),
				MaxInactive: s.MaxInactiveInterval().Seconds(), Attributes: s.Keys()}
			return false
		})
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
	return mux
}

// sessionJSON is the admin endpoint's view of one session (never its
// attribute values).
type sessionJSON struct {
	Found        bool     `json:"found"`
	ID           string   `json:"id,omitempty"`
	Created      int64    `json:"created,omitempty"`
	LastAccessed int64    `json:"lastAccessed,omitempty"`
	MaxInactive  float64  `json:"maxInactiveSeconds,omitempty"`
	Attributes   []string `json:"attributes,omitempty"`
}
