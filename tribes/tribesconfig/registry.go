package tribesconfig

import (
	"github.com/wasmfarm/wasmfarm/internal/serverxml"
	"github.com/wasmfarm/wasmfarm/tribes"
)

// Element kinds of the <Channel> subtree, the kinds of a [Registry].
const (
	KindChannel     = "Channel"
	KindMembership  = "Membership"
	KindReceiver    = "Receiver"
	KindSender      = "Sender"
	KindTransport   = "Transport"
	KindInterceptor = "Interceptor"
	KindMember      = "Member" // <Member> and <LocalMember> of static membership
)

// Tomcat class names the default registry knows.
const (
	GroupChannel = "org.apache.catalina.tribes.group.GroupChannel"

	McastService            = "org.apache.catalina.tribes.membership.McastService"
	StaticMembershipService = "org.apache.catalina.tribes.membership.StaticMembershipService"
	CloudMembershipService  = "org.apache.catalina.tribes.membership.cloud.CloudMembershipService"
	StaticMember            = "org.apache.catalina.tribes.membership.StaticMember"

	NioReceiver            = "org.apache.catalina.tribes.transport.nio.NioReceiver"
	BioReceiver            = "org.apache.catalina.tribes.transport.bio.BioReceiver"
	ReplicationTransmitter = "org.apache.catalina.tribes.transport.ReplicationTransmitter"
	PooledParallelSender   = "org.apache.catalina.tribes.transport.nio.PooledParallelSender"
	PooledMultiSender      = "org.apache.catalina.tribes.transport.bio.PooledMultiSender"

	interceptorPkg               = "org.apache.catalina.tribes.group.interceptors."
	TcpFailureDetector           = interceptorPkg + "TcpFailureDetector"
	MessageDispatchInterceptor   = interceptorPkg + "MessageDispatchInterceptor"
	MessageDispatch15Interceptor = interceptorPkg + "MessageDispatch15Interceptor"
	GzipInterceptor              = interceptorPkg + "GzipInterceptor"
	EncryptInterceptor           = interceptorPkg + "EncryptInterceptor"
	DomainFilterInterceptor      = interceptorPkg + "DomainFilterInterceptor"
	OrderInterceptor             = interceptorPkg + "OrderInterceptor"
	FragmentationInterceptor     = interceptorPkg + "FragmentationInterceptor"
	ThroughputInterceptor        = interceptorPkg + "ThroughputInterceptor"
	StaticMembershipInterceptor  = interceptorPkg + "StaticMembershipInterceptor"
	TcpPingInterceptor           = interceptorPkg + "TcpPingInterceptor"
	TwoPhaseCommitInterceptor    = interceptorPkg + "TwoPhaseCommitInterceptor"
	SimpleCoordinator            = interceptorPkg + "SimpleCoordinator"
	NonBlockingCoordinator       = interceptorPkg + "NonBlockingCoordinator"
)

// Build is what a [Factory] configures: the channel configuration being
// built and what the loader knows.
type Build struct {
	// Config is the configuration being built. Interceptor factories
	// append to Config.Interceptors.
	Config *tribes.Config
	// Class is the fully qualified class name the element's className
	// resolved to.
	Class string
	// Registry is the registry in use (for the kinds of child elements).
	Registry *Registry
	// Getenv reads environment variables (never nil).
	Getenv func(key string) string
	// InCluster tells whether the <Channel> is inside a <Cluster> (rather
	// than a bare <Channel>); SimpleTcpCluster's defaults then apply.
	InCluster bool

	observe func(class string, cfg any) // tests: sees the config of each constructed part
}

// seen hands cfg, the configuration a factory is about to construct from,
// to the test hook.
func (bd *Build) seen(cfg any) {
	if bd.observe != nil {
		bd.observe(bd.Class, cfg)
	}
}

// Factory configures b's element of class bd.Class into bd.Config. It
// reads attributes and children through b, so that the others become
// warnings, and reports bad values with b.Fail or by returning an error
// (an [*serverxml.Error] located with serverxml.ErrorAt, preferably).
type Factory func(b *serverxml.Binder, bd *Build) error

// Registry maps the Tomcat class names of each element kind to factories.
type Registry = serverxml.Registry[Factory]

// DefaultRegistry returns a new registry holding every class this package
// maps (see the package documentation). Add or replace classes on the
// returned registry to extend a [Loader]; each call returns a fresh one.
func DefaultRegistry() *Registry {
	r := &Registry{}
	r.Register(KindChannel, GroupChannel, groupChannel)

	r.Register(KindMembership, McastService, mcastService)
	r.Register(KindMembership, StaticMembershipService, staticMembershipService)
	r.Register(KindMembership, CloudMembershipService, cloudMembershipService)
	r.Register(KindMember, StaticMember, func(*serverxml.Binder, *Build) error { return nil })

	r.Register(KindReceiver, NioReceiver, nioReceiver)
	r.Register(KindReceiver, BioReceiver, nioReceiver)
	r.Register(KindSender, ReplicationTransmitter, replicationTransmitter)
	r.Register(KindTransport, PooledParallelSender, pooledParallelSender)
	r.Register(KindTransport, PooledMultiSender, pooledParallelSender)

	r.Register(KindInterceptor, TcpFailureDetector, tcpFailureDetector)
	r.Register(KindInterceptor, MessageDispatchInterceptor, messageDispatch)
	r.Register(KindInterceptor, MessageDispatch15Interceptor, messageDispatch)
	r.Register(KindInterceptor, GzipInterceptor, gzipInterceptor)
	r.Register(KindInterceptor, EncryptInterceptor, encryptInterceptor)
	r.Register(KindInterceptor, DomainFilterInterceptor, domainFilterInterceptor)
	r.Register(KindInterceptor, OrderInterceptor, orderInterceptor)
	r.Register(KindInterceptor, FragmentationInterceptor, fragmentationInterceptor)
	r.Register(KindInterceptor, ThroughputInterceptor, throughputInterceptor)
	r.Register(KindInterceptor, StaticMembershipInterceptor, staticMembershipInterceptor)
	r.Register(KindInterceptor, TcpPingInterceptor, tcpPingInterceptor)
	for _, c := range []string{TwoPhaseCommitInterceptor, SimpleCoordinator, NonBlockingCoordinator} {
		r.Register(KindInterceptor, c, notSupported("not needed by Tomcat clusters and not ported"))
	}
	return r
}

// notSupported returns a factory that fails with ErrNotSupported.
func notSupported(why string) Factory {
	return func(b *serverxml.Binder, bd *Build) error {
		return serverxml.ErrorAt(b.Element(), "className", ErrNotSupported, "%s is not supported: %s", bd.Class, why)
	}
}
