package serverxml

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestParseNameLimit: element and attribute names longer than MaxName
// (256 bytes by default) are refused, with a message that shows only
// their start.
func TestParseNameLimit(t *testing.T) {
	long := strings.Repeat("n", DefaultMaxName+1)
	tests := []struct {
		name string
		p    Parser
		in   string
		want string
	}{
		{"element", Parser{}, "<a>\n<" + long + "/></a>", "t.xml:2:1: [a] element name of 257 bytes (nnnnnnnnnnnnnnnnnnnn...), more than the limit of 256"},
		{"end tag", Parser{}, "<a></" + long + "></a>", "t.xml:1:4: [a] element name of 257 bytes"},
		{"attribute", Parser{}, `<a x="1" ` + long + `="2"/>`, `t.xml:1:10: [a] attribute name of 257 bytes`},
		{"root", Parser{}, "<" + long + ">", "t.xml:1:1: element name of 257 bytes"},
		{"set limit, characters", Parser{MaxName: 4}, "<集群/>", "element name of 6 bytes (集群...), more than the limit of 4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.p.Parse("t.xml", []byte(tc.in))
			if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want ErrLimit with %q", err, tc.want)
			}
		})
	}
	at := strings.Repeat("n", DefaultMaxName)
	if _, _, err := Parse("t.xml", []byte("<"+at+" "+at+`="1"></`+at+">")); err != nil {
		t.Errorf("names at the limit: %v", err)
	}
}

// TestPathBounded: a path longer than 256 bytes keeps the names nearest
// the element after ".../".
func TestPathBounded(t *testing.T) {
	var sb strings.Builder
	for i := range 40 {
		fmt.Fprintf(&sb, "<e%02d%s>", i, strings.Repeat("x", 20))
	}
	root, _, err := Parse("t.xml", []byte(sb.String()))
	if err != nil {
		t.Fatal(err)
	}
	e := root
	for len(e.Children) > 0 {
		e = e.Children[0]
	}
	p := e.Path()
	if len(p) > 256+len(".../") || !strings.HasPrefix(p, ".../e") || !strings.HasSuffix(p, "/e38xxxxxxxxxxxxxxxxxxxx/e39xxxxxxxxxxxxxxxxxxxx") {
		t.Errorf("path of %d bytes: %s", len(p), p)
	}
	if n := len(strings.Split(p, "/")) - 1; n != 10 { // ".../" and 10 names of 23 bytes
		t.Errorf("path %s has %d names", p, n)
	}
	// One name longer than the bound is kept whole.
	big := NewElement(strings.Repeat("b", 300), e, nil)
	if p := big.Path(); p != ".../"+big.Name {
		t.Errorf("path %q", p)
	}
}

// TestWarningsCappedPerFile: the parser's warnings and those of the
// binders on a file's elements are MaxWarnings in all; CapWarnings keeps
// MaxWarnings and ends them with one warning counting every other.
func TestWarningsCappedPerFile(t *testing.T) {
	// 600 parser warnings (stray end tags), then 900 unknown attributes
	// and 300 unknown elements for a binder.
	var sb strings.Builder
	sb.WriteString("<a")
	for i := range 900 {
		fmt.Fprintf(&sb, " x%d=\"\"", i)
	}
	sb.WriteString(">\n")
	sb.WriteString(strings.Repeat("</b>\n", 600))
	sb.WriteString(strings.Repeat("<c/>\n", 300))
	sb.WriteString("</a>")
	root, pws, err := Parser{MaxAttrs: 900}.Parse("t.xml", []byte(sb.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(pws) != 600 {
		t.Fatalf("%d parser warnings", len(pws))
	}
	b := root.Bind()
	b.Warn("", "one more") // 601
	bws, err := b.Done()
	if err != nil {
		t.Fatal(err)
	}
	if len(bws) != MaxWarnings-600 {
		t.Errorf("binder made %d warnings, want the %d left", len(bws), MaxWarnings-600)
	}
	ws := CapWarnings(root, append(pws, bws...))
	if len(ws) != MaxWarnings+1 {
		t.Fatalf("%d warnings", len(ws))
	}
	// 1801 asked for: 600 + 1 + 900 + 300.
	if last := ws[MaxWarnings]; last.String() != "t.xml: warning: 801 more warnings not shown" {
		t.Errorf("last warning %q", last)
	}
	// Warnings made elsewhere count too; the parser's last line is
	// replaced, its count kept.
	var extra []Warning
	for range 5 {
		extra = append(extra, WarningAt(root, "", LevelNote, "elsewhere"))
	}
	list := append(append(ws[:MaxWarnings-3:MaxWarnings-3], moreWarnings("t.xml", 7)), extra...)
	ws = CapWarnings(nil, list)
	if len(ws) != MaxWarnings+1 || ws[MaxWarnings].Msg != "9 more warnings not shown" || ws[MaxWarnings-1].Msg != "elsewhere" {
		t.Errorf("%d warnings, last %v", len(ws), ws[len(ws)-1])
	}
	if ws := CapWarnings(root, pws[:3]); len(ws) != 4 {
		t.Errorf("short list: %v", ws)
	}
}

// TestParseWarningCapKeepsPositions: elements left open at the end of a
// file that already has MaxWarnings warnings are counted, and do not move
// the last warning kept to their line.
func TestParseWarningCapKeepsPositions(t *testing.T) {
	in := "<a>\n" + strings.Repeat("</b>\n", MaxWarnings) + "<c>"
	_, ws, err := Parse("t.xml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != MaxWarnings+1 || ws[MaxWarnings-1].Line != MaxWarnings+1 || ws[MaxWarnings].Msg != "2 more warnings not shown" {
		t.Errorf("%d warnings, last kept %v, then %v", len(ws), ws[MaxWarnings-1], ws[len(ws)-1])
	}
}
