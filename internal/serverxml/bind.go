package serverxml

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Binder reads an element's attributes and children into typed values and
// records which ones were used, so that the rest become warnings, as
// Tomcat's digester warns about properties it could not set. Get one with
// [Element.Bind], call its typed getters, then Done:
//
//	b := el.Bind()
//	b.String("address", &cfg.Address)
//	b.Int("port", &cfg.Port)
//	b.Duration("frequency", time.Millisecond, &cfg.Frequency)
//	b.Ignore("no selector in wasmfarm", "selectorTimeout")
//	warnings, err := b.Done()
//
// Attribute and element names are matched exactly, or else ignoring case
// with a warning (Tomcat would ignore them). A getter leaves dst unchanged
// when the attribute is absent or its value is bad; bad values are
// collected as [*Error]s wrapping [ErrBadValue] and returned by Done.
// The warnings of all the binders on the elements of one parsed file and
// the parser's are at most [MaxWarnings] in all; the others are only
// counted (see [CapWarnings]). A Binder is not safe for concurrent use.
type Binder struct {
	el            *Element
	used          []bool
	known         []string
	childUsed     []bool
	knownChildren []string
	warns         []Warning
	errs          []error
}

// Bind returns a [Binder] for e.
func (e *Element) Bind() *Binder {
	return &Binder{el: e, used: make([]bool, len(e.Attrs)), childUsed: make([]bool, len(e.Children))}
}

// Element returns the element b reads.
func (b *Binder) Element() *Element { return b.el }

// Known adds attribute names for did-you-mean suggestions without reading
// them.
func (b *Binder) Known(names ...string) {
	for _, n := range names {
		if !slices.Contains(b.known, n) {
			b.known = append(b.known, n)
		}
	}
}

// Lookup returns the attribute called name and marks it used.
func (b *Binder) Lookup(name string) (Attr, bool) {
	b.Known(name)
	for i, a := range b.el.Attrs {
		if a.Name == name {
			b.used[i] = true
			return a, true
		}
	}
	for i, a := range b.el.Attrs {
		if !b.used[i] && strings.EqualFold(a.Name, name) {
			b.used[i] = true
			b.warnAttr(a, LevelWarning, "read as %q: names are case-sensitive (Tomcat ignores %q)", name, a.Name)
			return a, true
		}
	}
	return Attr{}, false
}

// Has reports whether the element has the attribute, without marking it
// used.
func (b *Binder) Has(name string) bool {
	_, ok := b.el.attrFold(name)
	return ok
}

// String stores the value of attribute name in dst and reports whether
// the attribute is present.
func (b *Binder) String(name string, dst *string) bool {
	a, ok := b.Lookup(name)
	if ok {
		*dst = a.Value
	}
	return ok
}

// Int stores the decimal integer value of attribute name in dst and
// reports whether it did.
func (b *Binder) Int(name string, dst *int) bool {
	a, ok := b.Lookup(name)
	if !ok {
		return false
	}
	n, err := strconv.Atoi(a.Value)
	if err != nil {
		b.badValue(a, "is not an integer")
		return false
	}
	*dst = n
	return true
}

// Int64 is [Binder.Int] for int64.
func (b *Binder) Int64(name string, dst *int64) bool {
	a, ok := b.Lookup(name)
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(a.Value, 10, 64)
	if err != nil {
		b.badValue(a, "is not an integer")
		return false
	}
	*dst = n
	return true
}

// Bool stores the value of attribute name, "true" or "false" in any case,
// in dst and reports whether it did. (Tomcat reads any other word as
// false; here it is an error.)
func (b *Binder) Bool(name string, dst *bool) bool {
	a, ok := b.Lookup(name)
	if !ok {
		return false
	}
	switch {
	case strings.EqualFold(a.Value, "true"):
		*dst = true
	case strings.EqualFold(a.Value, "false"):
		*dst = false
	default:
		b.badValue(a, `is not "true" or "false"`)
		return false
	}
	return true
}

// Duration stores the value of attribute name, an integer count of unit
// as Tomcat writes times (unit is time.Millisecond for most), in dst and
// reports whether it did. A Go duration ("1.5s", "500ms") is accepted too.
func (b *Binder) Duration(name string, unit time.Duration, dst *time.Duration) bool {
	a, ok := b.Lookup(name)
	if !ok {
		return false
	}
	if n, err := strconv.ParseInt(a.Value, 10, 64); err == nil {
		if n > math.MaxInt64/int64(unit) || n < math.MinInt64/int64(unit) {
			b.badValue(a, "is out of range")
			return false
		}
		*dst = time.Duration(n) * unit
		return true
	}
	d, err := time.ParseDuration(a.Value)
	if err != nil {
		b.badValue(a, fmt.Sprintf("is not a whole number of %s or a duration such as \"500ms\"", unitName(unit)))
		return false
	}
	*dst = d
	return true
}

func unitName(u time.Duration) string {
	switch u {
	case time.Millisecond:
		return "milliseconds"
	case time.Second:
		return "seconds"
	case time.Microsecond:
		return "microseconds"
	case time.Nanosecond:
		return "nanoseconds"
	case time.Minute:
		return "minutes"
	}
	return "units of " + u.String()
}

// Func passes the value of attribute name to parse and reports whether the
// attribute is present and parse accepted it. An error from parse is
// recorded as a bad value, its text following the quoted value: phrase it
// as `is not a unique id`.
func (b *Binder) Func(name string, parse func(value string) error) bool {
	a, ok := b.Lookup(name)
	if !ok {
		return false
	}
	if err := parse(a.Value); err != nil {
		b.badValue(a, err.Error())
		return false
	}
	return true
}

// Ignore accepts the named attributes without using them: each one present
// gets a note saying why (reason), instead of an unknown-attribute
// warning. Use it for Tomcat attributes that have no equivalent.
func (b *Binder) Ignore(reason string, names ...string) {
	for _, n := range names {
		if a, ok := b.Lookup(n); ok {
			b.warnAttr(a, LevelNote, "accepted but not used (value %s): %s", QuoteValue(a.Name, a.Value), reason)
		}
	}
}

// Warn adds a warning about attribute attr (located at the element when it
// has no such attribute, or when attr is "").
func (b *Binder) Warn(attr, format string, args ...any) {
	b.warnAt(b.el, attr, LevelWarning, format, args...)
}

// Note adds a note, located like Warn's warnings.
func (b *Binder) Note(attr, format string, args ...any) {
	b.warnAt(b.el, attr, LevelNote, format, args...)
}

// warnAt adds a warning made by [WarningAt], unless the file has had
// [MaxWarnings].
func (b *Binder) warnAt(el *Element, attr string, level Level, format string, args ...any) {
	if el.budget.take() {
		b.warns = append(b.warns, WarningAt(el, attr, level, format, args...))
	}
}

// Fail records an error about attribute attr (or the element), wrapping
// err (ErrBadValue when nil); Done returns it.
func (b *Binder) Fail(attr string, err error, format string, args ...any) {
	if err == nil {
		err = ErrBadValue
	}
	b.errs = append(b.errs, ErrorAt(b.el, attr, err, format, args...))
}

// AddWarnings appends warnings found elsewhere (a child's binder, say), so
// that Done returns them too.
func (b *Binder) AddWarnings(ws ...Warning) { b.warns = append(b.warns, ws...) }

// AddError records err (from a child's binder, say) for Done.
func (b *Binder) AddError(err error) {
	if err != nil {
		b.errs = append(b.errs, err)
	}
}

func (b *Binder) warnAttr(a Attr, level Level, format string, args ...any) {
	if !b.el.budget.take() {
		return
	}
	b.warns = append(b.warns, Warning{File: b.el.File, Line: a.Line, Col: a.Col, Element: b.el.Path(),
		Attr: a.Name, Msg: fmt.Sprintf(format, args...), Level: level})
}

func (b *Binder) badValue(a Attr, why string) {
	b.errs = append(b.errs, &Error{File: b.el.File, Line: a.Line, Col: a.Col, Element: b.el.Path(),
		Attr: a.Name, Msg: fmt.Sprintf("value %s %s", QuoteValue(a.Name, a.Value), why), Err: ErrBadValue})
}

// Children returns the child elements called name (exactly, or ignoring
// case with a warning) and marks them used.
func (b *Binder) Children(name string) []*Element {
	if !slices.Contains(b.knownChildren, name) {
		b.knownChildren = append(b.knownChildren, name)
	}
	var out []*Element
	for i, c := range b.el.Children {
		if !c.Is(name) {
			continue
		}
		if !b.childUsed[i] && c.Name != name {
			b.warnAt(c, "", LevelWarning,
				"element <%s> read as <%s>: names are case-sensitive (Tomcat ignores it: no rules found matching %q)", c.Name, name, c.Path())
		}
		b.childUsed[i] = true
		out = append(out, c)
	}
	return out
}

// Child returns the child element called name, or nil. When there are
// several, the last one is returned (Tomcat's digester sets the property
// once per element, so the last one wins) with a warning.
func (b *Binder) Child(name string) *Element {
	cs := b.Children(name)
	if len(cs) == 0 {
		return nil
	}
	last := cs[len(cs)-1]
	for _, c := range cs[:len(cs)-1] {
		b.warnAt(c, "", LevelWarning, "<%s> given again on line %d, which replaces this one", name, last.Line)
	}
	return last
}

// KnownChildren adds element names for did-you-mean suggestions without
// reading them.
func (b *Binder) KnownChildren(names ...string) {
	for _, n := range names {
		if !slices.Contains(b.knownChildren, n) {
			b.knownChildren = append(b.knownChildren, n)
		}
	}
}

// SkipChildren marks the children called name (ignoring case) used without
// reading them, for elements another loader handles.
func (b *Binder) SkipChildren(names ...string) {
	for i, c := range b.el.Children {
		for _, n := range names {
			if c.Is(n) {
				b.childUsed[i] = true
			}
		}
	}
}

// Unused returns a warning for each attribute and child element that no
// getter read, with a did-you-mean suggestion when one of the names asked
// for is close (as long as the file has had fewer than [MaxWarnings]).
func (b *Binder) Unused() []Warning {
	var ws []Warning
	path := "" // b.el's, made once
	for i, a := range b.el.Attrs {
		if b.used[i] || !b.el.budget.take() {
			continue
		}
		msg := fmt.Sprintf("no such property (value %s ignored)", QuoteValue(a.Name, a.Value))
		if s := Suggest(a.Name, b.known); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		if path == "" {
			path = b.el.Path()
		}
		ws = append(ws, Warning{File: b.el.File, Line: a.Line, Col: a.Col, Element: path, Attr: a.Name, Msg: msg})
	}
	for i, c := range b.el.Children {
		if b.childUsed[i] || !c.budget.take() {
			continue
		}
		cpath := c.Path()
		msg := fmt.Sprintf("unknown element <%s> ignored (Tomcat: no rules found matching %q)", c.Name, cpath)
		if s := Suggest(c.Name, b.knownChildren); s != "" {
			msg += fmt.Sprintf("; did you mean <%s>?", s)
		}
		ws = append(ws, Warning{File: c.File, Line: c.Line, Col: c.Col, Element: cpath, Msg: msg})
	}
	return ws
}

// Warnings returns the warnings b collected so far (case mismatches,
// notes, leniency), without those Unused would add. Use it for an element
// whose other attributes and children another loader reads.
func (b *Binder) Warnings() []Warning { return slices.Clone(b.warns) }

// Done returns every warning b collected, the unused attributes and
// elements included, ordered by position, and the errors of bad values
// joined (nil when there were none).
func (b *Binder) Done() ([]Warning, error) {
	ws := append(slices.Clone(b.warns), b.Unused()...)
	SortWarnings(ws)
	return ws, errors.Join(b.errs...)
}

// SortWarnings orders ws by file position, keeping the order of warnings
// at the same place.
func SortWarnings(ws []Warning) {
	slices.SortStableFunc(ws, func(x, y Warning) int {
		if x.File != y.File {
			return strings.Compare(x.File, y.File)
		}
		if x.Line != y.Line {
			return x.Line - y.Line
		}
		return x.Col - y.Col
	})
}

// QuoteValue quotes an attribute value for a message, unless the
// attribute's name suggests a secret (it contains "key", "password",
// "secret" or "token", in any case): such values are replaced by
// "(hidden)", so that warnings can be logged.
func QuoteValue(attr, value string) string {
	n := strings.ToLower(attr)
	for _, s := range []string{"key", "password", "secret", "token"} {
		if strings.Contains(n, s) {
			return "(hidden)"
		}
	}
	return strconv.Quote(value)
}
