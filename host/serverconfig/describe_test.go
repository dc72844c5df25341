package serverconfig

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestDescribe checks the key lines of the summary -check prints.
func TestDescribe(t *testing.T) {
	tests := []struct {
		name  string
		file  string // a file, or
		xml   string // data parsed as f.xml
		lines []string
	}{
		{name: "delta example", file: filepath.Join(exampleDir, "delta.xml"), lines: []string{
			"node             delta.xml",
			"  http           127.0.0.1:8081",
			"  jvmRoute       jvm_a",
			"  engine         Catalina, host localhost",
			"  apps           3",
			"    /counter     builtin:counter  distributable, DeltaManager",
			"    /static      builtin:static  local sessions",
			"  cluster        SimpleTcpCluster, channelSendOptions asynchronous (8)",
			"    membership   multicast 228.0.0.4:45564, bind 127.0.0.1, ttl 0, frequency 500ms, dropTime 3s",
			"    receiver     127.0.0.1:4000 (autoBind 100, maxThreads 6)",
			"    interceptors TcpFailureDetector, MessageDispatchInterceptor",
			"    manager      DeltaManager: send options asynchronous (8), stateTransferTimeout 1m0s, sendAllSessionsSize 1000,",
			`    valves       ReplicationValve filter ".*\.gif|.*\.js|.*\.jpeg|.*\.jpg|.*\.png|.*\.css|.*\.txt"; JvmRouteBinderValve`,
			"    listeners    ClusterSessionListener",
			"    deployer     (none)",
		}},
		{name: "static example", file: filepath.Join(exampleDir, "static.xml"), lines: []string{
			"    membership   static (members checked with a TCP connect)",
			"    members      127.0.0.1:4300, 127.0.0.1:4301, 127.0.0.1:4302",
			"    manager      DeltaManager: send options use_ack|synchronized_ack (6),",
		}},
		{name: "backup seed", file: filepath.Join(seedDir, "003-backup.xml"), lines: []string{
			"  http           (not in the file: the -http flag)",
			"  jvmRoute       (none: session ids carry no route; the -jvm-route flag)",
			"  apps           (none in the file: the -app flag)",
			"  cluster        SimpleTcpCluster, channelSendOptions use_ack|synchronized_ack (6)",
			"    interceptors TcpFailureDetector, MessageDispatch15Interceptor, ThroughputInterceptor",
			"    manager      BackupManager: mapSendOptions use_ack|synchronized_ack (6), rpcTimeout 5s, expireSessionsOnShutdown false, notifyListenersOnReplication true, sendClusterDomainOnly true",
			"    deployer     FarmWarDeployer tempDir /tmp/war-temp, deployDir /tmp/war-deploy, watchDir /tmp/war-listen (watch off)",
		}},
		{name: "defaults", xml: `<Cluster className="SimpleTcpCluster"/>`, lines: []string{
			"    interceptors (default) MessageDispatchInterceptor, TcpFailureDetector",
			"    manager      DeltaManager (default): send options asynchronous (8)",
			"    valves       ReplicationValve (no filter); JvmRouteBinderValve (default)",
			"    listeners    ClusterSessionListener",
		}},
		{name: "no cluster", xml: `<Host><Context path="/a" docBase="builtin:counter" sessionTimeout="-1"><Manager maxActiveSessions="3"/></Context></Host>`, lines: []string{
			"    /a           builtin:counter  local sessions, maxActiveSessions 3, sessions never expire",
			"  cluster        (none: the node runs alone)",
		}},
		{name: "node limits", xml: `<Engine><Cluster className="SimpleTcpCluster"><Manager className="BackupManager" maxActiveSessions="9"/>` +
			`<Valve className="JvmRouteBinderValve" enabled="false"/><Deployer className="FarmWarDeployer" watchDir="/w" watchEnabled="true"/></Cluster>` +
			`<Host><Context path="/a" docBase="builtin:counter"/><Context path="/b" docBase="builtin:cart"><Manager maxActiveSessions="-1"/></Context></Host></Engine>`, lines: []string{
			"    /a           builtin:counter  distributable, BackupManager, maxActiveSessions 9",
			"    /b           builtin:cart  distributable, BackupManager, no session limit",
			"    manager      BackupManager: mapSendOptions use_ack|synchronized_ack (6), rpcTimeout 5s, expireSessionsOnShutdown false, notifyListenersOnReplication true, sendClusterDomainOnly true, maxActiveSessions 9",
			"    valves       JvmRouteBinderValve (disabled)",
			"    deployer     FarmWarDeployer tempDir -, deployDir -, watchDir /w (watch every 20s)",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n *Node
			var err error
			if tc.file != "" {
				n, _, err = Load(tc.file)
			} else {
				n, _, err = Parse("f.xml", []byte(tc.xml))
			}
			if err != nil {
				t.Fatal(err)
			}
			var sb strings.Builder
			if err := n.Describe(&sb); err != nil {
				t.Fatal(err)
			}
			out := sb.String()
			for _, l := range tc.lines {
				if !strings.Contains(out, "\n"+l) && !strings.HasPrefix(out, l) {
					t.Errorf("no line %q in:\n%s", l, out)
				}
			}
		})
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n == 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(p), nil
}

func TestDescribeWriteError(t *testing.T) {
	n, _, err := Load(filepath.Join(exampleDir, "delta.xml"))
	if err != nil {
		t.Fatal(err)
	}
	w := &failWriter{n: 3}
	if err := n.Describe(w); err == nil || err.Error() != "disk full" {
		t.Errorf("error %v, want the writer's", err)
	}
}
