package serverconfig

import (
	"errors"
	"strings"
	"testing"

	"github.com/wasmfarm/wasmfarm/tribes/tribesconfig"
)

// TestParseChannelElementsOutsideTheChannel: the cluster's loader skips
// the channel's kinds of element, which tribesconfig reads; when the
// <Cluster> has a <Channel>, one placed directly in the cluster is read
// by neither, and must still be reported, once: a warning, or for an
// EncryptInterceptor an error (the node would otherwise run unencrypted).
func TestParseChannelElementsOutsideTheChannel(t *testing.T) {
	const cluster = `<Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster">
  <Channel className="org.apache.catalina.tribes.group.GroupChannel"/>
  <Interceptor className="org.apache.catalina.tribes.group.interceptors.%s"
               encryptionKey="cafebabefeedbeefbeefcafebabefeed"/>
</Cluster>`
	n, ws, err := Parse("server.xml", []byte(strings.Replace(cluster, "%s", "TcpFailureDetector", 1)))
	if err != nil {
		t.Fatal(err)
	}
	checkWarnings(t, ws, []expect{
		note(1, `[Cluster] no <Valve>`),
		warn(3, `[Cluster/Interceptor] <Interceptor> directly inside <Cluster>, outside its <Channel> (line 2): ignored (Tomcat: no rules found matching "Cluster/Interceptor"); move it into the <Channel>`),
	})
	if n.Cluster.Interceptors != nil {
		t.Errorf("interceptors %v, want the default stack", n.Cluster.Interceptors)
	}

	_, _, err = Parse("server.xml", []byte(strings.Replace(cluster, "%s", "EncryptInterceptor", 1)))
	const want = `server.xml:3:16: [Cluster/Interceptor] attribute "className": EncryptInterceptor directly inside <Cluster>, outside its <Channel> (line 2), is read by nothing: cluster traffic would not be encrypted`
	if !errors.Is(err, tribesconfig.ErrMisplaced) || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want ErrMisplaced with\n%s", err, want)
	}
}
