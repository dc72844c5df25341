package tribesconfig

import (
	"errors"
	"strings"
	"testing"
)

// TestChannelElementsOutsideTheChannel: when a <Cluster> has a <Channel>,
// only the channel's own children are read. A <Membership>, <Receiver>,
// <Sender> or <Interceptor> directly in the cluster is read by nothing, so
// it gets a warning naming it and its line; an EncryptInterceptor that the
// channel does not read, wherever it is, is an error (the channel would
// otherwise run unencrypted although the file asks for encryption).
func TestChannelElementsOutsideTheChannel(t *testing.T) {
	const key = `encryptionKey="cafebabefeedbeefbeefcafebabefeed"`
	warnings := []struct {
		name, in string
		want     []expect
		stack    string
	}{
		{"interceptor after the channel",
			"<Cluster className=\"SimpleTcpCluster\">\n<Channel className=\"GroupChannel\"/>\n<Interceptor className=\"TcpFailureDetector\"/>\n</Cluster>",
			[]expect{warn(3, `[Cluster/Interceptor] <Interceptor> directly inside <Cluster>, outside its <Channel> (line 2): ignored (Tomcat: no rules found matching "Cluster/Interceptor"); move it into the <Channel>`)},
			"default"},
		{"membership, receiver and sender before the channel",
			"<Cluster>\n<Membership className=\"McastService\" port=\"1\"/>\n<receiver className=\"NioReceiver\" port=\"4321\"/>\n<Sender className=\"ReplicationTransmitter\"/>\n" +
				"<Channel className=\"GroupChannel\"><Interceptor className=\"OrderInterceptor\"/></Channel>\n</Cluster>",
			[]expect{
				warn(2, `[Cluster/Membership] <Membership> directly inside <Cluster>, outside its <Channel> (line 5): ignored`),
				warn(3, `[Cluster/receiver] <receiver> directly inside <Cluster>, outside its <Channel> (line 5): ignored`),
				warn(4, `[Cluster/Sender] <Sender> directly inside <Cluster>, outside its <Channel> (line 5): ignored`),
			},
			"interceptors.Order"},
		{"transport and member next to the channel",
			"<Cluster>\n<Channel className=\"GroupChannel\"/>\n<Transport className=\"PooledParallelSender\"/>\n<Member className=\"StaticMember\" host=\"127.0.0.1\" port=\"4001\"/>\n</Cluster>",
			[]expect{
				warn(3, `[Cluster/Transport] <Transport> directly inside <Cluster>: ignored (Tomcat: no rules found matching "Cluster/Transport"); it belongs inside the <Sender> of the <Channel>`),
				warn(4, `[Cluster/Member] <Member> directly inside <Cluster>: ignored (Tomcat: no rules found matching "Cluster/Member"); it belongs inside the StaticMembershipInterceptor's <Interceptor> in the <Channel>`),
			},
			"default"},
		{"transport without a channel",
			"<Cluster>\n<Transport className=\"PooledParallelSender\"/>\n</Cluster>",
			[]expect{warn(2, `[Cluster/Transport] <Transport> directly inside <Cluster>: ignored`)},
			"default"},
		{"member with an implied channel",
			"<Cluster>\n<Membership className=\"McastService\" frequency=\"600\"/>\n<LocalMember className=\"StaticMember\"/>\n</Cluster>",
			[]expect{
				warn(2, `[Cluster] <Membership> directly inside <Cluster>, without a <Channel> start tag`),
				warn(3, `[Cluster/LocalMember] <LocalMember> directly inside <Cluster>: ignored`),
			},
			"default"},
	}
	for _, tc := range warnings {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ws, _ := mustLoad(t, tc.in)
			checkWarnings(t, ws, tc.want)
			if got := stack(cfg.Interceptors); got != tc.stack {
				t.Errorf("stack %s, want %s", got, tc.stack)
			}
			if cfg.Receiver.Port == 4321 || cfg.Mcast.Port == 1 {
				t.Errorf("an element outside the channel was read: receiver %+v, mcast %+v", cfg.Receiver, cfg.Mcast)
			}
		})
	}

	errs := []struct {
		name, in string
		want     string // in the error, which wraps ErrMisplaced
	}{
		{"encryption after the channel",
			"<Cluster className=\"SimpleTcpCluster\">\n  <Channel className=\"org.apache.catalina.tribes.group.GroupChannel\"/>\n" +
				"  <Interceptor className=\"org.apache.catalina.tribes.group.interceptors.EncryptInterceptor\"\n               " + key + "/>\n</Cluster>",
			`t.xml:3:16: [Cluster/Interceptor] attribute "className": EncryptInterceptor directly inside <Cluster>, outside its <Channel> (line 2), is read by nothing: cluster traffic would not be encrypted; move it into the <Channel>`},
		{"short name in another case",
			"<Cluster><Channel className=\"GroupChannel\"><Interceptor className=\"TcpFailureDetector\"/></Channel>\n<Interceptor className=\"encryptinterceptor\" " + key + "/></Cluster>",
			`t.xml:2:14: [Cluster/Interceptor] attribute "className": EncryptInterceptor directly inside <Cluster>, outside its <Channel> (line 1)`},
		{"in a channel that a second one replaces",
			"<Cluster>\n<Channel className=\"GroupChannel\">\n<Interceptor className=\"EncryptInterceptor\" " + key + "/>\n</Channel>\n<Channel className=\"GroupChannel\"/>\n</Cluster>",
			`t.xml:3:14: [Cluster/Channel/Interceptor] attribute "className": EncryptInterceptor inside the <Channel> on line 2, which the <Channel> on line 5 replaces, is read by nothing`},
		{"inside the receiver of a bare channel",
			"<Channel className=\"GroupChannel\">\n<Receiver className=\"NioReceiver\">\n<Interceptor className=\"EncryptInterceptor\" " + key + "/>\n</Receiver>\n</Channel>",
			`t.xml:3:14: [Channel/Receiver/Interceptor] attribute "className": EncryptInterceptor inside <Receiver> (line 2), not directly inside the <Channel>, is read by nothing`},
		{"inside the membership of an implied channel",
			"<Cluster>\n<Membership className=\"McastService\">\n<Interceptor className=\"EncryptInterceptor\" " + key + "/>\n</Membership>\n</Cluster>",
			`t.xml:3:14: [Cluster/Membership/Interceptor] attribute "className": EncryptInterceptor inside <Membership> (line 2), not directly inside the <Channel>, is read by nothing`},
		{"inside the manager of a cluster without channel",
			"<Cluster>\n<Manager className=\"DeltaManager\">\n<Interceptor className=\"EncryptInterceptor\" " + key + "/>\n</Manager>\n</Cluster>",
			`t.xml:3:14: [Cluster/Manager/Interceptor] attribute "className": EncryptInterceptor inside <Manager> (line 2), not directly inside the <Channel>, is read by nothing`},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := load(t, tc.in, nil)
			if !errors.Is(err, ErrMisplaced) {
				t.Fatalf("error %v, want ErrMisplaced", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error\n%v\nlacks\n%s", err, tc.want)
			}
			if strings.Contains(err.Error(), "cafebabe") {
				t.Errorf("error shows the key: %v", err)
			}
		})
	}

	// Read where it belongs, the same interceptor is no error.
	cfg, ws, _ := mustLoad(t, "<Cluster><Channel className=\"GroupChannel\"><Interceptor className=\"EncryptInterceptor\" "+key+"/></Channel></Cluster>")
	if len(ws) != 0 || stack(cfg.Interceptors) != "interceptors.Encrypt" {
		t.Errorf("warnings %v, stack %s", ws, stack(cfg.Interceptors))
	}
}
