package serverxml

import (
	"strings"
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

// Path returns the element names from the root down to e joined by '/',
// as Tomcat names its digester rules ("Server/Service/Engine/Cluster").
func (e *Element) Path() string {
	if e == nil {
		return ""
	}
	n := 0
	for p := e; p != nil; p = p.parent {
		if p.Name != "" {
			n++
		}
	}
	names := make([]string, n)
	for p := e; p != nil; p = p.parent {
		if p.Name != "" {
			n--
			names[n] = p.Name
		}
	}
	return strings.Join(names, "/")
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
// hold it. File, Line and Col come from at, when not nil.
func NewElement(name string, parent, at *Element) *Element {
	e := &Element{Name: name, parent: parent}
	if at != nil {
		e.File, e.Line, e.Col = at.File, at.Line, at.Col
	}
	return e
}
