package serverxml

import (
	"fmt"
	"slices"
	"strings"
)

// Registry maps Tomcat class names to factories, per element kind
// ("Membership", "Interceptor", "Valve", ...), so that each loader resolves
// className attributes the same way. F is the loader's factory type. The
// zero value is an empty registry; a Registry is not safe for concurrent
// Register calls.
type Registry[F any] struct {
	kinds map[string][]classEntry[F]
}

type classEntry[F any] struct {
	name string // fully qualified
	f    F
}

// Register adds (or replaces) the factory for the fully qualified class
// name under kind.
func (r *Registry[F]) Register(kind, className string, f F) {
	if r.kinds == nil {
		r.kinds = map[string][]classEntry[F]{}
	}
	es := r.kinds[kind]
	for i := range es {
		if es[i].name == className {
			es[i].f = f
			return
		}
	}
	r.kinds[kind] = append(es, classEntry[F]{className, f})
}

// Classes returns the class names registered under kind, sorted.
func (r *Registry[F]) Classes(kind string) []string {
	var out []string
	for _, e := range r.kinds[kind] {
		out = append(out, e.name)
	}
	slices.Sort(out)
	return out
}

func simpleName(class string) string {
	return class[strings.LastIndexByte(class, '.')+1:]
}

// Resolve finds the factory for className under kind. It accepts, in this
// order: the fully qualified name; the simple name ("TcpFailureDetector"),
// when only one class of the kind has it; and, with a lenient message in
// note, a name that differs only in case, or a fully qualified name in
// another package with a unique simple name (Tomcat 5.5's
// org.apache.catalina.cluster.* names, say). canonical is the registered
// name. ok is false when nothing matches.
func (r *Registry[F]) Resolve(kind, className string) (f F, canonical, note string, ok bool) {
	es := r.kinds[kind]
	for _, e := range es {
		if e.name == className {
			return e.f, e.name, "", true
		}
	}
	unique := func(match func(classEntry[F]) bool) (classEntry[F], bool) {
		var found classEntry[F]
		n := 0
		for _, e := range es {
			if match(e) {
				found = e
				n++
			}
		}
		return found, n == 1
	}
	simple := simpleName(className)
	if !strings.Contains(className, ".") {
		if e, ok := unique(func(e classEntry[F]) bool { return simpleName(e.name) == className }); ok {
			return e.f, e.name, "", true
		}
	}
	if e, ok := unique(func(e classEntry[F]) bool {
		return strings.EqualFold(e.name, className) ||
			(!strings.Contains(className, ".") && strings.EqualFold(simpleName(e.name), className))
	}); ok {
		return e.f, e.name, fmt.Sprintf("class %q read as %q: class names are case-sensitive", className, e.name), true
	}
	if strings.Contains(className, ".") {
		if e, ok := unique(func(e classEntry[F]) bool { return simpleName(e.name) == simple }); ok {
			return e.f, e.name, fmt.Sprintf("class %q read as %q (same class name, another package)", className, e.name), true
		}
	}
	return f, "", "", false
}

// Bind resolves b's className attribute under kind. When the attribute is
// absent, defaultClass is assumed with a warning (Tomcat requires it), or,
// when defaultClass is "", an error is returned. An unknown class is an
// [*Error] wrapping [ErrUnknownClass] that names the element, the class,
// the line and the classes known for kind.
func (r *Registry[F]) Bind(b *Binder, kind, defaultClass string) (F, string, error) {
	var zero F
	class, ok := "", false
	if a, found := b.Lookup("className"); found {
		class, ok = a.Value, true
	}
	if !ok {
		if defaultClass == "" {
			return zero, "", ErrorAt(b.el, "", ErrUnknownClass, "<%s> has no className; known classes: %s",
				b.el.Name, strings.Join(r.Classes(kind), ", "))
		}
		f, canonical, _, found := r.Resolve(kind, defaultClass)
		if !found {
			return zero, "", ErrorAt(b.el, "", ErrUnknownClass, "<%s> has no className and the default %q is not registered", b.el.Name, defaultClass)
		}
		b.Warn("", "no className; %s assumed (Tomcat requires the attribute)", canonical)
		return f, canonical, nil
	}
	f, canonical, note, found := r.Resolve(kind, class)
	if !found {
		return zero, "", ErrorAt(b.el, "className", ErrUnknownClass, "unknown %s class %q; known classes: %s",
			kind, class, strings.Join(r.Classes(kind), ", "))
	}
	if note != "" {
		b.Warn("className", "%s", note)
	}
	return f, canonical, nil
}
