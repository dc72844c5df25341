package serverxml

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// writeXML renders e as well-formed XML that Parse reads back to the same
// tree without warnings.
func writeXML(sb *strings.Builder, e *Element) {
	if e.Name == "" { // synthetic root of several top-level elements
		for _, c := range e.Children {
			writeXML(sb, c)
			sb.WriteByte('\n')
		}
		return
	}
	sb.WriteString("<" + e.Name)
	for _, a := range e.Attrs {
		sb.WriteString(" " + a.Name + `="`)
		sb.WriteString(strings.NewReplacer("&", "&amp;", "<", "&lt;", `"`, "&quot;").Replace(a.Value))
		sb.WriteByte('"')
	}
	if len(e.Children) == 0 {
		sb.WriteString("/>")
		return
	}
	sb.WriteString(">\n")
	for _, c := range e.Children {
		writeXML(sb, c)
		sb.WriteByte('\n')
	}
	sb.WriteString("</" + e.Name + ">")
}

// checkTree verifies the invariants of a parsed tree and returns its
// element count (the synthetic root excluded) and depth.
func checkTree(t *testing.T, e *Element, parent *Element, depth int) (n, maxDepth int) {
	if e.Parent() != parent {
		t.Fatalf("<%s>: wrong parent", e.Name)
	}
	if e.Name != "" {
		n, depth = 1, depth+1
		if e.Line < 1 || e.Col < 1 {
			t.Fatalf("<%s> at %d:%d", e.Name, e.Line, e.Col)
		}
	} else if parent != nil {
		t.Fatal("unnamed element below the root")
	}
	for _, a := range e.Attrs {
		if a.Name == "" || a.Line < e.Line || a.Col < 1 || strings.Trim(a.Value, " \t\r\n") != a.Value {
			t.Fatalf("<%s>: bad attribute %+v", e.Name, a)
		}
	}
	maxDepth = depth
	for _, c := range e.Children {
		cn, cd := checkTree(t, c, e, depth)
		n += cn
		maxDepth = max(maxDepth, cd)
	}
	return n, maxDepth
}

// FuzzParse feeds arbitrary bytes to the parser: it must never panic,
// respect its limits, and whatever tree it returns must survive a round
// trip through well-formed XML unchanged and without warnings.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("../../examples/seeds/*.xml")
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`<a x="1"y='2' z=”3” w=4 v="&amp;&#x41;&bogus;"><b></B></c></a>`))
	p := Parser{MaxBytes: 1 << 16, MaxDepth: 16, MaxElements: 200, MaxAttrs: 16}
	f.Fuzz(func(t *testing.T, data []byte) {
		root, ws, err := p.Parse("f.xml", data)
		if len(ws) > MaxWarnings+1 {
			t.Fatalf("%d warnings", len(ws))
		}
		if err != nil {
			if root != nil {
				t.Fatal("tree with an error")
			}
			return
		}
		n, depth := checkTree(t, root, nil, 0)
		if n > p.MaxElements || depth > p.MaxDepth {
			t.Fatalf("%d elements, depth %d: over the limits", n, depth)
		}
		var sb strings.Builder
		writeXML(&sb, root)
		root2, ws2, err := Parser{MaxBytes: 1 << 24, MaxDepth: 16, MaxElements: 200, MaxAttrs: 16}.Parse("f.xml", []byte(sb.String()))
		if err != nil {
			t.Fatalf("re-parse of\n%s\nfailed: %v", sb.String(), err)
		}
		for _, w := range ws2 {
			if w.Level == LevelWarning && !(w.Line == 0 && strings.Contains(w.Msg, "UTF-8") && !utf8.Valid(data)) {
				t.Fatalf("re-parse of\n%s\nwarns: %v", sb.String(), w)
			}
		}
		if a, b := shape(root), shape(root2); a != b {
			t.Fatalf("round trip changed the tree:\n%s\n%s", a, b)
		}
	})
}
