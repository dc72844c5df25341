// Package nio is a small TCP reactor: it accepts connections and drives a
// [Handler] with their bytes, on a few event loops instead of a goroutine per
// connection. It knows nothing of the protocols above it.
//
// On Linux it runs on epoll (golang.org/x/sys/unix); elsewhere, or with the
// build tag nio_portable, on the net package with goroutines per connection.
// Both builds present the same API, callbacks and guarantees and pass the
// same tests.
//
//	srv, err := nio.Listen("tcp", "127.0.0.1:4000", nio.DefaultConfig(), h)
//	if errors.Is(err, syscall.EADDRINUSE) {
//		// try the next port
//	}
//	defer srv.Close()
//
// # Threading contract
//
// Each connection belongs to one event loop goroutine, which runs all of its
// callbacks: [Handler.OnOpen] once, then [Handler.OnData] for input, then
// [Handler.OnClose] exactly once. Callbacks of one connection never run
// concurrently with each other; callbacks of connections on different loops
// do. A loop serves many connections, so a callback must not block: hand
// slow work to another goroutine and answer later with [Conn.Write].
//
// The data passed to OnData is valid only until OnData returns (it may be the
// loop's shared read buffer). OnData returns how many bytes it consumed from
// the front; the rest is copied into the connection's own pooled buffer and
// presented again, followed by new bytes, so a frame split across reads is
// simply left unconsumed until it is complete. Config.MaxBuffered bounds what
// may stay unconsumed.
//
// [Conn.Write], [Conn.Close], [Conn.Resume], [Conn.SetContext] and
// [Conn.Context] are safe from any goroutine. Write never blocks on the peer:
// what the socket does not take at once is queued (copied into pooled
// buffers, at most Config.MaxPendingWrite bytes) and flushed by the loop when
// the socket becomes writable. [Conn.Pause] is called from OnData to stop
// reading (backpressure); Resume, from anywhere, presents the leftovers again
// and goes on reading.
//
// [Server.Close] stops accepting, closes every connection (OnClose runs with
// [ErrServerClosed]) and returns after every goroutine of the server has
// exited. It must not be called from a callback.
//
// # The epoll build
//
// Each loop owns an epoll instance (EPOLL_CLOEXEC) and an eventfd. Other
// goroutines hand it work (a new connection, a close, a resume) through a
// task queue and write to the eventfd only when a compare-and-swap says the
// loop may be sleeping. The listener is non-blocking and watched by loop 0,
// which accepts until EAGAIN (at most 256 per turn; the listener is
// level-triggered) and deals new connections round-robin to the
// loops; each loop alone owns its connection map, so the read path takes no
// lock. Connections are registered edge-triggered (EPOLLIN, EPOLLOUT,
// EPOLLRDHUP) with TCP_NODELAY set. A loop reads into one buffer shared by its
// connections and copies only leftovers; a connection that keeps sending is
// read at most Config.MaxReadPerWake bytes per turn and then read again on the
// next turn (without waiting for an edge that will not come), so it cannot
// starve the others. [Conn.Expect] lets a handler have the rest of a large
// frame read straight into the connection's buffer.
//
// A loop never blocks in epoll_wait. A goroutine blocked in a system call
// keeps its P, so idle loops would hold the Ps the rest of the process needs
// (an HTTP server, the goroutines the callbacks woke) until the runtime's
// monitor took them back, 20 µs to 10 ms later. A loop instead polls its
// epoll instance without waiting and, when nothing is ready, parks in the Go
// netpoller on the epoll descriptor itself (it becomes readable when any of
// its descriptors has an event), holding neither a P nor a thread.
//
// # The portable build
//
// The portable build uses net.Listener and, per connection, one reader
// goroutine (which runs the callbacks, so the ordering guarantees are the
// same) and one writer goroutine. Config.Loops and Config.MaxReadPerWake do
// not apply. Every written byte passes through the queue, so a single Write
// larger than MaxPendingWrite fails there. On Conn.Close the epoll build
// offers the queued bytes to the socket once, without blocking; the portable
// writer gets up to a second to flush them.
package nio
