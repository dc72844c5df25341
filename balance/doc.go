// Package balance is a sticky HTTP load balancer for the members of a
// wasmfarm cluster, the piece users put in front when they have no
// mod_proxy_balancer or HAProxy of their own (it runs as "wasmfarm balance").
//
// # Routing
//
// Each member issues session ids of the form <HEX>.<jvmRoute>, in the
// JSESSIONID cookie or in a ";jsessionid=" path parameter. A [Balancer]
// sends a request whose session id ends in a member's route to that member;
// a request without a session id, or with an unknown route, or whose member
// is down, goes to the next healthy member in round-robin order. Cookies and
// paths are passed through untouched: after a failover the member that
// receives the session rewrites its id to its own route (the jvmRoute
// binder), and the client's next requests stick to that member.
//
// # Health
//
// Passive: a request that fails at the transport level (connection refused
// or reset, dial or response-header timeout) marks its member down and is
// sent again to another member, so the client sees no error. Only requests
// that can safely be sent twice are retried: those whose body is empty or
// was buffered whole ([Config.MaxRetryBody], 1 MiB by default, so ordinary
// POSTs are retried too). A failure after the member started answering is
// never retried. Active: every [Config.HealthInterval] a goroutine sends
// GET [Config.HealthPath] to each member; any HTTP response, even a 404,
// counts as alive and brings the member back; a transport error marks it
// down. A member marked down is also tried again by traffic once
// [Config.FailTimeout] has passed, so members return even with probing off.
//
// When every member is down a request still tries each of them once, in
// case one is back, before answering 502 Bad Gateway.
//
// # Forwarding
//
// Requests go through one [net/http/httputil.ReverseProxy] per member over
// one shared [net/http.Transport]. X-Forwarded-For, X-Forwarded-Host and
// X-Forwarded-Proto are set; the Host header of the client is kept.
// [Balancer.Stats] reports per-member counters.
package balance
