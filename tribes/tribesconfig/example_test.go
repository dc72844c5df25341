package tribesconfig_test

import (
	"fmt"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/tribesconfig"
)

// A <Cluster> pasted from a Tomcat how-to, typos included, loads with
// warnings that point at them.
func ExampleParse() {
	serverXML := `<Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster" channelSendOptions="8">
  <Channel className="org.apache.catalina.tribes.group.GroupChannel">
    <MemberShip className="org.apache.catalina.tribes.membership.McastService"
                address="228.0.0.4" port="45564" frequency="500" droptTime="3000"/>
    <Receiver className="org.apache.catalina.tribes.transport.nio.NioReceiver"
              address="auto" port="4000" selectorTimeout="5000" maxThreads="6"/>
    <Interceptor className="TcpFailureDetector"/>
    <Interceptor className="MessageDispatchInterceptor"/>
  </Channel>
</Cluster>`
	cfg, warnings, err := tribesconfig.Parse("server.xml", []byte(serverXML))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, w := range warnings {
		fmt.Println(w)
	}
	fmt.Println("receiver port:", cfg.Receiver.Port, "threads:", cfg.Receiver.MaxThreads)
	ch, err := tribes.New(cfg)
	fmt.Println("interceptors:", len(ch.Interceptors()), err)
	// Output:
	// server.xml:3:5: warning: [Cluster/Channel/MemberShip] element <MemberShip> read as <Membership>: names are case-sensitive (Tomcat ignores it: no rules found matching "Cluster/Channel/MemberShip")
	// server.xml:4:66: warning: [Cluster/Channel/MemberShip] attribute "droptTime": no such property (value "3000" ignored); did you mean "dropTime"?
	// server.xml:6:42: note: [Cluster/Channel/Receiver] attribute "selectorTimeout": accepted but not used (value "5000"): the receiver runs on an epoll reactor with its own timeouts
	// receiver port: 4000 threads: 6
	// interceptors: 2 <nil>
}
