package tribesconfig

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// FuzzParse loads arbitrary input: the loader must never panic, and every
// configuration it accepts must build a channel.
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
	f.Fuzz(func(t *testing.T, data []byte) {
		l := Loader{Getenv: func(string) string { return "members.example" }}
		l.Parser.MaxBytes = 1 << 16
		cfg, ws, err := l.Parse("f.xml", data)
		for _, w := range ws {
			if w.File != "f.xml" || w.Msg == "" {
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
	})
}
