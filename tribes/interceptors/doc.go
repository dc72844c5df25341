// Package interceptors provides the optional layers of a [tribes.Channel]'s
// stack that Tomcat configures with <Interceptor className="...">: each
// is a Go port of the Tribes 10.1 interceptor of the same name and, where
// it changes the bytes on the wire, produces and accepts exactly what the
// Java one does (shared/spec/tribes-wire.md §5, §7–§11).
//
//	Tribes class                        Go type              wire effect
//	GzipInterceptor                     [Gzip]               gzip + option bit 0x100
//	EncryptInterceptor (10.1.56+)       [Encrypt]            IV ‖ AES-GCM(ts ‖ msg) ‖ tag
//	DomainFilterInterceptor             [DomainFilter]       none (filters)
//	OrderInterceptor                    [Order]              + int32 sequence per destination
//	FragmentationInterceptor            [Fragmentation]      + trailer byte; chunks of maxSize
//	ThroughputInterceptor               [Throughput]         none (counts)
//	StaticMembershipInterceptor         [StaticMembership]   MEMBER_START / MEMBER_STOP messages
//	TcpPingInterceptor                  [TCPPing]            TCP_PING_DATA messages
//
// (TcpFailureDetector and MessageDispatchInterceptor live in package
// tribes, as [tribes.FailureDetector] and [tribes.MessageDispatcher].)
//
// # Building a stack
//
// Each interceptor has a Config struct whose fields carry Tomcat's
// attribute names in their documentation; the zero value of a field means
// Tomcat's default; a nil Logger means the channel's logger, and every
// interceptor's Stats method returns its counters. The stack is listed top
// (nearest the application) first, in the order of the <Interceptor>
// elements:
//
//	gz, _ := interceptors.NewGzip(interceptors.GzipConfig{})
//	enc, err := interceptors.NewEncrypt(interceptors.EncryptConfig{KeyEnv: "WASMFARM_CLUSTER_KEY"})
//	...
//	cfg := tribes.DefaultConfig()
//	cfg.Interceptors = []tribes.Interceptor{
//		tribes.NewMessageDispatcher(tribes.DispatcherConfig{}),
//		gz, enc, // gzip above encrypt, on every node
//		tribes.NewFailureDetector(tribes.FailureDetectorConfig{}),
//	}
//	ch, err := tribes.New(cfg)
//
// Interceptors that change the layout must be configured alike on every
// node: the same set, the same option flags, the same relative order.
// Transforms are undone in reverse order on receipt, so the sender's
// Gzip-then-Encrypt is the receiver's decrypt-then-gunzip.
//
// # Received messages
//
// A message an interceptor cannot decode (a bad gzip stream, a wrong key,
// a replay, a missing trailer) is counted in its Stats and dropped (Gzip
// and Encrypt also log it, at most every 10 s): the receiver still
// acknowledges it normally (never FAIL_ACK), as Tribes does. A received message is valid
// only until MessageReceived returns, so an interceptor that transforms
// the bytes does so into a pooled buffer that it takes back when the call
// above it returns, and one that holds messages (Order, Fragmentation)
// copies them. The send side likewise restores msg.Data when the call
// below returns; the transport has copied or written the bytes by then.
// In steady state nothing is allocated per message on the common paths:
// Gzip and Encrypt both ways, Order for messages that arrive in order,
// Fragmentation for messages sent whole or split (reassembly copies), and
// the pass-through interceptors.
//
// # Writing your own
//
// An interceptor embeds [tribes.BaseInterceptor] and overrides what it
// needs, calling Next (down) or Previous (up) to pass things on; see the
// package example.
//
// # Rationale
//
// Encrypt supports AES/GCM/NoPadding only. Tribes also accepts CBC, CFB and
// OFB with PKCS5Padding after a warning, but those modes have no integrity
// and no test vectors were taken from Java for them; a node configured with
// them fails to start with [ErrUnsupportedAlgorithm].
//
// Order and Fragmentation bound the memory that senders can make a node
// hold (MaxQueuedBytes, MaxPendingBytes, MaxMessageSize, MaxFragments),
// which Tribes does not; the defaults are generous.
package interceptors
