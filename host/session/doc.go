// Package session holds the HTTP sessions of a wasmfarm host: the [Session]
// type, the per-request [Txn] through which an app reads and writes a
// session, the [Delta] that a request produces, the [Manager] interface that
// session managers implement, the [StandardManager] (one node, no
// replication) and a binary codec for sessions and deltas that replication
// and state transfer ship between members.
//
// # Semantics
//
// Attribute values are opaque bytes. A read never changes shared state: an
// app reads and writes a session through a [Txn], which records every Set and
// Remove in order as the request's [Delta] and lets the request read its own
// writes. The host hands the delta to [Manager.Commit] only when the app's
// handler succeeded; a failed request leaves the session in its last
// committed state. A session created by a request becomes visible to other
// requests when that request commits.
//
// A session expires when it is idle beyond its max inactive interval
// (never when that is zero or negative), counted from its last committed
// request or from the start of a later request that opened it on this
// member (Tomcat's thisAccessedTime), so that it does not expire under a
// running request. Its last accessed time is that of the last committed
// request.
//
// Concurrent requests on one session are allowed; their deltas are applied
// in commit order, so the last writer of an attribute wins, as in Tomcat.
//
// Ids carry at least 128 random bits from crypto/rand, written as uppercase
// hex as Tomcat does, and end in ".<jvmRoute>" when the manager has a route.
//
// # Rationale
//
// Sessions are kept compact: a session is one small struct holding its id,
// times and a sorted slice of attributes, so that 10,000 idle sessions cost
// well under 300 bytes each beyond their attribute bytes (see
// TestSessionOverhead).
package session
