package serverconfig_test

import (
	"fmt"
	"os"

	"github.com/wasmfarm/wasmfarm/host/serverconfig"
)

// A <Cluster> pasted from Tomcat's documentation, with a typo, into a node
// whose connector and apps come from the same file.
func ExampleParse() {
	const xml = `<Server>
  <Service>
    <Connector port="8081" address="127.0.0.1"/>
    <Engine name="Catalina" jvmRoute="jvm_a">
      <Host name="localhost">
        <Context path="/counter" docBase="builtin:counter"/>
      </Host>
      <Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster" channelSendOptions="6">
        <Manager className="org.apache.catalina.ha.session.DeltaManager" expireSessionOnShutdown="false"/>
      </Cluster>
    </Engine>
  </Service>
</Server>`
	node, warnings, err := serverconfig.Parse("server.xml", []byte(xml))
	for _, w := range warnings {
		fmt.Println(w)
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	node.Describe(os.Stdout)
	// Output:
	// server.xml:8:7: note: [Server/Service/Engine/Cluster] no <Valve>: ReplicationValve and JvmRouteBinderValve added with their defaults, as SimpleTcpCluster does
	// server.xml:9:74: warning: [Server/Service/Engine/Cluster/Manager] attribute "expireSessionOnShutdown": no such property (value "false" ignored); did you mean "expireSessionsOnShutdown"?
	// node             server.xml
	//   http           127.0.0.1:8081
	//   jvmRoute       jvm_a
	//   engine         Catalina, host localhost
	//   apps           1
	//     /counter     builtin:counter  distributable, DeltaManager
	//   cluster        SimpleTcpCluster, channelSendOptions use_ack|synchronized_ack (6)
	//     membership   multicast 228.0.0.4:45564, frequency 500ms, dropTime 3s
	//     receiver     auto:4000 (autoBind 100, maxThreads 6)
	//     interceptors (default) MessageDispatchInterceptor, TcpFailureDetector
	//     manager      DeltaManager: send options use_ack|synchronized_ack (6), stateTransferTimeout 1m0s, sendAllSessionsSize 1000, sendAllSessionsWaitTime 2s, stateTimestampDrop true, expireSessionsOnShutdown false, notifyListenersOnReplication true, sendClusterDomainOnly true
	//     valves       ReplicationValve (no filter); JvmRouteBinderValve (default)
	//     listeners    ClusterSessionListener
	//     deployer     (none)
}
