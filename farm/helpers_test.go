package farm

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// member is one cluster member of a test: a channel on the in-memory
// network, a real host.Server and its Deployer.
type member struct {
	name string
	nd   *tribestest.Node
	ch   *tribes.Channel
	srv  *host.Server
	d    *Deployer
	dir  string
}

// cacheDir is wazero's compilation cache shared by the tests, so that
// each module compiles once per run.
func cacheDir() string { return filepath.Join(os.TempDir(), "wasmfarm-test-cache") }

// newMember starts a member on net; edit adjusts its farm configuration
// (dirs are set under t.TempDir()).
func newMember(t testing.TB, net *tribestest.Network, name string, edit func(*Config)) *member {
	t.Helper()
	nd := net.NewNode()
	m := newMemberOn(t, tribes.Config{
		Transport: nd.Transport(), Membership: nd.Membership(),
		Interceptors: []tribes.Interceptor{}, // no failure detector: joins are instant
		Payload:      []byte(name),
	}, name, edit)
	m.nd = nd
	return m
}

// newMemberOn starts a member whose channel has configuration tc.
func newMemberOn(t testing.TB, tc tribes.Config, name string, edit func(*Config)) *member {
	return newMemberOnHost(t, tc, name, edit, nil)
}

// newMemberOnHost is newMemberOn with h as the host (nil: a real
// host.Server, which the member has anyway).
func newMemberOnHost(t testing.TB, tc tribes.Config, name string, edit func(*Config), h Host) *member {
	t.Helper()
	m := &member{name: name, dir: t.TempDir()}
	srv, err := host.New(host.Config{JvmRoute: name, CacheDir: cacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	m.srv = srv
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	ch, err := tribes.New(tc)
	if err != nil {
		t.Fatal(err)
	}
	m.ch = ch
	cfg := Config{
		TempDir:   filepath.Join(m.dir, "temp"),
		DeployDir: filepath.Join(m.dir, "deploy"),
		WatchDir:  filepath.Join(m.dir, "watch"),
		Name:      name,
		ChunkSize: 64 << 10,
	}
	if edit != nil {
		edit(&cfg)
	}
	if h == nil {
		h = ServerHost(srv)
	}
	d, err := New(cfg, ch, h)
	if err != nil {
		t.Fatal(err)
	}
	m.d = d
	if err := ch.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Stop(context.Background()) })
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return m
}

// newCluster starts n members named a, b, c, ...
func newCluster(t testing.TB, n int, edit func(name string, c *Config)) (*tribestest.Network, []*member) {
	t.Helper()
	net := tribestest.NewNetwork()
	var ms []*member
	for i := range n {
		name := string(rune('a' + i))
		ms = append(ms, newMember(t, net, name, func(c *Config) {
			if edit != nil {
				edit(name, c)
			}
		}))
	}
	for _, m := range ms {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := m.ch.AwaitMembers(ctx, n-1); err != nil {
			t.Fatalf("%s sees %d members: %v", m.name, len(m.ch.Members()), err)
		}
		cancel()
	}
	return net, ms
}

// get runs GET path on m's server and returns the status and body.
func (m *member) get(path, cookie string) (int, string, string) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	rec := httptest.NewRecorder()
	m.srv.ServeHTTP(rec, req)
	if cs := rec.Result().Cookies(); len(cs) > 0 {
		cookie = cs[0].Name + "=" + cs[0].Value
	}
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b), cookie
}

// counterOf parses the counter app's JSON answer.
func counterOf(t testing.TB, body string) int {
	t.Helper()
	var v struct {
		Counter int `json:"counter"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("counter answer %q: %v", body, err)
	}
	return v.Counter
}

// digestAt returns the digest m's host serves at path ("" if none).
func (m *member) digestAt(path string) string {
	if c, ok := m.srv.Engine().Context(path); ok {
		return c.Digest()
	}
	return ""
}

// counterModule returns the counter app padded with a custom section of n
// bytes tagged tag, so that versions differ in digest but not behaviour.
func counterModule(n int, tag byte) []byte {
	return padModule(wasmapps.Counter(), n, tag)
}

// padModule appends a custom section (id 0) named "wasmfarm.pad" with n
// payload bytes to mod; wasm allows custom sections anywhere.
func padModule(mod []byte, n int, tag byte) []byte {
	name := "wasmfarm.pad"
	content := binary.AppendUvarint(nil, uint64(len(name)))
	content = append(content, name...)
	content = append(content, tag)
	content = append(content, make([]byte, n)...)
	out := append([]byte(nil), mod...)
	out = append(out, 0)
	out = binary.AppendUvarint(out, uint64(len(content)))
	return append(out, content...)
}

// mustServe checks that every member answers 200 at path+"/json".
func mustServe(t testing.TB, ms []*member, path, digest string) {
	t.Helper()
	for _, m := range ms {
		code, body, _ := m.get(path+"/json", "")
		if code != http.StatusOK || !strings.Contains(body, `"node":"`+m.name+`"`) {
			t.Errorf("%s: GET %s/json = %d %q", m.name, path, code, body)
		}
		if digest != "" && m.digestAt(path) != digest {
			t.Errorf("%s: %s runs %.12s, want %.12s", m.name, path, m.digestAt(path), digest)
		}
	}
}

func reportString(r *Report) string {
	if r == nil {
		return "<nil>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s:", r.Op, r.Path)
	for _, m := range r.Members {
		fmt.Fprintf(&b, " %s=", m.Member)
		if m.OK() {
			b.WriteString("ok")
		} else {
			b.WriteString("error(" + m.Error + ")")
		}
	}
	return b.String()
}

// fakeHost is a Host that compiles nothing: it records the digest of what
// it is given, so benchmarks can measure the farm's transfer alone.
type fakeHost struct {
	mu   sync.Mutex
	apps map[string]string
}

func (f *fakeHost) DeployApp(_ context.Context, path string, module []byte, _ string) error {
	s := sha256.Sum256(module)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.apps == nil {
		f.apps = map[string]string{}
	}
	f.apps[path] = hex.EncodeToString(s[:])
	return nil
}

func (f *fakeHost) Undeploy(_ context.Context, path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.apps[path]; !ok {
		return ErrAppNotFound
	}
	delete(f.apps, path)
	return nil
}

func (f *fakeHost) Apps() []App {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []App
	for p, d := range f.apps {
		out = append(out, App{Path: p, Digest: d})
	}
	return out
}

// digestOf returns the digest f serves at path ("" if none).
func (f *fakeHost) digestOf(path string) string {
	for _, a := range f.Apps() {
		if a.Path == path {
			return a.Digest
		}
	}
	return ""
}

// gateHost is a fakeHost whose DeployApp of one digest blocks until
// released: a slow compile, held open by the test.
type gateHost struct {
	fakeHost
	mu               sync.Mutex
	blocked          string
	entered, release chan struct{}
}

// block makes the next DeployApp of the module with hex digest dg close
// g.entered and wait for g.release to be closed.
func (g *gateHost) block(dg string) {
	g.mu.Lock()
	g.blocked, g.entered, g.release = dg, make(chan struct{}), make(chan struct{})
	g.mu.Unlock()
}

func (g *gateHost) DeployApp(ctx context.Context, path string, module []byte, name string) error {
	s := sha256.Sum256(module)
	g.mu.Lock()
	wait := g.blocked != "" && g.blocked == hex.EncodeToString(s[:])
	if wait {
		g.blocked = ""
	}
	en, rel := g.entered, g.release
	g.mu.Unlock()
	if wait {
		close(en)
		<-rel
	}
	return g.fakeHost.DeployApp(ctx, path, module, name)
}

// newHostMember starts a member on net deploying into h.
func newHostMember(t *testing.T, net *tribestest.Network, name string, h Host, edit func(*Config)) *member {
	t.Helper()
	nd := net.NewNode()
	m := newMemberOnHost(t, tribes.Config{
		Transport: nd.Transport(), Membership: nd.Membership(),
		Interceptors: []tribes.Interceptor{}, Payload: []byte(name),
	}, name, edit, h)
	m.nd = nd
	return m
}

// await waits until each of ms sees at least n other members.
func await(t *testing.T, n int, ms ...*member) {
	t.Helper()
	for _, m := range ms {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := m.ch.AwaitMembers(ctx, n)
		cancel()
		if err != nil {
			t.Fatalf("%s sees %d members: %v", m.name, len(m.ch.Members()), err)
		}
	}
}
