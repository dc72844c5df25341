package main

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/wasmfarm/wasmfarm/farm"
	"github.com/wasmfarm/wasmfarm/host/cluster"
	"github.com/wasmfarm/wasmfarm/host/session"
)

// nodeStatus is the JSON of the admin endpoint's /status: the objects
// Tomcat exposes as cluster MBeans.
type nodeStatus struct {
	JvmRoute string         `json:"jvmRoute"`
	Ready    bool           `json:"ready"`
	Member   string         `json:"member,omitempty"`
	Members  []peerJSON     `json:"members"`
	Apps     []appJSON      `json:"apps"`
	Valve    *valveJSON     `json:"replicationValve,omitempty"`
	Cluster  *cluster.Stats `json:"cluster,omitempty"`
}

type peerJSON struct {
	Name     string   `json:"name"`
	JvmRoute string   `json:"jvmRoute"`
	Apps     []string `json:"apps"`
}

type appJSON struct {
	Path           string                `json:"path"`
	Digest         string                `json:"digest"`
	ActiveSessions int                   `json:"activeSessions"`
	Manager        *cluster.ManagerStats `json:"manager,omitempty"`
}

type valveJSON struct {
	cluster.ValveStats
	Filter   string `json:"filter"`
	Rewrites int64  `json:"jvmRouteRewrites"`
}

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
	if n.srv.Draining() {
		return false
	}
	return n.member == nil || n.member.Cluster.Ready()
}

func (n *node) status() nodeStatus {
	st := nodeStatus{JvmRoute: n.spec.host.JvmRoute, Ready: n.isReady(), Members: []peerJSON{}, Apps: []appJSON{}}
	var mgrs map[string]cluster.ManagerStats
	if n.member != nil {
		c := n.member.Cluster
		if lm := n.ch.LocalMember(); lm != nil {
			st.Member = lm.String()
		}
		for _, p := range c.Peers() {
			st.Members = append(st.Members, peerJSON{Name: p.Member.String(), JvmRoute: p.JvmRoute, Apps: p.Contexts})
		}
		mgrs = c.Managers()
		cs := c.Stats()
		st.Cluster = &cs
		v := &valveJSON{ValveStats: n.member.Replication.Stats(), Rewrites: n.member.Binder.Rewrites()}
		if re := n.member.Replication.Filter(); re != nil {
			v.Filter = re.String()
		}
		st.Valve = v
	}
	for _, c := range n.srv.Engine().Contexts() {
		a := appJSON{Path: c.Path(), Digest: c.Digest(), ActiveSessions: c.Manager().Len()}
		if m, ok := mgrs[c.Path()]; ok {
			a.Manager = &m
		}
		st.Apps = append(st.Apps, a)
	}
	return st
}

// adminHandler serves the node's admin endpoint: /ready (200 once the
// node took its sessions and opened its HTTP port, else 503: for a
// balancer or a Kubernetes readiness probe), /health, /status (JSON),
// /session?app=/path&id=ID (whether this member holds a session), and with
// the bearer token POST /drain (take no new sessions, hand the sessions a
// BackupManager serves here to other members; then stop the member) and
// /apps (the farm).
func (n *node) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		if !n.isReady() {
			why := "not ready: receiving sessions or deploying apps"
			if n.srv.Draining() {
				why = "draining: takes no new sessions"
			}
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(n.status())
	})
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
