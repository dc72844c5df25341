package javapeer

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors of the package. Test with [errors.Is].
var (
	// ErrNotFound occurs when java, javac, catalina-tribes.jar or
	// tomcat-juli.jar cannot be found (FindToolchain, Start); tests skip
	// on it.
	ErrNotFound = errors.New("javapeer: java or catalina-tribes.jar not found")
	// ErrTimeout occurs when a Wait method's timeout passes with nothing
	// to return.
	ErrTimeout = errors.New("javapeer: timed out waiting for the Java peer")
	// ErrExited occurs when the Java process has ended (or ends while a
	// call waits) and nothing more can come.
	ErrExited = errors.New("javapeer: Java peer exited")
)

// Interceptor names understood by the harness (Interceptor.Name); a fully
// qualified class name works too.
const (
	Dispatch         = "dispatch"   // MessageDispatchInterceptor (asynchronous sends)
	FailureDetector  = "tcpfd"      // TcpFailureDetector
	Ping             = "ping"       // TcpPingInterceptor
	Gzip             = "gzip"       // GzipInterceptor
	Encrypt          = "encrypt"    // EncryptInterceptor
	DomainFilter     = "domain"     // DomainFilterInterceptor
	StaticMembership = "static"     // StaticMembershipInterceptor (members in Config.StaticMembers)
	Order            = "order"      // OrderInterceptor
	Fragmentation    = "fragment"   // FragmentationInterceptor
	Throughput       = "throughput" // ThroughputInterceptor
)

// Interceptor is one element of the Java channel's interceptor stack.
type Interceptor struct {
	Name string
	// Props are bean properties set through the interceptor's setters,
	// like the attributes of an <Interceptor> element in server.xml
	// ("compressionMinSize": "100", "encryptionKey": "00..0f"). Names and
	// values must not contain ',' and names not '='.
	Props map[string]string
}

// DefaultStack returns the stack the spec's interop plan assumes unless a
// scenario says otherwise: MessageDispatchInterceptor, then
// TcpFailureDetector (Tomcat's SimpleTcpCluster default).
func DefaultStack() []Interceptor {
	return []Interceptor{{Name: Dispatch}, {Name: FailureDetector}}
}

// Membership configures the Java node's McastService.
type Membership struct {
	Address   string        // group, default "228.0.0.4"
	Port      int           // default 45564
	Bind      string        // interface address, default "127.0.0.1"
	Frequency time.Duration // heartbeat period, default 500 ms
	DropTime  time.Duration // member expiry, default 3000 ms
}

// Property sets a bean property of one of the Java channel's components:
// Target is "channel", "receiver" (NioReceiver), "transmitter"
// (ReplicationTransmitter), "sender" (its PooledParallelSender, e.g.
// "timeout", "maxRetryAttempts") or "mcast" (McastService).
type Property struct {
	Target, Name, Value string
}

// Config configures a Java peer. The zero value starts a channel on
// 127.0.0.1 with a free port, no membership and no interceptors.
type Config struct {
	// Toolchain to use; nil calls FindToolchain.
	Toolchain *Toolchain
	// Address of the NioReceiver, bound and advertised (default 127.0.0.1).
	Address string
	// Port is the first receiver port tried; 0 picks a free port.
	Port int
	// AutoBind is how many ports are tried from Port on (default 100, or
	// 20 when the port is picked).
	AutoBind int
	// Membership, when set, starts McastService (channel start level 15);
	// otherwise the channel starts its sender and receiver only (level 3).
	Membership *Membership
	// Domain and MemberPayload go into the local member record.
	Domain        string
	MemberPayload []byte
	// Interceptors, top of the stack first (as listed in server.xml).
	Interceptors []Interceptor
	// StaticMembers are given to the StaticMembershipInterceptor (which
	// must be in Interceptors): their Host (IPv4), Port, UniqueID and
	// Domain are used.
	StaticMembers []Member
	// LocalMember, if set, becomes the StaticMembershipInterceptor's
	// LocalMember (Tomcat's <LocalMember>): its UniqueID and Domain are
	// used, host and port come from the receiver. It fixes the node's
	// unique id before start-up, so two static nodes can name each other.
	LocalMember *Member
	// Properties are set after the stack is built, in order.
	Properties []Property
	// StartLevel overrides the channel start level (0: see Membership).
	StartLevel int
	// Throw makes the channel listener throw after reporting each message,
	// so that synchronized-ACK senders get FAIL_ACK. See also SetThrow.
	Throw bool
	// HexLimit: payloads up to this many bytes are reported in full
	// (default 65536); larger ones by length and SHA-256 only.
	HexLimit int
	// LogLevel is the java.util.logging level of Tribes' logs (default INFO).
	LogLevel string
	// MaxLifetime makes the JVM exit on its own after this long (default
	// 5 minutes), in case nobody stops it.
	MaxLifetime time.Duration
	// JVMArgs are added to the java command line.
	JVMArgs []string
	// Stderr, if set, receives Java's logs as they come. The last 64 KiB
	// are kept in any case (Peer.Stderr).
	Stderr io.Writer
	// StartTimeout bounds the start-up, JVM and channel (default 60 s).
	StartTimeout time.Duration
}

// Peer is a running TribesPeer JVM. Its methods are safe for concurrent
// use. Events are queued per kind as they arrive, so nothing is lost
// between two Wait calls.
type Peer struct {
	cfg    Config
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tailBuffer
	ready  Event

	wmu  sync.Mutex // serialises command writes and their numbering
	ncmd int

	pmu     sync.Mutex
	replies map[int]chan Event
	asyncs  map[int]chan Event
	noise   []string // lines that were not events, or events nobody asked for

	messages    *queue[Message]
	dropped     *queue[Message]
	added       *queue[Member]
	disappeared *queue[Member]

	readyCh   chan Event // the ready or fatal event
	done      chan struct{}
	exitErr   error // set before done is closed
	closeOnce sync.Once
	closeErr  error
}

// Start compiles the harness if needed, starts a JVM running it as cfg
// says, and returns once its channel has started (the ready event). The
// context bounds the start-up only. The caller must Close the peer.
func Start(ctx context.Context, cfg Config) (*Peer, error) {
	if cfg.Toolchain == nil {
		tc, err := FindToolchain()
		if err != nil {
			return nil, err
		}
		cfg.Toolchain = tc
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	classes, err := cfg.Toolchain.Build(ctx)
	if err != nil {
		return nil, err
	}
	args, err := cfg.args()
	if err != nil {
		return nil, err
	}
	jvm := []string{"-Djava.net.preferIPv4Stack=true", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Xmx512m", "-Xss512k"}
	jvm = append(jvm, cfg.JVMArgs...)
	jvm = append(jvm, "-cp", cfg.Toolchain.Classpath(classes), "TribesPeer")

	p := &Peer{
		cfg:         cfg,
		stderr:      &tailBuffer{max: 64 << 10, also: cfg.Stderr},
		replies:     make(map[int]chan Event),
		asyncs:      make(map[int]chan Event),
		messages:    newQueue[Message](),
		dropped:     newQueue[Message](),
		added:       newQueue[Member](),
		disappeared: newQueue[Member](),
		readyCh:     make(chan Event, 1),
		done:        make(chan struct{}),
	}
	p.cmd = exec.Command(cfg.Toolchain.Java, append(jvm, args...)...)
	p.cmd.Stderr = p.stderr
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("javapeer: %w", err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("javapeer: %w", err)
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("javapeer: starting java: %w", err)
	}
	limit := max(MaxLineSize, 2*cfg.hexLimit()+MaxLineSize)
	go p.read(stdout, limit)

	select {
	case ev := <-p.readyCh:
		if ev.Kind == KindFatal {
			p.Kill()
			<-p.done
			return nil, fmt.Errorf("javapeer: Java peer failed to start: %s\n%s", ev.Error, p.Stderr())
		}
		p.ready = ev
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%w before it was ready: %v\n%s", ErrExited, p.exitErr, p.Stderr())
	case <-ctx.Done():
		p.Kill()
		<-p.done
		return nil, fmt.Errorf("javapeer: Java peer not ready: %w\n%s", ctx.Err(), p.Stderr())
	}
}

func (cfg *Config) hexLimit() int {
	if cfg.HexLimit <= 0 {
		return 65536
	}
	return cfg.HexLimit
}

// args turns the configuration into TribesPeer flags.
func (cfg *Config) args() ([]string, error) {
	addr := cfg.Address
	if addr == "" {
		addr = "127.0.0.1"
	}
	port, autoBind := cfg.Port, cfg.AutoBind
	if port == 0 {
		var err error
		if port, err = freePort(addr); err != nil {
			return nil, err
		}
		if autoBind <= 0 {
			autoBind = 20
		}
	}
	if autoBind <= 0 {
		autoBind = 100
	}
	a := []string{"-address", addr, "-port", strconv.Itoa(port), "-autoBind", strconv.Itoa(autoBind),
		"-hexLimit", strconv.Itoa(cfg.hexLimit())}
	if m := cfg.Membership; m != nil {
		a = append(a, "-membership")
		if m.Address != "" {
			a = append(a, "-mcastAddress", m.Address)
		}
		if m.Port != 0 {
			a = append(a, "-mcastPort", strconv.Itoa(m.Port))
		}
		if m.Bind != "" {
			a = append(a, "-mcastBind", m.Bind)
		}
		if m.Frequency > 0 {
			a = append(a, "-frequency", strconv.FormatInt(m.Frequency.Milliseconds(), 10))
		}
		if m.DropTime > 0 {
			a = append(a, "-dropTime", strconv.FormatInt(m.DropTime.Milliseconds(), 10))
		}
	}
	if cfg.Domain != "" {
		a = append(a, "-domain", cfg.Domain)
	}
	if cfg.MemberPayload != nil {
		a = append(a, "-memberPayload", hex.EncodeToString(cfg.MemberPayload))
	}
	for _, ic := range cfg.Interceptors {
		spec, err := ic.spec()
		if err != nil {
			return nil, err
		}
		a = append(a, "-interceptor", spec)
	}
	for _, m := range cfg.StaticMembers {
		if !m.Host.Is4() || strings.ContainsAny(m.Domain, ": \t\n") {
			return nil, fmt.Errorf("javapeer: static member %v: want an IPv4 host and a domain without ':' or blanks", m)
		}
		s := fmt.Sprintf("%s:%d:%x", m.Host, m.Port, m.UniqueID)
		if m.Domain != "" {
			s += ":" + m.Domain
		}
		a = append(a, "-static", s)
	}
	if m := cfg.LocalMember; m != nil {
		if strings.ContainsAny(m.Domain, ": \t\n") {
			return nil, fmt.Errorf("javapeer: local member domain %q has ':' or blanks", m.Domain)
		}
		s := fmt.Sprintf("%x", m.UniqueID)
		if m.Domain != "" {
			s += ":" + m.Domain
		}
		a = append(a, "-localMember", s)
	}
	for _, pr := range cfg.Properties {
		if pr.Target == "" || pr.Name == "" || strings.ContainsAny(pr.Target+pr.Name, ".=") {
			return nil, fmt.Errorf("javapeer: bad property %+v", pr)
		}
		a = append(a, "-set", pr.Target+"."+pr.Name+"="+pr.Value)
	}
	if cfg.StartLevel != 0 {
		a = append(a, "-startLevel", strconv.Itoa(cfg.StartLevel))
	}
	if cfg.Throw {
		a = append(a, "-throw")
	}
	if cfg.LogLevel != "" {
		a = append(a, "-logLevel", cfg.LogLevel)
	}
	life := cfg.MaxLifetime
	if life <= 0 {
		life = 5 * time.Minute
	}
	a = append(a, "-maxLifetime", strconv.FormatInt(max(1, int64(life/time.Second)), 10))
	return a, nil
}

func (ic Interceptor) spec() (string, error) {
	if ic.Name == "" || strings.ContainsAny(ic.Name, ":, \t\n") {
		return "", fmt.Errorf("javapeer: bad interceptor name %q", ic.Name)
	}
	if len(ic.Props) == 0 {
		return ic.Name, nil
	}
	var b strings.Builder
	b.WriteString(ic.Name)
	for i, k := range slices.Sorted(maps.Keys(ic.Props)) {
		v := ic.Props[k]
		if k == "" || strings.ContainsAny(k, ",=") || strings.Contains(v, ",") {
			return "", fmt.Errorf("javapeer: interceptor %s: bad property %q=%q", ic.Name, k, v)
		}
		if i == 0 {
			b.WriteByte(':')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + v)
	}
	return b.String(), nil
}

// freePort returns a TCP port that was free on addr a moment ago. The
// harness binds it with autoBind, so losing a race costs one more try.
func freePort(addr string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, fmt.Errorf("javapeer: picking a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// read turns stdout lines into events until EOF, then reaps the process.
func (p *Peer) read(stdout io.Reader, limit int) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 64<<10), limit+1)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		ev, err := parseEvent(line, limit)
		if err != nil {
			p.addNoise(fmt.Sprintf("%v: %.200q", err, line))
			continue
		}
		p.dispatch(ev)
	}
	if err := sc.Err(); err != nil {
		p.addNoise(err.Error())
		p.Kill()
		io.Copy(io.Discard, stdout)
	}
	err := p.cmd.Wait()
	if err == nil {
		err = errors.New("exit status 0")
	}
	p.exitErr = err
	close(p.done)
}

func (p *Peer) addNoise(s string) {
	p.pmu.Lock()
	if len(p.noise) < 100 {
		p.noise = append(p.noise, s)
	}
	p.pmu.Unlock()
}

func (p *Peer) dispatch(ev Event) {
	switch ev.Kind {
	case KindReady, KindFatal:
		if ev.Kind == KindFatal {
			p.addNoise("fatal event: " + ev.Error)
		}
		select {
		case p.readyCh <- ev:
		default:
			p.addNoise("second " + ev.Kind + " event")
		}
	case KindMessage:
		p.messages.push(ev.Message)
	case KindDropped:
		p.dropped.push(ev.Message)
	case KindMemberAdded:
		p.added.push(ev.Member)
	case KindMemberDisappeared:
		p.disappeared.push(ev.Member)
	case KindAsyncResult:
		p.slot(p.asyncs, ev.Cmd) <- ev
	default:
		p.pmu.Lock()
		ch := p.replies[ev.Cmd]
		p.pmu.Unlock()
		if ch == nil {
			p.addNoise(fmt.Sprintf("unexpected %s event for command %d", ev.Kind, ev.Cmd))
			return
		}
		select {
		case ch <- ev:
		default:
			p.addNoise(fmt.Sprintf("second %s event for command %d", ev.Kind, ev.Cmd))
		}
	}
}

// slot returns the channel of command cmd in m, creating it.
func (p *Peer) slot(m map[int]chan Event, cmd int) chan Event {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	ch := m[cmd]
	if ch == nil {
		ch = make(chan Event, 1)
		m[cmd] = ch
	}
	return ch
}

// command writes one command line and returns its number and the channel
// its answer will come on.
func (p *Peer) command(line string) (int, chan Event, error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	select {
	case <-p.done:
		return 0, nil, p.exited()
	default:
	}
	p.ncmd++
	n := p.ncmd
	ch := p.slot(p.replies, n)
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		return 0, nil, fmt.Errorf("javapeer: writing command: %w", err)
	}
	return n, ch, nil
}

// do runs one command and waits for its answer.
func (p *Peer) do(ctx context.Context, line string) (Event, error) {
	n, ch, err := p.command(line)
	if err != nil {
		return Event{}, err
	}
	return p.wait(ctx, n, ch, verb(line))
}

func (p *Peer) wait(ctx context.Context, n int, ch chan Event, what string) (Event, error) {
	select {
	case ev := <-ch:
		if ev.Kind == KindError {
			return ev, fmt.Errorf("javapeer: command %d (%s): %s", n, what, ev.Error)
		}
		return ev, nil
	case <-p.done:
		select {
		case ev := <-ch:
			return ev, nil
		default:
		}
		return Event{}, p.exited()
	case <-ctx.Done():
		return Event{}, fmt.Errorf("javapeer: command %d (%s): %w", n, what, ctx.Err())
	}
}

func verb(line string) string {
	v, _, _ := strings.Cut(line, " ")
	return v
}

func (p *Peer) exited() error {
	return fmt.Errorf("%w: %v", ErrExited, p.exitErr)
}

// Payload is what a send command sends: see Bytes, Pattern, JavaString and
// JavaByteArray.
type Payload struct {
	spec  string
	bytes bool // a ByteMessage
}

// Bytes is a ByteMessage holding b (sent with bit 0, BYTE_MESSAGE, set).
func Bytes(b []byte) Payload {
	if len(b) == 0 {
		return Payload{spec: "-", bytes: true}
	}
	return Payload{spec: hex.EncodeToString(b), bytes: true}
}

// Pattern is a ByteMessage of n bytes generated by the harness itself
// (cheap for large sizes): the bytes of PatternBytes(n).
func Pattern(n int) Payload { return Payload{spec: "@" + strconv.Itoa(n), bytes: true} }

// PatternBytes returns the bytes of Pattern(n): byte i is i mod 251.
func PatternBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// JavaString is a java.lang.String, sent Java-serialised (bit 0 clear).
func JavaString(s string) Payload {
	return Payload{spec: "str:" + Bytes([]byte(s)).spec}
}

// JavaByteArray is a plain byte[] (not a ByteMessage), sent Java-serialised
// (bit 0 clear).
func JavaByteArray(b []byte) Payload {
	return Payload{spec: "arr:" + Bytes(b).spec}
}

// SendResult is the answer to Send or Burst. Cmd identifies the command
// for WaitAsync.
type SendResult struct {
	Cmd int
	Result
}

// Send makes the Java channel send payload to the member to (which it
// need not know through membership: only Host, Port and UniqueID are used)
// with GroupChannel.send and the given options, and returns when send()
// returned. A failed Java send is reported in the result (OK false, Error),
// not as an error; errors are the harness's own failures. For options with
// the asynchronous bit (8), WaitAsync(ctx, res.Cmd) waits for the outcome.
func (p *Peer) Send(ctx context.Context, to Member, options uint32, payload Payload) (SendResult, error) {
	line := fmt.Sprintf("send %s %d %x %d %s", to.Host, to.Port, to.UniqueID, int32(options), payload.spec)
	n, ch, err := p.command(line)
	if err != nil {
		return SendResult{}, err
	}
	ev, err := p.wait(ctx, n, ch, "send")
	return SendResult{Cmd: n, Result: ev.Result}, err
}

// Burst makes the Java channel send count ByteMessages to the member to,
// from threads threads at once. Message k is the 4-byte big-endian k
// followed by tail (which must be Bytes or Pattern). The result counts
// the sends that returned normally (Sent) and those that threw (Failed).
func (p *Peer) Burst(ctx context.Context, to Member, options uint32, count, threads int, tail Payload) (SendResult, error) {
	if !tail.bytes {
		return SendResult{}, errors.New("javapeer: Burst: tail must be Bytes or Pattern")
	}
	line := fmt.Sprintf("burst %d %d %s %d %x %d %s", count, threads, to.Host, to.Port, to.UniqueID, int32(options), tail.spec)
	n, ch, err := p.command(line)
	if err != nil {
		return SendResult{}, err
	}
	ev, err := p.wait(ctx, n, ch, "burst")
	return SendResult{Cmd: n, Result: ev.Result}, err
}

// WaitAsync waits until every asynchronous send of command cmd (a Send or
// Burst with the asynchronous option) has ended, and returns their
// outcome: OK when none failed, Failed and the first Error otherwise.
func (p *Peer) WaitAsync(ctx context.Context, cmd int) (Result, error) {
	ev, err := p.wait(ctx, cmd, p.slot(p.asyncs, cmd), "asyncResult")
	return ev.Result, err
}

// Members returns the Java channel's current members.
func (p *Peer) Members(ctx context.Context) ([]Member, error) {
	ev, err := p.do(ctx, "members")
	return ev.Members, err
}

// SetThrow makes the Java channel listener throw after reporting each
// message (on) or not.
func (p *Peer) SetThrow(ctx context.Context, on bool) error {
	s := "off"
	if on {
		s = "on"
	}
	_, err := p.do(ctx, "throw "+s)
	return err
}

// Ping returns once the harness has handled every command written before.
func (p *Peer) Ping(ctx context.Context) error {
	_, err := p.do(ctx, "ping")
	return err
}

// Local returns the Java node's own member, as reported at start-up.
func (p *Peer) Local() Member { return p.ready.Member }

// TribesVersion returns the version of the catalina-tribes.jar in use
// ("10.1.60"), or "" when its manifest does not say.
func (p *Peer) TribesVersion() string { return p.ready.TribesVersion }

// JavaVersion returns the JVM's java.version.
func (p *Peer) JavaVersion() string { return p.ready.JavaVersion }

// PID returns the process id of the JVM.
func (p *Peer) PID() int { return p.cmd.Process.Pid }

// WaitMessage returns the oldest message the Java listener received and
// the caller has not taken yet, waiting up to timeout for one.
func (p *Peer) WaitMessage(timeout time.Duration) (Message, error) {
	return waitQueue(p, p.messages, timeout, "message")
}

// TryMessage returns the oldest untaken message, if there is one.
func (p *Peer) TryMessage() (Message, bool) { return p.messages.tryPop() }

// WaitDropped returns the oldest message that reached the Java channel but
// not its listener, waiting up to timeout for one.
func (p *Peer) WaitDropped(timeout time.Duration) (Message, error) {
	return waitQueue(p, p.dropped, timeout, "dropped message")
}

// TryDropped returns the oldest untaken dropped message, if there is one.
func (p *Peer) TryDropped() (Message, bool) { return p.dropped.tryPop() }

// WaitMemberAdded returns the oldest untaken memberAdded event's member,
// waiting up to timeout for one.
func (p *Peer) WaitMemberAdded(timeout time.Duration) (Member, error) {
	return waitQueue(p, p.added, timeout, "memberAdded")
}

// WaitMemberDisappeared returns the oldest untaken memberDisappeared
// event's member, waiting up to timeout for one.
func (p *Peer) WaitMemberDisappeared(timeout time.Duration) (Member, error) {
	return waitQueue(p, p.disappeared, timeout, "memberDisappeared")
}

func waitQueue[T any](p *Peer, q *queue[T], timeout time.Duration, what string) (T, error) {
	v, r := q.pop(timeout, p.done)
	switch r {
	case popTimeout:
		return v, fmt.Errorf("%w: no %s within %v", ErrTimeout, what, timeout)
	case popDone:
		return v, fmt.Errorf("waiting for a %s: %w", what, p.exited())
	}
	return v, nil
}

// Noise returns the output lines that were not valid events, and events
// that answered no pending command (at most 100).
func (p *Peer) Noise() []string {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	return slices.Clone(p.noise)
}

// Stderr returns the last 64 KiB Java wrote to stderr (its logs).
func (p *Peer) Stderr() string { return p.stderr.String() }

// Stop stops the Java channel (members see it leave) and waits for the
// JVM to exit. It returns the stop's failure, if any; when ctx ends first
// the JVM is killed.
func (p *Peer) Stop(ctx context.Context) error {
	ev, err := p.do(ctx, "stop")
	if err == nil && !ev.Result.OK {
		err = fmt.Errorf("javapeer: stopping the channel: %s", ev.Error)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.Kill()
		<-p.done
		if err == nil {
			err = fmt.Errorf("javapeer: Java peer did not exit: %w", ctx.Err())
		}
	}
	if errors.Is(err, ErrExited) {
		err = nil
	}
	return err
}

// Kill kills the JVM (the process Start started, by its PID) at once.
func (p *Peer) Kill() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Kill()
	}
}

// Done is closed once the JVM has exited.
func (p *Peer) Done() <-chan struct{} { return p.done }

// Close stops the peer as Stop does, giving it 15 s, then kills it, and
// waits for the process to end. It may be called more than once.
func (p *Peer) Close() error {
	p.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		p.closeErr = p.Stop(ctx)
		p.stdin.Close()
		p.Kill()
		<-p.done
	})
	return p.closeErr
}

// tailBuffer keeps the last max bytes written to it and copies everything
// to also, if set.
type tailBuffer struct {
	mu   sync.Mutex
	max  int
	buf  []byte
	also io.Writer
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.also != nil {
		t.also.Write(b)
	}
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
