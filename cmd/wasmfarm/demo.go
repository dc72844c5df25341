package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wasmfarm/wasmfarm/balance"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// demoMember is one member process of the demo.
type demoMember struct {
	route, http, admin, logFile string
	cmd                         *exec.Cmd
	done                        chan struct{}
}

// runDemo starts a local cluster of members plus the sticky balancer on
// loopback, deploys the sample apps through the farm, prints what to try,
// and stops everything on Ctrl-C.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http", "127.0.0.1:8080", "the balancer's address (the URL to open)")
	members := fs.Int("members", 3, "cluster members")
	basePort := fs.Int("member-port", 8081, "HTTP port of the first member (the others follow; 0: any free ports)")
	adminPort := fs.Int("admin-port", 9091, "admin port of the first member (the others follow; 0: any free ports)")
	manager := fs.String("manager", "delta", "session manager: delta or backup")
	dir := fs.String("dir", "", "where members keep their logs and state (default: a new temporary directory, removed at exit)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: wasmfarm demo [flags]\n\nStarts a local wasmfarm cluster on loopback (multicast on the loopback interface, TTL 0),\nthe sticky balancer in front, deploys the sample apps through the farm and prints what to try.\nCtrl-C stops everything.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *members < 1 || *members > 9 {
		return errors.New("-members: 1 to 9")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	work := *dir
	if work == "" {
		if work, err = os.MkdirTemp("", "wasmfarm-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	token := randomHex(16)
	// A multicast group port and domain of this demo's own, so that two
	// demos (or a test) on the machine never join each other.
	n, _ := rand.Int(rand.Reader, big.NewInt(1000))
	mcastPort := 45600 + int(n.Int64())
	domain := "demo-" + randomHex(4)

	var ms []*demoMember
	stopAll := func() {
		for _, m := range ms {
			m.stop()
		}
	}
	defer stopAll()
	fmt.Fprintf(stdout, "starting %d members (logs in %s) ...\n", *members, work)
	for i := range *members {
		route := "jvm_" + string(rune('a'+i))
		m, err := startDemoMember(ctx, exe, work, route, port(*basePort, i), port(*adminPort, i), token, *manager, mcastPort, domain)
		if err != nil {
			return fmt.Errorf("member %s: %w", route, err)
		}
		ms = append(ms, m)
	}

	// The sticky balancer, in this process.
	bcfg := balance.DefaultConfig()
	bcfg.HealthInterval = 200 * time.Millisecond
	bcfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, m := range ms {
		u, err := url.Parse(m.http)
		if err != nil {
			return err
		}
		bcfg.Members = append(bcfg.Members, balance.Member{Route: m.route, URL: u})
	}
	lb, err := balance.New(bcfg)
	if err != nil {
		return err
	}
	defer lb.Close()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("balancer: %w (choose another address with -http)", err)
	}
	front := "http://" + l.Addr().String()
	lbErr := make(chan error, 1)
	lbSrv := &http.Server{Handler: lb, ReadHeaderTimeout: 30 * time.Second}
	go func() { lbErr <- lbSrv.Serve(l) }()
	defer lbSrv.Close()

	// The sample apps, through the first member's farm.
	for _, name := range []string{"counter", "cart", "static"} {
		mod, ok := wasmapps.Lookup(name)
		if !ok {
			continue
		}
		f := filepath.Join(work, name+".wasm")
		if err := os.WriteFile(f, mod, 0o644); err != nil {
			return err
		}
		var out strings.Builder
		if err := runDeploy(ctx, []string{"-admin", ms[0].admin, "-token", token, f}, &out, &out); err != nil {
			return fmt.Errorf("deploying %s: %w\n%s", name, err, out.String())
		}
		fmt.Fprintf(stdout, "deployed /%s on every member\n", name)
	}

	fmt.Fprintf(stdout, "\nwasmfarm demo is running.\n\n")
	fmt.Fprintf(stdout, "  open %s/counter/   (through the sticky balancer)\n", front)
	fmt.Fprintf(stdout, "       %s/cart/      %s/static/\n\n", front, front)
	fmt.Fprintf(stdout, "  %-6s %-6s %-26s %-26s\n", "member", "pid", "http", "admin (dashboard, /status, /metrics)")
	for _, m := range ms {
		fmt.Fprintf(stdout, "  %-6s %-6d %-26s %-26s\n", m.route, m.cmd.Process.Pid, m.http, m.admin+"/")
	}
	fmt.Fprintf(stdout, "\n  admin token: %s   (wasmfarm apps -admin %s -token ...)\n", token, ms[0].admin)
	fmt.Fprintf(stdout, "\nthings to try:\n")
	fmt.Fprintf(stdout, "  1. reload %s/counter/ a few times: the counter grows; the page names the member (jvm_...)\n", front)
	fmt.Fprintf(stdout, "  2. kill that member:  kill -9 <its pid above>\n")
	fmt.Fprintf(stdout, "  3. reload: another member answers with the same session and counter; the id now ends in its route\n")
	fmt.Fprintf(stdout, "  4. watch a member's admin page for members, sessions and replication traffic\n")
	fmt.Fprintf(stdout, "  5. deploy your own app:  wasmfarm deploy -admin %s -token %s app.wasm\n", ms[0].admin, token)
	fmt.Fprintf(stdout, "\nCtrl-C stops everything.\n")

	select {
	case <-ctx.Done():
	case err := <-lbErr:
		return fmt.Errorf("balancer: %w", err)
	}
	fmt.Fprintln(stdout, "stopping ...")
	lbSrv.Close()
	stopAll()
	fmt.Fprintln(stdout, "stopped")
	return nil
}

func port(base, i int) int {
	if base == 0 {
		return 0
	}
	return base + i
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startDemoMember starts "wasmfarm node" for one member, with extra flags
// after the demo's, and waits until its HTTP port is open.
func startDemoMember(ctx context.Context, exe, work, route string, httpPort, adminPort int, token, manager string, mcastPort int, domain string, extra ...string) (*demoMember, error) {
	m := &demoMember{route: route, logFile: filepath.Join(work, route+".log"), done: make(chan struct{})}
	logf, err := os.Create(m.logFile)
	if err != nil {
		return nil, err
	}
	m.cmd = exec.Command(exe, "node", "-cluster", "-jvm-route", route,
		"-http", "127.0.0.1:"+strconv.Itoa(httpPort), "-admin", "127.0.0.1:"+strconv.Itoa(adminPort),
		"-admin-token", token, "-data-dir", filepath.Join(work, route),
		"-mcast-bind", "127.0.0.1", "-mcast-port", strconv.Itoa(mcastPort), "-domain", domain,
		"-mcast-frequency", "200ms", "-mcast-droptime", "1500ms",
		"-manager", manager, "-send-options", "sync")
	m.cmd.Args = append(m.cmd.Args, extra...)
	m.cmd.Stderr = logf
	// The members are this demo's children: they die with it.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdout, err := m.cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := m.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	up := make(chan struct{})
	var once sync.Once
	go func() {
		defer logf.Close()
		re := regexp.MustCompile(`^(admin on|wasmfarm node .* on) (http://[0-9.:]+)`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if g := re.FindStringSubmatch(line); g != nil {
				if strings.HasPrefix(g[1], "admin") {
					m.admin = g[2]
				} else {
					m.http = g[2]
					once.Do(func() { close(up) })
				}
			}
		}
		m.cmd.Wait()
		close(m.done)
	}()
	select {
	case <-up:
		return m, nil
	case <-m.done:
		b, _ := os.ReadFile(m.logFile)
		return nil, fmt.Errorf("exited before serving:\n%s", b)
	case <-ctx.Done():
		m.stop()
		return nil, ctx.Err()
	case <-time.After(60 * time.Second):
		m.stop()
		return nil, errors.New("not serving after 60 s")
	}
}

// stop ends the member (SIGTERM, then SIGKILL after 10 s) and waits.
func (m *demoMember) stop() { stopProcess(m.cmd.Process, m.done, 10*time.Second) }

// stopProcess ends a child process we started: SIGTERM, then SIGKILL if it
// is still running after grace; done is closed once it was waited for. It
// reports whether the process stopped within grace (false also when it
// had already exited).
func stopProcess(p *os.Process, done <-chan struct{}, grace time.Duration) bool {
	select {
	case <-done:
		return false
	default:
	}
	p.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return true
	case <-time.After(grace):
		p.Kill()
		<-done
		return false
	}
}
