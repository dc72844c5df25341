package tribesconfig

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/wasmfarm/wasmfarm/internal/serverxml"
	"github.com/wasmfarm/wasmfarm/tribes"
)

// Errors of the loader, wrapped in [*serverxml.Error]s that say where;
// test for them with errors.Is. Unknown class names wrap
// [serverxml.ErrUnknownClass], bad attribute values
// [serverxml.ErrBadValue], unreadable XML [serverxml.ErrSyntax] or
// [serverxml.ErrLimit].
var (
	// ErrNotSupported occurs when a known Tomcat class or setting has no
	// wasmfarm equivalent that could stand in for it (the Kubernetes API
	// membership provider, TwoPhaseCommitInterceptor, Java listener
	// classes).
	ErrNotSupported = errors.New("tribesconfig: not supported")
	// ErrNoChannel occurs when Parse or Load finds neither a <Cluster> nor
	// a <Channel> element.
	ErrNoChannel = errors.New("tribesconfig: no <Cluster> or <Channel> element")
	// ErrAmbiguous occurs when Parse or Load finds several <Cluster> (or,
	// without a cluster, several <Channel>) elements; pass the one meant
	// to FromCluster or FromElement.
	ErrAmbiguous = errors.New("tribesconfig: several <Cluster> or <Channel> elements")
	// ErrMisplaced occurs when an EncryptInterceptor is written where
	// the channel does not read it (directly in the <Cluster> next to its
	// <Channel>, inside a <Receiver>, in a <Channel> a second one
	// replaces, ...): the channel would run unencrypted although the file
	// asks for encryption, so the loader refuses it.
	ErrMisplaced = errors.New("tribesconfig: EncryptInterceptor outside the channel")
)

// Loader turns <Channel> elements into [tribes.Config]s. The zero value
// uses [DefaultRegistry] and the process environment; a Loader is safe for
// concurrent use when its fields are not changed.
type Loader struct {
	// Registry maps class names to factories; nil means DefaultRegistry().
	Registry *Registry
	// Getenv reads environment variables (CloudMembershipService's
	// DNS_MEMBERSHIP_SERVICE_NAME); nil means os.Getenv.
	Getenv func(key string) string
	// Parser reads files for Parse and Load; its zero value has the
	// default limits (4 MiB and so on).
	Parser serverxml.Parser

	observe func(class string, cfg any) // see Build.observe
}

// FromElement converts a <Channel> element with a zero [Loader].
func FromElement(channel *serverxml.Element) (tribes.Config, []serverxml.Warning, error) {
	var l Loader
	return l.FromElement(channel)
}

// Parse reads data (named name in messages) with a zero [Loader].
func Parse(name string, data []byte) (tribes.Config, []serverxml.Warning, error) {
	var l Loader
	return l.Parse(name, data)
}

// Load reads the file at path with a zero [Loader].
func Load(path string) (tribes.Config, []serverxml.Warning, error) {
	var l Loader
	return l.Load(path)
}

// Load reads the file at path (at most Parser.MaxBytes of it) and converts
// its channel, as [Loader.Parse].
func (l *Loader) Load(path string) (tribes.Config, []serverxml.Warning, error) {
	f, err := os.Open(path)
	if err != nil {
		return tribes.Config{}, nil, err
	}
	defer f.Close()
	limit := l.Parser.MaxBytes
	if limit <= 0 {
		limit = serverxml.DefaultMaxBytes
	}
	// One byte more than the limit lets the parser report the size.
	data, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return tribes.Config{}, nil, err
	}
	return l.Parse(filepath.Base(path), data)
}

// Parse reads data, a server.xml, a pasted <Cluster> element or a bare
// <Channel>, and converts the channel: the only <Cluster> in data (see
// [Loader.FromCluster]), or else the only <Channel>. The warnings are the
// parser's, then the channel's, in file order within each; there are at
// most [serverxml.MaxWarnings] of them, and then a last one counting the
// others.
func (l *Loader) Parse(name string, data []byte) (tribes.Config, []serverxml.Warning, error) {
	root, ws, err := l.Parser.Parse(name, data)
	if err != nil {
		return tribes.Config{}, ws, err
	}
	var found []*serverxml.Element
	switch {
	case root.Is("Cluster") || root.Is("Channel"):
		found = []*serverxml.Element{root}
	default:
		if found = root.FindAll("Cluster"); len(found) == 0 {
			found = root.FindAll("Channel")
		}
	}
	switch len(found) {
	case 0:
		return tribes.Config{}, ws, &serverxml.Error{File: name, Err: ErrNoChannel, Msg: "no <Cluster> or <Channel> element"}
	case 1:
	default:
		var lines []string
		for _, e := range found {
			lines = append(lines, fmt.Sprint(e.Line))
		}
		return tribes.Config{}, ws, serverxml.ErrorAt(found[1], "", ErrAmbiguous,
			"several <%s> elements (lines %s); pass the one meant to FromCluster or FromElement", found[0].Name, strings.Join(lines, ", "))
	}
	var cfg tribes.Config
	var cws []serverxml.Warning
	if found[0].Is("Cluster") {
		cfg, cws, err = l.FromCluster(found[0])
	} else {
		cfg, cws, err = l.FromElement(found[0])
	}
	return cfg, serverxml.CapWarnings(root, append(ws, cws...)), err
}

// FromCluster converts the <Channel> of a <Cluster> element, ignoring the
// cluster's other attributes and children (the host's loader reads them).
// A cluster without a <Channel> gets SimpleTcpCluster's default channel,
// [tribes.DefaultConfig] with the default interceptors. When the channel's
// own start tag is missing but <Membership>, <Receiver>, <Sender> or
// <Interceptor> elements sit directly in the cluster (as in documentation
// where the <Channel> line was lost), they are read as the children of an
// implied GroupChannel, with a warning. When the cluster has a <Channel>,
// such elements next to it are read by nothing: each gets a warning (Tomcat
// ignores them too), except an EncryptInterceptor, which is an error
// wrapping [ErrMisplaced] there as anywhere else the channel does not read
// it.
func (l *Loader) FromCluster(cluster *serverxml.Element) (tribes.Config, []serverxml.Warning, error) {
	b := cluster.Bind()
	if ch := b.Child("Channel"); ch != nil {
		cfg, ws, err := l.FromElement(ch)
		errs := []error{err}
		all := b.Warnings()
		for _, c := range cluster.Children {
			if c == ch {
				continue
			}
			if isChannelKind(c) && !isEncrypt(c) {
				all = append(all, serverxml.WarningAt(c, "", serverxml.LevelWarning,
					"<%s> directly inside <%s>, outside its <Channel> (line %d): ignored (Tomcat: no rules found matching %q); move it into the <Channel>",
					c.Name, cluster.Name, ch.Line, c.Path()))
			}
			if w, ok := strayPart(c, cluster); ok {
				all = append(all, w)
			}
			errs = append(errs, unreadEncrypt(c, ch)...)
		}
		all = append(all, ws...)
		serverxml.SortWarnings(all)
		return cfg, all, serverxml.SortErrors(errs)
	}
	var loose []*serverxml.Element
	var errs []error
	var stray []serverxml.Warning
	for _, c := range cluster.Children {
		if isChannelKind(c) {
			loose = append(loose, c)
		} else {
			errs = append(errs, unreadEncrypt(c, nil)...)
		}
		if w, ok := strayPart(c, cluster); ok {
			stray = append(stray, w)
		}
	}
	if len(loose) == 0 {
		return tribes.DefaultConfig(), append(b.Warnings(), stray...), serverxml.SortErrors(errs)
	}
	ch := serverxml.NewElement("Channel", cluster, loose[0])
	ch.Attrs = []serverxml.Attr{{Name: "className", Value: GroupChannel, Line: loose[0].Line, Col: loose[0].Col}}
	ch.Children = loose
	w := serverxml.WarningAt(loose[0], "", serverxml.LevelWarning,
		"<%s> directly inside <%s>, without a <Channel> start tag: read, with the %d other channel elements that follow, as inside <Channel className=%q>",
		loose[0].Name, cluster.Name, len(loose)-1, GroupChannel)
	w.Element = cluster.Path()
	cfg, ws, err := l.FromElement(ch)
	all := append(append(append(b.Warnings(), w), stray...), ws...)
	serverxml.SortWarnings(all)
	return cfg, all, serverxml.SortErrors(append(errs, err))
}

// strayPart returns a warning for el, a child of cluster, when it is a
// part of a channel element written one or two levels too high: a
// <Transport> belongs in the <Sender>, a <Member> or <LocalMember> in a
// StaticMembershipInterceptor. Such an element is read by nothing.
func strayPart(el, cluster *serverxml.Element) (serverxml.Warning, bool) {
	var home string
	switch {
	case el.Is(KindTransport):
		home = "the <Sender> of the <Channel>"
	case el.Is(KindMember), el.Is("LocalMember"):
		home = "the StaticMembershipInterceptor's <Interceptor> in the <Channel>"
	default:
		return serverxml.Warning{}, false
	}
	return serverxml.WarningAt(el, "", serverxml.LevelWarning,
		"<%s> directly inside <%s>: ignored (Tomcat: no rules found matching %q); it belongs inside %s",
		el.Name, cluster.Name, el.Path(), home), true
}

// isChannelKind reports whether el is one of the elements a <Channel>
// holds that are read as an implied channel's when a <Cluster> has none.
func isChannelKind(el *serverxml.Element) bool {
	return el.Is(KindMembership) || el.Is(KindReceiver) || el.Is(KindSender) || el.Is(KindInterceptor)
}

// isEncrypt reports whether el is an <Interceptor> whose className names
// the EncryptInterceptor, in any package or case, or any class with
// "encrypt" in its simple name (a misspelling, or a class of the
// caller's): what the user meant cannot be told, but it was encryption.
func isEncrypt(el *serverxml.Element) bool {
	if !el.Is(KindInterceptor) {
		return false
	}
	for _, a := range el.Attrs {
		if strings.EqualFold(a.Name, "className") {
			simple := a.Value[strings.LastIndexByte(a.Value, '.')+1:]
			if strings.Contains(strings.ToLower(simple), "encrypt") {
				return true
			}
		}
	}
	return false
}

// misplacedEncrypt returns an error wrapping [ErrMisplaced] when ic, an
// element the channel does not read as one of its interceptors, is an
// EncryptInterceptor; nil otherwise. channel is the <Channel> read (nil
// when there is none).
func misplacedEncrypt(ic, channel *serverxml.Element) error {
	if !isEncrypt(ic) {
		return nil
	}
	var where string
	switch p := ic.Parent(); {
	case p == nil:
		where = "outside the <Channel>"
	case channel != nil && p == channel.Parent() && p.Is("Cluster"):
		where = fmt.Sprintf("directly inside <%s>, outside its <Channel> (line %d),", p.Name, channel.Line)
	case channel != nil && p.Is("Channel") && p.Parent() == channel.Parent():
		where = fmt.Sprintf("inside the <Channel> on line %d, which the <Channel> on line %d replaces,", p.Line, channel.Line)
	default:
		where = fmt.Sprintf("inside <%s> (line %d), not directly inside the <Channel>,", p.Name, p.Line)
	}
	return serverxml.ErrorAt(ic, "className", ErrMisplaced,
		"EncryptInterceptor %s is read by nothing: cluster traffic would not be encrypted; move it into the <Channel>", where)
}

// unreadEncrypt returns the errors of [misplacedEncrypt] for el and its
// descendants, none of which the channel reads.
func unreadEncrypt(el, channel *serverxml.Element) []error {
	var errs []error
	for _, ic := range append([]*serverxml.Element{el}, el.FindAll(KindInterceptor)...) {
		if err := misplacedEncrypt(ic, channel); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// FromElement converts a <Channel> element (and its <Membership>,
// <Receiver>, <Sender>/<Transport>, <Interceptor> and <Member> children)
// to a [tribes.Config], starting from [tribes.DefaultConfig]. It returns
// warnings for what it ignored or read only leniently, and errors, all of
// them joined, for unknown classes and bad values; the Config is not meant
// to be used when the error is not nil.
//
// Each call builds new membership and interceptor instances, which belong
// to the one channel made from the Config.
func (l *Loader) FromElement(channel *serverxml.Element) (tribes.Config, []serverxml.Warning, error) {
	cfg := tribes.DefaultConfig()
	if channel == nil {
		return cfg, nil, errors.New("tribesconfig: nil <Channel> element")
	}
	bd := &Build{Config: &cfg, Registry: l.Registry, Getenv: l.Getenv, observe: l.observe}
	if bd.Registry == nil {
		bd.Registry = DefaultRegistry()
	}
	if bd.Getenv == nil {
		bd.Getenv = os.Getenv
	}
	if p := channel.Parent(); p != nil && p.Is("Cluster") {
		bd.InCluster = true
	}
	var ws []serverxml.Warning
	var errs []error

	b := channel.Bind()
	// apply resolves el's class under kind and runs its factory.
	apply := func(el *serverxml.Element, kind, def string) {
		eb := el.Bind()
		f, class, err := bd.Registry.Bind(eb, kind, def)
		if err == nil {
			bd.Class = class
			err = f(eb, bd)
		}
		w, derr := eb.Done()
		ws = append(ws, w...)
		errs = append(errs, err, derr)
	}

	// The channel's own attributes first: the heartbeat interval is used
	// by the DNS membership.
	f, class, err := bd.Registry.Bind(b, KindChannel, GroupChannel)
	if err == nil {
		bd.Class = class
		err = f(b, bd)
	}
	errs = append(errs, err)

	if m := b.Child(KindMembership); m != nil {
		apply(m, KindMembership, McastService)
	}
	if r := b.Child(KindReceiver); r != nil {
		apply(r, KindReceiver, NioReceiver)
	}
	if s := b.Child(KindSender); s != nil {
		apply(s, KindSender, ReplicationTransmitter)
	}
	ics := b.Children(KindInterceptor)
	// The interceptors the channel reads are its children; one further
	// down is read by nothing, and must not be an EncryptInterceptor.
	for _, c := range channel.Children {
		for _, ic := range c.FindAll(KindInterceptor) {
			if err := misplacedEncrypt(ic, channel); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(ics) > 0 {
		cfg.Interceptors = []tribes.Interceptor{}
	}
	for _, ic := range ics {
		apply(ic, KindInterceptor, "")
	}
	if len(ics) == 0 && !bd.InCluster {
		// A bare GroupChannel adds only the dispatcher; SimpleTcpCluster
		// adds the failure detector too (nil Interceptors).
		cfg.Interceptors = []tribes.Interceptor{tribes.NewMessageDispatcher(tribes.DispatcherConfig{})}
	}
	for _, k := range []string{"ChannelListener", "MembershipListener"} {
		for _, c := range b.Children(k) {
			cls, _ := c.Attr("className")
			errs = append(errs, serverxml.ErrorAt(c, "className", ErrNotSupported,
				"<%s className=%q>: Java listener classes cannot run in wasmfarm; register a tribes listener on the channel instead", c.Name, cls))
		}
	}
	cw, err := b.Done()
	errs = append(errs, err)
	all := append(cw, ws...)
	serverxml.SortWarnings(all)
	return cfg, all, serverxml.SortErrors(errs)
}
