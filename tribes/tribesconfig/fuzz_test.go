package tribesconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmfarm/wasmfarm/internal/serverxml"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
)

// FuzzParse loads arbitrary input: the loader must never panic nor return
// more than serverxml.MaxWarnings warnings (and a last one), every
// configuration it accepts must build a channel, and when it accepts a
// <Cluster> or <Channel> holding EncryptInterceptors, each of them must be
// in the stack (one the channel does not read is an error, ErrMisplaced).
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(seedDir, "*.xml"))
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`<Channel className="GroupChannel" heartbeatSleeptime="2000">
<Membership className="StaticMembershipService" pingInterval="1000" expirationTime="5000">
<Member host="10.0.0.2" port="4000" uniqueId="{0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15}" domain="d"/>
<LocalMember uniqueId="000102030405060708090a0b0c0d0e0f"/></Membership>
<Receiver className="NioReceiver" address="127.0.0.1" port="4100" autoBind="10" maxThreads="2"/>
<Sender className="ReplicationTransmitter"><Transport className="PooledParallelSender" timeout="500" maxRetryAttempts="0" poolSize="3" maxWait="100"/></Sender>
<Interceptor className="TcpFailureDetector" connectTimeout="100" removeSuspectsTimeout="1" optionFlag="0x200"/>
<Interceptor className="MessageDispatchInterceptor" maxQueueSize="100" maxThreads="1" alwaysSend="false"/>
<Interceptor className="GzipInterceptor" optionFlag="256" compressionMinSize="10"/>
<Interceptor className="EncryptInterceptor" encryptionKey="000102030405060708090a0b0c0d0e0f"/>
<Interceptor className="OrderInterceptor" expire="100" maxQueue="5"/>
<Interceptor className="FragmentationInterceptor" maxSize="100" expire="100"/>
<Interceptor className="DomainFilterInterceptor" domain="{1,2}"/>
<Interceptor className="StaticMembershipInterceptor"><Member host="::1" port="1" uniqueId="{0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15}"/></Interceptor>
<Interceptor className="TcpPingInterceptor" interval="100"/>
</Channel>`))
	f.Add([]byte(`<Channel><Membership className="org.apache.catalina.tribes.membership.cloud.CloudMembershipService" membershipProviderClassName="dns" connectTimeout="1"/></Channel>`))
	f.Add([]byte(`<Cluster><Channel className="GroupChannel"/><Interceptor className="EncryptInterceptor" encryptionKey="000102030405060708090a0b0c0d0e0f"/></Cluster>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l := Loader{Getenv: func(string) string { return "members.example" }}
		l.Parser.MaxBytes = 1 << 16
		cfg, ws, err := l.Parse("f.xml", data)
		if len(ws) > serverxml.MaxWarnings+1 {
			t.Fatalf("%d warnings", len(ws))
		}
		for _, w := range ws {
			if w.File != "f.xml" || w.Msg == "" || len(w.Element) > 256+len(".../") {
				t.Fatalf("bad warning %+v", w)
			}
		}
		if err != nil {
			return
		}
		ch, err := tribes.New(cfg)
		if err != nil {
			t.Fatalf("accepted a configuration tribes.New refuses: %v", err)
		}
		_ = ch
		if root, _, err := l.Parser.Parse("f.xml", data); err == nil && (root.Is("Cluster") || root.Is("Channel")) {
			written, built := 0, 0
			for _, ic := range root.FindAll(KindInterceptor) {
				if class, ok := ic.Attr("className"); ok && strings.EqualFold(class[strings.LastIndexByte(class, '.')+1:], "EncryptInterceptor") {
					written++
				}
			}
			for _, ic := range cfg.Interceptors {
				if _, ok := ic.(*interceptors.Encrypt); ok {
					built++
				}
			}
			if built < written {
				t.Fatalf("%d EncryptInterceptors written, %d in the stack", written, built)
			}
		}
	})
}
