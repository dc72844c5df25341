package monitor

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// collector is a prometheus.Collector that takes one Snapshot per scrape
// and turns it into const metrics: the node's counters live in the node,
// not in Prometheus objects kept in step with them.
type collector struct {
	snapshot func() Snapshot
	descs    []*prometheus.Desc

	up, ready, info, startTime, members, badRequests, slowClients *prometheus.Desc
	appInfo, sessionsActive, sessionsCreated                      *prometheus.Desc
	sessionsExpired, replMessages, replBytes, replMissing         *prometheus.Desc
	replSendErrors, replSkipped, stateTransfer                    *prometheus.Desc
	stateTransferred, stateComplete, managerReady                 *prometheus.Desc
	valveRequests, valveFiltered, valveReplications               *prometheus.Desc
	valveFailures, valveBytes, valveSeconds, rewrites             *prometheus.Desc
	clusterReceived, clusterBad, clusterIgnored                   *prometheus.Desc
	clusterSendErrors, clusterHelloRetries                        *prometheus.Desc
	interceptor, channelMessages, channelBytes                    *prometheus.Desc
	farmMessages, farmTransfers, farmDeploys, farmUndeploy        *prometheus.Desc
	farmBytes                                                     *prometheus.Desc
}

var _ prometheus.Collector = (*collector)(nil)

func newCollector(snapshot func() Snapshot) *collector {
	c := &collector{snapshot: snapshot}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		desc := prometheus.NewDesc("wasmfarm_"+name, help, labels, nil)
		c.descs = append(c.descs, desc)
		return desc
	}
	c.up = d("up", "1 while the node's monitoring endpoint answers.")
	c.ready = d("ready", "1 once the node took its sessions and opened its HTTP port, else 0.")
	c.info = d("node_info", "The node's jvmRoute and tribes member (always 1).", "jvm_route", "member")
	c.startTime = d("start_time_seconds", "When the node started, in seconds since the Unix epoch.")
	c.members = d("members", "Other cluster members this member sees.")
	c.badRequests = d("http_bad_requests_total", "Requests the HTTP connector refused before any app ran: malformed, a head too large, an unsupported method (CONNECT), version, transfer coding or expectation.")
	c.slowClients = d("http_slow_clients_total", "Connections the HTTP connector closed because their client read no response for the write timeout or sent no whole request body within the read timeout.")

	c.appInfo = d("app_info", "A deployed app and its module's digest (always 1).", "app", "digest")
	c.sessionsActive = d("sessions_active", "Sessions held for the app.", "app")
	c.sessionsCreated = d("sessions_created_total", "Sessions created by requests on this member.", "app")
	c.sessionsExpired = d("sessions_expired_total", "Sessions expired on this member.", "app")
	c.replMessages = d("replication_messages_total", "Session replication messages sent to or applied from other members.", "app", "direction")
	c.replBytes = d("replication_bytes_total", "Bytes of session replication messages sent or applied.", "app", "direction")
	c.replMissing = d("replication_missing_total", "Deltas received for a session this member does not hold.", "app")
	c.replSendErrors = d("replication_send_errors_total", "Replication sends that failed.", "app")
	c.replSkipped = d("replication_skipped_total", "Access-only deltas not sent (within the access replicate interval).", "app")
	c.stateTransfer = d("state_transfer_seconds", "How long the state transfer took when this member joined.", "app")
	c.stateTransferred = d("state_transfer_sessions", "Sessions received by the state transfer.", "app")
	c.stateComplete = d("state_transfer_complete", "1 if the state transfer finished, 0 if it timed out or still runs.", "app")
	c.managerReady = d("manager_ready", "1 once the app's manager is ready to serve.", "app")

	c.valveRequests = d("valve_requests_total", "Requests seen by the replication valve.")
	c.valveFiltered = d("valve_filtered_total", "Requests the replication valve's filter skipped.")
	c.valveReplications = d("valve_replications_total", "Deltas the replication valve sent.")
	c.valveFailures = d("valve_failures_total", "Deltas not acknowledged by every member.")
	c.valveBytes = d("valve_bytes_total", "Bytes the replication valve sent.")
	c.valveSeconds = d("valve_seconds_total", "Time responses waited for replication, in seconds.")
	c.rewrites = d("jvm_route_rewrites_total", "Session ids rewritten to this member's jvmRoute after a failover.")

	c.clusterReceived = d("cluster_messages_received_total", "Cluster messages received (including the bad and the ignored).")
	c.clusterBad = d("cluster_messages_bad_total", "Cluster messages that failed to decode (dropped).")
	c.clusterIgnored = d("cluster_messages_ignored_total", "Cluster messages for an app this member does not run.")
	c.clusterSendErrors = d("cluster_send_errors_total", "Cluster sends that failed for at least one member.")
	c.clusterHelloRetries = d("cluster_hello_retries_total", "Hellos sent again to a member whose own had not arrived.")

	c.interceptor = d("channel_interceptor_info", "The channel's interceptors, position 0 at the top (always 1).", "position", "type")
	c.channelMessages = d("channel_messages_total", "Messages through the channel's Throughput interceptor.", "direction")
	c.channelBytes = d("channel_bytes_total", "Bytes through the channel's Throughput interceptor (sent: times the destinations).", "direction")

	c.farmMessages = d("farm_messages_total", "Farm messages received, by what became of them.", "result")
	c.farmTransfers = d("farm_transfers_total", "Incoming module transfers, by result.", "result")
	c.farmDeploys = d("farm_deploys_total", "Modules deployed into the host, by result.", "result")
	c.farmUndeploy = d("farm_undeploys_total", "Apps undeployed.")
	c.farmBytes = d("farm_bytes_total", "Module bytes sent and received by the farm.", "direction")
	return c
}

// Describe sends every descriptor the collector may use.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect takes one snapshot and sends its metrics.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}

	gauge(c.up, 1)
	gauge(c.ready, b2f(s.Node.Ready))
	gauge(c.info, 1, s.Node.JvmRoute, s.Node.Member)
	if !s.Node.StartedAt.IsZero() {
		gauge(c.startTime, float64(s.Node.StartedAt.UnixNano())/1e9)
	}
	gauge(c.members, float64(len(s.Members)))
	counter(c.badRequests, s.Node.BadRequests)
	counter(c.slowClients, s.Node.SlowClients)

	seen := make(map[string]bool, len(s.Apps))
	for _, a := range s.Apps {
		if seen[a.Path] { // two apps on one path would make the scrape fail
			continue
		}
		seen[a.Path] = true
		p := a.Path
		gauge(c.appInfo, 1, p, a.Digest)
		gauge(c.sessionsActive, float64(a.ActiveSessions), p)
		m := a.Manager
		if m == nil {
			continue
		}
		counter(c.sessionsCreated, m.SessionsCreated, p)
		counter(c.sessionsExpired, m.SessionsExpired, p)
		counter(c.replMessages, m.Replicated, p, "sent")
		counter(c.replMessages, m.Received, p, "received")
		counter(c.replBytes, m.ReplicatedBytes, p, "sent")
		counter(c.replBytes, m.ReceivedBytes, p, "received")
		counter(c.replMissing, m.Missing, p)
		counter(c.replSendErrors, m.SendErrors, p)
		counter(c.replSkipped, m.Skipped, p)
		gauge(c.stateTransfer, m.StateTransfer.Seconds(), p)
		gauge(c.stateTransferred, float64(m.StateTransferred), p)
		gauge(c.stateComplete, b2f(m.StateComplete), p)
		gauge(c.managerReady, b2f(m.Ready), p)
	}

	if v := s.Valve; v != nil {
		counter(c.valveRequests, v.Requests)
		counter(c.valveFiltered, v.Filtered)
		counter(c.valveReplications, v.Replications)
		counter(c.valveFailures, v.Failures)
		counter(c.valveBytes, v.Bytes)
		ch <- prometheus.MustNewConstMetric(c.valveSeconds, prometheus.CounterValue, v.Time.Seconds())
		counter(c.rewrites, v.JvmRouteRewrites)
	}
	if cs := s.Cluster; cs != nil {
		counter(c.clusterReceived, cs.Received)
		counter(c.clusterBad, cs.Bad)
		counter(c.clusterIgnored, cs.Ignored)
		counter(c.clusterSendErrors, cs.SendErrors)
		counter(c.clusterHelloRetries, cs.HelloRetries)
	}
	if chs := s.Channel; chs != nil {
		for i, name := range chs.Interceptors {
			gauge(c.interceptor, 1, strconv.Itoa(i), name)
		}
		if chs.Throughput {
			counter(c.channelMessages, chs.TxMessages, "sent")
			counter(c.channelMessages, chs.RxMessages, "received")
			counter(c.channelBytes, chs.TxBytes, "sent")
			counter(c.channelBytes, chs.RxBytes, "received")
		}
	}
	if f := s.Deployer; f != nil {
		counter(c.farmMessages, f.Received, "accepted")
		counter(c.farmMessages, f.Ignored, "ignored")
		counter(c.farmMessages, f.DecodeErrors, "decode_error")
		counter(c.farmMessages, f.Unauthenticated, "unauthenticated")
		counter(c.farmMessages, f.Refused, "refused")
		counter(c.farmTransfers, f.TransfersCompleted, "completed")
		counter(c.farmTransfers, f.TransfersCorrupt, "corrupt")
		counter(c.farmTransfers, f.TransfersExpired, "expired")
		counter(c.farmDeploys, f.Deploys, "ok")
		counter(c.farmDeploys, f.DeployFailures, "failed")
		counter(c.farmUndeploy, f.Undeploys)
		counter(c.farmBytes, f.BytesSent, "sent")
		counter(c.farmBytes, f.BytesReceived, "received")
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
