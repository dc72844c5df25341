package serverconfig

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wasmfarm/wasmfarm/internal/serverxml"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

const (
	noteJava     = "Java components do not run in wasmfarm"
	noteNoTomcat = "no equivalent in wasmfarm"
)

// server reads a <Server> and its only <Service>.
func (ld *loader) server(el *serverxml.Element) {
	b := el.Bind()
	b.Ignore("wasmfarm has no shutdown port: stop a node with a signal (Ctrl-C, SIGTERM)", "port", "shutdown", "address")
	b.Ignore(noteNoTomcat, "portOffset", "utilityThreads", "periodicEventDelay")
	ignoreChildren(b, serverxml.LevelNote, noteJava, "Listener", "GlobalNamingResources")
	services := b.Children("Service")
	ld.done(b)
	switch len(services) {
	case 0:
		ld.addErr(serverxml.ErrorAt(el, "", ErrNoNode, "<%s> has no <Service>", el.Name))
	case 1:
		ld.service(services[0])
	default:
		ld.addErr(serverxml.ErrorAt(services[1], "", ErrAmbiguous,
			"a second <Service> (the first is on line %d): a wasmfarm node runs one service; run one node per service", services[0].Line))
	}
}

// service reads a <Service>: its connectors and its engine.
func (ld *loader) service(el *serverxml.Element) {
	b := el.Bind()
	b.String("name", &ld.node.ServiceName)
	ignoreChildren(b, serverxml.LevelNote, "the HTTP server manages its own goroutines", "Executor")
	ignoreChildren(b, serverxml.LevelNote, noteJava, "Listener")
	conns := b.Children("Connector")
	engine := b.Child("Engine")
	ld.done(b)
	var http *serverxml.Element
	for _, c := range conns {
		if ld.connector(c, http) {
			http = c
		}
	}
	if engine != nil {
		ld.engine(engine)
	}
}

// connector reads a <Connector>. It reports whether it was the node's
// HTTP connector (first is the one found before, if any).
func (ld *loader) connector(el *serverxml.Element, first *serverxml.Element) bool {
	b := el.Bind()
	var proto string
	b.String("protocol", &proto)
	switch p := strings.ToLower(proto); {
	case p == "", p == "http/1.1", strings.HasPrefix(p, "org.apache.coyote.http11."):
	case p == "ajp/1.3", strings.HasPrefix(p, "org.apache.coyote.ajp."):
		ld.ws = append(ld.ws, serverxml.WarningAt(el, "protocol", serverxml.LevelWarning,
			"AJP connector skipped: wasmfarm speaks HTTP only; point the proxy (mod_proxy_http, HAProxy) at the HTTP connector instead"))
		return false
	default:
		ld.addErr(serverxml.ErrorAt(el, "protocol", serverxml.ErrBadValue,
			`unknown protocol %s; wasmfarm serves "HTTP/1.1"`, serverxml.QuoteValue("protocol", proto)))
		return false
	}
	var tls bool
	if b.Bool("SSLEnabled", &tls) && tls {
		ld.ws = append(ld.ws, serverxml.WarningAt(el, "SSLEnabled", serverxml.LevelWarning,
			"TLS connector skipped: wasmfarm serves plain HTTP; terminate TLS in a proxy in front of the node"))
		return false
	}
	if first != nil {
		ld.ws = append(ld.ws, serverxml.WarningAt(el, "", serverxml.LevelWarning,
			"second HTTP connector skipped: a node listens on one address (the connector on line %d)", first.Line))
		return false
	}
	port := -1
	if b.Int("port", &port) && (port < 0 || port > 65535) {
		b.Fail("port", nil, "port %d out of range 0..65535", port)
	} else if port < 0 && !b.Has("port") {
		b.Fail("", ErrMissing, "<%s> has no port", el.Name)
	}
	addr := ""
	if !b.String("address", &addr) || addr == "" {
		addr = DefaultAddress
		b.Warn("", "no address: listening on %s only (Tomcat listens on every address); write address=\"0.0.0.0\" to do the same", DefaultAddress)
	}
	if port >= 0 {
		ld.node.HTTPAddr = net.JoinHostPort(addr, strconv.Itoa(port))
	}
	timeout := func(name string, dst *time.Duration) {
		var d time.Duration
		if b.Duration(name, time.Millisecond, &d) {
			if d <= 0 {
				b.Warn(name, "%v means no timeout in Tomcat; a wasmfarm node keeps its own (-read-header-timeout, -write-timeout, -idle-timeout, -read-timeout)", d)
				return
			}
			*dst = d
		}
	}
	timeout("connectionTimeout", &ld.node.ConnectionTimeout)
	timeout("keepAliveTimeout", &ld.node.KeepAliveTimeout)
	// Tomcat bounds the time between two packets of an upload by
	// connectionUploadTimeout when disableUploadTimeout="false", else by
	// connectionTimeout. A node's ReadTimeout bounds the whole request,
	// so it takes connectionUploadTimeout only: connectionTimeout (20 s
	// in Tomcat's examples) would cut off any upload longer than that.
	disableUpload := true // Tomcat's default
	b.Bool("disableUploadTimeout", &disableUpload)
	if disableUpload {
		b.Ignore(`as in Tomcat, it applies only with disableUploadTimeout="false"`, "connectionUploadTimeout")
	} else {
		timeout("connectionUploadTimeout", &ld.node.ConnectionUploadTimeout)
	}
	var hs int
	if b.Int("maxHttpHeaderSize", &hs) {
		if hs <= 0 {
			b.Fail("maxHttpHeaderSize", nil, "maxHttpHeaderSize %d is not a positive number of bytes", hs)
		} else {
			ld.node.MaxHeaderBytes = hs
		}
	}
	b.Ignore("the HTTP connector has a goroutine per connection and no pool or limits of these (see the node's flags)",
		"maxKeepAliveRequests", "maxThreads", "minSpareThreads", "maxConnections", "acceptCount", "maxPostSize", "executor")
	b.Ignore(noteNoTomcat, "redirectPort", "enableLookups", "URIEncoding", "useBodyEncodingForURI",
		"compression", "compressibleMimeType", "server", "xpoweredBy", "scheme", "secure", "proxyName", "proxyPort")
	ld.done(b)
	return true
}

// engine reads an <Engine>: its jvmRoute, its host and its cluster.
func (ld *loader) engine(el *serverxml.Element) {
	ld.engineEl = el
	b := el.Bind()
	b.String("name", &ld.node.EngineName)
	var defHost string
	b.String("defaultHost", &defHost)
	b.Func("jvmRoute", func(v string) error {
		if i := strings.IndexFunc(v, badRouteRune); i >= 0 {
			return errors.New("holds characters not allowed in a session id (blanks, quotes, ';', ',', '=', '\\')")
		}
		ld.node.JvmRoute = v
		return nil
	})
	b.Ignore(noteNoTomcat, "backgroundProcessorDelay", "startStopThreads", "className")
	ignoreChildren(b, serverxml.LevelNote, noteJava, "Realm", "Listener")
	ignoreChildren(b, serverxml.LevelWarning, "valves of the Engine or Host are Java components and do not run in wasmfarm (the cluster's valves do)", "Valve")
	hosts := b.Children("Host")
	clusterEl := b.Child("Cluster")
	ld.done(b)

	var host *serverxml.Element
	switch {
	case len(hosts) == 1:
		host = hosts[0]
	case len(hosts) > 1:
		for _, h := range hosts {
			if n, _ := h.Attr("name"); n == defHost && host == nil {
				host = h
			}
		}
		if host == nil {
			host = hosts[0]
		}
		for _, h := range hosts {
			if h != host {
				ld.ws = append(ld.ws, serverxml.WarningAt(h, "", serverxml.LevelWarning,
					"<%s> ignored: a node serves one host (the one on line %d, the defaultHost or else the first)", h.Name, host.Line))
			}
		}
	}
	if clusterEl != nil {
		ld.node.Cluster = ld.cluster(clusterEl)
	}
	if host != nil {
		ld.host(host, clusterEl)
	}
}

// badRouteRune reports the runes a jvmRoute cannot hold: it ends session
// ids in cookies and URLs.
func badRouteRune(r rune) bool {
	return r <= ' ' || r == 0x7f || strings.ContainsRune(`;,="\'`+"\\", r)
}

// host reads a <Host>: its appBase, its contexts and its cluster (when the
// engine had none).
func (ld *loader) host(el *serverxml.Element, engineCluster *serverxml.Element) {
	b := el.Bind()
	b.String("name", &ld.node.HostName)
	var appBase string
	if b.String("appBase", &appBase) && appBase != "" {
		ld.node.AppBase = ld.resolve(appBase)
	}
	b.Ignore("modules are deployed from the <Context> elements and by the farm", "autoDeploy", "deployOnStartup", "unpackWARs", "deployXML", "copyXML", "createDirs")
	b.Ignore(noteNoTomcat, "workDir", "failCtxIfServletStartFails", "startStopThreads", "backgroundProcessorDelay", "className", "xmlBase")
	ignoreChildren(b, serverxml.LevelNote, noteJava, "Realm", "Listener")
	ignoreChildren(b, serverxml.LevelNote, "a node answers whatever Host header it gets", "Alias")
	ignoreChildren(b, serverxml.LevelWarning, "valves of the Engine or Host are Java components and do not run in wasmfarm (the cluster's valves do)", "Valve")
	contexts := b.Children("Context")
	clusterEl := b.Child("Cluster")
	ld.done(b)
	if clusterEl != nil {
		if engineCluster != nil {
			ld.addErr(serverxml.ErrorAt(clusterEl, "", ErrAmbiguous,
				"a <Cluster> in the <Host> and another in the <Engine> (line %d): keep one", engineCluster.Line))
		} else {
			ld.node.Cluster = ld.cluster(clusterEl)
		}
	}
	for _, c := range contexts {
		ld.context(c)
	}
}

// resolve makes a relative path relative to the config file's directory.
func (ld *loader) resolve(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(ld.node.Dir, p)
}

// context reads a <Context path docBase>.
func (ld *loader) context(el *serverxml.Element) {
	b := el.Bind()
	c := Context{Line: el.Line}
	ok := true
	if b.String("path", &c.Path) {
		p, err := cleanPath(c.Path)
		if err != nil {
			b.Fail("path", nil, "%v", err)
			ok = false
		}
		c.Path = p
	} else {
		b.Fail("", ErrMissing, `<%s> has no path (the context path, "" or "/" for the root)`, el.Name)
		ok = false
	}
	if b.String("docBase", &c.DocBase) && strings.TrimSpace(c.DocBase) != "" {
		c.Module = ld.module(b, c.DocBase)
	} else {
		b.Fail("docBase", ErrMissing, `<%s> has no docBase (a .wasm file, or "builtin:NAME" for a sample app)`, el.Name)
		ok = false
	}
	distSet := b.Bool("distributable", &c.Distributable)
	c.NotDistributable = distSet && !c.Distributable
	var minutes int
	if b.Int("sessionTimeout", &minutes) {
		c.SessionTimeout = minutesToTimeout(minutes)
	}
	b.Ignore(noteNoTomcat, "reloadable", "crossContext", "privileged", "antiResourceLocking", "swallowOutput",
		"unpackWAR", "cachingAllowed", "useHttpOnly", "className", "override")
	if m := b.Child("Manager"); m != nil {
		ld.contextManager(m, &c)
	}
	for _, prev := range ld.node.Contexts {
		if ok && prev.Path == c.Path {
			b.Fail("path", nil, "context path %q is already used on line %d", c.Path, prev.Line)
			ok = false
		}
	}
	ld.done(b)
	if !ok {
		return
	}
	ld.node.Contexts = append(ld.node.Contexts, c)
	ld.contextEls = append(ld.contextEls, el)
	ld.distribSet = append(ld.distribSet, distSet)
}

// minutesToTimeout converts Tomcat's session timeout in minutes: zero or
// less means sessions never expire (a negative duration).
func minutesToTimeout(m int) time.Duration {
	if m <= 0 {
		return -1
	}
	const maxMinutes = int(^uint64(0)>>1) / int(time.Minute)
	return time.Duration(min(m, maxMinutes)) * time.Minute
}

// cleanPath checks a context path as the host does, and returns "/" for
// the root context ("" in Tomcat).
func cleanPath(p string) (string, error) {
	if p == "" || p == "/" {
		return "/", nil
	}
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.ContainsAny(p, ";?#% \t\r\n") || strings.Contains(p, "//") {
		return "", errors.New(`is not a context path: want "" or "/" for the root, or "/name" (no trailing '/', no ';', '?', '#', '%' or blanks)`)
	}
	return p, nil
}

// module resolves a docBase: "builtin:NAME" must name a sample app; a
// file is resolved against the appBase or the config's directory, and a
// warning tells when it is missing or does not look like a module.
func (ld *loader) module(b *serverxml.Binder, docBase string) string {
	if name, ok := strings.CutPrefix(docBase, "builtin:"); ok {
		if _, found := wasmapps.Lookup(name); !found {
			b.Fail("docBase", nil, "no builtin app %q (have %s)", name, strings.Join(wasmapps.Names(), ", "))
		}
		return docBase
	}
	p := docBase
	if !filepath.IsAbs(p) {
		base := ld.node.AppBase
		if base == "" {
			base = ld.node.Dir
		}
		p = filepath.Join(base, p)
	}
	switch fi, err := os.Stat(p); {
	case err != nil:
		b.Warn("docBase", "module %s not found: the app will not deploy until it exists", p)
	case fi.IsDir():
		b.Warn("docBase", "%s is a directory, not a .wasm module", p)
	case !strings.HasSuffix(strings.ToLower(p), ".wasm"):
		b.Warn("docBase", "%s does not end in .wasm: wasmfarm runs WebAssembly modules, not Java web apps", p)
	}
	return p
}

// Tomcat's Manager classes for a <Context>.
const (
	StandardManager   = "org.apache.catalina.session.StandardManager"
	PersistentManager = "org.apache.catalina.session.PersistentManager"
)

// contextManager reads a <Manager> inside a <Context>: its
// maxActiveSessions (and maxInactiveInterval, Tomcat 7's session timeout
// in seconds).
func (ld *loader) contextManager(el *serverxml.Element, c *Context) {
	b := el.Bind()
	var class string
	b.String("className", &class)
	simple := class[strings.LastIndexByte(class, '.')+1:]
	switch simple {
	case "", "StandardManager":
	case "PersistentManager":
		b.Warn("className", "sessions are not persisted: PersistentManager read as StandardManager")
	case "DeltaManager", "BackupManager":
		b.Warn("className", "a replicated manager per app is not supported: the cluster's <Manager> serves every distributable app")
	default:
		ld.addErr(serverxml.ErrorAt(el, "className", serverxml.ErrUnknownClass,
			"unknown Manager class %q in a <Context>; known: %s, %s", class, StandardManager, PersistentManager))
	}
	var n int
	if b.Int("maxActiveSessions", &n) {
		// Tomcat's -1 (and 0 here): no limit for this app.
		c.MaxActiveSessions = -1
		if n > 0 {
			c.MaxActiveSessions = n
		}
	}
	var secs time.Duration
	if b.Duration("maxInactiveInterval", time.Second, &secs) && c.SessionTimeout == 0 {
		if secs <= 0 {
			secs = -1
		}
		c.SessionTimeout = secs
	}
	b.Ignore("sessions are kept in memory only", "pathname", "saveOnRestart", "maxIdleBackup", "minIdleSwap", "maxIdleSwap")
	b.Ignore(noteNoTomcat, "processExpiresFrequency", "secureRandomClass", "secureRandomAlgorithm", "secureRandomProvider",
		"sessionAttributeNameFilter", "sessionAttributeValueClassNameFilter", "warnOnSessionAttributeFilterFailure", "persistAuthentication")
	ignoreChildren(b, serverxml.LevelNote, "sessions are kept in memory only", "Store")
	ld.done(b)
}
