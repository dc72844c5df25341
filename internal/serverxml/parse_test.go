package serverxml

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// attrs renders an element's attributes as name=value pairs.
func attrs(e *Element) string {
	var parts []string
	for _, a := range e.Attrs {
		parts = append(parts, a.Name+"="+a.Value)
	}
	return strings.Join(parts, " ")
}

// shape renders a tree as Name[attrs](children) for comparisons.
func shape(e *Element) string {
	var sb strings.Builder
	sb.WriteString(e.Name)
	if len(e.Attrs) > 0 {
		sb.WriteString("[" + attrs(e) + "]")
	}
	if len(e.Children) > 0 {
		sb.WriteByte('(')
		for i, c := range e.Children {
			if i > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(shape(c))
		}
		sb.WriteByte(')')
	}
	return sb.String()
}

func TestParseWellFormed(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"self-closing", `<a x="1"/>`, `a[x=1]`},
		{"nested", "<a>\n <b y='2'>\n  <c/>\n </b>\n <d/>\n</a>", `a(b[y=2](c) d)`},
		{"prolog, doctype and comments", `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE Server [ <!ENTITY boom "<x/>"> ]>
<!-- <Old a="1"/> -->
<Server port="8005"><!-- comment --><Service/></Server>`, `Server[port=8005](Service)`},
		{"entities", `<a v="&lt;&gt;&amp;&quot;&apos;&#65;&#x42;"/>`, `a[v=<>&"'AB]`},
		{"inner line break becomes a space", "<a v=\"x\ny\"/>", `a[v=x y]`},
		{"BOM", "\xEF\xBB\xBF<a/>", `a`},
		{"blank CDATA", "<a><![CDATA[ \n ]]></a>", `a`},
		{"blanks around =", `<a x = "1" />`, `a[x=1]`},
		{"non-ASCII value", `<a v="集群"/>`, `a[v=集群]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, ws, err := Parse("t.xml", []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := shape(root); got != tc.want {
				t.Errorf("tree %s, want %s", got, tc.want)
			}
			if len(ws) != 0 {
				t.Errorf("warnings %v, want none", ws)
			}
		})
	}
}

// TestParseLenient checks that each leniency accepts its input, builds the
// tree that was meant and reports exactly one warning about it.
func TestParseLenient(t *testing.T) {
	tests := []struct {
		name, in, want string
		warning        string // substring of the one warning
		line, col      int    // its position
		level          Level
	}{
		{"no blank between attributes", `<Cluster className="x"channelSendOptions="6"/>`,
			`Cluster[className=x channelSendOptions=6]`, `no blank between attributes "className" and "channelSendOptions"`, 1, 23, LevelWarning},
		{"line break at the end of a value", "<Receiver className=\"a.NioReceiver\n\" port=\"1\"/>",
			`Receiver[className=a.NioReceiver port=1]`, `has a line break at its start or end; read as "a.NioReceiver"`, 1, 21, LevelWarning},
		{"blanks around a value", `<a port=" 4000 "/>`,
			`a[port=4000]`, `has blanks at its start or end`, 1, 9, LevelWarning},
		{"typographic double quotes", `<Valve className=”org.Valve”/>`,
			`Valve[className=org.Valve]`, `typographic quotes`, 1, 18, LevelWarning},
		{"typographic opening and closing quotes", `<Valve className=“org.Valve”/>`,
			`Valve[className=org.Valve]`, `typographic quotes`, 1, 18, LevelWarning},
		{"typographic single quotes", `<Valve className=‘org.Valve’/>`,
			`Valve[className=org.Valve]`, `typographic quotes`, 1, 18, LevelWarning},
		{"unquoted value", `<a port=4000/>`,
			`a[port=4000]`, `not quoted`, 1, 9, LevelWarning},
		{"bare ampersand", `<a v="a&b"/>`,
			`a[v=a&b]`, `'&' does not start a known reference`, 1, 6, LevelWarning},
		{"duplicate attribute, same value", `<a x="1" x="1"/>`,
			`a[x=1]`, `given twice with the same value`, 1, 10, LevelWarning},
		{"end tag in another case", "<Membership>\n</membership>",
			`Membership`, `end tag </membership> closes <Membership> (line 1)`, 2, 1, LevelWarning},
		{"end tag closes an outer element", "<a>\n<b>\n</a>",
			`a(b)`, `<b> (line 2) is not closed before </a>`, 3, 1, LevelWarning},
		{"stray end tag", "<Cluster>\n<Receiver/>\n</Channel>\n</Cluster>",
			`Cluster(Receiver)`, `end tag </Channel> has no start tag; ignored`, 3, 1, LevelWarning},
		{"unclosed at end of file", "<a>\n  <b/>",
			`a(b)`, `<a> (line 1) is not closed at the end of the file`, 1, 1, LevelWarning},
		{"several top-level elements", "<a/>\n<b/>",
			`(a b)`, `2 top-level elements`, 0, 0, LevelNote},
		{"text between elements", "<a>\n下面来仔细剖析一下这段代码。\n<b/></a>",
			`a(b)`, `text "下面来仔细剖析一下这段代码。" ignored`, 2, 1, LevelNote},
		{"invalid UTF-8", "<a v=\"\xff\"/>",
			"a[v=\xff]", `not valid UTF-8`, 0, 0, LevelWarning},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, ws, err := Parse("t.xml", []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := shape(root); got != tc.want {
				t.Errorf("tree %s, want %s", got, tc.want)
			}
			if len(ws) != 1 {
				t.Fatalf("warnings %v, want one", ws)
			}
			w := ws[0]
			if !strings.Contains(w.Msg, tc.warning) {
				t.Errorf("warning %q, want it to contain %q", w.Msg, tc.warning)
			}
			if w.Line != tc.line || w.Col != tc.col || w.Level != tc.level || w.File != "t.xml" {
				t.Errorf("warning at %s:%d:%d level %v, want t.xml:%d:%d %v", w.File, w.Line, w.Col, w.Level, tc.line, tc.col, tc.level)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // substring of the message
		line     int
	}{
		{"empty", ``, "no element", 0},
		{"only a comment", `<!-- x -->`, "no element", 0},
		{"unterminated comment", "<a>\n<!-- x", "comment not closed", 2},
		{"unterminated tag", "<a\n x=\"1\"", "start tag <a> not closed", 1},
		{"unterminated value", "<a x=\"1/>\n", `value of attribute "x" not closed`, 1},
		{"lt in value", "<a x=\"1/>\n<b y=\"2\"/>", `'<' in the value of attribute "x"`, 1},
		{"no value", `<a x/>`, `attribute "x" has no value`, 1},
		{"no value before end", `<a x=/>`, `attribute "x" has no value`, 1},
		{"conflicting duplicates", "<a x=\"1\"\n x=\"2\"/>", `attribute "x" given twice, with different values`, 2},
		{"lt without name", "<a>\n< b/></a>", `'<' not followed by an element name`, 2},
		{"end tag without name", "<a></>", "end tag without a name", 1},
		{"end tag unclosed", "<a></a", "end tag </a> not closed", 1},
		{"unterminated doctype", "<!DOCTYPE a [", "declaration not closed", 1},
		{"unterminated PI", "<?xml", "processing instruction not closed", 1},
		{"UTF-16", "\xFF\xFE<\x00a\x00", "UTF-16", 1},
		{"unexpected character in tag", `<a "x"/>`, "unexpected", 1},
		{"unquoted value with quote", `<a x=ab"c/>`, "not quoted and holds a quote", 1},
		{"unclosed typographic quote", `<a x=”abc/>`, "missing closing quote", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, _, err := Parse("t.xml", []byte(tc.in))
			if err == nil {
				t.Fatalf("no error; tree %s", shape(root))
			}
			if root != nil {
				t.Error("tree returned with an error")
			}
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("error %v does not wrap ErrSyntax", err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error", err)
			}
			if !strings.Contains(e.Msg, tc.want) || e.Line != tc.line || e.File != "t.xml" {
				t.Errorf("error %q at line %d, want %q at line %d", err, e.Line, tc.want, tc.line)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	tests := []struct {
		name string
		p    Parser
		in   string
		want string
	}{
		{"size", Parser{MaxBytes: 10}, `<a x="12345678"/>`, "more than the limit of 10"},
		{"default size", Parser{}, "<a>" + strings.Repeat(" ", DefaultMaxBytes) + "</a>", "limit of 4194304"},
		{"depth", Parser{MaxDepth: 3}, `<a><b><c><d/></c></b></a>`, "nested deeper than the limit of 3"},
		{"default depth", Parser{}, strings.Repeat("<a>", DefaultMaxDepth+1), "deeper than the limit of 64"},
		{"elements", Parser{MaxElements: 3}, `<a><b/><c/><d/></a>`, "more elements than the limit of 3"},
		{"attributes", Parser{MaxAttrs: 2}, `<a x="1" y="2" z="3"/>`, "more attributes than the limit of 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.p.Parse("t.xml", []byte(tc.in))
			if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want ErrLimit with %q", err, tc.want)
			}
		})
	}
	// Just under the limits is fine.
	if _, _, err := (Parser{MaxDepth: 4, MaxElements: 4, MaxAttrs: 3}).Parse("t.xml", []byte(`<a><b><c><d x="1" y="2" z="3"/></c></b></a>`)); err != nil {
		t.Errorf("at the limits: %v", err)
	}
}

func TestParseWarningCap(t *testing.T) {
	in := "<a>" + strings.Repeat("</b>", 3000) + "</a>"
	_, ws, err := Parse("t.xml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != MaxWarnings+1 || ws[MaxWarnings].Msg != "2000 more warnings not shown" {
		t.Errorf("%d warnings, last %v", len(ws), ws[len(ws)-1])
	}
}

func TestPositions(t *testing.T) {
	in := "<!-- 注释 -->\n<集群 名=\"值\">\n\t<b\n  x=\"1\"/>\n</集群>"
	root, _, err := Parse("p.xml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if root.Line != 2 || root.Col != 1 || root.Attrs[0].Line != 2 || root.Attrs[0].Col != 5 {
		t.Errorf("root at %d:%d, attr at %d:%d; want 2:1 and 2:5", root.Line, root.Col, root.Attrs[0].Line, root.Attrs[0].Col)
	}
	b := root.Children[0]
	if b.Line != 3 || b.Col != 2 || b.Attrs[0].Line != 4 || b.Attrs[0].Col != 3 {
		t.Errorf("b at %d:%d, x at %d:%d; want 3:2 and 4:3", b.Line, b.Col, b.Attrs[0].Line, b.Attrs[0].Col)
	}
	if b.Path() != "集群/b" || b.Parent() != root || root.Parent() != nil || b.File != "p.xml" {
		t.Errorf("path %q, parent %v", b.Path(), b.Parent())
	}
}

func TestElementHelpers(t *testing.T) {
	root, _, err := Parse("t.xml", []byte(`<Server><Service><Engine><Cluster a="1"/></Engine></Service><cluster/></Server>`))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(root.FindAll("CLUSTER")); got != 2 {
		t.Errorf("FindAll found %d, want 2", got)
	}
	if got := len(root.Find("cluster")); got != 1 {
		t.Errorf("Find found %d, want 1", got)
	}
	c := root.FindAll("Cluster")[0]
	if v, ok := c.Attr("a"); !ok || v != "1" {
		t.Errorf("Attr = %q, %v", v, ok)
	}
	if _, ok := c.Attr("A"); ok {
		t.Error("Attr matched another case")
	}
	if c.Path() != "Server/Service/Engine/Cluster" {
		t.Errorf("Path %q", c.Path())
	}
	n := NewElement("Channel", c, c)
	if n.Parent() != c || n.Line != c.Line || len(c.Children) != 0 || n.Path() != "Server/Service/Engine/Cluster/Channel" {
		t.Errorf("NewElement: parent %v line %d, parent's children %d", n.Parent(), n.Line, len(c.Children))
	}
}

func TestWarningString(t *testing.T) {
	tests := []struct {
		name string
		w    Warning
		want string
	}{
		{"attribute", Warning{File: "server.xml", Line: 12, Col: 3, Element: "Cluster/Channel/Receiver", Attr: "seceltorTimeout", Msg: "no such property"},
			`server.xml:12:3: warning: [Cluster/Channel/Receiver] attribute "seceltorTimeout": no such property`},
		{"element note", Warning{File: "s.xml", Line: 2, Element: "Cluster", Msg: "m", Level: LevelNote}, `s.xml:2: note: [Cluster] m`},
		{"file", Warning{File: "s.xml", Msg: "m"}, `s.xml: warning: m`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.w.String(); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	e := &Error{File: "s.xml", Line: 1, Col: 2, Element: "a", Attr: "x", Msg: "bad", Err: ErrBadValue}
	if got, want := e.Error(), `s.xml:1:2: [a] attribute "x": bad`; got != want {
		t.Errorf("Error() = %s, want %s", got, want)
	}
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("../../examples/seeds/007-delta-typos.xml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Parse("s.xml", data); err != nil {
			b.Fatal(err)
		}
	}
}
