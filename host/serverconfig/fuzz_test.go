package serverconfig

import (
	"io"
	"net"
	"strings"
	"testing"

	"github.com/wasmfarm/wasmfarm/internal/serverxml"
	"github.com/wasmfarm/wasmfarm/tribes"
)

// FuzzParse loads arbitrary input (seeds in testdata/fuzz/FuzzParse: the
// examples, the seed documents' clusters, a full server.xml and one full
// of errors). The loader must never panic, must name the file in every
// warning, return at most serverxml.MaxWarnings of them (and a last one
// counting the others), with paths of at most 256 bytes (and ".../"), and
// every node it accepts must be usable: context paths the
// host accepts, an HTTP address net.Listen understands, a channel
// tribes.New builds, and a description.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		l := Loader{Parser: serverxml.Parser{MaxBytes: 1 << 16}}
		n, ws, err := l.Parse("f.xml", data)
		if len(ws) > serverxml.MaxWarnings+1 {
			t.Fatalf("%d warnings", len(ws))
		}
		for _, w := range ws {
			if w.File != "f.xml" || w.Msg == "" || len(w.Element) > 256+len(".../") {
				t.Fatalf("bad warning %+v", w)
			}
		}
		if err != nil {
			if n != nil {
				t.Fatal("a node with an error")
			}
			return
		}
		if n.HTTPAddr != "" {
			if _, _, err := net.SplitHostPort(n.HTTPAddr); err != nil {
				t.Fatalf("HTTP address %q: %v", n.HTTPAddr, err)
			}
		}
		seen := map[string]bool{}
		for _, c := range n.Contexts {
			if p, err := cleanPath(c.Path); err != nil || p != c.Path || seen[c.Path] || c.Module == "" {
				t.Fatalf("context %+v", c)
			}
			seen[c.Path] = true
			if c.Distributable && n.Cluster == nil {
				t.Fatalf("context %s distributable without a cluster", c.Path)
			}
		}
		if strings.ContainsFunc(n.JvmRoute, badRouteRune) {
			t.Fatalf("jvmRoute %q", n.JvmRoute)
		}
		if c := n.Cluster; c != nil {
			if _, err := tribes.New(c.Channel); err != nil {
				t.Fatalf("accepted a channel tribes.New refuses: %v", err)
			}
			if c.Manager.SendOptions == 0 || c.Manager.StateTransferTimeout <= 0 || c.Manager.SendAllSessionsSize < 1 {
				t.Fatalf("manager %+v", c.Manager)
			}
			if v := c.ReplicationValve; v != nil && checkFilter(v.Filter) != nil {
				t.Fatalf("filter %q", v.Filter)
			}
		}
		if err := n.Describe(io.Discard); err != nil {
			t.Fatal(err)
		}
	})
}
