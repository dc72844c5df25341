// Package javapeer runs a real Apache Tribes node (catalina-tribes.jar from
// Tomcat 10.1) as a child process and drives it from Go, for wire-interop
// tests of package tribes.
//
// The Java side is the harness of package
// [github.com/wasmfarm/wasmfarm/interop] (TribesPeer.java): a GroupChannel
// whose receiver, multicast membership and interceptor stack come from
// [Config], that reports what happens as JSON lines and takes commands on
// stdin. javapeer compiles it once (cached on disk, see [Toolchain.Build]),
// starts the JVM, parses the events into [Event] values queued per kind,
// and wraps the commands:
//
//	p := javapeer.StartT(t, javapeer.Config{Interceptors: javapeer.DefaultStack()})
//	res, err := p.Send(ctx, goMember, 6, javapeer.Bytes([]byte("hi"))) // Java -> Go, use_ack|sync
//	// res.OK: Java's send() returned normally
//	msg, err := p.WaitMessage(5 * time.Second) // Go -> Java: what the listener got
//
// The Java node can send to a member it has never seen (only the host,
// port and unique id are needed), so transport-level tests need no
// membership on the Go side. With [Config.Membership] it runs McastService
// bound to 127.0.0.1; [Config.Interceptors] adds MessageDispatchInterceptor,
// TcpFailureDetector, GzipInterceptor, EncryptInterceptor and the others
// in the given order, their properties set like attributes in server.xml.
//
// # What the events tell
//
// A [Message] carries the options and bytes as the Java listener saw them
// (after every interceptor), and the options, length and SHA-256 of the
// message as it came off the wire. A message that reached the channel but
// not the listener (a failure-detector probe, a message dropped by an
// interceptor or that Java could not deserialise) is reported as dropped
// ([Peer.WaitDropped]). Payloads larger than [Config.HexLimit] are
// reported by length and SHA-256 only; [Message.Is] compares either way.
//
// # Processes
//
// Each [Peer] is one JVM (java -Djava.net.preferIPv4Stack=true, a small
// heap and the client compiler, so it starts in about a second).
// [Peer.Close] stops the channel and waits; a JVM that does not stop is
// killed by its PID, and the harness exits by itself when its stdin closes
// or after [Config.MaxLifetime]. Only the process Start started is ever
// signalled.
//
// # Prerequisites
//
// A JDK (java and javac) and the jars: on Debian, `apt-get install -y
// default-jdk-headless libtomcat10-java`. [FindToolchain] looks in
// $JAVA_HOME, $PATH, $TRIBES_JAR, $JULI_JAR, $CATALINA_HOME and the
// Debian locations; when something is missing its error wraps
// [ErrNotFound] and [Require] skips the test.
package javapeer
