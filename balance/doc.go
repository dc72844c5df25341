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
// or reset, dial or response-header timeout) marks its member down. It is
// sent again to another member, so the client sees no error, when that is
// safe: when it never reached the member (the connection could not be
// made, or the member refused it while draining), or when it is
// idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE, or a request with an
// Idempotency-Key header, the rule of net/http's Transport). A POST that
// reached a member which then failed gets 502 Bad Gateway: the member may
// have acted on it, and sending it again could run it twice. The body must
// also have been buffered whole ([Config.MaxRetryBody], 1 MiB by default).
// A failure after the member started its answer is never retried; an
// informational answer (100 Continue, 103 Early Hints) does not count.
// Active: every [Config.HealthInterval] a goroutine sends GET
// [Config.HealthPath] to each member; any HTTP response, even a 404,
// counts as alive and brings the member back; a transport error marks it
// down. A member marked down is also tried again by traffic once
// [Config.FailTimeout] has passed, so members return even with probing off.
//
// Draining: a member being drained answers a request that would create a
// session with 503 and [DrainingHeader]. The balancer sends that request
// to another member and sends new clients to the others for
// [Config.FailTimeout], while requests for the draining member's own
// sessions still go to it (HAProxy's drain state).
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
