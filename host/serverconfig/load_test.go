package serverconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host/cluster"
	"github.com/wasmfarm/wasmfarm/internal/serverxml"
	"github.com/wasmfarm/wasmfarm/tribes"
)

// server wraps an Engine's content in a Server with a loopback connector.
func server(engine string) string {
	return `<Server><Service name="S"><Connector port="8080" address="127.0.0.1"/>
<Engine name="E" defaultHost="h" jvmRoute="r1">` + engine + `</Engine></Service></Server>`
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		xml  string
		is   error
		msgs []string // each in the error text
	}{
		{"syntax", `<Server><Service`, serverxml.ErrSyntax, nil},
		{"no node", `<Channel/>`, ErrNoNode, []string{"f.xml:1:1", "<Channel> is not"}},
		{"no service", `<Server port="8005"/>`, ErrNoNode, []string{"has no <Service>"}},
		{"two services", `<Server><Service/><Service/></Server>`, ErrAmbiguous, []string{"f.xml:1:19", "second <Service>"}},
		{"two roots", "<Engine/>\n<Cluster/>", ErrAmbiguous, []string{"f.xml:2:1", "several top-level elements"}},
		{"bad port", `<Service><Connector port="http" address="127.0.0.1"/></Service>`, serverxml.ErrBadValue,
			[]string{`f.xml:1:21: [Service/Connector] attribute "port": value "http" is not an integer`}},
		{"port range", `<Service><Connector port="70000" address="127.0.0.1"/></Service>`, serverxml.ErrBadValue, []string{"out of range 0..65535"}},
		{"no port", `<Service><Connector address="127.0.0.1"/></Service>`, ErrMissing, []string{"has no port"}},
		{"protocol", `<Service><Connector port="1" address="127.0.0.1" protocol="SPDY"/></Service>`, serverxml.ErrBadValue, []string{`unknown protocol "SPDY"`}},
		{"route", `<Engine jvmRoute="a;b"/>`, serverxml.ErrBadValue, []string{`attribute "jvmRoute": value "a;b" holds characters`}},
		{"context path", `<Host><Context path="counter" docBase="builtin:counter"/></Host>`, serverxml.ErrBadValue, []string{`attribute "path"`, "is not a context path"}},
		{"context no path", `<Host><Context docBase="builtin:counter"/></Host>`, ErrMissing, []string{"has no path"}},
		{"context no docBase", `<Host><Context path="/a"/></Host>`, ErrMissing, []string{"has no docBase"}},
		{"duplicate path", "<Host><Context path=\"/a\" docBase=\"builtin:counter\"/>\n<Context path=\"/a\" docBase=\"builtin:cart\"/></Host>",
			serverxml.ErrBadValue, []string{"f.xml:2:10", `context path "/a" is already used on line 1`}},
		{"unknown builtin", `<Host><Context path="/a" docBase="builtin:nope"/></Host>`, serverxml.ErrBadValue, []string{`no builtin app "nope" (have `}},
		{"timeout", `<Host><Context path="/a" docBase="builtin:counter" sessionTimeout="soon"/></Host>`, serverxml.ErrBadValue, []string{`"sessionTimeout"`}},
		{"context manager class", `<Host><Context path="/a" docBase="builtin:counter"><Manager className="x.Y"/></Context></Host>`,
			serverxml.ErrUnknownClass, []string{`unknown Manager class "x.Y"`}},
		{"cluster class", `<Cluster className="x.Cluster"/>`, serverxml.ErrUnknownClass, []string{`unknown Cluster class "x.Cluster"`}},
		{"send options", `<Cluster className="SimpleTcpCluster" channelSendOptions="fast"/>`, serverxml.ErrBadValue,
			[]string{`attribute "channelSendOptions": value "fast" is not a number or a list of send options`}},
		{"manager class", `<Cluster><Manager className="org.apache.catalina.ha.session.FooManager"/></Cluster>`, serverxml.ErrUnknownClass,
			[]string{"unknown Manager class", "BackupManager, org.apache.catalina.ha.session.DeltaManager"}},
		{"manager no class", `<Cluster><Manager/></Cluster>`, serverxml.ErrUnknownClass, []string{"<Manager> has no className"}},
		{"manager values", "<Cluster>\n<Manager className=\"DeltaManager\" expireSessionsOnShutdown=\"no\"\n sendAllSessionsSize=\"0\" mapSendOptions=\"6\"/></Cluster>",
			serverxml.ErrBadValue, []string{`f.xml:2:35: [Cluster/Manager] attribute "expireSessionsOnShutdown": value "no" is not "true" or "false"`,
				`f.xml:3:2: [Cluster/Manager] attribute "sendAllSessionsSize"`}},
		{"backup rpc", `<Cluster><Manager className="BackupManager" rpcTimeout="0"/></Cluster>`, serverxml.ErrBadValue, []string{"rpcTimeout must be positive"}},
		{"filter", `<Cluster><Valve className="ReplicationValve" filter=".*\.(gif"/></Cluster>`, serverxml.ErrBadValue,
			[]string{`attribute "filter": value ".*\\.(gif" is not a regular expression: missing closing )`}},
		{"valve class", `<Cluster><Valve className="org.apache.catalina.valves.AccessLogValve"/></Cluster>`, serverxml.ErrUnknownClass, []string{"unknown Valve class"}},
		{"listener class", `<Cluster><ClusterListener className="com.example.Listener"/></Cluster>`, serverxml.ErrUnknownClass, []string{"unknown ClusterListener class"}},
		{"deployer", `<Cluster><Deployer className="FarmWarDeployer" watchEnabled="true" processDeployFrequency="0"/></Cluster>`, nil,
			[]string{"processDeployFrequency must be at least 1", "watchEnabled=\"true\" needs a watchDir"}},
		{"channel", `<Cluster><Channel className="GroupChannel"><Receiver className="NioReceiver" port="x"/></Channel></Cluster>`,
			serverxml.ErrBadValue, []string{`[Cluster/Channel/Receiver] attribute "port"`}},
		{"two clusters", server(`<Cluster/><Host><Cluster/></Host>`), ErrAmbiguous, []string{"a <Cluster> in the <Host> and another in the <Engine>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, _, err := Parse("f.xml", []byte(tc.xml))
			if err == nil {
				t.Fatalf("no error; node %+v", n)
			}
			if n != nil {
				t.Error("a node with the error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			for _, m := range tc.msgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q lacks %q", err, m)
				}
			}
		})
	}
}

func TestParseWarnings(t *testing.T) {
	tests := []struct {
		name string
		xml  string
		want []expect
	}{
		{"no address", `<Service><Connector port="8080"/></Service>`,
			[]expect{warn(1, `[Service/Connector] no address: listening on 127.0.0.1 only (Tomcat listens on every address)`)}},
		{"ajp and second connector", "<Service>\n<Connector port=\"8009\" protocol=\"AJP/1.3\"/>\n<Connector port=\"1\" address=\"::1\"/>\n" +
			"<Connector port=\"2\" address=\"::1\"/>\n<Connector port=\"3\" SSLEnabled=\"true\"/></Service>", []expect{
			warn(2, `attribute "protocol": AJP connector skipped`),
			warn(4, `second HTTP connector skipped: a node listens on one address (the connector on line 3)`),
			warn(5, `attribute "SSLEnabled": TLS connector skipped`),
		}},
		{"notes", `<Server port="8005" shutdown="SHUTDOWN"><Listener className="x"/><Service><Connector port="1" address="a" connectionTimeout="20000" redirectPort="8443"/></Service></Server>`, []expect{
			note(1, `[Server] attribute "port": accepted but not used (value "8005")`),
			note(1, `[Server] attribute "shutdown"`),
			note(1, `[Server/Listener] <Listener> ignored: Java components`),
			note(1, `[Server/Service/Connector] attribute "redirectPort"`),
		}},
		{"misspelt", "<Cluster className=\"SimpleTcpCluster\">\n<Manager className=\"DeltaManager\" expireSessionOnShutdown=\"true\"\n notifyListenerOnReplication=\"false\"/>\n" +
			"<Valve className=\"ReplicationValve\" filtre=\"\"/>\n<Deployer className=\"FarmWarDeployer\" wachDir=\"/w\"/>\n<Listener/></Cluster>", []expect{
			warn(2, `[Cluster/Manager] attribute "expireSessionOnShutdown": no such property (value "true" ignored); did you mean "expireSessionsOnShutdown"?`),
			warn(3, `attribute "notifyListenerOnReplication": no such property (value "false" ignored); did you mean "notifyListenersOnReplication"?`),
			warn(4, `[Cluster/Valve] attribute "filtre": no such property (value "" ignored); did you mean "filter"?`),
			warn(5, `[Cluster/Deployer] attribute "wachDir": no such property (value "/w" ignored); did you mean "watchDir"?`),
			warn(6, `unknown element <Listener> ignored (Tomcat: no rules found matching "Cluster/Listener")`),
		}},
		{"tomcat 5.5 names", `<Cluster className="org.apache.catalina.cluster.tcp.SimpleTcpCluster"><Manager className="org.apache.catalina.cluster.session.DeltaManager"/><Valve className="org.apache.catalina.cluster.tcp.ReplicationValve"/></Cluster>`, []expect{
			warn(1, `[Cluster] attribute "className": class "org.apache.catalina.cluster.tcp.SimpleTcpCluster" read as "org.apache.catalina.ha.tcp.SimpleTcpCluster" (same class name, another package)`),
			warn(1, `[Cluster/Manager] attribute "className": class "org.apache.catalina.cluster.session.DeltaManager" read as`),
			warn(1, `[Cluster/Valve] attribute "className": class "org.apache.catalina.cluster.tcp.ReplicationValve" read as`),
		}},
		{"state transfer forever", `<Cluster className="SimpleTcpCluster"><Manager className="DeltaManager" stateTransferTimeout="-1" sendAllSessions="false"/><Valve className="JvmRouteBinderValve"/></Cluster>`, []expect{
			warn(1, `attribute "stateTransferTimeout": -1 waits forever in Tomcat; a wasmfarm node does not open its port unbounded: 1m0s used`),
			note(1, `attribute "sendAllSessions": "false" ignored`),
		}},
		{"no route", server(`<Cluster className="SimpleTcpCluster"><Valve className="JvmRouteBinderValve"/></Cluster>`)[:0] +
			`<Engine name="E"><Cluster className="SimpleTcpCluster">` + "\n" + `<Valve className="JvmRouteBinderValve"/></Cluster></Engine>`, []expect{
			warn(2, `[Engine/Cluster/Valve] JvmRouteBinderValve but <Engine> has no jvmRoute`),
		}},
		{"no route, default valves", `<Engine name="E"><Cluster className="SimpleTcpCluster"/></Engine>`, []expect{
			note(1, `[Engine/Cluster] no <Valve>: ReplicationValve and JvmRouteBinderValve added`),
			warn(1, `[Engine/Cluster] JvmRouteBinderValve (added by default) but <Engine> has no jvmRoute`),
		}},
		{"engine and host valves", server(`<Valve className="org.apache.catalina.valves.AccessLogValve"/><Realm className="x"/><Host name="h"><Alias>a</Alias></Host>`), []expect{
			note(2, `[Server/Service/Engine/Host/Alias] text "a" ignored`),
			warn(2, `[Server/Service/Engine/Valve] <Valve> ignored: valves of the Engine or Host are Java components`),
			note(2, `[Server/Service/Engine/Realm] <Realm> ignored`),
			note(2, `[Server/Service/Engine/Host/Alias] <Alias> ignored: a node answers whatever Host header it gets`),
		}},
		{"distributable without cluster", `<Host><Context path="" docBase="builtin:counter" distributable="true"/></Host>`, []expect{
			warn(1, `[Host/Context] attribute "distributable": "true" but the node has no <Cluster>`),
		}},
		{"several hosts", server("<Host name=\"a\"/>\n<Host name=\"h\"/>"), []expect{
			warn(2, `[Server/Service/Engine/Host] <Host> ignored: a node serves one host (the one on line 3`),
		}},
		{"context managers", `<Host><Context path="/a" docBase="builtin:counter"><Manager className="org.apache.catalina.ha.session.DeltaManager"/></Context>` +
			`<Context path="/b" docBase="builtin:counter"><Manager className="PersistentManager" pathname="s.ser"/></Context></Host>`, []expect{
			warn(1, `[Host/Context/Manager] attribute "className": a replicated manager per app is not supported`),
			warn(1, `[Host/Context/Manager] attribute "className": sessions are not persisted`),
			note(1, `attribute "pathname": accepted but not used (value "s.ser"): sessions are kept in memory only`),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ws, err := Parse("f.xml", []byte(tc.xml))
			if err != nil {
				t.Fatal(err)
			}
			checkWarnings(t, ws, tc.want)
		})
	}
}

// TestParseConnectorLimits: the HTTP connector's connectionTimeout,
// keepAliveTimeout and maxHttpHeaderSize are read (Tomcat's milliseconds
// and bytes); a timeout meaning "none" keeps the node's, with a warning.
func TestParseConnectorLimits(t *testing.T) {
	n, ws, err := Parse("f.xml", []byte(`<Service><Connector port="1" address="::1" connectionTimeout="20000" keepAliveTimeout="5s" maxHttpHeaderSize="8192"/></Service>`))
	if err != nil || len(ws) != 0 {
		t.Fatalf("err %v, warnings %v", err, ws)
	}
	if n.ConnectionTimeout != 20*time.Second || n.KeepAliveTimeout != 5*time.Second || n.MaxHeaderBytes != 8192 {
		t.Errorf("read %v, %v, %d", n.ConnectionTimeout, n.KeepAliveTimeout, n.MaxHeaderBytes)
	}
	n, ws, err = Parse("f.xml", []byte(`<Service><Connector port="1" address="::1" connectionTimeout="-1"/></Service>`))
	if err != nil || len(ws) != 1 || !strings.Contains(ws[0].String(), `attribute "connectionTimeout": -1ms means no timeout in Tomcat`) || n.ConnectionTimeout != 0 {
		t.Errorf("-1: err %v, warnings %v, timeout %v", err, ws, n.ConnectionTimeout)
	}
	if _, _, err := Parse("f.xml", []byte(`<Service><Connector port="1" address="::1" maxHttpHeaderSize="0"/></Service>`)); err == nil {
		t.Error("maxHttpHeaderSize 0 accepted")
	}
}

// TestParseUploadTimeout: connectionUploadTimeout is read when
// disableUploadTimeout is "false", and ignored with a note otherwise, as
// Tomcat ignores it; connectionTimeout does not set it.
func TestParseUploadTimeout(t *testing.T) {
	n, ws, err := Parse("f.xml", []byte(`<Service><Connector port="1" address="::1" connectionTimeout="20000" disableUploadTimeout="false" connectionUploadTimeout="600000"/></Service>`))
	if err != nil || len(ws) != 0 || n.ConnectionUploadTimeout != 10*time.Minute || n.ConnectionTimeout != 20*time.Second {
		t.Errorf("err %v, warnings %v, connectionUploadTimeout %v, connectionTimeout %v", err, ws, n.ConnectionUploadTimeout, n.ConnectionTimeout)
	}
	var b strings.Builder
	if err := n.Describe(&b); err != nil || !strings.Contains(b.String(), "connectionUploadTimeout 10m0s") {
		t.Errorf("Describe: %v\n%s", err, b.String())
	}
	for _, attrs := range []string{`connectionUploadTimeout="600000"`, `disableUploadTimeout="true" connectionUploadTimeout="600000"`} {
		n, ws, err = Parse("f.xml", []byte(`<Service><Connector port="1" address="::1" `+attrs+`/></Service>`))
		if err != nil || len(ws) != 1 || ws[0].Level != serverxml.LevelNote || !strings.Contains(ws[0].String(), `applies only with disableUploadTimeout="false"`) || n.ConnectionUploadTimeout != 0 {
			t.Errorf("%s: err %v, warnings %v, connectionUploadTimeout %v", attrs, err, ws, n.ConnectionUploadTimeout)
		}
	}
	n, ws, err = Parse("f.xml", []byte(`<Service><Connector port="1" address="::1" connectionTimeout="20000" disableUploadTimeout="false"/></Service>`))
	if err != nil || len(ws) != 0 || n.ConnectionUploadTimeout != 0 {
		t.Errorf("without connectionUploadTimeout: err %v, warnings %v, connectionUploadTimeout %v (want 0: the node's default)", err, ws, n.ConnectionUploadTimeout)
	}
}

func TestParseServer(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "apps"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"apps/shop.wasm", "top.wasm"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("\x00asm"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfgFile := filepath.Join(dir, "server.xml")
	xml := `<Server><Service name="Catalina">
  <Connector port="0" address="::1"/>
  <Engine name="Catalina" defaultHost="localhost" jvmRoute="jvm-1">
    <Host name="localhost" appBase="apps">
      <Context path="" docBase="shop.wasm" sessionTimeout="5"/>
      <Context path="/top" docBase="` + filepath.Join(dir, "top.wasm") + `" distributable="false">
        <Manager maxActiveSessions="7" maxInactiveInterval="90"/>
      </Context>
      <Context path="/never" docBase="builtin:cart" sessionTimeout="0"><Manager maxActiveSessions="-1"/></Context>
      <Cluster className="org.apache.catalina.ha.tcp.SimpleTcpCluster" channelSendOptions="use_ack,sync">
        <Manager className="DeltaManager" maxActiveSessions="100" stateTransferTimeout="5" sendAllSessionsSize="50"
          sendAllSessionsWaitTime="300" stateTimestampDrop="false" sendClusterDomainOnly="false"
          notifySessionListenersOnReplication="false" expireSessionsOnShutdown="true"/>
        <Channel className="GroupChannel"><Receiver className="NioReceiver" address="127.0.0.1" port="0"/></Channel>
        <Valve className="ReplicationValve" filter=".*\.css" primaryIndicator="true" primaryIndicatorName="p" statistics="true"/>
        <Valve className="JvmRouteBinderValve" enabled="false" sessionIdAttribute="old"/>
        <Deployer className="FarmWarDeployer" tempDir="farm/tmp" deployDir="/abs/deploy" watchDir="farm/watch"
          watchEnabled="true" processDeployFrequency="3"/>
      </Cluster>
    </Host>
  </Engine>
</Service></Server>`
	if err := os.WriteFile(cfgFile, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	n, ws, err := Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	checkWarnings(t, ws, nil)
	if n.File != "server.xml" || n.Dir != dir || n.HTTPAddr != "[::1]:0" || n.JvmRoute != "jvm-1" ||
		n.ServiceName != "Catalina" || n.EngineName != "Catalina" || n.HostName != "localhost" ||
		n.AppBase != filepath.Join(dir, "apps") || n.MaxActiveSessions != 100 {
		t.Errorf("node %+v", n)
	}
	want := []Context{
		{Path: "/", DocBase: "shop.wasm", Module: filepath.Join(dir, "apps/shop.wasm"), Distributable: true, SessionTimeout: 5 * time.Minute, Line: 5},
		{Path: "/top", DocBase: filepath.Join(dir, "top.wasm"), Module: filepath.Join(dir, "top.wasm"), NotDistributable: true, MaxActiveSessions: 7, SessionTimeout: 90 * time.Second, Line: 6},
		{Path: "/never", DocBase: "builtin:cart", Module: "builtin:cart", Distributable: true, MaxActiveSessions: -1, SessionTimeout: -1, Line: 9},
	}
	if len(n.Contexts) != len(want) {
		t.Fatalf("contexts %+v", n.Contexts)
	}
	for i := range want {
		if n.Contexts[i] != want[i] {
			t.Errorf("context %d:\n got %+v\nwant %+v", i, n.Contexts[i], want[i])
		}
	}
	c := n.Cluster
	wantM := cluster.ManagerConfig{Kind: cluster.KindDelta, SendOptions: cluster.SyncOptions, ExpireSessionsOnShutdown: true,
		NoNotifyListenersOnReplication: true, StateTransferTimeout: 5 * time.Second, SendAllSessionsSize: 50,
		SendAllSessionsWaitTime: 300 * time.Millisecond, NoStateTimestampDrop: true, NoSendClusterDomainOnly: true, FetchTimeout: 5 * time.Second}
	if c.Manager != wantM || c.ChannelSendOptions != cluster.SyncOptions {
		t.Errorf("manager\n got %+v\nwant %+v", c.Manager, wantM)
	}
	if *c.ReplicationValve != (cluster.ReplicationValveConfig{Filter: `.*\.css`, PrimaryIndicator: true, PrimaryIndicatorName: "p", Statistics: true}) ||
		*c.JvmRouteBinder != (cluster.JvmRouteBinderConfig{Disabled: true, SessionIDAttribute: "old"}) || c.ValvesImplied {
		t.Errorf("valves %+v %+v", c.ReplicationValve, c.JvmRouteBinder)
	}
	wantD := DeployerConfig{TempDir: filepath.Join(dir, "farm/tmp"), DeployDir: "/abs/deploy", WatchDir: filepath.Join(dir, "farm/watch"),
		WatchEnabled: true, ProcessDeployFrequency: 3}
	if *c.Deployer != wantD || c.Deployer.WatchInterval() != 30*time.Second {
		t.Errorf("deployer %+v", c.Deployer)
	}
	if c.Channel.Receiver.Port != tribes.AnyPort || c.Interceptors != nil {
		t.Errorf("channel %+v interceptors %v", c.Channel.Receiver, c.Interceptors)
	}
}

func TestParseRoots(t *testing.T) {
	tests := []struct {
		name, xml string
		http      string
		route     string
		apps      int
		cluster   bool
	}{
		{"server", server(`<Host name="h"><Context path="/a" docBase="builtin:counter"/></Host>`), "127.0.0.1:8080", "r1", 1, false},
		{"service", `<Service><Connector port="1" address="0.0.0.0"/><Engine jvmRoute="x"/></Service>`, "0.0.0.0:1", "x", 0, false},
		{"engine", `<Engine jvmRoute="b"><Cluster/><Host><Context path="/a" docBase="builtin:counter"/></Host></Engine>`, "", "b", 1, true},
		{"host", `<Host><Context path="/a" docBase="builtin:counter"/></Host>`, "", "", 1, false},
		{"cluster", `<Cluster/>`, "", "", 0, true},
		{"pasted with prose elements", "<Engine name=\"Catalina\" jvmRoute=\"a\"/>\n<p>text</p>", "", "a", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, _, err := Parse("f.xml", []byte(tc.xml))
			if err != nil {
				t.Fatal(err)
			}
			if n.HTTPAddr != tc.http || n.JvmRoute != tc.route || len(n.Contexts) != tc.apps || (n.Cluster != nil) != tc.cluster {
				t.Errorf("node %+v", n)
			}
			for _, c := range n.Contexts {
				if c.Distributable != tc.cluster {
					t.Errorf("context %s distributable %v with cluster %v", c.Path, c.Distributable, tc.cluster)
				}
			}
		})
	}
}

// TestParseModuleWarnings checks the docBase checks against the file
// system: missing, a directory, not a .wasm file.
func TestParseModuleWarnings(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.war"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	xml := "<Host>\n<Context path=\"/a\" docBase=\"missing.wasm\"/>\n<Context path=\"/b\" docBase=\".\"/>\n<Context path=\"/c\" docBase=\"app.war\"/></Host>"
	n, ws, err := Parse(filepath.Join(dir, "server.xml"), []byte(xml))
	if err != nil {
		t.Fatal(err)
	}
	checkWarnings(t, ws, []expect{
		warn(2, `attribute "docBase": module `+filepath.Join(dir, "missing.wasm")+` not found`),
		warn(3, `is a directory, not a .wasm module`),
		warn(4, `does not end in .wasm: wasmfarm runs WebAssembly modules, not Java web apps`),
	})
	if len(n.Contexts) != 3 || n.Contexts[0].Module != filepath.Join(dir, "missing.wasm") {
		t.Errorf("contexts %+v", n.Contexts)
	}
}

func TestLoadLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.xml")
	if err := os.WriteFile(path, []byte("<Cluster/>"+strings.Repeat(" ", 200)), 0o644); err != nil {
		t.Fatal(err)
	}
	l := Loader{Parser: serverxml.Parser{MaxBytes: 100}}
	if _, _, err := l.Load(path); !errors.Is(err, serverxml.ErrLimit) {
		t.Errorf("error %v, want ErrLimit", err)
	}
	if _, _, err := Load(filepath.Join(t.TempDir(), "none.xml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v, want ErrNotExist", err)
	}
}
