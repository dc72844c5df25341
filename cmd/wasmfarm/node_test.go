package main

import (
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/host/cluster"
	"github.com/wasmfarm/wasmfarm/host/serverconfig"
	"github.com/wasmfarm/wasmfarm/tribes"
)

// TestConnectorLimitsFromFile: a server.xml's connectionTimeout,
// keepAliveTimeout (defaulting to connectionTimeout, as in Tomcat),
// connectionUploadTimeout (not defaulting to connectionTimeout) and
// maxHttpHeaderSize reach the host's configuration, unless a flag was
// given.
func TestConnectorLimitsFromFile(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name              string
		file              serverconfig.Node
		set               map[string]bool
		head, idle, write time.Duration
		read              time.Duration
		maxHeader         int
	}{
		{"all", serverconfig.Node{ConnectionTimeout: 20 * time.Second, KeepAliveTimeout: 5 * time.Second, ConnectionUploadTimeout: 10 * time.Minute, MaxHeaderBytes: 8192}, nil,
			20 * time.Second, 5 * time.Second, 20 * time.Second, 10 * time.Minute, 8192},
		{"keepAliveTimeout from connectionTimeout", serverconfig.Node{ConnectionTimeout: 20 * time.Second}, nil,
			20 * time.Second, 20 * time.Second, 20 * time.Second, host.DefaultConfig().ReadTimeout, host.DefaultConfig().MaxHeaderBytes},
		{"defaults", serverconfig.Node{}, nil,
			host.DefaultConfig().ReadHeaderTimeout, host.DefaultConfig().IdleTimeout, host.DefaultConfig().WriteTimeout, host.DefaultConfig().ReadTimeout, host.DefaultConfig().MaxHeaderBytes},
		{"flags win", serverconfig.Node{ConnectionTimeout: 20 * time.Second, ConnectionUploadTimeout: 10 * time.Minute, MaxHeaderBytes: 8192},
			map[string]bool{"read-header-timeout": true, "idle-timeout": true, "write-timeout": true, "read-timeout": true, "max-header-bytes": true},
			time.Second, time.Minute, 3 * time.Second, 7 * time.Second, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := nodeSpec{host: host.Config{ReadHeaderTimeout: time.Second, IdleTimeout: time.Minute, WriteTimeout: 3 * time.Second, ReadTimeout: 7 * time.Second, MaxHeaderBytes: 100}}
			if tc.set == nil {
				spec.host = host.DefaultConfig()
			}
			fs := flag.NewFlagSet("node", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			if err := spec.fromFile(&tc.file, tc.set, addClusterFlags(fs), log); err != nil {
				t.Fatal(err)
			}
			if h := spec.host; h.ReadHeaderTimeout != tc.head || h.IdleTimeout != tc.idle || h.WriteTimeout != tc.write || h.ReadTimeout != tc.read || h.MaxHeaderBytes != tc.maxHeader {
				t.Errorf("got %v, %v, %v, %v, %d; want %v, %v, %v, %v, %d", h.ReadHeaderTimeout, h.IdleTimeout, h.WriteTimeout, h.ReadTimeout, h.MaxHeaderBytes,
					tc.head, tc.idle, tc.write, tc.read, tc.maxHeader)
			}
		})
	}
}

// TestManagerFlagOverFileSendOptions: -manager over a server.xml that
// configures the other manager gives the send options of the manager
// chosen, as -manager does without a file (a BackupManager replicates
// synchronously, mapSendOptions 6; a DeltaManager with the cluster's
// channelSendOptions), unless -send-options says otherwise.
func TestManagerFlagOverFileSendOptions(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		file, manager, sendOptions string
		want                       tribes.Options
	}{
		{"../../examples/delta.xml", "backup", "", cluster.SyncOptions},
		{"../../examples/delta.xml", "delta", "", cluster.AsyncOptions},
		{"../../examples/delta.xml", "backup", "async", cluster.AsyncOptions},
		{"../../examples/backup.xml", "backup", "", cluster.SyncOptions},
	} {
		t.Run(tc.file+" -manager "+tc.manager+" -send-options "+tc.sendOptions, func(t *testing.T) {
			file, _, err := serverconfig.Load(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			fs := flag.NewFlagSet("node", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cf := addClusterFlags(fs)
			args := []string{"-manager", tc.manager}
			if tc.sendOptions != "" {
				args = append(args, "-send-options", tc.sendOptions)
			}
			if err := fs.Parse(args); err != nil {
				t.Fatal(err)
			}
			set := map[string]bool{}
			fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
			spec := nodeSpec{host: host.DefaultConfig()}
			if err := spec.fromFile(file, set, cf, log); err != nil {
				t.Fatal(err)
			}
			if spec.manager.Kind != cluster.Kind(tc.manager) || spec.manager.SendOptions != tc.want {
				t.Errorf("manager %s with send options %d (%s), want %s with %d (%s)", spec.manager.Kind,
					spec.manager.SendOptions, spec.manager.SendOptions, tc.manager, tc.want, tc.want)
			}
		})
	}
}

// TestClusterFlagMakesFileAppsDistributable: with -cluster, the contexts
// of a server.xml without a <Cluster> replicate their sessions, as the
// contexts of a file with one do (distributable by default), unless a
// context says distributable="false".
func TestClusterFlagMakesFileAppsDistributable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "server.xml")
	os.WriteFile(file, []byte(`<Server><Service name="Catalina">
  <Connector port="8080"/>
  <Engine name="Catalina" defaultHost="localhost" jvmRoute="jvm_a"><Host name="localhost">
    <Context path="/counter" docBase="builtin:counter"/>
    <Context path="/mine" docBase="builtin:counter" distributable="false"/>
  </Host></Engine>
</Service></Server>
`), 0o644)
	node, _, err := serverconfig.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cf := addClusterFlags(fs)
	if err := fs.Parse([]string{"-cluster"}); err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	spec := nodeSpec{host: host.DefaultConfig()}
	if err := spec.fromFile(node, set, cf, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if !spec.cluster {
		t.Fatal("-cluster did not make the node a member")
	}
	want := map[string]bool{"/counter": false, "/mine": true}
	for _, a := range spec.apps {
		if a.local != want[a.path] {
			t.Errorf("%s: local %v, want %v", a.path, a.local, want[a.path])
		}
	}
}
