package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/farm"
	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// farmCLICluster starts members a, b, c... on the in-memory network, each
// with a host.Server and a farm.Deployer with the given auth keys (nil
// for none), and returns the admin endpoint of the first, its token and
// the servers.
func farmCLICluster(t *testing.T, keys ...[]byte) (adminURL, token string, srvs []*host.Server) {
	t.Helper()
	net := tribestest.NewNetwork()
	var chans []*tribes.Channel
	var ds []*farm.Deployer
	for i, key := range keys {
		name := string(rune('a' + i))
		nd := net.NewNode()
		srv, err := host.New(host.Config{JvmRoute: name, CacheDir: filepath.Join(os.TempDir(), "wasmfarm-test-cache")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Shutdown(context.Background()) })
		ch, err := tribes.New(tribes.Config{Transport: nd.Transport(), Membership: nd.Membership(), Interceptors: []tribes.Interceptor{}})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		d, err := farm.New(farm.Config{TempDir: filepath.Join(dir, "tmp"), DeployDir: filepath.Join(dir, "deploy"), Name: name, AuthKey: key}, ch, farm.ServerHost(srv))
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ch.Stop(context.Background()) })
		if err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		chans, ds, srvs = append(chans, ch), append(ds, d), append(srvs, srv)
	}
	for _, ch := range chans {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := ch.AwaitMembers(ctx, len(keys)-1); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	token = "t0ken"
	hs := httptest.NewServer(farm.NewAdminHandler(ds[0], token))
	t.Cleanup(hs.Close)
	return hs.URL, token, srvs
}

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDeployCommands(t *testing.T) {
	admin, token, srvs := farmCLICluster(t, nil, nil, nil)
	file := filepath.Join(t.TempDir(), "shop#v2.wasm")
	if err := os.WriteFile(file, wasmapps.Counter(), 0o644); err != nil {
		t.Fatal(err)
	}

	code, out, errs := runCLI("deploy", "-admin", admin, "-token", token, file)
	if code != 0 || !strings.HasPrefix(out, "deployed /shop/v2 (sha256 ") || !strings.Contains(out, "on 3 of 3 members") {
		t.Fatalf("deploy: %d %q %q", code, out, errs)
	}
	for _, s := range srvs {
		if _, ok := s.Engine().Context("/shop/v2"); !ok {
			t.Errorf("%s does not serve /shop/v2", s.Config().JvmRoute)
		}
	}

	t.Setenv(adminTokenEnv, token) // the token from the environment from now on
	code, out, errs = runCLI("apps", "-admin", admin)
	if code != 0 || !strings.Contains(out, "PATH") || !strings.Contains(out, "/shop/v2") || !strings.Contains(out, "3/3 a,b,c") {
		t.Fatalf("apps: %d %q %q", code, out, errs)
	}

	code, out, errs = runCLI("deploy", "-admin", admin, "-path", "/other", file)
	if code != 0 || !strings.HasPrefix(out, "deployed /other ") {
		t.Fatalf("deploy -path: %d %q %q", code, out, errs)
	}

	code, out, errs = runCLI("undeploy", "-admin", admin, "-path", "/shop/v2")
	if code != 0 || !strings.HasPrefix(out, "undeployed /shop/v2 on 3 of 3 members") {
		t.Fatalf("undeploy: %d %q %q", code, out, errs)
	}
	if _, ok := srvs[2].Engine().Context("/shop/v2"); ok {
		t.Error("c still serves /shop/v2")
	}

	bad := filepath.Join(t.TempDir(), "bad.wasm")
	os.WriteFile(bad, []byte("not wasm"), 0o644)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"not wasm", []string{"deploy", "-admin", admin, bad}, "refused"},
		{"wrong token", []string{"deploy", "-admin", admin, "-token", "nope", file}, "refused the token"},
		{"undeploy unknown", []string{"undeploy", "-admin", admin, "-path", "/nothing"}, "no app"},
		{"bad path", []string{"deploy", "-admin", admin, "-path", "nope", file}, "bad context path"},
		{"no file", []string{"deploy", "-admin", admin}, "exactly one module"},
		{"bad admin", []string{"apps", "-admin", "127.0.0.1:9090"}, "want http://"},
		{"bad file name", []string{"deploy", "-admin", admin, filepath.Join(t.TempDir(), "x.war")}, "bad context path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(tc.args...)
			if code != 1 || !strings.Contains(errs, tc.want) {
				t.Errorf("%v: %d %q %q; want exit 1 mentioning %q", tc.args, code, out, errs, tc.want)
			}
		})
	}
	t.Run("no token", func(t *testing.T) {
		t.Setenv(adminTokenEnv, "")
		if code, _, errs := runCLI("apps", "-admin", admin); code != 1 || !strings.Contains(errs, adminTokenEnv) {
			t.Errorf("%d %q", code, errs)
		}
	})
}

// TestDeployCommandNamesFailedMembers: a member that refuses the module
// (here: another auth key) makes the command fail, naming it.
func TestDeployCommandNamesFailedMembers(t *testing.T) {
	admin, token, _ := farmCLICluster(t, []byte("k"), []byte("k"), []byte("other"))
	file := filepath.Join(t.TempDir(), "ROOT.wasm")
	os.WriteFile(file, wasmapps.Counter(), 0o644)
	code, out, errs := runCLI("deploy", "-admin", admin, "-token", token, file)
	if code != 1 || !strings.Contains(out, "deployed / (sha256") || !strings.Contains(out, "on 2 of 3 members; failed on 1:") ||
		!strings.Contains(errs, "deploy / failed on ") {
		t.Fatalf("%d %q %q", code, out, errs)
	}
}

func TestProgressBar(t *testing.T) {
	var b bytes.Buffer
	p := &progressBar{w: &b}
	p.draw("transfer", 5<<20, 10<<20, true)
	p.draw("transfer", 6<<20, 10<<20, false) // throttled
	p.draw("results", 3, 3, true)
	p.done()
	want := "\rtransfer [###############               ]  50% 5.0 MiB/10.0 MiB      " +
		"\rresults  [##############################] 100% 3/3 members           \n"
	if b.String() != want {
		t.Errorf("got  %q\nwant %q", b.String(), want)
	}
	if isTerminal(&b) {
		t.Error("a buffer is not a terminal")
	}
}
