// Package sdk is the Go SDK for wasmfarm apps: WebAssembly web apps that a
// wasmfarm node serves, with sessions the cluster replicates.
//
// An app is a Go main package built as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o app.wasm .
//
// It registers its handler in an init function (a reactor's main is never
// called):
//
//	package main
//
//	import "github.com/wasmfarm/wasmfarm/wasmapps/sdk"
//
//	func init() {
//		sdk.HandleFunc(func(w sdk.ResponseWriter, r *sdk.Request, s *sdk.Session) {
//			n, _ := s.GetInt("visits")
//			s.SetInt("visits", n+1)
//			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
//			fmt.Fprintf(w, "session %s on node %s: %d visits\n", s.ID(), sdk.Node(), n+1)
//		})
//	}
//
//	func main() {}
//
// # Requests, responses and sessions
//
// A handler receives the request, a [ResponseWriter] shaped like
// net/http's, and the request's [Session]. The session is created on first
// need: ID, IsNew, the creation and access times, Set and the id and idle
// limit changes create it; Get, Keys, Exists, Remove and Invalidate do not.
// Attribute values are opaque bytes (with string and int helpers). Every Set
// and Remove crosses to the host, which records them as the request's delta
// and commits it only if the handler returns normally; a handler that
// panics gets a 500 and leaves the session as it was.
//
// Concurrent requests on one session run in different instances; the last
// one to finish wins for an attribute both wrote, as in Tomcat.
//
// One instance serves one request at a time, so package-level state is
// per instance, not per app: keep state in the session.
//
// # ABI
//
// The SDK speaks the wasmfarm app ABI (docs/abi.md in the repository,
// constants in package host/abi). Outside GOOS=wasip1 this package holds
// only its portable parts ([Header]).
package sdk
