// Package tribesconfig reads the <Channel> element of a Tomcat server.xml,
// as users paste it from their <Cluster>, into a [tribes.Config]:
//
//	cfg, warnings, err := tribesconfig.Load("server.xml")
//	for _, w := range warnings {
//		log.Print(w) // server.xml:36:1: warning: [Cluster/Channel/Receiver] attribute "seceltorTimeout": ... did you mean "selectorTimeout"?
//	}
//	if err != nil {
//		return err // unknown classes, bad values: every one, with its line
//	}
//	ch, err := tribes.New(cfg)
//
// [Load] and [Parse] accept a whole server.xml (the only <Cluster> in it),
// a <Cluster> element or a bare <Channel>; [Loader.FromCluster] and
// [FromElement] take an element parsed with package internal/serverxml,
// whose leniency (missing blanks, typographic quotes, wrong case and so on)
// is described there. Tomcat's class and attribute names are mapped to
// wasmfarm's; an attribute that maps to nothing is a warning with a
// did-you-mean suggestion, a Tomcat attribute wasmfarm does not need is a
// note, and an unknown className is an error naming the element, the class,
// the line and the classes known for that element. Short class names
// ("TcpFailureDetector") are accepted when unambiguous; names in another
// case, or in Tomcat 5.5's packages, with a warning. A <Cluster> without a
// <Channel> gets SimpleTcpCluster's default channel; one whose <Channel>
// start tag was lost has its <Membership>, <Receiver>, <Sender> and
// <Interceptor> elements read as an implied channel's, with a warning.
//
// # Misplaced elements
//
// When a <Cluster> has a <Channel>, a <Membership>, <Receiver>, <Sender>
// or <Interceptor> written directly in the cluster, next to the channel,
// is read by nothing: Tomcat ignores it with a log line, here it gets a
// warning naming it and its line. So does a <Transport>, <Member> or
// <LocalMember> directly in a <Cluster> (with or without a <Channel>):
// they belong in the <Sender> and a StaticMembershipInterceptor. An
// EncryptInterceptor the channel does not read (there, inside another
// element, or in a <Channel> that a second one replaces) is an error,
// [ErrMisplaced], rather than a warning: the file asks for encryption,
// and a node that starts anyway would send its cluster traffic, sessions
// included, in plaintext, where one that refuses to start is noticed and
// fixed.
//
// # Mapping
//
//	<Channel className=                                  tribes.Config
//	  GroupChannel                                       heartbeatSleeptime → HeartbeatInterval (ms)
//	<Membership className=
//	  McastService                                       Mcast: address, port, frequency (ms), dropTime (ms), bind,
//	                                                     ttl, localLoopbackDisabled; domain → Domain;
//	                                                     mcastAddr, mcastPort, mcastFrequency, mcastDropTime and
//	                                                     mcastBindAddress (deprecated names) with a note
//	  StaticMembershipService + <Member>, <LocalMember>  Membership = tribes.NewStatic: pingInterval → Frequency,
//	                                                     expirationTime → DropTime, connectTimeout (all ms)
//	  cloud.CloudMembershipService                       Membership = tribes.NewDNS, with
//	    membershipProviderClassName="dns"                 membershipProviderClassName "dns" or DNSMembershipProvider;
//	                                                     the name from DNS_MEMBERSHIP_SERVICE_NAME (as Tomcat) or the
//	                                                     wasmfarm attribute dnsMembershipServiceName; looked up every
//	                                                     heartbeatSleeptime
//	<Receiver className=
//	  nio.NioReceiver (bio.BioReceiver, with a warning)  Receiver: address, port (0: any free port), autoBind, maxThreads
//	<Sender className=ReplicationTransmitter>
//	  <Transport className=
//	    nio.PooledParallelSender (bio.PooledMultiSender)  Sender: timeout (ms), maxRetryAttempts (0: never), poolSize,
//	                                                     maxWait (ms)
//	<Interceptor className=   (the stack, top first, in document order)
//	  TcpFailureDetector                                 tribes.NewFailureDetector: connectTimeout, performSendTest,
//	                                                     performReadTest, readTestTimeout (ms), removeSuspectsTimeout
//	                                                     (seconds, as in Tomcat), optionFlag
//	  MessageDispatchInterceptor,                        tribes.NewMessageDispatcher: maxQueueSize (bytes), maxThreads,
//	  MessageDispatch15Interceptor                       alwaysSend (false: FailWhenFull); optionFlag is fixed at 8
//	  GzipInterceptor                                    interceptors.NewGzip: optionFlag, compressionMinSize,
//	                                                     statsEnabled + interval
//	  EncryptInterceptor                                 interceptors.NewEncrypt: encryptionKey, encryptionAlgorithm,
//	                                                     replayWindowTime (ms), replayWindowMessageCount
//	  DomainFilterInterceptor                            interceptors.NewDomainFilter: domain, logInterval
//	  OrderInterceptor                                   interceptors.NewOrder: optionFlag, expire (ms),
//	                                                     forwardExpired, maxQueue
//	  FragmentationInterceptor                           interceptors.NewFragmentation: optionFlag, maxSize, expire (ms)
//	  ThroughputInterceptor                              interceptors.NewThroughput: interval
//	  StaticMembershipInterceptor + <Member>,            interceptors.NewStaticMembership: optionFlag, members
//	    <LocalMember>
//	  TcpPingInterceptor                                 interceptors.NewTCPPing: optionFlag, useThread, interval (ms),
//	                                                     staticOnly
//
// Class names are those of org.apache.catalina.tribes (group,
// membership, transport, group.interceptors). A <Member> (className
// StaticMember) has host (an IP address, or Tomcat's "{10,0,0,1}" byte
// form; host names are refused rather than resolved once at load time),
// port, securePort, udpPort, uniqueId ("{16 signed bytes}", 32 hex digits
// or a UUID) and domain; a <LocalMember> has uniqueId and domain, which
// become the channel's UniqueID and Domain. optionFlag takes a number or
// option names, as channelSendOptions does. Without <Interceptor>
// elements a channel in a <Cluster> gets the default stack (failure
// detector and dispatcher, Config.Interceptors nil) and a bare <Channel>
// only the dispatcher, as in Tomcat.
//
// # Accepted but not used
//
// These Tomcat attributes are valid but have no wasmfarm equivalent; each
// one present gets a note (level [serverxml.LevelNote]) saying why, not an
// unknown-attribute warning:
//
//   - GroupChannel: jmxEnabled, jmxDomain, jmxPrefix, optionCheck, name;
//     heartbeat="false" is a warning (the heartbeat always runs).
//   - McastService: soTimeout, recoveryEnabled, recoveryCounter,
//     recoverySleepTime (not needed: after a send or receive error the
//     service keeps going and retries; it never stops itself).
//   - StaticMembershipService: rpcTimeout, useThread (members are checked
//     with a TCP connect; no RPC messages are exchanged).
//   - CloudMembershipService: connectTimeout, readTimeout, expirationTime.
//   - NioReceiver: selectorTimeout, timeout, maxIdleTime, minThreads,
//     maxTasks, direct, useBufferPool and the socket options rxBufSize,
//     txBufSize, udpRxBufSize, udpTxBufSize, soKeepAlive, soLingerOn,
//     soLingerTime, soReuseAddress, soTrafficClass, tcpNoDelay, ooBInline;
//     securePort and udpPort other than -1 are warnings (neither TLS nor
//     UDP is supported).
//   - PooledParallelSender: keepAliveCount, keepAliveTime, directBuffer and
//     the same socket options; throwOnFailedAck="false" and
//     udpBased="true" are warnings.
//   - MessageDispatchInterceptor: maxSpareThreads, keepAliveTime,
//     useExecutor.
//   - EncryptInterceptor: providerName, optionFlag; DomainFilterInterceptor
//     and ThroughputInterceptor: optionFlag.
//   - <LocalMember>: host, port, securePort, udpPort (the receiver's).
//
// # Not supported
//
// Errors wrapping [ErrNotSupported]: CloudMembershipService with the
// Kubernetes API provider (its default), TwoPhaseCommitInterceptor,
// SimpleCoordinator, NonBlockingCoordinator, and <ChannelListener> or
// <MembershipListener> elements (Java classes). Tomcat's ${property}
// substitution is not done. StaticMembershipService here checks members
// with a TCP connect only; a Tomcat node running StaticMembershipService
// expects RPC messages, so mixed clusters should use
// StaticMembershipInterceptor instead (spec §10).
//
// # Extending
//
// A [Loader] with its own [Registry] (start from [DefaultRegistry]) maps
// more classes; a [Factory] reads its element through a
// [serverxml.Binder], so that unused attributes become warnings. The host's
// loaders for the rest of <Cluster> use the same pattern.
package tribesconfig
