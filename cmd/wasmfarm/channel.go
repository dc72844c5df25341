package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"

	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/wasmfarm/wasmfarm/internal/serverxml"
	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/tribesconfig"
)

// runChannel runs "wasmfarm channel members|listen|send": tools for users
// debugging a cluster's group communication.
func runChannel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := func(w io.Writer) {
		fmt.Fprintln(w, `usage: wasmfarm channel <tool> [flags]

tools:
  members   join the group, wait, print the members seen
  listen    join the group and print (or count) the messages received; -echo sends them back
  send      join the group and send messages to members

Run "wasmfarm channel <tool> -h" for the flags.`)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		usage(stdout)
		return nil
	}
	switch args[0] {
	case "members":
		return channelMembers(ctx, args[1:], stdout, stderr)
	case "listen":
		return channelListen(ctx, args[1:], stdout, stderr)
	case "send":
		return channelSend(ctx, args[1:], stdout, stderr)
	}
	usage(stderr)
	return fmt.Errorf("unknown tool %q", args[0])
}

// channelFlags are the settings every channel tool shares.
type channelFlags struct {
	fs         *flag.FlagSet
	configFile string
	address    string
	port       int
	mcastAddr  string
	mcastPort  int
	mcastBind  string
	ttl        int
	frequency  time.Duration
	dropTime   time.Duration
	domain     string
	uniqueID   string
	members    string
	noMcast    bool
	verbose    bool
	jsonOutput bool
}

func (f *channelFlags) register(fs *flag.FlagSet) {
	f.fs = fs
	fs.StringVar(&f.configFile, "config", "", "a Tomcat server.xml (or a file holding a <Cluster> or <Channel>): its <Channel> configures the member; flags given explicitly override it")
	fs.StringVar(&f.address, "address", "auto", "receiver address to bind and advertise (auto: first non-loopback IPv4)")
	fs.IntVar(&f.port, "port", tribes.DefaultPort, "first receiver port to try (autoBind 100); -1 for any free port")
	fs.StringVar(&f.mcastAddr, "mcast-address", "228.0.0.4", "multicast group")
	fs.IntVar(&f.mcastPort, "mcast-port", 45564, "multicast port")
	fs.StringVar(&f.mcastBind, "mcast-bind", "", `interface address or name for multicast ("127.0.0.1" keeps it on this host)`)
	fs.IntVar(&f.ttl, "ttl", -1, "multicast TTL (-1: OS default; 0: this host only)")
	fs.DurationVar(&f.frequency, "frequency", 500*time.Millisecond, "heartbeat interval")
	fs.DurationVar(&f.dropTime, "drop-time", 3*time.Second, "a member silent for longer is suspected")
	fs.StringVar(&f.domain, "domain", "", "cluster domain announced by this member")
	fs.StringVar(&f.uniqueID, "unique-id", "", "this member's unique id ({1,2,...} or 32 hex digits); random when empty")
	fs.StringVar(&f.members, "member", "", "static members, comma separated host:port=uniqueId (with -no-mcast: no multicast at all)")
	fs.BoolVar(&f.noMcast, "no-mcast", false, "do not use multicast membership (static members only)")
	fs.BoolVar(&f.verbose, "v", false, "log the channel's work to stderr")
	fs.BoolVar(&f.jsonOutput, "json", false, "print JSON lines")
}

// config builds the channel configuration the flags describe.
func (f *channelFlags) config(stderr io.Writer) (tribes.Config, error) {
	cfg := tribes.DefaultConfig()
	set := map[string]bool{}
	if f.configFile != "" {
		var warnings []serverxml.Warning
		var err error
		cfg, warnings, err = tribesconfig.Load(f.configFile)
		for _, w := range warnings {
			fmt.Fprintln(stderr, w.String())
		}
		if err != nil {
			return cfg, err
		}
		f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	} else {
		f.fs.VisitAll(func(fl *flag.Flag) { set[fl.Name] = true })
	}
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	override := func(name string, apply func()) {
		if set[name] {
			apply()
		}
	}
	override("address", func() { cfg.Receiver.Address = f.address })
	override("port", func() { cfg.Receiver.Port = f.port })
	override("mcast-address", func() { cfg.Mcast.Address = f.mcastAddr })
	override("mcast-port", func() { cfg.Mcast.Port = f.mcastPort })
	override("mcast-bind", func() { cfg.Mcast.Bind = f.mcastBind })
	override("ttl", func() { cfg.Mcast.TTL = f.ttl })
	override("frequency", func() { cfg.Mcast.Frequency = f.frequency })
	override("drop-time", func() { cfg.Mcast.DropTime = f.dropTime })
	override("domain", func() { cfg.Domain = []byte(f.domain) })
	if f.uniqueID != "" {
		id, err := tribes.ParseUniqueID(f.uniqueID)
		if err != nil {
			return cfg, fmt.Errorf("-unique-id: %w", err)
		}
		cfg.UniqueID = id
	}
	if f.configFile != "" && cfg.Membership != nil && !set["member"] && !set["no-mcast"] && !anyMcastFlag(set) {
		return cfg, nil // the file's membership as configured
	}
	var providers []tribes.Membership
	if !f.noMcast {
		m, err := tribes.NewMcast(cfg.Mcast)
		if err != nil {
			return cfg, err
		}
		providers = append(providers, m)
	}
	if f.members != "" {
		sc := tribes.DefaultStaticConfig()
		sc.Logger = cfg.Logger
		for _, spec := range strings.Split(f.members, ",") {
			m, err := parseStaticMember(strings.TrimSpace(spec))
			if err != nil {
				return cfg, fmt.Errorf("-member: %w", err)
			}
			sc.Members = append(sc.Members, m)
		}
		s, err := tribes.NewStatic(sc)
		if err != nil {
			return cfg, err
		}
		providers = append(providers, s)
	}
	switch len(providers) {
	case 0:
		return cfg, errors.New("no membership: give -member with -no-mcast")
	case 1:
		cfg.Membership = providers[0]
	default:
		cfg.Membership = tribes.Merge(providers...)
	}
	return cfg, nil
}

// anyMcastFlag reports whether a multicast flag was given explicitly.
func anyMcastFlag(set map[string]bool) bool {
	for _, n := range []string{"mcast-address", "mcast-port", "mcast-bind", "ttl", "frequency", "drop-time"} {
		if set[n] {
			return true
		}
	}
	return false
}

// parseStaticMember parses host:port=uniqueId.
func parseStaticMember(s string) (*tribes.Member, error) {
	addr, id, ok := strings.Cut(s, "=")
	if !ok {
		return nil, fmt.Errorf("%q: want host:port=uniqueId", s)
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	uid, err := tribes.ParseUniqueID(id)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	return &tribes.Member{Host: ap.Addr(), Port: int(ap.Port()), SecurePort: -1, UDPPort: -1, UniqueID: uid}, nil
}

// startChannel builds the channel the flags describe, lets setup (if not
// nil) add its listeners, starts it and reports its member on stderr. A
// listener added after Start would miss the members and messages that
// arrive before it is added.
func startChannel(ctx context.Context, f *channelFlags, stderr io.Writer, setup func(*tribes.Channel)) (*tribes.Channel, error) {
	cfg, err := f.config(stderr)
	if err != nil {
		return nil, err
	}
	ch, err := tribes.New(cfg)
	if err != nil {
		return nil, err
	}
	if setup != nil {
		setup(ch)
	}
	if err := ch.Start(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "joined as %s\n", ch.LocalMember())
	return ch, nil
}

func stopChannel(ch *tribes.Channel) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch.Stop(ctx)
}

// memberJSON is a member as the tools print it.
type memberJSON struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	UniqueID string `json:"unique_id"`
	Domain   string `json:"domain,omitempty"`
	Alive    int64  `json:"alive_ms"`
}

func toJSON(m *tribes.Member) memberJSON {
	return memberJSON{Host: m.Host.String(), Port: m.Port, UniqueID: hex.EncodeToString(m.UniqueID[:]), Domain: string(m.Domain), Alive: m.Alive}
}

func channelMembers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("channel members", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f channelFlags
	f.register(fs)
	wait := fs.Duration("wait", 3*time.Second, "how long to wait for members")
	expect := fs.Int("expect", 0, "stop waiting as soon as this many members are seen")
	watch := fs.Bool("watch", false, "keep running and print every membership change")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var mu sync.Mutex
	enc := json.NewEncoder(stdout)
	event := func(kind string, m *tribes.Member) {
		if !*watch {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if f.jsonOutput {
			enc.Encode(struct {
				Event  string     `json:"event"`
				At     string     `json:"at"`
				Member memberJSON `json:"member"`
			}{kind, time.Now().Format(time.RFC3339Nano), toJSON(m)})
			return
		}
		fmt.Fprintf(stdout, "%s %s %s\n", time.Now().Format("15:04:05.000"), kind, m)
	}
	ch, err := startChannel(ctx, &f, stderr, func(ch *tribes.Channel) {
		ch.AddMembershipListener(tribes.MembershipFuncs{
			Added:       func(m *tribes.Member) { event("added", m) },
			Disappeared: func(m *tribes.Member) { event("disappeared", m) },
		})
	})
	if err != nil {
		return err
	}
	defer stopChannel(ch)
	if *watch {
		<-ctx.Done()
		return nil
	}
	deadline := time.After(*wait)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
wait:
	for *expect == 0 || len(ch.Members()) < *expect {
		select {
		case <-ctx.Done():
			break wait
		case <-deadline:
			break wait
		case <-tick.C:
		}
	}
	members := ch.Members()
	if f.jsonOutput {
		out := make([]memberJSON, len(members))
		for i, m := range members {
			out[i] = toJSON(m)
		}
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tPORT\tUNIQUE ID\tDOMAIN\tALIVE")
	for _, m := range members {
		fmt.Fprintf(tw, "%s\t%d\t%x\t%s\t%s\n", m.Host, m.Port, m.UniqueID[:], m.Domain, time.Duration(m.Alive)*time.Millisecond)
	}
	tw.Flush()
	if *expect > 0 && len(members) < *expect {
		return fmt.Errorf("saw %d of %d members within %v", len(members), *expect, *wait)
	}
	return nil
}

func channelListen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("channel listen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f channelFlags
	f.register(fs)
	count := fs.Int("count", 0, "exit after this many messages (0: run until interrupted)")
	quiet := fs.Bool("quiet", false, "only count; print the total at the end")
	echo := fs.Bool("echo", false, "send every message back to its source with the same options")
	fail := fs.Bool("fail", false, "answer every message with an error (FAIL_ACK for synchronous senders)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var n atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	enc := json.NewEncoder(stdout)
	ch, err := startChannel(ctx, &f, stderr, func(ch *tribes.Channel) {
		ch.AddMessageListener(tribes.ListenerFunc(func(m *tribes.Message) error {
			k := n.Add(1)
			if !*quiet {
				mu.Lock()
				if f.jsonOutput {
					enc.Encode(struct {
						From    memberJSON `json:"from"`
						Options string     `json:"options"`
						Size    int        `json:"size"`
						Data    string     `json:"data"`
					}{toJSON(m.Source), m.Options.String(), len(m.Data), printable(m.Data)})
				} else {
					fmt.Fprintf(stdout, "from %s options %s %d bytes: %s\n", m.Source, m.Options, len(m.Data), printable(m.Data))
				}
				mu.Unlock()
			}
			if *echo {
				data := bytes.Clone(m.Data)
				to := []*tribes.Member{m.Source.Clone()}
				opts := m.Options &^ tribes.OptByteMessage
				go ch.Send(context.Background(), to, data, opts)
			}
			if *count > 0 && k >= int64(*count) {
				once.Do(func() { close(done) })
			}
			if *fail {
				return errors.New("wasmfarm channel listen -fail")
			}
			return nil
		}))
	})
	if err != nil {
		return err
	}
	defer stopChannel(ch)
	select {
	case <-ctx.Done():
	case <-done:
	}
	if *quiet {
		fmt.Fprintf(stdout, "%d messages\n", n.Load())
	}
	return nil
}

// printable renders message bytes: text as is (up to 200 bytes), else hex.
func printable(b []byte) string {
	s := b
	if len(s) > 200 {
		s = s[:200]
	}
	for _, c := range s {
		if c < 0x20 && c != '\n' && c != '\t' || c > 0x7e {
			return "0x" + hex.EncodeToString(s)
		}
	}
	if len(b) > 200 {
		return string(s) + "..."
	}
	return string(s)
}

func channelSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("channel send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f channelFlags
	f.register(fs)
	to := fs.String("to", "", "destination receivers host:port, comma separated (default: every member)")
	opts := fs.String("options", "use_ack", `send options: a number ("6") or names ("use_ack,sync", "async")`)
	data := fs.String("data", "hello from wasmfarm", "message text")
	size := fs.Int("size", 0, "send this many bytes instead of -data")
	count := fs.Int("n", 1, "number of messages")
	wait := fs.Duration("wait", 5*time.Second, "how long to wait for the destinations to join")
	if err := fs.Parse(args); err != nil {
		return err
	}
	options, err := tribes.ParseOptions(*opts)
	if err != nil {
		return fmt.Errorf("-options: %w", err)
	}
	var want []netip.AddrPort
	for _, s := range strings.Split(*to, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return fmt.Errorf("-to: %w", err)
		}
		want = append(want, ap)
	}
	payload := []byte(*data)
	if *size > 0 {
		payload = bytes.Repeat([]byte("x"), *size)
	}
	ch, err := startChannel(ctx, &f, stderr, nil)
	if err != nil {
		return err
	}
	defer stopChannel(ch)

	// Wait for the destinations (or for at least one member).
	deadline := time.Now().Add(*wait)
	var dests []*tribes.Member
	for {
		dests = pick(ch.Members(), want)
		if (len(want) == 0 && len(dests) > 0) || (len(want) > 0 && len(dests) == len(want)) {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("destinations not seen within %v (members: %v)", *wait, ch.Members())
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	failed := 0
	for i := range *count {
		if err := ch.Send(ctx, dests, payload, options); err != nil {
			failed++
			fmt.Fprintf(stdout, "message %d: %v\n", i+1, err)
		}
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "sent %d of %d messages (%d bytes each, options %s) to %d member(s) in %v\n",
		*count-failed, *count, len(payload), options|tribes.OptByteMessage, len(dests), el.Round(time.Microsecond))
	if failed > 0 {
		return fmt.Errorf("%d sends failed", failed)
	}
	return nil
}

// pick returns the members whose receiver address is in want (all members
// when want is empty).
func pick(members []*tribes.Member, want []netip.AddrPort) []*tribes.Member {
	if len(want) == 0 {
		return members
	}
	var out []*tribes.Member
	for _, w := range want {
		for _, m := range members {
			if m.AddrPort() == w {
				out = append(out, m)
				break
			}
		}
	}
	return out
}
