package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/host/session"
)

// ParseFilter compiles a ReplicationValve filter: a regular expression
// matched against the whole request path, as Tomcat 7 and later read it
// (".*\.gif|.*\.js|..."), or the ';' separated list of expressions of
// Tomcat 5 and 6 (".*\.gif;.*\.js;..."), which becomes their alternation.
// An empty filter is nil: nothing is filtered.
func ParseFilter(filter string) (*regexp.Regexp, error) {
	filter = strings.TrimSpace(filter)
	if filter == "" {
		return nil, nil
	}
	var parts []string
	for p := range strings.SplitSeq(filter, ";") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, "(?:"+p+")")
		}
	}
	re, err := regexp.Compile("^(?:" + strings.Join(parts, "|") + ")$")
	if err != nil {
		return nil, fmt.Errorf("cluster: ReplicationValve filter %q: %w", filter, err)
	}
	return re, nil
}

// ReplicationValve hands each request's committed session delta to the
// app's replicating manager after the app ran (Tomcat's ReplicationValve).
// With synchronous send options the response waits until the other
// members applied it. Requests whose path matches the filter do not
// replicate a mere access (static files); if they changed the session,
// the change is replicated anyway, so nothing is lost.
type ReplicationValve struct {
	cfg    ReplicationValveConfig
	filter *regexp.Regexp
	log    *slog.Logger

	requests, filtered, replications, failures, bytes, nanos atomic.Int64
}

// NewReplicationValve returns the valve; it fails on a bad filter.
func NewReplicationValve(cfg ReplicationValveConfig, log *slog.Logger) (*ReplicationValve, error) {
	re, err := ParseFilter(cfg.Filter)
	if err != nil {
		return nil, err
	}
	if cfg.PrimaryIndicatorName == "" {
		cfg.PrimaryIndicatorName = "org.apache.catalina.ha.tcp.isPrimarySession"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ReplicationValve{cfg: cfg, filter: re, log: log}, nil
}

// Invoke implements host.Valve.
func (v *ReplicationValve) Invoke(x *host.Exchange, next host.Invoker) {
	if v.cfg.PrimaryIndicator && x.RequestedSessionID != "" {
		primary := session.Route(x.RequestedSessionID) == x.Context.Server().Config().JvmRoute
		x.SetAttribute(v.cfg.PrimaryIndicatorName, fmt.Sprint(primary))
	}
	next.Invoke(x)
	v.requests.Add(1)
	d := x.Delta
	if d == nil {
		return
	}
	r, ok := x.Context.Manager().(Replicator)
	if !ok {
		return // a local app (not distributable)
	}
	if v.filter != nil && !d.HasChanges() && v.filter.MatchString(x.Path) {
		v.filtered.Add(1)
		return
	}
	start := time.Now()
	// The change is committed here: it must reach the others even if the
	// client goes away meanwhile (the sender's own timeouts bound the wait).
	n, err := r.Replicate(context.WithoutCancel(x.Request.Context()), d)
	v.nanos.Add(int64(time.Since(start)))
	if n > 0 {
		v.replications.Add(1)
		v.bytes.Add(int64(n))
	}
	if err != nil {
		// The request succeeded here; a member that did not get the delta
		// is down or leaving (the failure detector takes it out).
		v.failures.Add(1)
		v.log.Warn("session not replicated to every member", "context", x.Context.Path(), "session", d.FinalID(), "err", err)
	}
}

// ValveStats are the ReplicationValve's counters (Tomcat's MBean).
type ValveStats struct {
	Requests     int64         // requests seen
	Filtered     int64         // access-only requests skipped by the filter
	Replications int64         // deltas sent
	Failures     int64         // deltas not acknowledged by every member
	Bytes        int64         // bytes sent
	Time         time.Duration // time spent replicating (the response waited this long in total)
}

// Stats returns the valve's counters.
func (v *ReplicationValve) Stats() ValveStats {
	return ValveStats{Requests: v.requests.Load(), Filtered: v.filtered.Load(), Replications: v.replications.Load(),
		Failures: v.failures.Load(), Bytes: v.bytes.Load(), Time: time.Duration(v.nanos.Load())}
}

// Filter returns the compiled filter (nil: none).
func (v *ReplicationValve) Filter() *regexp.Regexp { return v.filter }

// renamer is implemented by both replicating managers.
type renamer interface {
	Rename(ctx context.Context, id, newID string) error
}

// JvmRouteBinderValve keeps a failed-over session on the member that took
// it over (Tomcat's JvmRouteBinderValve): a request whose session id
// carries another member's route gets the id rewritten to this member's
// route, the change is replicated, and the client gets the new cookie, so
// a sticky balancer sends the session here from now on. The id as sent is
// kept in the request attribute SessionIDAttribute.
type JvmRouteBinderValve struct {
	cfg   JvmRouteBinderConfig
	route string
	log   *slog.Logger

	rewrites atomic.Int64
}

// NewJvmRouteBinderValve returns the valve for a member with the given
// jvmRoute (with an empty route it does nothing).
func NewJvmRouteBinderValve(cfg JvmRouteBinderConfig, jvmRoute string, log *slog.Logger) *JvmRouteBinderValve {
	if cfg.SessionIDAttribute == "" {
		cfg.SessionIDAttribute = DefaultSessionIDAttribute
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &JvmRouteBinderValve{cfg: cfg, route: jvmRoute, log: log}
}

// Rewrites returns how many session ids the valve rewrote.
func (v *JvmRouteBinderValve) Rewrites() int64 { return v.rewrites.Load() }

// Invoke implements host.Valve.
func (v *JvmRouteBinderValve) Invoke(x *host.Exchange, next host.Invoker) {
	id := x.RequestedSessionID
	if v.cfg.Disabled || v.route == "" || id == "" || session.Route(id) == v.route {
		next.Invoke(x)
		return
	}
	m := x.Context.Manager()
	rn, ok := m.(renamer)
	if !ok {
		next.Invoke(x)
		return
	}
	newID := session.WithRoute(id, v.route)
	if _, found := m.Find(id); found {
		if err := rn.Rename(context.WithoutCancel(x.Request.Context()), id, newID); err != nil {
			v.log.Warn("session id not rewritten after failover", "session", id, "err", err)
			next.Invoke(x)
			return
		}
		v.rewrites.Add(1)
		v.log.Info("failed-over session now served here", "old", id, "new", newID)
	} else if _, found := m.Find(newID); found {
		// Another request (sent in parallel, or before the client stored
		// the new cookie) rewrote the id already: this one follows, as
		// Tomcat's handleJvmRoute does ("session is rewrite at other
		// request, rewrite this also").
		v.log.Debug("request with a failed-over session's former id", "old", id, "new", newID)
	} else {
		next.Invoke(x)
		return
	}
	x.RequestedSessionID = newID
	x.SetAttribute(v.cfg.SessionIDAttribute, id)
	next.Invoke(x)
	if x.SessionCookie == "" && x.Err == nil && (x.Delta == nil || !x.Delta.Invalidated) {
		x.SessionCookie = newID
	}
}
