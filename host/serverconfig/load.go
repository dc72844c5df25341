package serverconfig

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/wasmfarm/wasmfarm/internal/serverxml"
	"github.com/wasmfarm/wasmfarm/tribes/tribesconfig"
)

// Errors of the loader, wrapped in [*serverxml.Error]s that say where;
// test for them with errors.Is. Unknown class names wrap
// [serverxml.ErrUnknownClass], bad attribute values
// [serverxml.ErrBadValue], unreadable XML [serverxml.ErrSyntax] or
// [serverxml.ErrLimit]; the channel's errors are tribesconfig's.
var (
	// ErrNoNode occurs when the file holds none of <Server>, <Service>,
	// <Engine>, <Host> or <Cluster>, or a <Server> without a <Service>.
	ErrNoNode = errors.New("serverconfig: no <Server>, <Service>, <Engine>, <Host> or <Cluster> element")
	// ErrAmbiguous occurs when the file describes more than one node:
	// several <Service>s, several top-level elements that could each be
	// the node, or a <Cluster> in both the <Engine> and the <Host>.
	ErrAmbiguous = errors.New("serverconfig: more than one node in the file")
	// ErrMissing occurs when a required attribute is absent: a
	// <Connector>'s port, a <Context>'s path or docBase.
	ErrMissing = errors.New("serverconfig: required attribute missing")
)

// Loader reads server.xml files into [Node]s. The zero value is ready to
// use; a Loader is safe for concurrent use when its fields are not
// changed.
type Loader struct {
	// Parser reads the files; its zero value has serverxml's default
	// limits (4 MiB, 10000 elements, ...).
	Parser serverxml.Parser
	// Tribes converts the <Channel> of the <Cluster>; nil means a zero
	// tribesconfig.Loader (default registry, process environment).
	Tribes *tribesconfig.Loader
}

// Load reads the file at path with a zero [Loader].
func Load(path string) (*Node, []serverxml.Warning, error) {
	var l Loader
	return l.Load(path)
}

// Parse reads data, named name, with a zero [Loader].
func Parse(name string, data []byte) (*Node, []serverxml.Warning, error) {
	var l Loader
	return l.Parse(name, data)
}

// Load reads the file at path (at most Parser.MaxBytes of it) as
// [Loader.Parse] does. Messages name the file by its base name; relative
// paths in it are resolved against its directory.
func (l *Loader) Load(path string) (*Node, []serverxml.Warning, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	limit := l.Parser.MaxBytes
	if limit <= 0 {
		limit = serverxml.DefaultMaxBytes
	}
	// One byte more than the limit lets the parser report the size.
	data, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, nil, err
	}
	return l.parse(filepath.Base(path), filepath.Dir(path), data)
}

// Parse reads data, a server.xml or a pasted part of one, into a [Node]:
// a <Server> (with one <Service>), a <Service>, an <Engine>, a <Host> or a
// bare <Cluster> (the node then has no connector and no contexts from the
// file: flags supply them). name names the file in messages; relative
// docBase, appBase and deployer directories are resolved against its
// directory (filepath.Dir(name)).
//
// The warnings are the parser's, then the node's, in file order within
// each; they never stop the load. There are at most
// [serverxml.MaxWarnings] of them, and then a last one counting the
// others. The error joins every error found (bad
// values, unknown classes, missing attributes), each an [*serverxml.Error]
// naming the file, line and attribute; the Node is nil then.
func (l *Loader) Parse(name string, data []byte) (*Node, []serverxml.Warning, error) {
	return l.parse(name, filepath.Dir(name), data)
}

func (l *Loader) parse(name, dir string, data []byte) (*Node, []serverxml.Warning, error) {
	root, pws, err := l.Parser.Parse(name, data)
	if err != nil {
		return nil, pws, err
	}
	tl := l.Tribes
	if tl == nil {
		tl = &tribesconfig.Loader{}
	}
	ld := &loader{tribes: tl, node: &Node{File: name, Dir: dir}}
	el, err := pickRoot(root)
	if err != nil {
		return nil, pws, err
	}
	switch {
	case el.Is("Server"):
		ld.server(el)
	case el.Is("Service"):
		ld.service(el)
	case el.Is("Engine"):
		ld.engine(el)
	case el.Is("Host"):
		ld.host(el, nil)
	default: // Cluster
		ld.node.Cluster = ld.cluster(el)
	}
	ld.finish()
	serverxml.SortWarnings(ld.ws)
	ws := serverxml.CapWarnings(root, append(pws, ld.ws...))
	if err := serverxml.SortErrors(ld.errs); err != nil {
		return nil, ws, err
	}
	return ld.node, ws, nil
}

// rootKinds are the elements a file may start at, outermost first.
var rootKinds = []string{"Server", "Service", "Engine", "Host", "Cluster"}

// pickRoot finds the element the node is read from: the root itself, or
// the only candidate among the top-level elements of a file with several.
func pickRoot(root *serverxml.Element) (*serverxml.Element, error) {
	isKind := func(e *serverxml.Element) bool {
		return slices.ContainsFunc(rootKinds, e.Is)
	}
	if isKind(root) {
		return root, nil
	}
	var found []*serverxml.Element
	if root.Name == "" {
		for _, c := range root.Children {
			if isKind(c) {
				found = append(found, c)
			}
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		if root.Name == "" {
			return nil, &serverxml.Error{File: root.File, Err: ErrNoNode, Msg: "no <Server>, <Service>, <Engine>, <Host> or <Cluster> element at the top level"}
		}
		return nil, serverxml.ErrorAt(root, "", ErrNoNode, "<%s> is not a <Server>, <Service>, <Engine>, <Host> or <Cluster> element", root.Name)
	}
	var names []string
	for _, e := range found {
		names = append(names, fmt.Sprintf("<%s> on line %d", e.Name, e.Line))
	}
	return nil, serverxml.ErrorAt(found[1], "", ErrAmbiguous, "several top-level elements could be the node (%s); keep one", strings.Join(names, ", "))
}

// loader holds the state of one Parse.
type loader struct {
	tribes *tribesconfig.Loader
	node   *Node
	ws     []serverxml.Warning
	errs   []error

	engineEl    *serverxml.Element   // nil for a bare <Host> or <Cluster>
	clusterEl   *serverxml.Element   // the <Cluster> read, if any
	contextEls  []*serverxml.Element // parallel to node.Contexts
	distribSet  []bool               // whether each context has a distributable attribute
	binderValve *serverxml.Element   // the <Valve> of the JvmRouteBinderValve, if written
}

// done collects b's warnings and errors.
func (ld *loader) done(b *serverxml.Binder) {
	ws, err := b.Done()
	ld.ws = append(ld.ws, ws...)
	ld.addErr(err)
}

func (ld *loader) addErr(err error) {
	if err != nil {
		ld.errs = append(ld.errs, err)
	}
}

// ignoreChildren accepts the child elements called names without reading
// them, with a note (level) at each saying why.
func ignoreChildren(b *serverxml.Binder, level serverxml.Level, reason string, names ...string) {
	for _, n := range names {
		for _, c := range b.Children(n) {
			w := serverxml.WarningAt(c, "", level, "<%s> ignored: %s", c.Name, reason)
			b.AddWarnings(w)
		}
	}
}

// finish applies what depends on the whole file: the contexts'
// distributable default and the checks across elements.
func (ld *loader) finish() {
	n := ld.node
	for i := range n.Contexts {
		c := &n.Contexts[i]
		switch {
		case !ld.distribSet[i]:
			c.Distributable = n.Cluster != nil
		case c.Distributable && n.Cluster == nil:
			ld.ws = append(ld.ws, serverxml.WarningAt(ld.contextEls[i], "distributable", serverxml.LevelWarning,
				`"true" but the node has no <Cluster>: the app's sessions stay on this node (unless it is started with node -cluster)`))
			c.Distributable = false
		}
	}
	if ld.engineEl != nil && n.JvmRoute == "" && n.Cluster != nil && n.Cluster.JvmRouteBinder != nil && !n.Cluster.JvmRouteBinder.Disabled {
		at, what := ld.binderValve, "JvmRouteBinderValve"
		if at == nil {
			at, what = ld.clusterEl, "JvmRouteBinderValve (added by default)"
		}
		w := serverxml.WarningAt(at, "", serverxml.LevelWarning,
			"%s but <%s> has no jvmRoute: session ids carry no route, so a balancer cannot stick sessions to this node and failover has no route to rewrite", what, ld.engineEl.Name)
		ld.ws = append(ld.ws, w)
	}
}
