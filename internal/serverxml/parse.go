package serverxml

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Default limits of a [Parser].
const (
	DefaultMaxBytes    = 4 << 20 // file size
	DefaultMaxDepth    = 64      // nesting of elements
	DefaultMaxElements = 10000   // elements in a file
	DefaultMaxAttrs    = 256     // attributes of one element
	DefaultMaxName     = 256     // bytes in an element or attribute name
)

// MaxWarnings bounds the warnings made about one parsed file, the
// parser's and those of every [Binder] on its elements together; the
// others are only counted, in a last warning "N more warnings not shown"
// (see [CapWarnings]).
const MaxWarnings = 1000

// Parser reads server.xml-like files leniently (see the package
// documentation for what it accepts). The zero value uses the default
// limits; a Parser has no state and may be used concurrently.
type Parser struct {
	MaxBytes    int // larger files are refused (default 4 MiB)
	MaxDepth    int // deeper nesting is refused (default 64)
	MaxElements int // more elements are refused (default 10000)
	MaxAttrs    int // an element with more attributes is refused (default 256)
	MaxName     int // a longer element or attribute name is refused (default 256 bytes)
}

// Parse reads data (named name in positions and messages) with the default
// limits. See [Parser.Parse].
func Parse(name string, data []byte) (*Element, []Warning, error) {
	return Parser{}.Parse(name, data)
}

// Parse reads data, named name in positions and messages, and returns its
// root element and the warnings about what was accepted only leniently:
// at most [MaxWarnings], and then one counting the others.
// When the data holds several top-level elements, the root is a synthetic
// element with an empty Name whose children they are. The error is an
// [*Error] wrapping [ErrSyntax] or [ErrLimit]; the tree is nil then.
func (p Parser) Parse(name string, data []byte) (*Element, []Warning, error) {
	if p.MaxBytes <= 0 {
		p.MaxBytes = DefaultMaxBytes
	}
	if p.MaxDepth <= 0 {
		p.MaxDepth = DefaultMaxDepth
	}
	if p.MaxElements <= 0 {
		p.MaxElements = DefaultMaxElements
	}
	if p.MaxAttrs <= 0 {
		p.MaxAttrs = DefaultMaxAttrs
	}
	if p.MaxName <= 0 {
		p.MaxName = DefaultMaxName
	}
	if len(data) > p.MaxBytes {
		return nil, nil, &Error{File: name, Err: ErrLimit,
			Msg: fmt.Sprintf("file is %d bytes, more than the limit of %d", len(data), p.MaxBytes)}
	}
	ps := &parser{lim: p, file: name, data: data, budget: &budget{}}
	ps.lines = append(ps.lines, 0)
	for i, c := range data {
		if c == '\n' {
			ps.lines = append(ps.lines, i+1)
		}
	}
	root, err := ps.run()
	if n := int(ps.budget.dropped.Load()); n > 0 {
		ps.warns = append(ps.warns, moreWarnings(name, n))
	}
	if err != nil {
		return nil, ps.warns, err
	}
	return root, ps.warns, nil
}

type frame struct {
	el         *Element
	textWarned bool
}

type parser struct {
	lim   Parser
	file  string
	data  []byte
	pos   int
	lines []int // offsets of line starts

	// position cache: the last offset converted, for monotonic scans of
	// long lines.
	cacheOff, cacheLine, cacheCol int

	warns  []Warning
	budget *budget // the file's, shared with its elements

	elems      int
	stack      []frame
	roots      []*Element
	topTextWrn bool
}

// position converts a byte offset to a 1-based line and column (in
// characters).
func (p *parser) position(off int) (line, col int) {
	i := sort.Search(len(p.lines), func(i int) bool { return p.lines[i] > off }) - 1
	line = i + 1
	start := p.lines[i]
	if p.cacheLine == line && p.cacheOff <= off && p.cacheOff >= start {
		col = p.cacheCol + utf8.RuneCount(p.data[p.cacheOff:off])
	} else {
		col = utf8.RuneCount(p.data[start:off]) + 1
	}
	p.cacheOff, p.cacheLine, p.cacheCol = off, line, col
	return line, col
}

// warnAt adds a warning at byte offset off (none when off < 0) and
// reports whether it did: it does not once the file has [MaxWarnings].
func (p *parser) warnAt(off int, el *Element, attr string, level Level, format string, args ...any) bool {
	if !p.budget.take() {
		return false
	}
	w := Warning{File: p.file, Element: el.Path(), Attr: attr, Msg: fmt.Sprintf(format, args...), Level: level}
	if off >= 0 {
		w.Line, w.Col = p.position(off)
	}
	p.warns = append(p.warns, w)
	return true
}

func (p *parser) errAt(off int, el *Element, format string, args ...any) error {
	e := &Error{File: p.file, Element: el.Path(), Msg: fmt.Sprintf(format, args...), Err: ErrSyntax}
	if off >= 0 {
		e.Line, e.Col = p.position(off)
	}
	return e
}

func (p *parser) limitErr(off int, el *Element, format string, args ...any) error {
	e := p.errAt(off, el, format, args...).(*Error)
	e.Err = ErrLimit
	return e
}

func (p *parser) top() *Element {
	if len(p.stack) == 0 {
		return nil
	}
	return p.stack[len(p.stack)-1].el
}

func (p *parser) run() (*Element, error) {
	d := p.data
	if bytes.HasPrefix(d, []byte("\xEF\xBB\xBF")) {
		p.pos = 3
	} else if bytes.HasPrefix(d, []byte("\xFE\xFF")) || bytes.HasPrefix(d, []byte("\xFF\xFE")) {
		return nil, p.errAt(0, nil, "the file is UTF-16; save it as UTF-8")
	}
	if !utf8.Valid(d) {
		p.warnAt(-1, nil, "", LevelWarning, "the file is not valid UTF-8; non-ASCII text may be garbled (save it as UTF-8)")
	}
	for p.pos < len(d) {
		i := bytes.IndexByte(d[p.pos:], '<')
		if i < 0 {
			p.text(p.pos, len(d))
			p.pos = len(d)
			break
		}
		p.text(p.pos, p.pos+i)
		p.pos += i
		rest := d[p.pos:]
		var err error
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			err = p.skipPast(4, "-->", "comment")
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			start := p.pos
			if err = p.skipPast(9, "]]>", "CDATA section"); err == nil {
				p.text(start+9, p.pos-3)
			}
		case bytes.HasPrefix(rest, []byte("<!")):
			err = p.skipDecl()
		case bytes.HasPrefix(rest, []byte("<?")):
			err = p.skipPast(2, "?>", "processing instruction")
		case bytes.HasPrefix(rest, []byte("</")):
			err = p.endTag()
		default:
			err = p.startTag()
		}
		if err != nil {
			return nil, err
		}
	}
	for len(p.stack) > 0 {
		el := p.top()
		if p.warnAt(-1, el, "", LevelWarning, "<%s> (line %d) is not closed at the end of the file; closed there", el.Name, el.Line) {
			p.warns[len(p.warns)-1].Line, p.warns[len(p.warns)-1].Col = el.Line, el.Col
		}
		p.stack = p.stack[:len(p.stack)-1]
	}
	switch len(p.roots) {
	case 0:
		return nil, p.errAt(-1, nil, "no element in the file")
	case 1:
		return p.roots[0], nil
	}
	root := &Element{File: p.file, Line: p.roots[0].Line, Col: p.roots[0].Col, Children: p.roots, budget: p.budget}
	for _, r := range p.roots {
		r.parent = root
	}
	p.warnAt(-1, nil, "", LevelNote, "%d top-level elements (XML allows one); they are read as siblings", len(p.roots))
	return root, nil
}

// skipPast moves past the first end after skip bytes.
func (p *parser) skipPast(skip int, end, what string) error {
	i := bytes.Index(p.data[p.pos+skip:], []byte(end))
	if i < 0 {
		return p.errAt(p.pos, p.top(), "%s not closed with %q", what, end)
	}
	p.pos += skip + i + len(end)
	return nil
}

// skipDecl skips "<!DOCTYPE ...>", internal subset included. Entities it
// declares are not expanded.
func (p *parser) skipDecl() error {
	start := p.pos
	depth := 0
	var quote byte
	for i := p.pos + 2; i < len(p.data); i++ {
		c := p.data[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '[':
			depth++
		case c == ']':
			depth--
		case c == '>' && depth <= 0:
			p.pos = i + 1
			return nil
		}
	}
	return p.errAt(start, p.top(), "declaration not closed with '>'")
}

// text notes non-blank text (prose pasted with the configuration).
func (p *parser) text(from, to int) {
	t := p.data[from:to]
	i := bytes.IndexFunc(t, func(r rune) bool { return !isSpace(r) })
	if i < 0 {
		return
	}
	var warned *bool
	if len(p.stack) > 0 {
		warned = &p.stack[len(p.stack)-1].textWarned
	} else {
		warned = &p.topTextWrn
	}
	if *warned {
		return
	}
	*warned = true
	s := string(bytes.TrimSpace(t))
	if j := strings.IndexAny(s, "\r\n"); j >= 0 {
		s = s[:j] + "..."
	}
	if utf8.RuneCountInString(s) > 40 {
		s = string([]rune(s)[:40]) + "..."
	}
	p.warnAt(from+i, p.top(), "", LevelNote, "text %q ignored", s)
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipSpace skips blanks and reports whether there were any.
func (p *parser) skipSpace() bool {
	start := p.pos
	for p.pos < len(p.data) && isSpaceByte(p.data[p.pos]) {
		p.pos++
	}
	return p.pos > start
}

// readName reads an element or attribute name (what) of el: everything up
// to a blank or one of = > / < " '. A name longer than the limit is an
// error at at.
func (p *parser) readName(el *Element, what string, at int) (string, error) {
	start := p.pos
	p.skipName()
	if n := p.pos - start; n > p.lim.MaxName {
		return "", p.limitErr(at, el, "%s name of %d bytes (%s...), more than the limit of %d", what, n, abbrev(p.data[start:p.pos], 20), p.lim.MaxName)
	}
	return string(p.data[start:p.pos]), nil
}

// abbrev returns the first n characters of b.
func abbrev(b []byte, n int) string {
	i := 0
	for ; n > 0 && i < len(b); n-- {
		_, size := utf8.DecodeRune(b[i:])
		i += size
	}
	return string(b[:i])
}

// skipName moves past a name.
func (p *parser) skipName() {
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if isSpaceByte(c) || c == '=' || c == '>' || c == '/' || c == '<' || c == '"' || c == '\'' {
			break
		}
		if c >= utf8.RuneSelf {
			if r, n := utf8.DecodeRune(p.data[p.pos:]); isCurlyQuote(r) {
				break
			} else {
				p.pos += n
				continue
			}
		}
		p.pos++
	}
}

func (p *parser) endTag() error {
	start := p.pos
	p.pos += 2
	name, err := p.readName(p.top(), "element", start)
	if err != nil {
		return err
	}
	p.skipSpace()
	if name == "" {
		return p.errAt(start, p.top(), "end tag without a name")
	}
	if p.pos >= len(p.data) || p.data[p.pos] != '>' {
		return p.errAt(start, p.top(), "end tag </%s> not closed with '>'", name)
	}
	p.pos++
	for i := len(p.stack) - 1; i >= 0; i-- {
		el := p.stack[i].el
		if el.Name != name && !strings.EqualFold(el.Name, name) {
			continue
		}
		for j := len(p.stack) - 1; j > i; j-- {
			inner := p.stack[j].el
			p.warnAt(start, inner, "", LevelWarning, "<%s> (line %d) is not closed before </%s>; closed there", inner.Name, inner.Line, name)
		}
		if el.Name != name {
			p.warnAt(start, el, "", LevelWarning, "end tag </%s> closes <%s> (line %d): names are case-sensitive", name, el.Name, el.Line)
		}
		p.stack = p.stack[:i]
		return nil
	}
	p.warnAt(start, p.top(), "", LevelWarning, "end tag </%s> has no start tag; ignored", name)
	return nil
}

func (p *parser) startTag() error {
	start := p.pos
	p.pos++
	parent := p.top()
	name, err := p.readName(parent, "element", start)
	if err != nil {
		return err
	}
	if name == "" {
		return p.errAt(start, parent, "'<' not followed by an element name")
	}
	if len(p.stack) >= p.lim.MaxDepth {
		return p.limitErr(start, parent, "elements nested deeper than the limit of %d", p.lim.MaxDepth)
	}
	p.elems++
	if p.elems > p.lim.MaxElements {
		return p.limitErr(start, parent, "more elements than the limit of %d", p.lim.MaxElements)
	}
	el := &Element{Name: name, File: p.file, parent: parent, budget: p.budget}
	el.Line, el.Col = p.position(start)
	afterValue := false
	for {
		sawSpace := p.skipSpace()
		if p.pos >= len(p.data) {
			return p.errAt(start, el, "start tag <%s> not closed with '>'", name)
		}
		switch c := p.data[p.pos]; {
		case c == '>':
			p.pos++
			p.attach(el)
			p.stack = append(p.stack, frame{el: el})
			return nil
		case c == '/' && p.pos+1 < len(p.data) && p.data[p.pos+1] == '>':
			p.pos += 2
			p.attach(el)
			return nil
		}
		aStart := p.pos
		aname, err := p.readName(el, "attribute", aStart)
		if err != nil {
			return err
		}
		if aname == "" {
			r, _ := utf8.DecodeRune(p.data[p.pos:])
			return p.errAt(p.pos, el, "unexpected %q in start tag <%s>", r, name)
		}
		if !sawSpace && afterValue {
			prev := el.Attrs[len(el.Attrs)-1].Name
			p.warnAt(aStart, el, aname, LevelWarning, "no blank between attributes %q and %q; read as two attributes", prev, aname)
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '=' {
			return p.errAt(aStart, el, "attribute %q has no value (write %s=\"...\")", aname, aname)
		}
		p.pos++
		p.skipSpace()
		value, err := p.readValue(el, aname, aStart)
		if err != nil {
			return err
		}
		line, col := p.position(aStart)
		dup := false
		for _, a := range el.Attrs {
			if a.Name != aname {
				continue
			}
			if a.Value != value {
				return p.errAt(aStart, el, "attribute %q given twice, with different values (line %d %s, line %d %s)", aname, a.Line, QuoteValue(aname, a.Value), line, QuoteValue(aname, value))
			}
			p.warnAt(aStart, el, aname, LevelWarning, "given twice with the same value (also on line %d)", a.Line)
			dup = true
		}
		if !dup {
			if len(el.Attrs) >= p.lim.MaxAttrs {
				return p.limitErr(aStart, el, "more attributes than the limit of %d", p.lim.MaxAttrs)
			}
			el.Attrs = append(el.Attrs, Attr{Name: aname, Value: value, Line: line, Col: col})
		}
		afterValue = true
	}
}

func (p *parser) attach(el *Element) {
	if el.parent != nil {
		el.parent.Children = append(el.parent.Children, el)
	} else {
		p.roots = append(p.roots, el)
	}
}

// Typographic quotes accepted (with a warning) in place of ASCII quotes.
func isCurlyQuote(r rune) bool { return isCurlyDouble(r) || isCurlySingle(r) }

func isCurlyDouble(r rune) bool {
	return r == '\u201C' || r == '\u201D' || r == '\u201E' || r == '\u201F' || r == '\u2033' || r == '\uFF02'
}

func isCurlySingle(r rune) bool {
	return r == '\u2018' || r == '\u2019' || r == '\u201A' || r == '\u201B'
}

// readValue reads an attribute value at p.pos: quoted, quoted with
// typographic quotes, or unquoted; decodes character references,
// normalises blanks as XML does and trims them.
func (p *parser) readValue(el *Element, aname string, aStart int) (string, error) {
	d := p.data
	if p.pos >= len(d) {
		return "", p.errAt(aStart, el, "attribute %q has no value", aname)
	}
	vStart := p.pos
	var raw []byte
	switch c := d[p.pos]; {
	case c == '"' || c == '\'':
		end := bytes.IndexByte(d[p.pos+1:], c)
		if end < 0 {
			return "", p.errAt(vStart, el, "value of attribute %q not closed: missing %c", aname, c)
		}
		raw = d[p.pos+1 : p.pos+1+end]
		p.pos += end + 2
	case c >= utf8.RuneSelf:
		r, n := utf8.DecodeRune(d[p.pos:])
		if !isCurlyQuote(r) {
			return p.unquoted(el, aname, aStart)
		}
		closes := isCurlyDouble
		ascii := byte('"')
		if isCurlySingle(r) {
			closes, ascii = isCurlySingle, '\''
		}
		i := p.pos + n
		for i < len(d) {
			if d[i] == ascii {
				break
			}
			if d[i] >= utf8.RuneSelf {
				r2, n2 := utf8.DecodeRune(d[i:])
				if closes(r2) {
					break
				}
				i += n2
				continue
			}
			i++
		}
		if i >= len(d) {
			return "", p.errAt(vStart, el, "value of attribute %q not closed: missing closing quote for %q", aname, r)
		}
		raw = d[p.pos+n : i]
		cr, cn := utf8.DecodeRune(d[i:])
		p.pos = i + cn
		p.warnAt(vStart, el, aname, LevelWarning, "value quoted with typographic quotes %q...%q; read as if quoted with %c", r, cr, ascii)
	default:
		return p.unquoted(el, aname, aStart)
	}
	return p.finishValue(el, aname, vStart, raw)
}

func (p *parser) unquoted(el *Element, aname string, aStart int) (string, error) {
	d := p.data
	vStart := p.pos
	for p.pos < len(d) {
		c := d[p.pos]
		if isSpaceByte(c) || c == '>' || c == '<' || (c == '/' && p.pos+1 < len(d) && d[p.pos+1] == '>') {
			break
		}
		p.pos++
	}
	if p.pos == vStart {
		return "", p.errAt(aStart, el, "attribute %q has no value (write %s=\"...\")", aname, aname)
	}
	raw := d[vStart:p.pos]
	if bytes.ContainsAny(raw, "\"'") {
		return "", p.errAt(vStart, el, "value of attribute %q is not quoted and holds a quote", aname)
	}
	p.warnAt(vStart, el, aname, LevelWarning, "value %s not quoted; read as if quoted", QuoteValue(aname, string(raw)))
	return p.finishValue(el, aname, vStart, raw)
}

func (p *parser) finishValue(el *Element, aname string, vStart int, raw []byte) (string, error) {
	if i := bytes.IndexByte(raw, '<'); i >= 0 {
		return "", p.errAt(vStart, el, "'<' in the value of attribute %q (a missing closing quote?)", aname)
	}
	v := string(raw)
	if strings.ContainsAny(v, "\t\r\n") {
		// XML attribute-value normalisation: CRLF is one line break, and
		// every blank becomes a space.
		v = strings.ReplaceAll(v, "\r\n", "\n")
		v = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\r' || r == '\n' {
				return ' '
			}
			return r
		}, v)
	}
	if t := strings.Trim(v, " "); t != v {
		what := "blanks"
		lead := raw[:len(raw)-len(bytes.TrimLeft(raw, " \t\r\n"))]
		trail := raw[len(bytes.TrimRight(raw, " \t\r\n")):]
		if bytes.ContainsAny(lead, "\r\n") || bytes.ContainsAny(trail, "\r\n") {
			what = "a line break"
		}
		p.warnAt(vStart, el, aname, LevelWarning, "value %s has %s at its start or end; read as %s", QuoteValue(aname, string(raw)), what, QuoteValue(aname, t))
		v = t
	}
	if strings.IndexByte(v, '&') >= 0 {
		v = p.decodeRefs(el, aname, vStart, v)
	}
	return v, nil
}

var namedRefs = map[string]string{"lt": "<", "gt": ">", "amp": "&", "quot": `"`, "apos": "'"}

// decodeRefs replaces character and entity references; an '&' that starts
// none is kept as written, with a warning.
func (p *parser) decodeRefs(el *Element, aname string, vStart int, v string) string {
	var sb strings.Builder
	warned := false
	for {
		i := strings.IndexByte(v, '&')
		if i < 0 {
			sb.WriteString(v)
			return sb.String()
		}
		sb.WriteString(v[:i])
		v = v[i:]
		semi := strings.IndexByte(v, ';')
		ok := false
		if semi > 1 && semi <= 12 {
			name := v[1:semi]
			if s, found := namedRefs[name]; found {
				sb.WriteString(s)
				ok = true
			} else if name[0] == '#' {
				var n uint64
				var err error
				if len(name) > 2 && (name[1] == 'x' || name[1] == 'X') {
					n, err = strconv.ParseUint(name[2:], 16, 32)
				} else {
					n, err = strconv.ParseUint(name[1:], 10, 32)
				}
				if r := rune(n); err == nil && n > 0 && n <= utf8.MaxRune && utf8.ValidRune(r) {
					sb.WriteRune(r)
					ok = true
				}
			}
		}
		if ok {
			v = v[semi+1:]
			continue
		}
		if !warned {
			warned = true
			p.warnAt(vStart, el, aname, LevelWarning, "'&' does not start a known reference (&amp; &lt; &gt; &quot; &apos; &#N;); kept as written")
		}
		sb.WriteByte('&')
		v = v[1:]
	}
}
