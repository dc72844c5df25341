package serverxml

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Level tells a [Warning] that calls for attention from a note.
type Level int8

const (
	// LevelWarning marks something the user should fix: an unknown
	// attribute or element, or input that was accepted only because the
	// loader was lenient.
	LevelWarning Level = iota
	// LevelNote marks something harmless worth knowing, such as a Tomcat
	// attribute that is accepted but has no wasmfarm equivalent.
	LevelNote
)

// String returns "warning" or "note".
func (l Level) String() string {
	if l == LevelNote {
		return "note"
	}
	return "warning"
}

// Warning is a problem found while reading a file that did not stop it
// from loading.
type Warning struct {
	File    string // the name given to Parse
	Line    int    // 1-based; 0 when the warning concerns the whole file
	Col     int    // 1-based, in characters; 0 when unknown
	Element string // element path from the root, "Cluster/Channel/Receiver"; "" for the file
	Attr    string // attribute name, or ""
	Msg     string
	Level   Level

	more int // for the last warning of a capped list: how many were left out
}

// moreWarnings returns the warning that ends a list from which n were left
// out.
func moreWarnings(file string, n int) Warning {
	return Warning{File: file, Msg: fmt.Sprintf("%d more warnings not shown", n), more: n}
}

// CapWarnings returns the warnings a loader hands back for one file: those
// of ws, in order, up to [MaxWarnings] of them, then, when any were left
// out, one last warning "N more warnings not shown" that counts them all:
// those the [Parser] and the [Binder]s of the file's elements did not make
// once the file had MaxWarnings (el is any element of the parsed file, or
// nil), those left out here, and those counted by a last warning of the
// parser's already in ws (it is replaced). Call it once, with all the
// warnings of the file.
func CapWarnings(el *Element, ws []Warning) []Warning {
	out := make([]Warning, 0, min(len(ws), MaxWarnings+1))
	dropped, counted := 0, 0
	file := ""
	for _, w := range ws {
		switch {
		case w.more > 0:
			counted += w.more
			file = w.File
		case len(out) < MaxWarnings:
			out = append(out, w)
		default:
			dropped++
		}
	}
	if el != nil && el.budget != nil {
		// The parser's count is the budget's, which has the binders' too.
		counted = int(el.budget.dropped.Load())
		if el.File != "" {
			file = el.File
		}
	}
	if n := dropped + counted; n > 0 {
		if file == "" && len(out) > 0 {
			file = out[0].File
		}
		out = append(out, moreWarnings(file, n))
	}
	return out
}

// String formats w like a compiler message, with Tomcat's element path in
// brackets:
//
//	server.xml:12:3: warning: [Cluster/Channel/Receiver] attribute "seceltorTimeout": ...
func (w Warning) String() string {
	var sb strings.Builder
	sb.WriteString(w.File)
	if w.Line > 0 {
		sb.WriteByte(':')
		sb.WriteString(strconv.Itoa(w.Line))
		if w.Col > 0 {
			sb.WriteByte(':')
			sb.WriteString(strconv.Itoa(w.Col))
		}
	}
	sb.WriteString(": ")
	sb.WriteString(w.Level.String())
	sb.WriteString(": ")
	if w.Element != "" {
		sb.WriteByte('[')
		sb.WriteString(w.Element)
		sb.WriteString("] ")
	}
	if w.Attr != "" {
		sb.WriteString("attribute ")
		sb.WriteString(strconv.Quote(w.Attr))
		sb.WriteString(": ")
	}
	sb.WriteString(w.Msg)
	return sb.String()
}

// Errors wrapped by [*Error]; test for them with errors.Is.
var (
	// ErrSyntax occurs when a file cannot be read as XML even leniently:
	// an unterminated tag, comment or quoted value, a '<' inside a value,
	// an attribute without a value, conflicting duplicate attributes.
	ErrSyntax = errors.New("serverxml: syntax error")
	// ErrLimit occurs when a file exceeds a [Parser] limit (size, depth,
	// element or attribute count).
	ErrLimit = errors.New("serverxml: limit exceeded")
	// ErrBadValue occurs when an attribute value cannot be converted to
	// the type a [Binder] asked for.
	ErrBadValue = errors.New("serverxml: bad attribute value")
	// ErrUnknownClass occurs when a className names no class a
	// [Registry] knows for that element.
	ErrUnknownClass = errors.New("serverxml: unknown class")
)

// Error is an error at a place in a file. Err is one of the package's
// sentinel errors (or a caller's), so errors.Is(err, ErrSyntax) works.
type Error struct {
	File    string
	Line    int
	Col     int
	Element string // element path, as in [Warning]
	Attr    string
	Msg     string
	Err     error
}

// Error formats e like [Warning.String].
func (e *Error) Error() string {
	w := Warning{File: e.File, Line: e.Line, Col: e.Col, Element: e.Element, Attr: e.Attr, Msg: e.Msg}
	s := w.String()
	// "file:1:2: warning: ..." -> "file:1:2: ..."
	return strings.Replace(s, ": warning: ", ": ", 1)
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// ErrorAt returns an [*Error] located at el (and at its attribute attr,
// when el has one of that name, case-insensitively), wrapping err.
func ErrorAt(el *Element, attr string, err error, format string, args ...any) *Error {
	e := &Error{Msg: fmt.Sprintf(format, args...), Err: err, Attr: attr}
	if el == nil {
		return e
	}
	e.File, e.Line, e.Col, e.Element = el.File, el.Line, el.Col, el.Path()
	if attr != "" {
		if a, ok := el.attrFold(attr); ok {
			e.Line, e.Col, e.Attr = a.Line, a.Col, a.Name
		}
	}
	return e
}

// WarningAt returns a [Warning] located like [ErrorAt].
func WarningAt(el *Element, attr string, level Level, format string, args ...any) Warning {
	e := ErrorAt(el, attr, nil, format, args...)
	return Warning{File: e.File, Line: e.Line, Col: e.Col, Element: e.Element, Attr: e.Attr, Msg: e.Msg, Level: level}
}

// MaxErrors bounds the errors a loader's error text shows: beyond it, one
// last line "N more errors not shown" counts the others, which stay
// reachable for [errors.Is] and [errors.As]. A file of 10,000 bad elements
// then gets an error of a few KiB, not of megabytes.
const MaxErrors = 100

// moreErrors ends a capped list: it prints only their count.
type moreErrors []error

func (m moreErrors) Error() string   { return fmt.Sprintf("%d more errors not shown", len(m)) }
func (m moreErrors) Unwrap() []error { return m }

// SortErrors flattens joined errors and joins them again in file order,
// so that the first one reported is the first one in the file. Beyond
// [MaxErrors] errors, the rest are counted in a last error instead of
// being shown.
func SortErrors(errs []error) error {
	var flat []error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			if _, isPos := err.(*Error); !isPos {
				for _, e := range j.Unwrap() {
					walk(e)
				}
				return
			}
		}
		flat = append(flat, err)
	}
	for _, e := range errs {
		walk(e)
	}
	pos := func(err error) (int, int) {
		var e *Error
		if errors.As(err, &e) {
			return e.Line, e.Col
		}
		return 0, 0
	}
	slices.SortStableFunc(flat, func(a, b error) int {
		la, ca := pos(a)
		lb, cb := pos(b)
		if la != lb {
			return la - lb
		}
		return ca - cb
	})
	if len(flat) > MaxErrors {
		flat = append(flat[:MaxErrors:MaxErrors], moreErrors(slices.Clone(flat[MaxErrors:])))
	}
	return errors.Join(flat...)
}
