package serverconfig

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host/cluster"
	"github.com/wasmfarm/wasmfarm/internal/serverxml"
	"github.com/wasmfarm/wasmfarm/tribes"
)

const (
	seedDir    = "../../examples/seeds"
	exampleDir = "../../examples"
)

// expect is one expected warning: its level, line and a substring.
type expect struct {
	level serverxml.Level
	line  int
	msg   string
}

func warn(line int, msg string) expect { return expect{serverxml.LevelWarning, line, msg} }
func note(line int, msg string) expect { return expect{serverxml.LevelNote, line, msg} }

// checkWarnings requires ws to be exactly want, in order.
func checkWarnings(t *testing.T, ws []serverxml.Warning, want []expect) {
	t.Helper()
	ok := len(ws) == len(want)
	for i := 0; ok && i < len(ws); i++ {
		w, e := ws[i], want[i]
		ok = w.Level == e.level && w.Line == e.line && strings.Contains(w.String(), e.msg)
	}
	if !ok {
		var got, exp strings.Builder
		for _, w := range ws {
			fmt.Fprintf(&got, "\n  %s", w)
		}
		for _, e := range want {
			fmt.Fprintf(&exp, "\n  %v line %d: %s", e.level, e.line, e.msg)
		}
		t.Errorf("warnings:%s\nwant:%s", got.String(), exp.String())
	}
}

// TestSeeds loads every <Cluster> extracted from the seed documents: each
// loads, with exactly the warnings its typos call for (tribesconfig's for
// the channel, ours for the rest), into the values written in it.
func TestSeeds(t *testing.T) {
	const (
		selectorNote = `attribute "selectorTimeout": accepted but not used`
		noValves     = `[Cluster] no <Valve>: ReplicationValve and JvmRouteBinderValve added with their defaults`
		backupFilter = `.*\.gif|.*\.js|.*\.jpeg|.*\.jpg|.*\.png|.*\.htm|.*\.html|.*\.css|.*\.txt`
	)
	farm := &DeployerConfig{TempDir: "/tmp/war-temp", DeployDir: "/tmp/war-deploy", WatchDir: "/tmp/war-listen", ProcessDeployFrequency: 2}
	session := []string{ClusterSessionListener}
	tests := []struct {
		file      string
		warnings  []expect
		kind      cluster.Kind
		class     string
		send      tribes.Options // manager's
		filter    string         // "-" when no ReplicationValve
		binder    bool
		implied   bool
		listeners []string
		deployer  *DeployerConfig
	}{
		{"001-quickstart.xml", []expect{note(3, noValves)}, cluster.KindDelta, "", 8, "", true, true, session, nil},
		{"002-default-delta.xml", []expect{note(20, selectorNote)}, cluster.KindDelta, DeltaManager, 8, "", true, false, session, farm},
		{"003-backup.xml", []expect{note(24, selectorNote)}, cluster.KindBackup, BackupManager, 6, backupFilter, false, false, session, farm},
		{"004-backup-walkthrough.xml", []expect{note(24, selectorNote)}, cluster.KindBackup, BackupManager, 6, backupFilter, false, false, session, farm},
		{"005-backup-flat.xml", []expect{note(23, selectorNote)}, cluster.KindBackup, BackupManager, 6, backupFilter, false, false, session, farm},
		{"006-backup-walkthrough-flat.xml", []expect{
			warn(5, `[Cluster] attribute "channelSendOptions": no blank between attributes "className" and "channelSendOptions"`),
			warn(20, `[Cluster/Receiver] attribute "className": value "org.apache.catalina.tribes.transport.nio.NioReceiver\n" has a line break`),
			warn(21, `attribute "address": no blank between attributes`),
			warn(21, `attribute "port": no blank between attributes`),
			warn(21, `attribute "selectorTimeout": no blank between attributes`),
			warn(21, `attribute "maxThreads": no blank between attributes`),
			warn(28, `end tag </Channel> has no start tag; ignored`),
			warn(15, `<Membership> directly inside <Cluster>, without a <Channel> start tag`),
			note(21, selectorNote),
		}, cluster.KindBackup, BackupManager, 6, backupFilter, false, false, session, farm},
		{"007-delta-typos.xml", []expect{
			warn(60, `[Cluster/Valve] attribute "className": value quoted with typographic quotes`),
			warn(62, `[Cluster/Valve] attribute "filter": value quoted with typographic quotes`),
			warn(17, `element <MemberShip> read as <Membership>`),
			warn(25, `attribute "droptTime": no such property (value "3000" ignored); did you mean "dropTime"?`),
			warn(36, `attribute "seceltorTimeout": no such property (value "5000" ignored); did you mean "selectorTimeout"?`),
			warn(60, `[Cluster/Valve] a second ReplicationValve replaces the one on line 55`),
			note(68, `[Cluster/ClusterListener] attribute "className": Tomcat 6 and 7 only`),
		}, cluster.KindDelta, DeltaManager, 8, `.*\.gif;.*\.js;.*\.jpg;.*\.htm;.*\.html;.*\.txt;`, true, false,
			[]string{JvmRouteSessionIDBinderListener, ClusterSessionListener}, nil},
	}
	files, _ := filepath.Glob(filepath.Join(seedDir, "*.xml"))
	if len(files) != len(tests) {
		t.Errorf("%d files in %s, %d in the table: add the new ones", len(files), seedDir, len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			n, ws, err := Load(filepath.Join(seedDir, tc.file))
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			checkWarnings(t, ws, tc.warnings)
			if n.HTTPAddr != "" || n.JvmRoute != "" || len(n.Contexts) != 0 || n.MaxActiveSessions != 0 {
				t.Errorf("a bare cluster set node fields: %+v", n)
			}
			c := n.Cluster
			if c == nil {
				t.Fatal("no cluster")
			}
			m := c.Manager
			if m.Kind != tc.kind || c.ManagerClass != tc.class || m.SendOptions != tc.send {
				t.Errorf("manager %s %q options %v, want %s %q %v", m.Kind, c.ManagerClass, m.SendOptions, tc.kind, tc.class, tc.send)
			}
			if m.ExpireSessionsOnShutdown || m.NoNotifyListenersOnReplication || m.StateTransferTimeout != 60*time.Second ||
				m.NoStateTimestampDrop || m.NoSendClusterDomainOnly || m.SendAllSessionsSize != 1000 {
				t.Errorf("manager %+v: want the defaults the seeds spell out", m)
			}
			if c.ChannelSendOptions != tc.send {
				t.Errorf("channelSendOptions %v, want %v", c.ChannelSendOptions, tc.send)
			}
			switch {
			case c.ReplicationValve == nil:
				t.Error("no ReplicationValve")
			case c.ReplicationValve.Filter != tc.filter:
				t.Errorf("filter %q, want %q", c.ReplicationValve.Filter, tc.filter)
			}
			if (c.JvmRouteBinder != nil) != tc.binder || c.ValvesImplied != tc.implied {
				t.Errorf("binder %+v implied %v, want %v %v", c.JvmRouteBinder, c.ValvesImplied, tc.binder, tc.implied)
			}
			if b := c.JvmRouteBinder; b != nil && (b.Disabled || b.SessionIDAttribute != cluster.DefaultSessionIDAttribute) {
				t.Errorf("binder %+v", b)
			}
			if fmt.Sprint(c.Listeners) != fmt.Sprint(tc.listeners) {
				t.Errorf("listeners %v, want %v", c.Listeners, tc.listeners)
			}
			if fmt.Sprintf("%+v", c.Deployer) != fmt.Sprintf("%+v", tc.deployer) {
				t.Errorf("deployer %+v, want %+v", c.Deployer, tc.deployer)
			}
			if _, err := tribes.New(c.Channel); err != nil {
				t.Errorf("the channel does not build: %v", err)
			}
		})
	}
}

// TestExamples loads the example configurations: no warning at all, and
// the values their comments promise.
func TestExamples(t *testing.T) {
	tests := []struct {
		file     string
		http     string
		kind     cluster.Kind
		send     tribes.Options
		apps     string
		mcast    string // "" for static membership
		members  int
		receiver int
	}{
		{"delta.xml", "127.0.0.1:8081", cluster.KindDelta, cluster.AsyncOptions,
			"/counter=builtin:counter:true /cart=builtin:cart:true /static=builtin:static:false", "228.0.0.4:45564", 0, 4000},
		{"backup.xml", "127.0.0.1:8181", cluster.KindBackup, cluster.SyncOptions,
			"/counter=builtin:counter:true /cart=builtin:cart:true", "228.0.0.4:45565", 0, 4200},
		{"static.xml", "127.0.0.1:8281", cluster.KindDelta, cluster.SyncOptions,
			"/counter=builtin:counter:true /cart=builtin:cart:true", "", 3, 4300},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			n, ws, err := Load(filepath.Join(exampleDir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			checkWarnings(t, ws, nil)
			var apps []string
			for _, c := range n.Contexts {
				apps = append(apps, fmt.Sprintf("%s=%s:%t", c.Path, c.Module, c.Distributable))
			}
			if got := strings.Join(apps, " "); got != tc.apps {
				t.Errorf("apps %s, want %s", got, tc.apps)
			}
			c := n.Cluster
			if n.HTTPAddr != tc.http || n.JvmRoute != "jvm_a" || c == nil || c.Manager.Kind != tc.kind || c.Manager.SendOptions != tc.send {
				t.Fatalf("node %+v cluster %+v", n, c)
			}
			cfg := c.Channel
			if tc.mcast != "" {
				m := cfg.Mcast
				if cfg.Membership != nil || fmt.Sprintf("%s:%d", m.Address, m.Port) != tc.mcast || m.Bind != "127.0.0.1" || m.TTL != 0 {
					t.Errorf("multicast %+v: want %s on lo with TTL 0", m, tc.mcast)
				}
			} else if _, ok := cfg.Membership.(*tribes.StaticMembership); !ok {
				t.Errorf("membership %T, want static", cfg.Membership)
			}
			if len(c.StaticMembers) != tc.members {
				t.Errorf("static members %v", c.StaticMembers)
			}
			if cfg.Receiver.Address != "127.0.0.1" || cfg.Receiver.Port != tc.receiver {
				t.Errorf("receiver %+v", cfg.Receiver)
			}
			if _, err := tribes.New(cfg); err != nil {
				t.Errorf("the channel does not build: %v", err)
			}
		})
	}
}
