package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/wasmfarm/wasmfarm/internal/syncbuf"
)

// The configurations below are the ones docs/frontends.md explains; keep
// the two in step. Each is a text/template over frontendConfig.

// haproxyConfig routes by the jvmRoute suffix of the session id: the
// JSESSIONID cookie first, else the ;jsessionid= path parameter. A request
// with no route (or the route of a server that is down) is balanced round
// robin; "option redispatch" with retries sends a request whose member
// refuses the connection to another member before the health check has
// noticed.
const haproxyConfig = `global
    log stderr format raw local0 info

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 2
    option redispatch 1

frontend www
    bind {{.Listen}}
    default_backend wasmfarm

backend wasmfarm
    balance roundrobin
    option httpchk GET /
    http-check expect rstatus ^[234]
    http-request set-var(txn.route) req.cook(JSESSIONID),field(2,.)
    http-request set-var(txn.route) urlp(jsessionid,;),field(2,.) unless { var(txn.route) -m len 1: }
{{- range .Members}}
    use-server {{.Route}} if { var(txn.route) -m str {{.Route}} }
{{- end}}
{{- range .Members}}
    server {{.Route}} {{.Addr}} check inter 1s fall 2 rise 2
{{- end}}
`

// httpdConfig is a complete Apache httpd configuration: mod_proxy_balancer
// with one BalancerMember per member (route= its jvmRoute), stickysession
// on the JSESSIONID cookie and the jsessionid path parameter, and active
// health checks by mod_proxy_hcheck.
const httpdConfig = `ServerRoot "{{.Dir}}"
ServerName 127.0.0.1
Listen {{.Listen}}
PidFile "{{.Dir}}/httpd.pid"
DefaultRuntimeDir "{{.Dir}}"
ErrorLog "{{.Dir}}/error.log"
LogLevel warn proxy:info proxy_balancer:info proxy_hcheck:info
{{- if .Root}}
User #65534
Group #65534
{{- end}}

LoadModule mpm_event_module {{.Modules}}/mod_mpm_event.so
LoadModule authz_core_module {{.Modules}}/mod_authz_core.so
LoadModule slotmem_shm_module {{.Modules}}/mod_slotmem_shm.so
LoadModule proxy_module {{.Modules}}/mod_proxy.so
LoadModule proxy_http_module {{.Modules}}/mod_proxy_http.so
LoadModule proxy_balancer_module {{.Modules}}/mod_proxy_balancer.so
LoadModule lbmethod_byrequests_module {{.Modules}}/mod_lbmethod_byrequests.so
LoadModule proxy_hcheck_module {{.Modules}}/mod_proxy_hcheck.so

LogFormat "%h \"%r\" %>s sticky=%{BALANCER_SESSION_ROUTE}e worker=%{BALANCER_WORKER_ROUTE}e" balancer
CustomLog "{{.Dir}}/access.log" balancer

ProxyHCExpr answers {%{REQUEST_STATUS} =~ /^[234]/}
<Proxy "balancer://wasmfarm">
{{- range .Members}}
    BalancerMember "http://{{.Addr}}" route={{.Route}} connectiontimeout=2 retry=10 hcmethod=GET hcuri=/ hcexpr=answers hcinterval=1 hcfails=2 hcpasses=2
{{- end}}
    ProxySet lbmethod=byrequests stickysession=JSESSIONID|jsessionid scolonpathdelim=On
</Proxy>
ProxyPreserveHost On
ProxyPass        "/counter" "balancer://wasmfarm/counter"
ProxyPassReverse "/counter" "balancer://wasmfarm/counter"
`

// nginxConfig routes with maps (open-source nginx has no sticky-cookie
// directive): the route from the cookie, else from the path parameter,
// picks an upstream group in which that member is primary and the others
// are backups; no route picks the round-robin group.
const nginxConfig = `worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log info;
events { worker_connections 64; }

http {
    access_log {{.Dir}}/access.log;
    client_body_temp_path {{.Dir}}/client_body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;

    map $cookie_JSESSIONID $route_from_cookie {
        "~\.(?<cookie_route>[^.]+)$" $cookie_route;
    }
    map $request_uri $route_from_uri {
        "~;jsessionid=[^.;?/#]*\.(?<uri_route>[^;?/#]+)" $uri_route;
    }
    map $route_from_cookie $route {
        ""      $route_from_uri;
        default $route_from_cookie;
    }
    map $route $wasmfarm_upstream {
{{- range .Members}}
        {{.Route}} wasmfarm_{{.Route}};
{{- end}}
        default wasmfarm;
    }

    upstream wasmfarm {
{{- range .Members}}
        server {{.Addr}} max_fails=1 fail_timeout=10s;
{{- end}}
    }
{{- $all := .Members}}
{{- range $m := .Members}}
    upstream wasmfarm_{{$m.Route}} {
        server {{$m.Addr}} max_fails=1 fail_timeout=10s;
{{- range $all}}{{if ne .Route $m.Route}}
        server {{.Addr}} backup;
{{- end}}{{end}}
    }
{{- end}}

    server {
        listen {{.Listen}};
        location /counter {
            proxy_pass http://$wasmfarm_upstream;
            proxy_set_header Host $host;
            proxy_connect_timeout 2s;
            proxy_next_upstream error timeout;
        }
    }
}
`

// frontendMember is one wasmfarm member as a front end's config sees it.
type frontendMember struct{ Route, Addr string }

// frontendConfig is what the config templates are executed with.
type frontendConfig struct {
	Dir     string // the front end's own temp dir (config, logs, pid)
	Listen  string // 127.0.0.1:PORT
	Members []frontendMember
	Modules string // httpd's module directory
	Root    bool   // running as root: httpd needs a User to switch to
}

// frontend is a real load balancer the tests put in front of two members.
type frontend struct {
	name     string
	binaries []string // looked up in PATH, then in /usr/sbin
	pkg      string   // the Debian package that provides it
	template string
	// args is the command line that runs the binary in the foreground
	// with config file conf, logging under dir.
	args func(conf, dir string) []string
	// check, if set, is the binary's config test command line.
	check func(conf, dir string) []string
	// prepare finds what the config needs beyond the members (httpd's
	// module directory); an error skips the test.
	prepare func(c *frontendConfig) error
}

var frontends = []frontend{
	{
		name:     "haproxy",
		binaries: []string{"haproxy"},
		pkg:      "haproxy",
		template: haproxyConfig,
		args:     func(conf, dir string) []string { return []string{"-db", "-f", conf} },
		check:    func(conf, dir string) []string { return []string{"-c", "-f", conf} },
	},
	{
		name:     "httpd",
		binaries: []string{"apache2", "httpd"},
		pkg:      "apache2-bin",
		template: httpdConfig,
		args:     func(conf, dir string) []string { return []string{"-f", conf, "-DFOREGROUND"} },
		check:    func(conf, dir string) []string { return []string{"-t", "-f", conf} },
		prepare: func(c *frontendConfig) error {
			for _, d := range []string{"/usr/lib/apache2/modules", "/usr/lib64/httpd/modules", "/usr/lib/httpd/modules"} {
				if _, err := os.Stat(filepath.Join(d, "mod_proxy_balancer.so")); err == nil {
					c.Modules = d
					return nil
				}
			}
			return errors.New("mod_proxy_balancer.so not found in the usual module directories")
		},
	},
	{
		name:     "nginx",
		binaries: []string{"nginx"},
		pkg:      "nginx",
		template: nginxConfig,
		args: func(conf, dir string) []string {
			return []string{"-c", conf, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;"}
		},
		check: func(conf, dir string) []string {
			return []string{"-t", "-c", conf, "-p", dir, "-e", filepath.Join(dir, "error.log")}
		},
	},
}

// TestFrontends puts two real wasmfarm members (jvm_a, jvm_b, serving the
// counter app, no replication) behind HAProxy, Apache httpd and nginx,
// each with the configuration docs/frontends.md explains, and checks that
// new sessions are spread over both members, that a session keeps going to
// its member (by cookie and by ;jsessionid=), and that once its member is
// killed the front end sends the session's requests to the other member
// without an error reaching the client. The members of the "replicated"
// subtests form a cluster with synchronous replication: the other member
// serves the same session, counter and all, and renames it to its own
// route; without replication it starts a new session.
func TestFrontends(t *testing.T) {
	if testing.Short() {
		t.Skip("starts member processes and real load balancers; skipped with -short")
	}
	// One compilation cache for all members: the first compiles the
	// counter app, the others load it.
	cache := t.TempDir()
	for _, replicated := range []bool{false, true} {
		for _, fe := range frontends {
			name := fe.name
			if replicated {
				name += "-replicated"
			}
			t.Run(name, func(t *testing.T) { testFrontend(t, fe, cache, replicated) })
		}
	}
}

// testFrontend starts two members (a cluster if replicated) and fe in
// front of them, and runs the checks.
func testFrontend(t *testing.T, fe frontend, cache string, replicated bool) {
	bin := findBinary(fe.binaries)
	if bin == "" {
		t.Skipf("%s not installed (Debian package %s): skipping the %s front-end test",
			strings.Join(fe.binaries, " or "), fe.pkg, fe.name)
	}
	cfg := frontendConfig{Dir: t.TempDir(), Listen: freeLoopbackAddr(t), Root: os.Geteuid() == 0}
	if fe.prepare != nil {
		if err := fe.prepare(&cfg); err != nil {
			t.Skipf("%s: %v (Debian package %s)", fe.name, err, fe.pkg)
		}
	}
	var cluster []string
	if replicated {
		// A multicast group and port of this test's own, on lo.
		cluster = []string{"-cluster", "-send-options", "sync",
			"-mcast-address", fmt.Sprintf("239.255.%d.%d", rand.IntN(200)+1, rand.IntN(200)+1),
			"-mcast-port", fmt.Sprint(46000 + rand.IntN(2000)), "-mcast-bind", "127.0.0.1",
			"-mcast-frequency", "100ms", "-mcast-droptime", "1s"}
	}
	a := startMember(t, "jvm_a", cache, cluster...)
	b := startMember(t, "jvm_b", cache, cluster...)
	cfg.Members = []frontendMember{{"jvm_a", a.addr}, {"jvm_b", b.addr}}
	front := startFrontend(t, fe, bin, cfg)
	testThroughFrontend(t, front, a, replicated)
}

// counterReply is the counter app's /counter/json answer.
type counterReply struct {
	Session string `json:"session"`
	Node    string `json:"node"`
	Created int64  `json:"created"`
	Counter int    `json:"counter"`
}

// testThroughFrontend runs the checks against the front end at base
// ("http://127.0.0.1:PORT"); victim is the member killed for failover.
func testThroughFrontend(t *testing.T, front *frontendProc, victim *memberProc, replicated bool) {
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	}
	get := func(path, session string) counterReply {
		t.Helper()
		req, err := http.NewRequest("GET", front.base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if session != "" {
			req.Header.Set("Cookie", "JSESSIONID="+session)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, front.logs())
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var r counterReply
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s (cookie %q): %s %q\n%s", path, session, resp.Status, body, front.logs())
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("GET %s: %v in %q", path, err, body)
		}
		if r.Node == "" || !strings.HasSuffix(r.Session, "."+r.Node) {
			t.Fatalf("GET %s: session %q does not carry the route of node %q", path, r.Session, r.Node)
		}
		return r
	}

	// New clients (no cookie) are spread over both members.
	sessions := map[string]counterReply{} // node -> its first new session
	for i := 0; i < 8 && len(sessions) < 2; i++ {
		r := get("/counter/json", "")
		if r.Counter != 1 {
			t.Fatalf("new client got counter %d, want 1: %+v", r.Counter, r)
		}
		if _, ok := sessions[r.Node]; !ok {
			sessions[r.Node] = r
		}
	}
	if len(sessions) != 2 {
		t.Fatalf("8 new clients all went to %v; want both jvm_a and jvm_b\n%s", sessions, front.logs())
	}

	// Each session sticks to its member: by cookie, then by path parameter.
	for _, node := range []string{"jvm_a", "jvm_b"} {
		s := sessions[node]
		for want := 2; want <= 4; want++ {
			r := get("/counter/json", s.Session)
			if r.Node != node || r.Session != s.Session || r.Counter != want {
				t.Fatalf("request %d of session %s: %+v, want node %s counter %d\n%s", want, s.Session, r, node, want, front.logs())
			}
		}
		// Two in a row: with two members, round robin alone cannot
		// get both right.
		for want := 5; want <= 6; want++ {
			r := get("/counter/json;jsessionid="+s.Session, "")
			if r.Node != node || r.Session != s.Session || r.Counter != want {
				t.Fatalf("session %s by ;jsessionid=: %+v, want node %s counter %d\n%s", s.Session, r, node, want, front.logs())
			}
		}
	}

	// Kill jvm_a: its session's next requests go to jvm_b, with no error,
	// right away (before any health check ran) and after it.
	victim.kill(t)
	lost := sessions[victim.route].Session
	survivor := "jvm_b"
	first := get("/counter/json", lost)
	if first.Node != survivor {
		t.Fatalf("first request for %s after its member died: %+v, want node %s\n%s", lost, first, survivor, front.logs())
	}
	if replicated {
		// Same session and counter, renamed to the survivor's route.
		if want := strings.TrimSuffix(lost, "."+victim.route) + "." + survivor; first.Session != want || first.Counter != 7 {
			t.Fatalf("first request for %s after its member died: %+v, want session %s counter 7", lost, first, want)
		}
	} else if first.Counter != 1 {
		t.Fatalf("first request for %s after its member died, no replication: %+v, want a new session", lost, first)
	}
	// The failed-over session sticks to jvm_b under its new id.
	if r := get("/counter/json", first.Session); r.Node != survivor || r.Session != first.Session || r.Counter != first.Counter+1 {
		t.Fatalf("failed-over session %s: %+v, want node %s counter %d", first.Session, r, survivor, first.Counter+1)
	}
	for i := 0; i < 3; i++ {
		if r := get("/counter/json", lost); r.Node != survivor {
			t.Fatalf("request for %s after its member died: %+v, want node %s", lost, r, survivor)
		}
	}
	// The survivor's own session is untouched.
	s := sessions[survivor]
	if r := get("/counter/json", s.Session); r.Node != survivor || r.Session != s.Session || r.Counter != 7 {
		t.Fatalf("session %s of the surviving member: %+v, want counter 7", s.Session, r)
	}
	// New clients all go to the survivor.
	for i := 0; i < 4; i++ {
		if r := get("/counter/json", ""); r.Node != survivor {
			t.Fatalf("new client after jvm_a died went to %+v\n%s", r, front.logs())
		}
	}
}

// findBinary returns the first of names found in PATH or /usr/sbin (not in
// the PATH of unprivileged users on Debian), or "".
func findBinary(names []string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		p := filepath.Join("/usr/sbin", n)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// freeLoopbackAddr returns 127.0.0.1:PORT with a port that was free a
// moment ago (listen on port 0, close).
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// memberProc is a "wasmfarm node" process: this test binary re-executed.
type memberProc struct {
	route, addr string
	cmd         *exec.Cmd
	done        chan struct{} // closed when the process has been waited for
	out         *syncbuf.Buffer
}

// startMember starts a member serving the counter app on a port of its own
// choice and returns once it listens; the test's cleanup stops it.
func startMember(t *testing.T, route, cacheDir string, extra ...string) *memberProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	m := &memberProc{route: route, done: make(chan struct{}), out: new(syncbuf.Buffer)}
	args := []string{"node", "-http", "127.0.0.1:0", "-jvm-route", route,
		"-app", "/counter=builtin:counter", "-cache-dir", cacheDir, "-log-level", "warn",
		"-shutdown-timeout", "2s"}
	m.cmd = exec.Command(exe, append(args, extra...)...)
	m.cmd.Env = append(os.Environ(), "WASMFARM_TEST_MAIN=1")
	m.cmd.Stderr = m.out
	stdout, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`app\(s\) on http://(127\.0\.0\.1:[0-9]+)`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(m.out, sc.Text())
			if g := re.FindStringSubmatch(sc.Text()); g != nil {
				addrc <- g[1]
			}
		}
		m.cmd.Wait()
		close(m.done)
	}()
	t.Cleanup(func() { m.stop(t) })
	select {
	case m.addr = <-addrc:
		return m
	case <-m.done:
		t.Fatalf("member %s exited before listening:\n%s", route, m.out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("member %s did not listen within 60s:\n%s", route, m.out.String())
	}
	return nil
}

// kill ends the member with SIGKILL, as a crash would, and waits for it.
func (m *memberProc) kill(t *testing.T) {
	t.Helper()
	m.cmd.Process.Kill()
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("member %s (pid %d) still running 10s after SIGKILL", m.route, m.cmd.Process.Pid)
	}
}

// stop ends the member gracefully (SIGTERM), or by SIGKILL after 5s.
func (m *memberProc) stop(t *testing.T) {
	select {
	case <-m.done:
	default:
		if !stopProcess(m.cmd.Process, m.done, 5*time.Second) {
			t.Logf("member %s (pid %d) ignored SIGTERM for 5s; killed it", m.route, m.cmd.Process.Pid)
		}
	}
}

// frontendProc is a running load balancer.
type frontendProc struct {
	name, dir, base string
	cmd             *exec.Cmd
	done            chan struct{}
	out             *syncbuf.Buffer
}

// logs returns the front end's output and log files, for failure messages.
func (f *frontendProc) logs() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s output:\n%s", f.name, f.out.String())
	for _, n := range []string{"error.log", "access.log"} {
		if data, err := os.ReadFile(filepath.Join(f.dir, n)); err == nil {
			fmt.Fprintf(&b, "--- %s %s:\n%s", f.name, n, data)
		}
	}
	return b.String()
}

// startFrontend writes fe's configuration for cfg, checks it with the
// binary's own config test, starts the binary in the foreground in a
// process group of its own and returns once it accepts connections. The
// test's cleanup stops it by its PID (SIGTERM; SIGKILL to its group if it
// does not exit within 10s).
func startFrontend(t *testing.T, fe frontend, bin string, cfg frontendConfig) *frontendProc {
	t.Helper()
	conf := filepath.Join(cfg.Dir, fe.name+".conf")
	var text strings.Builder
	if err := template.Must(template.New(fe.name).Parse(fe.template)).Execute(&text, cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if fe.check != nil {
		if out, err := exec.Command(bin, fe.check(conf, cfg.Dir)...).CombinedOutput(); err != nil {
			t.Fatalf("%s config test: %v\n%s\n--- config:\n%s", fe.name, err, out, text.String())
		}
	}
	f := &frontendProc{name: fe.name, dir: cfg.Dir, base: "http://" + cfg.Listen, done: make(chan struct{}), out: new(syncbuf.Buffer)}
	f.cmd = exec.Command(bin, fe.args(conf, cfg.Dir)...)
	f.cmd.Stdout, f.cmd.Stderr = f.out, f.out
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { f.cmd.Wait(); close(f.done) }()
	t.Cleanup(func() {
		pid := f.cmd.Process.Pid
		f.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-f.done:
		case <-time.After(10 * time.Second):
			t.Logf("%s (pid %d) ignored SIGTERM for 10s; killing its process group", fe.name, pid)
			syscall.Kill(-pid, syscall.SIGKILL)
			<-f.done
		}
		if t.Failed() {
			t.Log(f.logs())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-f.done:
			t.Fatalf("%s exited at startup:\n%s", fe.name, f.logs())
		default:
		}
		if c, err := net.DialTimeout("tcp", cfg.Listen, time.Second); err == nil {
			c.Close()
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not accept connections on %s after 15s:\n%s", fe.name, cfg.Listen, f.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
