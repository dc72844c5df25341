// Package httpbench measures the wasmfarm HTTP host: requests per second
// and latency of the counter app against a native Go handler doing the same
// work (a session counter, with the same session manager and JSON
// response), served on loopback in the same run, so the ratio stays
// meaningful on a busy machine; plus the memory of pooled instances and
// idle sessions, and the cold and warm compile time of an app.
//
// The load generator is a small HTTP/1.1 client over raw keep-alive
// connections, one session cookie per connection; it runs in-process or,
// with [Config.LoadCommand], as a separate process so that the server's CPU
// time per request can be measured alone. If wrk is installed,
// [Config.Wrk] drives the targets with it instead.
//
// The command
//
//	wasmfarm bench http [-connections 16] [-duration 5s] [-json] [-wrk]
//
// runs it.
package httpbench
