package tribesconfig

import (
	"errors"

	"github.com/wasmfarm/wasmfarm/internal/serverxml"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
)

// tcpFailureDetector maps TcpFailureDetector to tribes.NewFailureDetector.
func tcpFailureDetector(b *serverxml.Binder, bd *Build) error {
	var c tribes.FailureDetectorConfig
	positive(b, "connectTimeout", ms, &c.ConnectTimeout)
	send := true
	if b.Bool("performSendTest", &send) {
		c.NoSendTest = !send
	}
	b.Bool("performReadTest", &c.ReadTest)
	positive(b, "readTestTimeout", ms, &c.ReadTestTimeout)
	positive(b, "removeSuspectsTimeout", 1e9, &c.RemoveSuspectsTimeout) // seconds, as in Tomcat
	optionFlag(b, &c.OptionFlag)
	bd.seen(c)
	appendInterceptor(bd, tribes.NewFailureDetector(c))
	return nil
}

// messageDispatch maps MessageDispatchInterceptor and
// MessageDispatch15Interceptor to tribes.NewMessageDispatcher.
func messageDispatch(b *serverxml.Binder, bd *Build) error {
	var c tribes.DispatcherConfig
	var size int64
	if b.Int64("maxQueueSize", &size) {
		if size < 1 {
			b.Fail("maxQueueSize", nil, "maxQueueSize must be at least 1")
		} else {
			c.MaxQueueSize = size
		}
	}
	atLeast(b, "maxThreads", 1, &c.MaxThreads)
	always := true
	if b.Bool("alwaysSend", &always) {
		c.FailWhenFull = !always
	}
	var flag tribes.Options
	if optionFlag(b, &flag) && flag != tribes.OptAsynchronous {
		b.Warn("optionFlag", "the dispatcher always queues the messages sent with the asynchronous option (8), as in Tomcat; %v ignored", flag)
	}
	b.Ignore("the dispatcher runs maxThreads goroutines", "maxSpareThreads", "keepAliveTime", "useExecutor")
	bd.seen(c)
	appendInterceptor(bd, tribes.NewMessageDispatcher(c))
	return nil
}

func gzipInterceptor(b *serverxml.Binder, bd *Build) error {
	var c interceptors.GzipConfig
	optionFlag(b, &c.OptionFlag)
	atLeast(b, "compressionMinSize", 0, &c.CompressionMinSize)
	var stats bool
	var interval int
	b.Bool("statsEnabled", &stats)
	if atLeast(b, "interval", 0, &interval) && !stats {
		b.Note("interval", "has no effect without statsEnabled=\"true\"")
	}
	if stats {
		c.StatsInterval = interval
	}
	bd.seen(c)
	g, err := interceptors.NewGzip(c)
	if err != nil {
		return failCtor(b, "", err)
	}
	appendInterceptor(bd, g)
	return nil
}

func encryptInterceptor(b *serverxml.Binder, bd *Build) error {
	var c interceptors.EncryptConfig
	b.String("encryptionKey", &c.EncryptionKey)
	b.String("encryptionAlgorithm", &c.EncryptionAlgorithm)
	positive(b, "replayWindowTime", ms, &c.ReplayWindowTime)
	atLeast(b, "replayWindowMessageCount", 1, &c.ReplayWindowMessageCount)
	b.Ignore("there is no JCA provider to choose in Go", "providerName")
	b.Ignore("EncryptInterceptor encrypts every message, whatever its options", "optionFlag")
	bd.seen(c)
	e, err := interceptors.NewEncrypt(c)
	if err != nil {
		attr := "encryptionKey"
		if errors.Is(err, interceptors.ErrUnsupportedAlgorithm) {
			attr = "encryptionAlgorithm"
		}
		return failCtor(b, attr, err)
	}
	appendInterceptor(bd, e)
	return nil
}

func domainFilterInterceptor(b *serverxml.Binder, bd *Build) error {
	var c interceptors.DomainFilterConfig
	b.String("domain", &c.Domain)
	atLeast(b, "logInterval", 1, &c.LogInterval)
	b.Ignore("the domain filter applies to every message, whatever its options", "optionFlag")
	bd.seen(c)
	d, err := interceptors.NewDomainFilter(c)
	if err != nil {
		return failCtor(b, "domain", err)
	}
	appendInterceptor(bd, d)
	return nil
}

func orderInterceptor(b *serverxml.Binder, bd *Build) error {
	var c interceptors.OrderConfig
	optionFlag(b, &c.OptionFlag)
	positive(b, "expire", ms, &c.Expire)
	forward := true
	if b.Bool("forwardExpired", &forward) {
		c.DropExpired = !forward
	}
	atLeast(b, "maxQueue", 1, &c.MaxQueue)
	bd.seen(c)
	appendInterceptor(bd, interceptors.NewOrder(c))
	return nil
}

func fragmentationInterceptor(b *serverxml.Binder, bd *Build) error {
	var c interceptors.FragmentationConfig
	optionFlag(b, &c.OptionFlag)
	atLeast(b, "maxSize", 1, &c.MaxSize)
	positive(b, "expire", ms, &c.Expire)
	bd.seen(c)
	appendInterceptor(bd, interceptors.NewFragmentation(c))
	return nil
}

func throughputInterceptor(b *serverxml.Binder, bd *Build) error {
	var c interceptors.ThroughputConfig
	atLeast(b, "interval", 1, &c.Interval)
	b.Ignore("ThroughputInterceptor counts every message, whatever its options", "optionFlag")
	bd.seen(c)
	appendInterceptor(bd, interceptors.NewThroughput(c))
	return nil
}

func staticMembershipInterceptor(b *serverxml.Binder, bd *Build) error {
	var c interceptors.StaticMembershipConfig
	optionFlag(b, &c.OptionFlag)
	members, local, err := staticMembers(b, bd)
	if err != nil {
		return err
	}
	c.Members, c.LocalMember = members, local
	bd.seen(c)
	s, err := interceptors.NewStaticMembership(c)
	if err != nil {
		return failCtor(b, "", err)
	}
	appendInterceptor(bd, s)
	return nil
}

func tcpPingInterceptor(b *serverxml.Binder, bd *Build) error {
	var c interceptors.TCPPingConfig
	optionFlag(b, &c.OptionFlag)
	b.Bool("useThread", &c.UseThread)
	positive(b, "interval", ms, &c.Interval)
	b.Bool("staticOnly", &c.StaticOnly)
	bd.seen(c)
	appendInterceptor(bd, interceptors.NewTCPPing(c))
	return nil
}
