package tribesconfig

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/internal/serverxml"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
)

// load parses in with a Loader that records the configuration of every
// part it constructs, by class.
func load(t *testing.T, in string, env map[string]string) (tribes.Config, []serverxml.Warning, map[string][]any, error) {
	t.Helper()
	seen := map[string][]any{}
	l := Loader{
		observe: func(class string, cfg any) { seen[class] = append(seen[class], cfg) },
		Getenv:  func(k string) string { return env[k] },
	}
	cfg, ws, err := l.Parse("t.xml", []byte(in))
	return cfg, ws, seen, err
}

func mustLoad(t *testing.T, in string) (tribes.Config, []serverxml.Warning, map[string][]any) {
	t.Helper()
	cfg, ws, seen, err := load(t, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, ws, seen
}

// TestMappingMcastTransportAndInterceptors sets every mapped attribute to
// a value other than its default and checks where each one lands.
func TestMappingMcastTransportAndInterceptors(t *testing.T) {
	in := `<Cluster>
<Channel className="org.apache.catalina.tribes.group.GroupChannel" heartbeatSleeptime="2000">
  <Membership className="org.apache.catalina.tribes.membership.McastService"
      address="239.1.2.3" port="45600" frequency="250" dropTime="2500" bind="127.0.0.1" ttl="0"
      localLoopbackDisabled="true" domain="staging"/>
  <Receiver className="org.apache.catalina.tribes.transport.nio.NioReceiver"
      address="10.0.0.5" port="4100" autoBind="10" maxThreads="12" securePort="-1" udpPort="-1"/>
  <Sender className="org.apache.catalina.tribes.transport.ReplicationTransmitter">
    <Transport className="org.apache.catalina.tribes.transport.nio.PooledParallelSender"
        timeout="5000" maxRetryAttempts="3" poolSize="7" maxWait="1500" throwOnFailedAck="true" udpBased="false" pooledAcks="true"/>
  </Sender>
  <Interceptor className="org.apache.catalina.tribes.group.interceptors.TcpFailureDetector"
      connectTimeout="1500" performSendTest="false" performReadTest="true" readTestTimeout="2500"
      removeSuspectsTimeout="60" optionFlag="0x200"/>
  <Interceptor className="org.apache.catalina.tribes.group.interceptors.MessageDispatchInterceptor"
      maxQueueSize="1048576" maxThreads="3" alwaysSend="false" optionFlag="8"/>
  <Interceptor className="org.apache.catalina.tribes.group.interceptors.GzipInterceptor"
      optionFlag="512" compressionMinSize="100" statsEnabled="true" interval="50"/>
  <Interceptor className="org.apache.catalina.tribes.group.interceptors.EncryptInterceptor"
      encryptionKey="000102030405060708090a0b0c0d0e0f" encryptionAlgorithm="AES/GCM/NoPadding"
      replayWindowTime="20000" replayWindowMessageCount="100"/>
  <Interceptor className="org.apache.catalina.tribes.group.interceptors.DomainFilterInterceptor"
      domain="{1,2,3}" logInterval="7"/>
  <Interceptor className="org.apache.catalina.tribes.group.interceptors.OrderInterceptor"
      optionFlag="use_ack" expire="4000" forwardExpired="false" maxQueue="99"/>
  <Interceptor className="org.apache.catalina.tribes.group.interceptors.FragmentationInterceptor"
      optionFlag="1024" maxSize="2048" expire="7000"/>
  <Interceptor className="org.apache.catalina.tribes.group.interceptors.ThroughputInterceptor" interval="123"/>
  <Interceptor className="org.apache.catalina.tribes.group.interceptors.TcpPingInterceptor"
      optionFlag="0" useThread="true" interval="300" staticOnly="true"/>
</Channel>
</Cluster>`
	cfg, ws, seen := mustLoad(t, in)
	checkWarnings(t, ws, nil)

	wantMcast := tribes.McastConfig{Address: "239.1.2.3", Port: 45600, Frequency: 250 * ms, DropTime: 2500 * ms,
		Bind: "127.0.0.1", TTL: 0, LocalLoopbackDisabled: true, MaxMembers: 1024}
	if fmt.Sprintf("%+v", cfg.Mcast) != fmt.Sprintf("%+v", wantMcast) {
		t.Errorf("mcast %+v\nwant  %+v", cfg.Mcast, wantMcast)
	}
	if string(cfg.Domain) != "staging" || cfg.HeartbeatInterval != 2*time.Second || cfg.Membership != nil {
		t.Errorf("domain %q heartbeat %v membership %v", cfg.Domain, cfg.HeartbeatInterval, cfg.Membership)
	}
	r := cfg.Receiver
	if r.Address != "10.0.0.5" || r.Port != 4100 || r.AutoBind != 10 || r.MaxThreads != 12 {
		t.Errorf("receiver %+v", r)
	}
	s := cfg.Sender
	if s.Timeout != 5*time.Second || s.MaxRetryAttempts != 3 || s.PoolSize != 7 || s.MaxWait != 1500*ms || !s.PooledAcks {
		t.Errorf("sender %+v", s)
	}
	want := map[string]string{
		TcpFailureDetector:         "{ConnectTimeout:1.5s NoSendTest:true ReadTest:true ReadTestTimeout:2.5s RemoveSuspectsTimeout:1m0s OptionFlag:0x200}",
		MessageDispatchInterceptor: "{MaxQueueSize:1048576 MaxThreads:3 FailWhenFull:true OnError:<nil>}",
		GzipInterceptor:            "{OptionFlag:0x200 CompressionMinSize:100 Level:0 MaxSize:0 StatsInterval:50 Pool:<nil> Logger:<nil>}",
		EncryptInterceptor:         "{EncryptionKey:000102030405060708090a0b0c0d0e0f KeyEnv: EncryptionAlgorithm:AES/GCM/NoPadding ProviderName: ReplayWindowTime:20s ReplayWindowMessageCount:100 Pool:<nil> Logger:<nil>}",
		DomainFilterInterceptor:    "{Domain:{1,2,3} LogInterval:7 Logger:<nil>}",
		OrderInterceptor:           "{OptionFlag:use_ack Expire:4s DropExpired:true MaxQueue:99 MaxQueuedBytes:0 Pool:<nil> Logger:<nil>}",
		FragmentationInterceptor:   "{OptionFlag:0x400 MaxSize:2048 Expire:7s MaxMessageSize:0 MaxPendingBytes:0 MaxFragments:0 Pool:<nil> Logger:<nil>}",
		ThroughputInterceptor:      "{Interval:123 ReportEvery:0s Logger:<nil>}",
		TcpPingInterceptor:         "{OptionFlag:0 UseThread:true Interval:300ms StaticOnly:true Logger:<nil>}",
	}
	for class, w := range want {
		if len(seen[class]) != 1 {
			t.Errorf("%s constructed %d times", class, len(seen[class]))
			continue
		}
		if got := fmt.Sprintf("%+v", seen[class][0]); got != w {
			t.Errorf("%s:\n got %s\nwant %s", class, got, w)
		}
	}
	if got, want := stack(cfg.Interceptors), "tribes.FailureDetector,tribes.MessageDispatcher,interceptors.Gzip,interceptors.Encrypt,"+
		"interceptors.DomainFilter,interceptors.Order,interceptors.Fragmentation,interceptors.Throughput,interceptors.TCPPing"; got != want {
		t.Errorf("stack %s\nwant  %s", got, want)
	}
	if _, err := tribes.New(cfg); err != nil {
		t.Errorf("tribes.New: %v", err)
	}
}

func TestMappingStaticMembership(t *testing.T) {
	in := `<Channel className="GroupChannel">
  <Membership className="org.apache.catalina.tribes.membership.StaticMembershipService"
      pingInterval="2000" expirationTime="9000" connectTimeout="700" rpcTimeout="1" useThread="true">
    <LocalMember className="org.apache.catalina.tribes.membership.StaticMember"
        uniqueId="{0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15}" domain="prod" host="ignored" port="1"/>
    <Member className="org.apache.catalina.tribes.membership.StaticMember"
        host="10.0.0.2" port="4000" uniqueId="{-1,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15}" domain="prod"/>
    <Member className="StaticMember" host="{10,0,0,3}" port="4001" securePort="4443" udpPort="4002"
        uniqueId="000102030405060708090a0b0c0d0e0f"/>
  </Membership>
  <Interceptor className="StaticMembershipInterceptor" optionFlag="0">
    <Member className="org.apache.catalina.tribes.membership.StaticMember"
        host="::1" port="4000" uniqueId="00010203-0405-0607-0809-0a0b0c0d0e0f"/>
    <LocalMember className="org.apache.catalina.tribes.membership.StaticMember" domain="{7}"/>
  </Interceptor>
  <Interceptor className="TcpFailureDetector"/>
</Channel>`
	cfg, ws, seen := mustLoad(t, in)
	checkWarnings(t, ws, []expect{
		note(3, `attribute "rpcTimeout": accepted but not used`),
		note(3, `attribute "useThread": accepted but not used`),
		note(5, `[Channel/Membership/LocalMember] attribute "host": accepted but not used (value "ignored"): the local member's address and ports are the <Receiver>'s`),
		note(5, `attribute "port": accepted but not used`),
	})
	sc := seen[StaticMembershipService][0].(tribes.StaticConfig)
	if sc.Frequency != 2*time.Second || sc.DropTime != 9*time.Second || sc.ConnectTimeout != 700*ms || len(sc.Members) != 2 {
		t.Fatalf("static config %+v", sc)
	}
	m0, m1 := sc.Members[0], sc.Members[1]
	if m0.Host != netip.MustParseAddr("10.0.0.2") || m0.Port != 4000 || m0.SecurePort != -1 || m0.UDPPort != -1 ||
		m0.UniqueID[0] != 0xff || string(m0.Domain) != "prod" {
		t.Errorf("member 0 %v", m0)
	}
	if m1.Host != netip.MustParseAddr("10.0.0.3") || m1.Port != 4001 || m1.SecurePort != 4443 || m1.UDPPort != 4002 || m1.UniqueID[15] != 15 {
		t.Errorf("member 1 %v", m1)
	}
	if _, ok := cfg.Membership.(*tribes.StaticMembership); !ok {
		t.Errorf("membership %T", cfg.Membership)
	}
	ic := seen[StaticMembershipInterceptor][0].(interceptors.StaticMembershipConfig)
	if len(ic.Members) != 1 || ic.Members[0].Host != netip.MustParseAddr("::1") || ic.LocalMember == nil || string(ic.LocalMember.Domain) != "\x07" {
		t.Errorf("interceptor config %+v", ic)
	}
	// The last <LocalMember> read sets the channel's domain; the first its id.
	if cfg.UniqueID[1] != 1 || string(cfg.Domain) != "\x07" {
		t.Errorf("channel id %v domain %q", cfg.UniqueID, cfg.Domain)
	}
	if got := stack(cfg.Interceptors); got != "interceptors.StaticMembership,tribes.FailureDetector" {
		t.Errorf("stack %s", got)
	}
}

func TestMappingDNS(t *testing.T) {
	tests := []struct {
		name    string
		attrs   string
		env     map[string]string
		want    string // DNS name, or a substring of the error
		wantErr error
	}{
		{"env", `membershipProviderClassName="dns"`, map[string]string{"DNS_MEMBERSHIP_SERVICE_NAME": "app.ns.svc"}, "app.ns.svc", nil},
		{"attribute wins", `membershipProviderClassName="org.apache.catalina.tribes.membership.cloud.DNSMembershipProvider" dnsMembershipServiceName="x.svc"`,
			map[string]string{"DNS_MEMBERSHIP_SERVICE_NAME": "app.ns.svc"}, "x.svc", nil},
		{"no name", `membershipProviderClassName="dns"`, nil, "no DNS name to look up", serverxml.ErrBadValue},
		{"kubernetes by default", ``, nil, "Kubernetes API membership provider", ErrNotSupported},
		{"kubernetes", `membershipProviderClassName="kubernetes"`, nil, "Kubernetes", ErrNotSupported},
		{"unknown provider", `membershipProviderClassName="org.example.Provider"`, nil, `unknown membership provider "org.example.Provider"`, serverxml.ErrUnknownClass},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := `<Channel className="GroupChannel" heartbeatSleeptime="3000"><Membership className="org.apache.catalina.tribes.membership.cloud.CloudMembershipService" ` +
				tc.attrs + ` connectTimeout="1000"/></Channel>`
			cfg, ws, seen, err := load(t, in, tc.env)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "t.xml:1:") {
					t.Errorf("error %v, want %v with %q", err, tc.wantErr, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkWarnings(t, ws, []expect{note(1, `attribute "connectTimeout": accepted but not used`)})
			dc := seen[CloudMembershipService][0].(tribes.DNSConfig)
			if dc.Name != tc.want || dc.Interval != 3*time.Second || dc.Port != 0 {
				t.Errorf("dns config %+v", dc)
			}
			if _, ok := cfg.Membership.(*tribes.DNSMembership); !ok {
				t.Errorf("membership %T", cfg.Membership)
			}
		})
	}
}

// TestNotes checks the notes and warnings for Tomcat attributes that have
// no equivalent, and the mapping of the deprecated and special values.
func TestNotes(t *testing.T) {
	in := `<Channel className="GroupChannel" heartbeat="false" jmxEnabled="true" optionCheck="true" name="c">
<Membership className="McastService" mcastAddr="239.0.0.9" mcastPort="45999" mcastFrequency="600"
  mcastDropTime="6000" mcastBindAddress="127.0.0.1" soTimeout="500" recoveryEnabled="true"
  recoveryCounter="5" recoverySleepTime="100"/>
<Receiver className="NioReceiver" port="0" autoBind="0" securePort="4443" udpPort="4444"
  selectorTimeout="1" minThreads="2" rxBufSize="1" useBufferPool="true"/>
<Sender className="ReplicationTransmitter"><Transport className="PooledParallelSender"
  maxRetryAttempts="0" throwOnFailedAck="false" udpBased="true" keepAliveCount="10" tcpNoDelay="true"/></Sender>
<Interceptor className="MessageDispatch15Interceptor" optionFlag="4" maxSpareThreads="1"/>
<Interceptor className="GzipInterceptor" interval="10"/>
</Channel>`
	cfg, ws, _ := mustLoad(t, in)
	checkWarnings(t, ws, []expect{
		warn(1, `attribute "heartbeat": "false" is not supported`),
		note(1, `attribute "jmxEnabled": accepted but not used (value "true"): wasmfarm has no JMX`),
		note(1, `attribute "optionCheck": accepted but not used`),
		note(1, `attribute "name": accepted but not used`),
		note(2, `attribute "mcastAddr": deprecated Tomcat name of "address"`),
		note(2, `attribute "mcastPort": deprecated Tomcat name of "port"`),
		note(2, `attribute "mcastFrequency": deprecated Tomcat name of "frequency"`),
		note(3, `attribute "mcastDropTime": deprecated Tomcat name of "dropTime"`),
		note(3, `attribute "mcastBindAddress": deprecated Tomcat name of "bind"`),
		note(3, `attribute "soTimeout": accepted but not used`),
		note(3, `attribute "recoveryEnabled": accepted but not used (value "true"): not needed`),
		note(4, `attribute "recoveryCounter": accepted but not used`),
		note(4, `attribute "recoverySleepTime": accepted but not used`),
		warn(5, `attribute "securePort": TLS between members is not supported`),
		warn(5, `attribute "udpPort": UDP is not supported`),
		note(6, `attribute "selectorTimeout": accepted but not used`),
		note(6, `attribute "minThreads": accepted but not used`),
		note(6, `attribute "rxBufSize": accepted but not used (value "1"): socket options are left to the operating system`),
		note(6, `attribute "useBufferPool": accepted but not used`),
		warn(8, `attribute "throwOnFailedAck": "false" is not supported`),
		warn(8, `attribute "udpBased": "true" is not supported`),
		note(8, `attribute "keepAliveCount": accepted but not used`),
		note(8, `attribute "tcpNoDelay": accepted but not used`),
		warn(9, `attribute "optionFlag": the dispatcher always queues the messages sent with the asynchronous option (8), as in Tomcat; synchronized_ack ignored`),
		note(9, `attribute "maxSpareThreads": accepted but not used`),
		note(10, `attribute "interval": has no effect without statsEnabled="true"`),
	})
	if cfg.Mcast.Address != "239.0.0.9" || cfg.Mcast.Port != 45999 || cfg.Mcast.Frequency != 600*ms || cfg.Mcast.DropTime != 6*time.Second || cfg.Mcast.Bind != "127.0.0.1" {
		t.Errorf("mcast %+v", cfg.Mcast)
	}
	if cfg.Receiver.Port != tribes.AnyPort || cfg.Receiver.AutoBind != 1 {
		t.Errorf("receiver port %d autoBind %d, want AnyPort and 1", cfg.Receiver.Port, cfg.Receiver.AutoBind)
	}
	if cfg.Sender.MaxRetryAttempts != -1 {
		t.Errorf("maxRetryAttempts 0 gave %d, want -1 (never)", cfg.Sender.MaxRetryAttempts)
	}
}

// TestLeniency checks the loader's own leniencies, one warning each.
func TestLeniency(t *testing.T) {
	tests := []struct {
		name, in string
		want     []expect
		stack    string
	}{
		{"short class names, no warning", `<Channel className="GroupChannel"><Interceptor className="TcpFailureDetector"/></Channel>`,
			nil, "tribes.FailureDetector"},
		{"class name in another case", `<Channel className="GroupChannel"><Interceptor className="org.apache.catalina.tribes.group.interceptors.tcpFailureDetector"/></Channel>`,
			[]expect{warn(1, `class "org.apache.catalina.tribes.group.interceptors.tcpFailureDetector" read as "org.apache.catalina.tribes.group.interceptors.TcpFailureDetector": class names are case-sensitive`)},
			"tribes.FailureDetector"},
		{"Tomcat 5.5 package", `<Channel className="GroupChannel"><Interceptor className="org.apache.catalina.cluster.tcp.TcpFailureDetector"/></Channel>`,
			[]expect{warn(1, `(same class name, another package)`)}, "tribes.FailureDetector"},
		{"element name in another case", "<Channel className=\"GroupChannel\">\n<interceptor className=\"TcpFailureDetector\"/></Channel>",
			[]expect{warn(2, `element <interceptor> read as <Interceptor>`)}, "tribes.FailureDetector"},
		{"attribute name in another case", `<Channel className="GroupChannel"><Interceptor className="TcpFailureDetector" ConnectTimeout="100"/></Channel>`,
			[]expect{warn(1, `attribute "ConnectTimeout": read as "connectTimeout": names are case-sensitive`)}, "tribes.FailureDetector"},
		{"missing className", `<Channel><Membership/><Receiver/><Sender><Transport/></Sender></Channel>`,
			[]expect{
				warn(1, `[Channel] no className; org.apache.catalina.tribes.group.GroupChannel assumed (Tomcat requires the attribute)`),
				warn(1, `[Channel/Membership] no className; org.apache.catalina.tribes.membership.McastService assumed`),
				warn(1, `[Channel/Receiver] no className; org.apache.catalina.tribes.transport.nio.NioReceiver assumed`),
				warn(1, `[Channel/Sender] no className; org.apache.catalina.tribes.transport.ReplicationTransmitter assumed`),
				warn(1, `[Channel/Sender/Transport] no className; org.apache.catalina.tribes.transport.nio.PooledParallelSender assumed`),
			}, "tribes.MessageDispatcher"},
		{"BIO classes", `<Channel className="GroupChannel"><Receiver className="org.apache.catalina.tribes.transport.bio.BioReceiver"/>` +
			`<Sender className="ReplicationTransmitter"><Transport className="org.apache.catalina.tribes.transport.bio.PooledMultiSender"/></Sender></Channel>`,
			[]expect{warn(1, `BioReceiver (removed in Tomcat 9) is read as the NioReceiver`), warn(1, `PooledMultiSender (removed in Tomcat 9) is read as the PooledParallelSender`)},
			"tribes.MessageDispatcher"},
		{"several receivers: the last wins", "<Channel className=\"GroupChannel\">\n<Receiver className=\"NioReceiver\" port=\"1\"/>\n<Receiver className=\"NioReceiver\" port=\"4321\"/></Channel>",
			[]expect{warn(2, `<Receiver> given again on line 3, which replaces this one`)}, "tribes.MessageDispatcher"},
		{"unknown elements and attributes", "<Channel className=\"GroupChannel\" hartbeatSleeptime=\"1\">\n<Recevier/>\n<Interceptor className=\"TcpFailureDetector\" conectTimeout=\"1\"/></Channel>",
			[]expect{
				warn(1, `[Channel] attribute "hartbeatSleeptime": no such property (value "1" ignored); did you mean "heartbeatSleeptime"?`),
				warn(2, `unknown element <Recevier> ignored (Tomcat: no rules found matching "Channel/Recevier"); did you mean <Receiver>?`),
				warn(3, `attribute "conectTimeout": no such property (value "1" ignored); did you mean "connectTimeout"?`),
			}, "tribes.FailureDetector"},
		{"static member without uniqueId", `<Channel className="GroupChannel"><Interceptor className="StaticMembershipInterceptor"><Member host="10.0.0.1" port="4000"/></Interceptor></Channel>`,
			[]expect{
				warn(1, `[Channel/Interceptor/Member] no className; org.apache.catalina.tribes.membership.StaticMember assumed`),
				warn(1, `[Channel/Interceptor/Member] no uniqueId: the member's id is all zeros`),
			}, "interceptors.StaticMembership"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ws, _ := mustLoad(t, tc.in)
			checkWarnings(t, ws, tc.want)
			if got := stack(cfg.Interceptors); got != tc.stack {
				t.Errorf("stack %s, want %s", got, tc.stack)
			}
		})
	}
}

func TestUnknownClass(t *testing.T) {
	in := "<Cluster>\n<Channel className=\"org.apache.catalina.tribes.group.GroupChannel\">\n" +
		"<Interceptor className=\"org.example.MyInterceptor\"/>\n" +
		"<Membership className=\"org.apache.catalina.tribes.membership.MulticastService\"/>\n</Channel></Cluster>"
	_, _, _, err := load(t, in, nil)
	if !errors.Is(err, serverxml.ErrUnknownClass) {
		t.Fatalf("error %v, want ErrUnknownClass", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`t.xml:3:14: [Cluster/Channel/Interceptor] attribute "className": unknown Interceptor class "org.example.MyInterceptor"; known classes: ` +
			`org.apache.catalina.tribes.group.interceptors.DomainFilterInterceptor, org.apache.catalina.tribes.group.interceptors.EncryptInterceptor,`,
		`org.apache.catalina.tribes.group.interceptors.TcpPingInterceptor, org.apache.catalina.tribes.group.interceptors.ThroughputInterceptor`,
		`t.xml:4:13: [Cluster/Channel/Membership] attribute "className": unknown Membership class "org.apache.catalina.tribes.membership.MulticastService"; ` +
			`known classes: org.apache.catalina.tribes.membership.McastService, org.apache.catalina.tribes.membership.StaticMembershipService, ` +
			`org.apache.catalina.tribes.membership.cloud.CloudMembershipService`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error\n%s\nlacks\n%s", msg, want)
		}
	}
	var e *serverxml.Error
	if !errors.As(err, &e) || e.Line != 3 || e.Attr != "className" {
		t.Errorf("first *Error %+v", e)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // substrings, all present
		is       error
	}{
		{"interceptor without className", `<Channel><Interceptor/></Channel>`, []string{"<Interceptor> has no className; known classes: "}, serverxml.ErrUnknownClass},
		{"unsupported interceptor", `<Channel><Interceptor className="TwoPhaseCommitInterceptor"/></Channel>`,
			[]string{"org.apache.catalina.tribes.group.interceptors.TwoPhaseCommitInterceptor is not supported"}, ErrNotSupported},
		{"java listener", `<Channel><ChannelListener className="com.example.L"/></Channel>`, []string{"Java listener classes cannot run in wasmfarm"}, ErrNotSupported},
		{"bad values, all reported", "<Channel heartbeatSleeptime=\"0\">\n<Receiver port=\"70000\" maxThreads=\"0\" autoBind=\"x\"/>\n" +
			"<Sender><Transport timeout=\"-1\" poolSize=\"0\" maxRetryAttempts=\"-2\"/></Sender></Channel>",
			[]string{`t.xml:1:10: [Channel] attribute "heartbeatSleeptime": heartbeatSleeptime must be positive`,
				`t.xml:2:11: [Channel/Receiver] attribute "port": port 70000 out of range 0..65535`,
				`attribute "maxThreads": maxThreads must be at least 1`,
				`attribute "autoBind": value "x" is not an integer`,
				`t.xml:3:20: [Channel/Sender/Transport] attribute "timeout": timeout must be positive`,
				`attribute "poolSize": poolSize must be at least 1`,
				`attribute "maxRetryAttempts": maxRetryAttempts must be at least 0`}, serverxml.ErrBadValue},
		{"mcast rejected by tribes", "<Channel>\n<Membership className=\"McastService\" address=\"10.0.0.1\" frequency=\"500\" dropTime=\"400\"/></Channel>",
			[]string{`t.xml:2:1: [Channel/Membership] tribes: multicast address "10.0.0.1" is not an IPv4 multicast address`}, serverxml.ErrBadValue},
		{"static member errors", "<Channel><Membership className=\"StaticMembershipService\">\n" +
			"<Member className=\"StaticMember\" host=\"node1.example\" port=\"4000\" uniqueId=\"{1,2}\"/>\n" +
			"<Member className=\"StaticMember\"/>\n<Member className=\"org.example.Other\" host=\"10.0.0.1\" port=\"1\"/></Membership></Channel>",
			[]string{`attribute "host": value "node1.example" is not an IP address (host names are not resolved`,
				`attribute "uniqueId": value "{1,2}" is not a unique id ({16 signed bytes}, 32 hexadecimal digits or a UUID)`,
				`t.xml:3:1: [Channel/Membership/Member] <Member> has no host`, `<Member> has no port`,
				`unknown Member class "org.example.Other"`}, serverxml.ErrBadValue},
		{"bad encryption key, hidden", `<Channel><Interceptor className="EncryptInterceptor" encryptionKey="zz-secret"/></Channel>`,
			[]string{`attribute "encryptionKey": interceptors: bad encryption key: not hexadecimal digits`}, interceptors.ErrBadKey},
		{"bad encryption algorithm", `<Channel><Interceptor className="EncryptInterceptor" encryptionKey="000102030405060708090a0b0c0d0e0f" encryptionAlgorithm="AES/CBC/PKCS5Padding"/></Channel>`,
			[]string{`attribute "encryptionAlgorithm": interceptors: unsupported encryption algorithm`}, interceptors.ErrUnsupportedAlgorithm},
		{"bad domain", `<Channel><Interceptor className="DomainFilterInterceptor" domain="{1,999}"/></Channel>`,
			[]string{`attribute "domain"`, "bad domain"}, interceptors.ErrBadDomain},
		{"bad option flag", `<Channel><Interceptor className="OrderInterceptor" optionFlag="fast"/></Channel>`,
			[]string{`attribute "optionFlag": value "fast" is not a number or a list of send options`}, serverxml.ErrBadValue},
		{"bad bool", `<Channel><Interceptor className="TcpFailureDetector" performReadTest="yes"/></Channel>`,
			[]string{`value "yes" is not "true" or "false"`}, serverxml.ErrBadValue},
		{"syntax", `<Channel><Receiver port="1/></Channel>`, []string{`value of attribute "port" not closed`}, serverxml.ErrSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := load(t, tc.in, nil)
			if !errors.Is(err, tc.is) {
				t.Fatalf("error %v, want %v", err, tc.is)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nlacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		name, in string
		stack    string
	}{
		{"cluster without channel", `<Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster"/>`, "default"},
		{"channel in a cluster without interceptors", `<Cluster><Channel className="GroupChannel"/></Cluster>`, "default"},
		{"bare channel without interceptors", `<Channel className="GroupChannel"/>`, "tribes.MessageDispatcher"},
		{"whole server.xml", `<?xml version="1.0"?><Server port="8005"><Service name="Catalina"><Engine name="Catalina" jvmRoute="a">
			<Cluster><Channel className="GroupChannel"><Interceptor className="OrderInterceptor"/></Channel></Cluster></Engine></Service></Server>`, "interceptors.Order"},
		{"channel found without a cluster", `<Server><Channel className="GroupChannel"/></Server>`, "tribes.MessageDispatcher"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ws, _ := mustLoad(t, tc.in)
			checkWarnings(t, ws, nil)
			if got := stack(cfg.Interceptors); got != tc.stack {
				t.Errorf("stack %s, want %s", got, tc.stack)
			}
			d := tribes.DefaultConfig()
			if cfg.Receiver != d.Receiver || cfg.HeartbeatInterval != d.HeartbeatInterval || cfg.Mcast.Address != d.Mcast.Address {
				t.Errorf("config %+v differs from the default", cfg)
			}
		})
	}
}

func TestFind(t *testing.T) {
	tests := []struct {
		name, in string
		is       error
		want     string
	}{
		{"nothing", `<Server><Service/></Server>`, ErrNoChannel, "no <Cluster> or <Channel> element"},
		{"two clusters", "<Server><Engine>\n<Cluster/><Host>\n<Cluster/></Host></Engine></Server>", ErrAmbiguous, "t.xml:3:1: [Server/Engine/Host/Cluster] several <Cluster> elements (lines 2, 3)"},
		{"two channels", "<Server>\n<Channel/>\n<Channel/></Server>", ErrAmbiguous, "several <Channel> elements (lines 2, 3)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := load(t, tc.in, nil)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %v with %q", err, tc.is, tc.want)
			}
		})
	}
	// Two clusters: the caller picks one.
	root, _, err := serverxml.Parse("t.xml", []byte(`<Engine><Cluster/><Host><Cluster><Channel><Interceptor className="OrderInterceptor"/></Channel></Cluster></Host></Engine>`))
	if err != nil {
		t.Fatal(err)
	}
	var l Loader
	cfg, _, err := l.FromCluster(root.FindAll("Cluster")[1])
	if err != nil || stack(cfg.Interceptors) != "interceptors.Order" {
		t.Errorf("FromCluster: %v %s", err, stack(cfg.Interceptors))
	}
	if _, _, err := FromElement(nil); err == nil {
		t.Error("FromElement(nil) succeeded")
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.xml")
	if err := os.WriteFile(big, []byte("<Channel>"+strings.Repeat(" ", serverxml.DefaultMaxBytes)+"</Channel>"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(big); !errors.Is(err, serverxml.ErrLimit) || !strings.Contains(err.Error(), "big.xml") {
		t.Errorf("big file: %v", err)
	}
	small := Loader{Parser: serverxml.Parser{MaxBytes: 100}}
	if _, _, err := small.Load(filepath.Join(seedDir, "002-default-delta.xml")); !errors.Is(err, serverxml.ErrLimit) {
		t.Errorf("Parser.MaxBytes not applied: %v", err)
	}
	if _, _, err := Load(filepath.Join(dir, "missing.xml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, ws, err := Parse("x.xml", []byte(`<Channel className="GroupChannel"/>`)); err != nil || len(ws) != 0 {
		t.Errorf("Parse: %v %v", ws, err)
	}
}

// TestRegistryExtension registers a class of the caller's.
func TestRegistryExtension(t *testing.T) {
	r := DefaultRegistry()
	var got int
	r.Register(KindInterceptor, "com.example.Counter", func(b *serverxml.Binder, bd *Build) error {
		b.Int("limit", &got)
		appendInterceptor(bd, interceptors.NewThroughput(interceptors.ThroughputConfig{}))
		return nil
	})
	l := Loader{Registry: r}
	cfg, ws, err := l.Parse("t.xml", []byte(`<Channel className="GroupChannel"><Interceptor className="Counter" limit="5" other="1"/></Channel>`))
	if err != nil || got != 5 || stack(cfg.Interceptors) != "interceptors.Throughput" {
		t.Fatalf("%v %d %s", err, got, stack(cfg.Interceptors))
	}
	checkWarnings(t, ws, []expect{warn(1, `attribute "other": no such property`)})
	if len(DefaultRegistry().Classes(KindInterceptor)) == len(r.Classes(KindInterceptor)) {
		t.Error("DefaultRegistry shares state between calls")
	}
}
