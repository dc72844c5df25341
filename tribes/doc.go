// Package tribes is wasmfarm's group communication layer, a Go port of
// Apache Tribes 10.1 that speaks its wire protocol: a wasmfarm member and a
// Tomcat member can exchange byte messages.
//
// # The transport
//
// A [Receiver] (Tribes' NioReceiver) accepts connections on the [nio]
// reactor, decodes frames, acknowledges them as their [Options] ask, and
// hands each [Message] to a [ReceiveFunc] on a pool of workers. A [Sender]
// (ReplicationTransmitter with PooledParallelSender) writes a message to
// many members at once and waits for their ACKs; small acknowledged
// messages to a member share one pipelined connection, large ones take
// pooled connections:
//
//	recv, err := tribes.NewReceiver(tribes.ReceiverConfig{Address: "127.0.0.1"},
//		func(m *tribes.Message) error {
//			fmt.Printf("%s from %v\n", m.Data, m.Source)
//			return nil // an error answers FAIL_ACK to a synchronous sender
//		})
//	...
//	s, err := tribes.NewSender(tribes.SenderConfig{}, local)
//	err = s.Send(ctx, members, &tribes.Message{
//		Options: tribes.OptByteMessage | tribes.OptUseAck | tribes.OptSynchronizedAck,
//		Data:    []byte("hello"),
//	})
//
// # Send options
//
// The [Options] bits are Tribes' SEND_OPTIONS: [OptUseAck] makes the
// receiver acknowledge a message when it has read it; with
// [OptSynchronizedAck] it acknowledges after processing it (and answers
// FAIL_ACK when processing failed). The answers of a connection leave in
// message order, so an ACK behind a synchronized one waits for it, as in
// Tribes. [OptAsynchronous] without an ACK lets the sender queue the
// message and return at once, and queued messages to one member share
// system calls. [OptByteMessage] marks raw bytes (as opposed to
// Java-serialised objects).
//
// # Ownership and concurrency
//
// A received Message and its Data belong to the receiver and are valid only
// while the ReceiveFunc runs. The messages of one connection are processed
// in order, one at a time; those of different connections concurrently. A
// message resent after an error or a FAIL_ACK can arrive twice; both copies
// carry the same UniqueID. Sender and Receiver are safe for concurrent use.
//
// # Untrusted input
//
// Every decoder enforces a size limit (ReceiverConfig.MaxMessageSize,
// 64 MiB by default) and returns a [*DecodeError] or [*SizeError]; a
// malformed or oversized frame closes its connection, is counted in
// [ReceiverStats].BadFrames and never disturbs other connections.
package tribes
