// Package tribestest provides an in-memory network of Tribes members, for
// testing everything above the transport (channels, interceptors, session
// managers, farming) without sockets, fast and deterministically.
//
// A [Network] holds [Node]s. Each node has a [Membership] (a
// [tribes.Membership]) and a [Transport] (a [tribes.Transport] and
// [tribes.Prober]), which plug into a channel's configuration:
//
//	net := tribestest.NewNetwork()
//	a, b := net.NewNode(), net.NewNode()
//	chA, _ := tribes.New(tribes.Config{Transport: a.Transport(), Membership: a.Membership()})
//	chB, _ := tribes.New(tribes.Config{Transport: b.Transport(), Membership: b.Membership()})
//
// # Membership
//
// Joining, leaving and crashing are instantaneous: the events reach every
// other running membership before the call that caused them returns, in
// node creation order, so tests need no sleeps and see the same order on
// every run. [Membership.Stop] is a graceful leave (the record carries
// BABY-ALEX); [Node.Crash] is kill -9 (no BABY-ALEX, and the node's
// transport stops too); [Node.Restart] lets a crashed node start again.
//
// # Messages
//
// [Transport.Send] follows the real transport's rules for ACKs: with
// OptUseAck|OptSynchronizedAck it waits for the receiver's ReceiveFunc, and
// an error there fails the send with tribes.ErrFailAck after one resend,
// so the receiver sees the message twice, as with Tomcat. The messages
// from one node to another are processed in order; those of different
// senders concurrently. [Network.Settle] waits until every queued message
// has been processed.
//
// # Failures
//
// [Network.Partition] (and [Network.Isolate]) cut links in both directions:
// messages are lost, acknowledged sends time out, probes fail, and the two
// sides see each other disappear; [Network.Heal] reverses it.
// [Network.DropMessages] loses the messages of one direction only, without
// any membership change, like a member whose heartbeats arrive but whose
// TCP port is unreachable.
//
// # Real sockets
//
// [McastConfig] returns a multicast configuration that is safe for tests
// with real sockets (loopback only, TTL 0, a random group and port), and
// [Network.Dial] lets a [tribes.StaticMembership] check in-memory nodes.
package tribestest
