// Package monitor is a node's monitoring endpoint, what JMX is to Tomcat:
// the objects Tomcat exposes as cluster MBeans (the member, its peers,
// each app's session manager, the replication valve, the channel and its
// interceptors, the farm deployer) gathered in one [Snapshot], and served
// three ways by [NewHandler]:
//
//   - GET /status: the snapshot as indented JSON (field names lowerCamel);
//   - GET /metrics: the same counters in the Prometheus text format, for
//     a Prometheus server to scrape (series named wasmfarm_*);
//   - GET /: a dashboard page for a person: this member and whether it is
//     ready, the other members, the apps with their sessions and
//     replication counts, and charts of messages and bytes per second
//     sent and received over the last five minutes.
//
// The handler holds no state of its own: every request calls
// [HandlerConfig.Snapshot] once, so a scrape and a page show the node as
// it is at that moment. The node builds the snapshot from its parts; a
// node that is not a cluster member leaves the cluster fields nil, and
// every view says "standalone" rather than failing.
//
//	h := monitor.NewHandler(monitor.HandlerConfig{
//		Snapshot: node.Snapshot,
//		Logger:   log,
//	})
//	mux.Handle("/", h) // /status, /metrics, / and /assets/
//
// # The dashboard
//
// The page is plain HTML, CSS and JavaScript embedded in the binary: it
// loads nothing from elsewhere (its Content-Security-Policy forbids it),
// so it works on a machine with no Internet access. It polls status
// every second, keeps the last five minutes in the browser's memory and
// computes rates from the differences between counters. All its URLs are
// relative, so the handler can be mounted under a prefix with
// [net/http.StripPrefix].
//
// # Metrics
//
// Each handler has its own Prometheus registry (no global registration),
// so two nodes in one process each export their own series. Counters
// carry the suffix _total; durations are in seconds; per-app series have
// the label app (the context path), and replication and channel series
// the label direction ("sent" or "received").
package monitor
