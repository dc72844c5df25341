package serverxml

import (
	"strings"
	"sync/atomic"
)

// Element is an XML element with its attributes in source order, its child
// elements, and where it starts in the file. Text between elements is not
// kept (server.xml has none that matters).
type Element struct {
	Name     string // as written, e.g. "MemberShip"; "" for the synthetic root holding several top-level elements
	Attrs    []Attr
	Children []*Element
	File     string // the name given to Parse
	Line     int    // line and column of the '<' of the start tag, 1-based
	Col      int

	parent *Element
	budget *budget // shared by the elements of one parsed file; nil: no limit
}

// budget counts the warnings made about the elements of one parsed file,
// the parser's and every [Binder]'s, so that a hostile file cannot make
// more than [MaxWarnings] of them, each with its message and path, however
// many unknown elements and attributes it holds. The counters are atomic:
// binders on different elements of one tree may run concurrently.
type budget struct {
	made    atomic.Int64 // warnings asked for
	dropped atomic.Int64 // of those, the ones not made: MaxWarnings were
}

// take reports whether one more warning may be made, counting it as
// dropped when not.
func (b *budget) take() bool {
	if b == nil {
		return true
	}
	if b.made.Add(1) <= MaxWarnings {
		return true
	}
	b.dropped.Add(1)
	return false
}

// Attr is an attribute: its name as written, its value with character
// references decoded and outer blanks trimmed, and where its name starts.
type Attr struct {
	Name  string
	Value string
	Line  int
	Col   int
}

// Parent returns the element e is a child of, nil for a root.
func (e *Element) Parent() *Element { return e.parent }

// maxPath bounds the length of [Element.Path].
const maxPath = 256

// Path returns the element names from the root down to e joined by '/',
// as Tomcat names its digester rules ("Server/Service/Engine/Cluster").
// Every warning and error carries one, so it is bounded: a path longer
// than 256 bytes, which only a hostile file has (a [Parser] allows names
// of 256 bytes and 64 levels; Tomcat's paths are under 80 bytes), keeps
// the names nearest e after ".../" (e's own name at least).
func (e *Element) Path() string {
	if e == nil {
		return ""
	}
	n, size, cut := 0, 0, false
	for p := e; p != nil; p = p.parent {
		if p.Name == "" {
			continue
		}
		add := len(p.Name)
		if n > 0 {
			add++ // the '/'
			if size+add > maxPath {
				cut = true
				break
			}
		}
		n, size = n+1, size+add
	}
	const ellipsis = ".../"
	if cut {
		size += len(ellipsis)
	}
	// Fill from the end: e's name is last.
	buf := make([]byte, size)
	i := size
	for p, k := e, 0; k < n; p = p.parent {
		if p.Name == "" {
			continue
		}
		if k > 0 {
			i--
			buf[i] = '/'
		}
		i -= len(p.Name)
		copy(buf[i:], p.Name)
		k++
	}
	copy(buf, ellipsis[:i])
	return string(buf)
}

// Attr returns the value of the attribute named exactly name.
func (e *Element) Attr(name string) (string, bool) {
	for _, a := range e.Attrs {
		if a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

// attrFold finds an attribute by exact name, else case-insensitively.
func (e *Element) attrFold(name string) (Attr, bool) {
	for _, a := range e.Attrs {
		if a.Name == name {
			return a, true
		}
	}
	for _, a := range e.Attrs {
		if strings.EqualFold(a.Name, name) {
			return a, true
		}
	}
	return Attr{}, false
}

// Is reports whether e is named name, ignoring case.
func (e *Element) Is(name string) bool { return strings.EqualFold(e.Name, name) }

// Find returns e's children named name, ignoring case, in order. It
// reports no warning; a [Binder]'s Children does.
func (e *Element) Find(name string) []*Element {
	var out []*Element
	for _, c := range e.Children {
		if c.Is(name) {
			out = append(out, c)
		}
	}
	return out
}

// FindAll returns the descendants of e (e excluded) named name, ignoring
// case, in document order.
func (e *Element) FindAll(name string) []*Element {
	var out []*Element
	var walk func(*Element)
	walk = func(p *Element) {
		for _, c := range p.Children {
			if c.Is(name) {
				out = append(out, c)
			}
			walk(c)
		}
	}
	walk(e)
	return out
}

// NewElement returns an element for building trees in code (tests, or a
// loader that supplies an implied element). Its parent is parent, but it
// is not added to parent's Children: append it there if the tree should
// hold it. File, Line and Col come from at, when not nil. Its warnings
// count towards the [MaxWarnings] of parent's file (or at's).
func NewElement(name string, parent, at *Element) *Element {
	e := &Element{Name: name, parent: parent}
	if at != nil {
		e.File, e.Line, e.Col, e.budget = at.File, at.Line, at.Col, at.budget
	}
	if parent != nil {
		e.budget = parent.budget
	}
	return e
}
