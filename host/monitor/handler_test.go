package monitor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w
}

func TestStatusRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		snap Snapshot
	}{
		{"cluster member", fakeSnapshot(3)},
		{"standalone", standaloneSnapshot()},
		{"zero", Snapshot{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHandler(HandlerConfig{Snapshot: func() Snapshot { return tc.snap }})
			w := get(t, h, "/status")
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q", cc)
			}
			if !bytes.Contains(w.Body.Bytes(), []byte("\n  \"node\": {")) {
				t.Errorf("not indented:\n%s", w.Body)
			}
			var got Snapshot
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			want := tc.snap
			if want.Members == nil {
				want.Members = []Member{} // written as [], read back empty
			}
			if want.Apps == nil {
				want.Apps = []App{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip differs:\ngot  %+v\nwant %+v\njson %s", got, want, w.Body)
			}

			// Every key is lowerCamel, the cluster and farm stats' included.
			var tree any
			if err := json.Unmarshal(w.Body.Bytes(), &tree); err != nil {
				t.Fatal(err)
			}
			for _, k := range keys(tree) {
				if r := []rune(k)[0]; !unicode.IsLower(r) {
					t.Errorf("key %q is not lowerCamel", k)
				}
			}
		})
	}
}

// keys returns every object key in a decoded JSON tree.
func keys(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			out = append(out, k)
			out = append(out, keys(e)...)
		}
	case []any:
		for _, e := range v {
			out = append(out, keys(e)...)
		}
	}
	return out
}

func TestStatusFields(t *testing.T) {
	h := NewHandler(HandlerConfig{Snapshot: func() Snapshot { return fakeSnapshot(0) }})
	body := get(t, h, "/status").Body.String()
	for _, want := range []string{
		`"time": "2025-03-14T10:26:53Z"`,
		`"jvmRoute": "node1"`,
		`"startedAt": "2025-03-14T09:26:53Z"`,
		`"activeSessions": 342`,
		`"kind": "backup"`,
		`"stateTransferNanos": 1500000000`,
		`"replicationValve": {`,
		`"timeNanos": 2500000000`,
		`"jvmRouteRewrites": 6`,
		`"filter": ".*\\.(gif|jpg|png|css|js)$"`,
		`"sendErrors": 3`,
		`"interceptors": [`,
		`"throughput": true`,
		`"deployer": {`,
		`"transfersCorrupt": 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("status lacks %s", want)
		}
	}

	st := get(t, NewHandler(HandlerConfig{Snapshot: standaloneSnapshot}), "/status").Body.String()
	for _, absent := range []string{"replicationValve", "cluster", "channel", "deployer", "manager", "null"} {
		if strings.Contains(st, `"`+absent+`"`) || strings.Contains(st, absent+`":`) {
			t.Errorf("standalone status has %q:\n%s", absent, st)
		}
	}
	if !strings.Contains(st, `"members": []`) {
		t.Errorf("standalone status: members not []:\n%s", st)
	}
}

func TestMetricsValues(t *testing.T) {
	c := newCollector(func() Snapshot { return fakeSnapshot(2) })
	tests := []struct {
		name string
		want string
	}{
		{"node", `
# HELP wasmfarm_up 1 while the node's monitoring endpoint answers.
# TYPE wasmfarm_up gauge
wasmfarm_up 1
# HELP wasmfarm_ready 1 once the node took its sessions and opened its HTTP port, else 0.
# TYPE wasmfarm_ready gauge
wasmfarm_ready 1
# HELP wasmfarm_members Other cluster members this member sees.
# TYPE wasmfarm_members gauge
wasmfarm_members 2
# HELP wasmfarm_http_bad_requests_total Requests the HTTP connector refused before any app ran: malformed, a head too large, an unsupported method (CONNECT), version, transfer coding or expectation.
# TYPE wasmfarm_http_bad_requests_total counter
wasmfarm_http_bad_requests_total 5
# HELP wasmfarm_http_slow_clients_total Connections the HTTP connector closed because their client read no response for the write timeout or sent no whole request body within the read timeout.
# TYPE wasmfarm_http_slow_clients_total counter
wasmfarm_http_slow_clients_total 3
# HELP wasmfarm_node_info The node's jvmRoute and tribes member (always 1).
# TYPE wasmfarm_node_info gauge
wasmfarm_node_info{jvm_route="node1",member="tcp://127.0.0.1:4000"} 1
# HELP wasmfarm_start_time_seconds When the node started, in seconds since the Unix epoch.
# TYPE wasmfarm_start_time_seconds gauge
wasmfarm_start_time_seconds 1.741944413e+09
`},
		{"sessions", `
# HELP wasmfarm_sessions_active Sessions held for the app.
# TYPE wasmfarm_sessions_active gauge
wasmfarm_sessions_active{app="/cart"} 17
wasmfarm_sessions_active{app="/counter"} 342
wasmfarm_sessions_active{app="/static"} 0
# HELP wasmfarm_sessions_created_total Sessions created by requests on this member.
# TYPE wasmfarm_sessions_created_total counter
wasmfarm_sessions_created_total{app="/cart"} 42
wasmfarm_sessions_created_total{app="/counter"} 404
# HELP wasmfarm_sessions_expired_total Sessions expired on this member.
# TYPE wasmfarm_sessions_expired_total counter
wasmfarm_sessions_expired_total{app="/cart"} 23
wasmfarm_sessions_expired_total{app="/counter"} 58
`},
		{"replication", `
# HELP wasmfarm_replication_messages_total Session replication messages sent to or applied from other members.
# TYPE wasmfarm_replication_messages_total counter
wasmfarm_replication_messages_total{app="/cart",direction="received"} 60
wasmfarm_replication_messages_total{app="/cart",direction="sent"} 120
wasmfarm_replication_messages_total{app="/counter",direction="received"} 3060
wasmfarm_replication_messages_total{app="/counter",direction="sent"} 2040
# HELP wasmfarm_replication_bytes_total Bytes of session replication messages sent or applied.
# TYPE wasmfarm_replication_bytes_total counter
wasmfarm_replication_bytes_total{app="/cart",direction="received"} 38400
wasmfarm_replication_bytes_total{app="/cart",direction="sent"} 76800
wasmfarm_replication_bytes_total{app="/counter",direction="received"} 391680
wasmfarm_replication_bytes_total{app="/counter",direction="sent"} 261120
# HELP wasmfarm_state_transfer_seconds How long the state transfer took when this member joined.
# TYPE wasmfarm_state_transfer_seconds gauge
wasmfarm_state_transfer_seconds{app="/cart"} 1.5
wasmfarm_state_transfer_seconds{app="/counter"} 0.25
# HELP wasmfarm_state_transfer_sessions Sessions received by the state transfer.
# TYPE wasmfarm_state_transfer_sessions gauge
wasmfarm_state_transfer_sessions{app="/cart"} 1234
wasmfarm_state_transfer_sessions{app="/counter"} 0
`},
		{"valve", `
# HELP wasmfarm_valve_requests_total Requests seen by the replication valve.
# TYPE wasmfarm_valve_requests_total counter
wasmfarm_valve_requests_total 5080
# HELP wasmfarm_valve_replications_total Deltas the replication valve sent.
# TYPE wasmfarm_valve_replications_total counter
wasmfarm_valve_replications_total 4360
# HELP wasmfarm_valve_seconds_total Time responses waited for replication, in seconds.
# TYPE wasmfarm_valve_seconds_total counter
wasmfarm_valve_seconds_total 2.5
# HELP wasmfarm_jvm_route_rewrites_total Session ids rewritten to this member's jvmRoute after a failover.
# TYPE wasmfarm_jvm_route_rewrites_total counter
wasmfarm_jvm_route_rewrites_total 6
`},
		{"cluster and channel", `
# HELP wasmfarm_cluster_messages_received_total Cluster messages received (including the bad and the ignored).
# TYPE wasmfarm_cluster_messages_received_total counter
wasmfarm_cluster_messages_received_total 3170
# HELP wasmfarm_cluster_send_errors_total Cluster sends that failed for at least one member.
# TYPE wasmfarm_cluster_send_errors_total counter
wasmfarm_cluster_send_errors_total 3
# HELP wasmfarm_channel_messages_total Messages through the channel's Throughput interceptor.
# TYPE wasmfarm_channel_messages_total counter
wasmfarm_channel_messages_total{direction="received"} 4070
wasmfarm_channel_messages_total{direction="sent"} 5060
# HELP wasmfarm_channel_bytes_total Bytes through the channel's Throughput interceptor (sent: times the destinations).
# TYPE wasmfarm_channel_bytes_total counter
wasmfarm_channel_bytes_total{direction="received"} 714000
wasmfarm_channel_bytes_total{direction="sent"} 918000
# HELP wasmfarm_channel_interceptor_info The channel's interceptors, position 0 at the top (always 1).
# TYPE wasmfarm_channel_interceptor_info gauge
wasmfarm_channel_interceptor_info{position="0",type="interceptors.Throughput"} 1
wasmfarm_channel_interceptor_info{position="1",type="interceptors.TcpFailureDetector"} 1
wasmfarm_channel_interceptor_info{position="2",type="interceptors.MessageDispatch"} 1
`},
		{"farm", `
# HELP wasmfarm_farm_transfers_total Incoming module transfers, by result.
# TYPE wasmfarm_farm_transfers_total counter
wasmfarm_farm_transfers_total{result="completed"} 3
wasmfarm_farm_transfers_total{result="corrupt"} 1
wasmfarm_farm_transfers_total{result="expired"} 1
# HELP wasmfarm_farm_deploys_total Modules deployed into the host, by result.
# TYPE wasmfarm_farm_deploys_total counter
wasmfarm_farm_deploys_total{result="failed"} 1
wasmfarm_farm_deploys_total{result="ok"} 4
# HELP wasmfarm_farm_bytes_total Module bytes sent and received by the farm.
# TYPE wasmfarm_farm_bytes_total counter
wasmfarm_farm_bytes_total{direction="received"} 3.145728e+06
wasmfarm_farm_bytes_total{direction="sent"} 2.097152e+06
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var names []string
			for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+)`).FindAllStringSubmatch(tc.want, -1) {
				names = append(names, m[1])
			}
			if err := testutil.CollectAndCompare(c, strings.NewReader(tc.want), names...); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestMetricsLint(t *testing.T) {
	for _, snap := range []func() Snapshot{func() Snapshot { return fakeSnapshot(0) }, standaloneSnapshot} {
		problems, err := testutil.CollectAndLint(newCollector(snap))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

// scrape gets /metrics from h and parses it.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	w := get(t, h, "/metrics")
	if w.Code != http.StatusOK {
		t.Fatalf("metrics: status %d: %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("metrics Content-Type = %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(w.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	return mfs
}

func TestMetricsScrape(t *testing.T) {
	f := &fakeNode{}
	h := NewHandler(HandlerConfig{Snapshot: f.Snapshot})
	sent := func(mfs map[string]*dto.MetricFamily) float64 {
		for _, m := range mfs["wasmfarm_channel_messages_total"].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "direction" && l.GetValue() == "sent" {
					return m.GetCounter().GetValue()
				}
			}
		}
		t.Fatal("no wasmfarm_channel_messages_total{direction=sent}")
		return 0
	}
	first := scrape(t, h)
	second := scrape(t, h)
	if a, b := sent(first), sent(second); a != 5000 || b != 5030 {
		t.Errorf("channel sent over two scrapes = %v, %v; want 5000, 5030 (one snapshot per scrape)", a, b)
	}
	if n := f.calls.Load(); n != 2 {
		t.Errorf("two scrapes took %d snapshots", n)
	}
	for _, name := range []string{"wasmfarm_up", "wasmfarm_sessions_active", "wasmfarm_valve_requests_total", "wasmfarm_farm_transfers_total"} {
		if first[name] == nil {
			t.Errorf("scrape lacks %s", name)
		}
	}
	for name := range first {
		if !strings.HasPrefix(name, "wasmfarm_") {
			t.Errorf("scrape has %s: the registry should hold only the node's collector", name)
		}
	}

	// A standalone node exports only what it has.
	st := scrape(t, NewHandler(HandlerConfig{Snapshot: standaloneSnapshot}))
	var names []string
	for name := range st {
		names = append(names, name)
	}
	sort.Strings(names)
	want := []string{"wasmfarm_app_info", "wasmfarm_http_bad_requests_total", "wasmfarm_http_slow_clients_total", "wasmfarm_members", "wasmfarm_node_info", "wasmfarm_ready", "wasmfarm_sessions_active", "wasmfarm_start_time_seconds", "wasmfarm_up"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("standalone series = %v, want %v", names, want)
	}
}

func TestMetricsDuplicatePath(t *testing.T) {
	s := standaloneSnapshot()
	s.Apps = append(s.Apps, s.Apps[0])
	mfs := scrape(t, NewHandler(HandlerConfig{Snapshot: func() Snapshot { return s }}))
	if n := len(mfs["wasmfarm_sessions_active"].GetMetric()); n != 1 {
		t.Errorf("two apps on one path gave %d series", n)
	}
}

func TestDashboard(t *testing.T) {
	h := NewHandler(HandlerConfig{Snapshot: standaloneSnapshot})
	tests := []struct {
		name, path, contentType string
		contains                []string
	}{
		{"page", "/", "text/html; charset=utf-8", []string{`<table id="members">`, `<table id="apps">`, `id="chart-messages"`, `src="assets/dashboard.js"`}},
		{"script", "/assets/dashboard.js", "text/javascript; charset=utf-8", []string{`fetch("status"`, "data-points"}},
		{"style", "/assets/dashboard.css", "text/css; charset=utf-8", []string{"prefers-color-scheme"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := get(t, h, tc.path)
			if w.Code != http.StatusOK {
				t.Fatalf("GET %s: %d", tc.path, w.Code)
			}
			if ct := w.Header().Get("Content-Type"); ct != tc.contentType {
				t.Errorf("Content-Type = %q, want %q", ct, tc.contentType)
			}
			body := w.Body.String()
			for _, s := range tc.contains {
				if !strings.Contains(body, s) {
					t.Errorf("%s lacks %s", tc.path, s)
				}
			}
		})
	}
	if csp := get(t, h, "/").Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	if w := get(t, h, "/nothing"); w.Code != http.StatusNotFound {
		t.Errorf("GET /nothing: %d", w.Code)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/status", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /status: %d", w.Code)
	}
}

// TestDashboardSelfContained: the embedded files name no other origin
// (the SVG namespace aside), so the page works offline.
func TestDashboardSelfContained(t *testing.T) {
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	for _, name := range []string{"index.html", "dashboard.js", "dashboard.css", "favicon.svg"} {
		f, err := assetsFS.Open("assets/" + name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range url.FindAllString(string(b), -1) {
			if m != "http://www.w3.org" {
				t.Errorf("%s refers to %s", name, m)
			}
		}
	}
}

func TestNewHandlerNilSnapshot(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(r.(string), "monitor: ") {
			t.Errorf("recover() = %v, want a monitor: panic", r)
		}
	}()
	NewHandler(HandlerConfig{})
}

// TestConcurrentRequests: scrapes, status and page requests at once, as
// a Prometheus server and a few open dashboards make them (run with -race).
func TestConcurrentRequests(t *testing.T) {
	f := &fakeNode{}
	h := NewHandler(HandlerConfig{Snapshot: f.Snapshot})
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan string, workers*each)
	for i := range workers {
		wg.Go(func() {
			path := []string{"/metrics", "/status", "/", "/assets/dashboard.js"}[i%4]
			for range each {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
				if w.Code != http.StatusOK || w.Body.Len() == 0 {
					errs <- fmt.Sprintf("GET %s: %d, %d bytes", path, w.Code, w.Body.Len())
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := f.calls.Load(); n != workers/2*each {
		t.Errorf("%d snapshots for %d status and metrics requests", n, workers/2*each)
	}
}
