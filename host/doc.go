// Package host is the HTTP host of a wasmfarm node: it serves WebAssembly
// web apps, each mounted at a context path, with Tomcat-style sessions.
//
// A [Server] holds an [Engine] (the node's jvmRoute and its contexts), one
// [Context] per deployed app, and a pipeline of [Valve]s that every request
// passes before the context's basic valve runs the app. The request flow:
//
//  1. The connector reads the request: the host's own HTTP/1.1 connector
//     ([ConnectorH1], the default; package host/internal/h1 reads the
//     requests) or net/http's server ([ConnectorNetHTTP]), as
//     [Config.Connector] says. [Server.ServeHTTP] then finds the context by
//     the longest matching path and the requested session id: the
//     JSESSIONID cookie, else a ";jsessionid=" path parameter.
//  2. The valves run (the replication work adds its ReplicationValve and
//     JvmRouteBinderValve through [Config.Valves]).
//  3. The basic valve reads the body (within [Config.MaxRequestBodyBytes]),
//     takes an instance from the app's pool (package host/wasm) and calls
//     the guest's handle export under the request deadline. The guest reads
//     the request, writes the response and uses its session through the
//     app ABI (docs/abi.md). Every session set and remove is recorded in a
//     [session.Delta]; only when handle succeeds is the delta committed to
//     the context's [session.Manager] and exposed as [Exchange.Delta].
//  4. The response, buffered so far, is written with the session cookie
//     (Path = context path, HttpOnly, SameSite=Lax, Secure over TLS) when
//     the request created a session or changed its id.
//
// # Failures
//
// A guest past its deadline gets 503; a trap, exit, out-of-memory or panic
// gets 500; the instance is discarded and replaced, and the session keeps
// its last committed state. A guest whose final status is 1xx (an interim
// status, not an answer) gets 500 too, with a warning naming the status;
// its instance is kept, its session changes are dropped. Oversized bodies
// get 413, oversized headers 431, a full session table
// ([session.Config.MaxActiveSessions]) 503. A request whose session
// changes the manager refuses gets 500 (concurrent requests together
// passed the session's limits) or 503 (the app's manager is closing)
// instead of the app's answer, which would claim a change not kept; a
// session another request invalidated meanwhile keeps the app's answer,
// as if this request had run just before. The h1 connector answers a
// request it cannot read unambiguously, or does not serve, with 400, 405
// (CONNECT), 417, 431, 501 or 505 and closes the connection
// ([Server.BadRequests] counts them). It closes a connection whose client
// reads no response for [Config.WriteTimeout]. Both connectors close a
// connection whose request did not arrive whole within
// [Config.ReadTimeout] (a body the host was reading for the app gets 408
// first). [Server.SlowClients] counts both on h1 (a late body, not a late
// head).
//
// # Example
//
//	srv, err := host.New(host.Config{JvmRoute: "jvm_a"})
//	...
//	err = srv.Deploy(ctx, "/counter", wasmapps.Counter())
//	...
//	go srv.ListenAndServe("127.0.0.1:8080")
//	...
//	srv.Shutdown(ctx)
//
// Concurrent requests on one session are served in parallel; their deltas
// commit in the order the requests finish, so the last writer wins, as in
// Tomcat.
package host
