package tribesconfig

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/internal/serverxml"
	"github.com/wasmfarm/wasmfarm/tribes"
)

const seedDir = "../../examples/seeds"

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

// stack names the types of an interceptor stack.
func stack(ics []tribes.Interceptor) string {
	if ics == nil {
		return "default"
	}
	var names []string
	for _, ic := range ics {
		names = append(names, strings.TrimPrefix(fmt.Sprintf("%T", ic), "*"))
	}
	return strings.Join(names, ",")
}

// TestSeeds loads every example extracted from the seed documents: each
// must load, with exactly the warnings its typos call for, into the values
// written in it.
func TestSeeds(t *testing.T) {
	const selectorNote = `attribute "selectorTimeout": accepted but not used`
	tests := []struct {
		file     string
		warnings []expect
		port     int // receiver
		stack    string
	}{
		{"001-quickstart.xml", nil, 4000, "default"},
		{"002-default-delta.xml", []expect{note(20, selectorNote+` (value "5000")`)}, 4000,
			"tribes.FailureDetector,tribes.MessageDispatcher"},
		{"003-backup.xml", []expect{note(24, selectorNote+` (value "100")`)}, 5000,
			"tribes.FailureDetector,tribes.MessageDispatcher,interceptors.Throughput"},
		{"004-backup-walkthrough.xml", []expect{note(24, selectorNote)}, 5000,
			"tribes.FailureDetector,tribes.MessageDispatcher,interceptors.Throughput"},
		{"005-backup-flat.xml", []expect{note(23, selectorNote)}, 5000,
			"tribes.FailureDetector,tribes.MessageDispatcher,interceptors.Throughput"},
		{"006-backup-walkthrough-flat.xml", []expect{
			warn(5, `[Cluster] attribute "channelSendOptions": no blank between attributes "className" and "channelSendOptions"`),
			warn(20, `[Cluster/Receiver] attribute "className": value "org.apache.catalina.tribes.transport.nio.NioReceiver\n" has a line break at its start or end`),
			warn(21, `attribute "address": no blank between attributes "className" and "address"`),
			warn(21, `attribute "port": no blank between attributes "address" and "port"`),
			warn(21, `attribute "selectorTimeout": no blank between attributes "port" and "selectorTimeout"`),
			warn(21, `attribute "maxThreads": no blank between attributes "selectorTimeout" and "maxThreads"`),
			warn(28, `end tag </Channel> has no start tag; ignored`),
			warn(15, `<Membership> directly inside <Cluster>, without a <Channel> start tag: read, with the 5 other channel elements that follow, as inside <Channel`),
			note(21, selectorNote),
		}, 5000, "tribes.FailureDetector,tribes.MessageDispatcher,interceptors.Throughput"},
		{"007-delta-typos.xml", []expect{
			warn(60, `[Cluster/Valve] attribute "className": value quoted with typographic quotes`),
			warn(62, `[Cluster/Valve] attribute "filter": value quoted with typographic quotes`),
			warn(17, `[Cluster/Channel/MemberShip] element <MemberShip> read as <Membership>: names are case-sensitive (Tomcat ignores it`),
			warn(25, `attribute "droptTime": no such property (value "3000" ignored); did you mean "dropTime"?`),
			warn(36, `[Cluster/Channel/Receiver] attribute "seceltorTimeout": no such property (value "5000" ignored); did you mean "selectorTimeout"?`),
		}, 4000, "tribes.FailureDetector,tribes.MessageDispatcher"},
	}
	files, _ := filepath.Glob(filepath.Join(seedDir, "*.xml"))
	if len(files) != len(tests) {
		t.Errorf("%d files in %s, %d in the table: add the new ones", len(files), seedDir, len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			cfg, ws, err := Load(filepath.Join(seedDir, tc.file))
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			checkWarnings(t, ws, tc.warnings)
			for _, w := range ws {
				if w.File != tc.file {
					t.Errorf("warning names file %q", w.File)
				}
			}
			// Every seed uses the default multicast group and timings
			// (007's droptTime is a typo, so dropTime keeps its default).
			m := cfg.Mcast
			if m.Address != "228.0.0.4" || m.Port != 45564 || m.Frequency != 500*time.Millisecond || m.DropTime != 3*time.Second || m.TTL != -1 {
				t.Errorf("mcast %+v", m)
			}
			r := cfg.Receiver
			if r.Address != "auto" || r.Port != tc.port || r.AutoBind != 100 || r.MaxThreads != 6 {
				t.Errorf("receiver %+v, want auto:%d autoBind 100 maxThreads 6", r, tc.port)
			}
			if got := stack(cfg.Interceptors); got != tc.stack {
				t.Errorf("stack %s, want %s", got, tc.stack)
			}
			if cfg.Membership != nil || cfg.HeartbeatInterval != 5*time.Second || fmt.Sprintf("%+v", cfg.Sender) != fmt.Sprintf("%+v", tribes.SenderConfig{}) {
				t.Errorf("membership %v, heartbeat %v, sender %+v", cfg.Membership, cfg.HeartbeatInterval, cfg.Sender)
			}
			// The result builds a channel (nothing is opened before Start).
			ch, err := tribes.New(cfg)
			if err != nil {
				t.Fatalf("tribes.New: %v", err)
			}
			if err := ch.Stop(context.Background()); err != nil {
				t.Logf("Stop before Start: %v", err)
			}
		})
	}
}

// TestSeedsTomcatWouldIgnore documents the difference with Tomcat on 007:
// Tomcat ignored <MemberShip> altogether (its log says so), we read it.
func TestSeedsTomcatWouldIgnore(t *testing.T) {
	var seen []string
	l := Loader{observe: func(class string, cfg any) { seen = append(seen, class) }}
	cfg, _, err := l.Load(filepath.Join(seedDir, "007-delta-typos.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mcast.Frequency != 500*time.Millisecond {
		t.Error("frequency of <MemberShip> not read")
	}
	if want := TcpFailureDetector + "," + MessageDispatch15Interceptor; strings.Join(seen, ",") != want {
		t.Errorf("constructed %v", seen)
	}
}
