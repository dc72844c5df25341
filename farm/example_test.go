package farm_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wasmfarm/wasmfarm/farm"
	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/tribestest"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// Two members on the in-memory network: the counter app deployed through
// a is deployed on b too.
func Example() {
	ctx := context.Background()
	net := tribestest.NewNetwork()
	dir, _ := os.MkdirTemp("", "farm-example")
	defer os.RemoveAll(dir)
	var ds []*farm.Deployer
	var srvs []*host.Server
	for _, name := range []string{"a", "b"} {
		nd := net.NewNode()
		srv, _ := host.New(host.Config{JvmRoute: name, CacheDir: filepath.Join(os.TempDir(), "wasmfarm-test-cache")})
		defer srv.Shutdown(ctx)
		ch, _ := tribes.New(tribes.Config{Transport: nd.Transport(), Membership: nd.Membership(), Interceptors: []tribes.Interceptor{}})
		d, err := farm.New(farm.Config{
			TempDir:   filepath.Join(dir, name, "temp"),
			DeployDir: filepath.Join(dir, name, "deploy"),
			Name:      name,
		}, ch, farm.ServerHost(srv))
		if err != nil {
			panic(err)
		}
		ch.Start(ctx)
		defer ch.Stop(ctx)
		d.Start(ctx)
		defer d.Close()
		ds, srvs = append(ds, d), append(srvs, srv)
	}
	path, _ := farm.ContextPath("counter.wasm")
	rep, err := ds[0].Deploy(ctx, path, bytes.NewReader(wasmapps.Counter()), farm.DeployOptions{})
	if err != nil {
		panic(err)
	}
	for _, m := range rep.Members {
		fmt.Printf("%s %s on %s: ok=%v local=%v\n", rep.Op, rep.Path, m.Member, m.OK(), m.Local)
	}
	c, ok := srvs[1].Engine().Context("/counter")
	fmt.Println("b serves it:", ok, c.Digest() == rep.Digest)
	// Output:
	// deploy /counter on a: ok=true local=true
	// deploy /counter on b: ok=true local=false
	// b serves it: true true
}
