package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// TransportOptions selects the cases of the transport benchmark.
type TransportOptions struct {
	Sizes       []int            // message sizes in bytes
	Modes       []string         // "async", "ack", "sync"
	Gzip        []bool           // gzip off and/or on
	Receivers   []int            // receiver processes: 1 and/or 2
	Concurrency int              // sender goroutines (default 1)
	Duration    time.Duration    // sending time per case (default 1 s)
	Samples     int              // single-message latency samples per ack case (default 2000)
	Command     func() *exec.Cmd // starts one receiver process running ReceiverMain
	// Channel runs the cases through full channels (dispatch, failure
	// detector and throughput interceptors) instead of the bare Sender and
	// Receiver. Command must then start
	// receivers that run channels too (ReceiverMain with channel true).
	Channel bool
	// Inline makes the receivers process messages on their network loops
	// (tribes.ReceiverConfig.Inline) instead of on workers. Command must
	// start receivers that do so (ReceiverMain with inline true).
	Inline bool
	// PooledAcks sends acknowledged messages on pooled connections, one at
	// a time on each (tribes.SenderConfig.PooledAcks), instead of the
	// pipelined connection. Not with Channel.
	PooledAcks bool
}

// Modes of the transport benchmark and their send options.
var transportModes = map[string]tribes.Options{
	"async": tribes.OptByteMessage | tribes.OptAsynchronous,
	"ack":   tribes.OptByteMessage | tribes.OptUseAck,
	"sync":  tribes.OptByteMessage | tribes.OptUseAck | tribes.OptSynchronizedAck,
}

// TransportResult is one case of the transport benchmark. Rates are per
// receiver (the slowest one when there are two).
type TransportResult struct {
	Bench          string  `json:"bench"` // "transport" or "channel"
	Inline         bool    `json:"inline"`
	PooledAcks     bool    `json:"pooledAcks"`
	Size           int     `json:"size"`
	Mode           string  `json:"mode"`
	Gzip           bool    `json:"gzip"`
	Receivers      int     `json:"receivers"`
	Concurrency    int     `json:"concurrency"`
	Messages       int64   `json:"messages"`
	Seconds        float64 `json:"seconds"`
	MsgsPerSec     float64 `json:"msgs_per_sec"`
	MBPerSec       float64 `json:"mb_per_sec"`
	RawMBPerSec    float64 `json:"raw_mb_per_sec"`
	RatioRaw       float64 `json:"ratio_raw"`
	AllocsPerMsg   float64 `json:"allocs_per_msg"`
	RxAllocsPerMsg float64 `json:"rx_allocs_per_msg"`
	P50us          float64 `json:"p50_us,omitempty"`
	P99us          float64 `json:"p99_us,omitempty"`
	MeanUs         float64 `json:"mean_us,omitempty"`
	RawRTTP50us    float64 `json:"raw_rtt_p50_us,omitempty"`
	RawRTTMeanUs   float64 `json:"raw_rtt_mean_us,omitempty"`
	LatencyRatio   float64 `json:"latency_ratio,omitempty"`
	SendErrors     int64   `json:"send_errors"`
}

func (o *TransportOptions) setDefaults() {
	if len(o.Sizes) == 0 {
		o.Sizes = []int{100, 1 << 10, 64 << 10, 1 << 20}
	}
	if len(o.Modes) == 0 {
		o.Modes = []string{"async", "ack", "sync"}
	}
	if len(o.Gzip) == 0 {
		o.Gzip = []bool{false, true}
	}
	if len(o.Receivers) == 0 {
		o.Receivers = []int{1, 2}
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.Duration <= 0 {
		o.Duration = time.Second
	}
	if o.Samples <= 0 {
		o.Samples = 2000
	}
}

// RunTransport runs every selected case and calls report with each result
// as it is measured.
func RunTransport(ctx context.Context, o TransportOptions, report func(TransportResult)) error {
	o.setDefaults()
	for _, m := range o.Modes {
		if _, ok := transportModes[m]; !ok {
			return fmt.Errorf("bench: unknown mode %q (want async, ack or sync)", m)
		}
	}
	if o.Command == nil {
		return errors.New("bench: no command to start receiver processes")
	}
	maxRecv := slices.Max(o.Receivers)
	if maxRecv < 1 || maxRecv > 8 {
		return fmt.Errorf("bench: receivers must be 1 to 8, not %d", maxRecv)
	}
	procs := make([]*receiverProc, 0, maxRecv)
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	for range maxRecv {
		p, err := startReceiver(o.Command())
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}

	local := &tribes.Member{
		Host: netip.AddrFrom4([4]byte{127, 0, 0, 1}), Port: 1, SecurePort: -1, UDPPort: -1,
		UniqueID: tribes.NewUniqueID(),
	}
	for _, n := range o.Receivers {
		for _, size := range o.Sizes {
			for _, mode := range o.Modes {
				for _, gz := range o.Gzip {
					if err := ctx.Err(); err != nil {
						return err
					}
					res, err := runCase(ctx, &o, local, procs[:n], size, mode, gz)
					if err != nil {
						return fmt.Errorf("bench: %d B %s gzip=%v receivers=%d: %w", size, mode, gz, n, err)
					}
					report(res)
				}
			}
		}
	}
	return nil
}

// runCase measures one case with a fresh sender.
func runCase(ctx context.Context, o *TransportOptions, local *tribes.Member, procs []*receiverProc, size int, mode string, gz bool) (TransportResult, error) {
	res := TransportResult{Bench: "transport", Size: size, Mode: mode, Gzip: gz, Receivers: len(procs), Concurrency: o.Concurrency, Inline: o.Inline, PooledAcks: o.PooledAcks && !o.Channel}
	var send sendFunc
	if o.Channel {
		res.Bench = "channel"
		ch, err := benchChannel(ctx, nil, false)
		if err != nil {
			return res, err
		}
		defer ch.Stop(context.Background())
		send = ch.SendMessage
	} else {
		sender, err := tribes.NewSender(tribes.SenderConfig{PooledAcks: o.PooledAcks}, local)
		if err != nil {
			return res, err
		}
		defer sender.Close()
		send = sender.Send
	}
	members := make([]*tribes.Member, len(procs))
	for i, p := range procs {
		members[i] = p.member
	}
	payload := Text(size)
	opts := transportModes[mode]
	var codec *tribes.Gzip
	if gz {
		codec = &tribes.Gzip{}
	}

	newSender := func(to []*tribes.Member) *benchSender {
		return &benchSender{sendTo: send, to: to, opts: opts, payload: payload, codec: codec}
	}
	// Warm up: connections, pools, the receiver's buffers.
	warm := time.Now().Add(o.Duration / 10)
	w := newSender(members)
	for time.Now().Before(warm) {
		if err := w.send(ctx); err != nil {
			return res, fmt.Errorf("warm-up: %w", err)
		}
	}
	if err := waitDrained(procs, time.Now().Add(5*time.Second)); err != nil {
		return res, err
	}

	for _, p := range procs {
		if err := p.reset(); err != nil {
			return res, err
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	stopAt := start.Add(o.Duration)
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Add(1)
		b := newSender(members)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				if n%64 == 0 && !time.Now().Before(stopAt) {
					return
				}
				if err := b.send(ctx); err != nil {
					failed.Add(1)
					continue
				}
				sent.Add(1)
			}
		}()
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	res.SendErrors = failed.Load()
	if n := sent.Load(); n > 0 {
		res.AllocsPerMsg = float64(after.Mallocs-before.Mallocs) / float64(n)
	}
	// Every receiver must get every message; wait for the last ones.
	want := sent.Load()
	stats, err := waitCount(procs, want, time.Now().Add(30*time.Second))
	if err != nil {
		return res, err
	}
	res.Messages = want
	for i, st := range stats {
		secs := float64(st.LastNs-start.UnixNano()) / 1e9
		rate := float64(st.Msgs) / secs
		if i == 0 || rate < res.MsgsPerSec {
			res.MsgsPerSec, res.Seconds, res.Messages = rate, secs, st.Msgs
			res.MBPerSec = float64(st.Bytes) / secs / 1e6
		}
		if st.Msgs > 0 {
			res.RxAllocsPerMsg = max(res.RxAllocsPerMsg, float64(st.Mallocs)/float64(st.Msgs))
		}
	}

	// The physical limit of the same run: raw TCP writes of the same size.
	res.RawMBPerSec, err = rawThroughput(procs[0].raw, size, o.Duration)
	if err != nil {
		return res, err
	}
	if res.RawMBPerSec > 0 {
		res.RatioRaw = res.MBPerSec / res.RawMBPerSec
	}

	if opts.Has(tribes.OptUseAck) {
		// Single-message latency, interleaved with raw TCP round trips of
		// the same size on a connection to the same process, so both see
		// the same machine at the same moments.
		ping, err := dialRawPinger(procs[0].raw, size)
		if err != nil {
			return res, err
		}
		defer ping.close()
		lat := make([]time.Duration, 0, o.Samples)
		raw := make([]time.Duration, 0, o.Samples)
		latEnd := time.Now().Add(o.Duration)
		one := newSender(members[:1])
		for i := 0; i < o.Samples && time.Now().Before(latEnd); i++ {
			t := time.Now()
			if err := one.send(ctx); err != nil {
				return res, fmt.Errorf("latency: %w", err)
			}
			lat = append(lat, time.Since(t))
			d, err := ping.roundTrip()
			if err != nil {
				return res, fmt.Errorf("raw round trip: %w", err)
			}
			raw = append(raw, d)
		}
		res.P50us, res.P99us, res.MeanUs = percentileUs(lat, 50), percentileUs(lat, 99), meanUs(lat)
		res.RawRTTP50us, res.RawRTTMeanUs = percentileUs(raw, 50), meanUs(raw)
		if res.RawRTTP50us > 0 {
			res.LatencyRatio = res.P50us / res.RawRTTP50us
		}
	}
	return res, nil
}

// sender is one sending goroutine's state, reused for every message so the
// benchmark itself does not allocate per message.
type benchSender struct {
	sendTo  sendFunc
	to      []*tribes.Member
	opts    tribes.Options
	payload []byte
	codec   *tribes.Gzip
	msg     tribes.Message
	scratch []byte
}

// send sends the payload once, gzipped when codec is set.
func (b *benchSender) send(ctx context.Context) error {
	b.msg = tribes.Message{Options: b.opts, Data: b.payload}
	if b.codec != nil {
		z, err := b.codec.Compress(b.scratch[:0], b.payload)
		if err != nil {
			return err
		}
		b.scratch = z
		b.msg.Data = z
		b.msg.Options |= tribes.DefaultGzipFlag
	}
	return b.sendTo(ctx, b.to, &b.msg)
}

// waitDrained waits until the receivers' counts stop changing.
func waitDrained(procs []*receiverProc, deadline time.Time) error {
	var last int64 = -1
	for time.Now().Before(deadline) {
		var total int64
		for _, p := range procs {
			st, err := p.stats()
			if err != nil {
				return err
			}
			total += st.Msgs
		}
		if total == last {
			return nil
		}
		last = total
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// waitCount waits until every receiver counted want messages.
func waitCount(procs []*receiverProc, want int64, deadline time.Time) ([]receiverStats, error) {
	out := make([]receiverStats, len(procs))
	for {
		done := true
		for i, p := range procs {
			st, err := p.stats()
			if err != nil {
				return nil, err
			}
			out[i] = st
			if st.Msgs < want {
				done = false
			}
		}
		if done {
			return out, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("receivers got %v of %d messages: messages lost", msgsOf(out), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func msgsOf(st []receiverStats) []int64 {
	n := make([]int64, len(st))
	for i, s := range st {
		n[i] = s.Msgs
	}
	return n
}

func percentileUs(d []time.Duration, p int) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s) - 1) * p / 100
	return float64(s[i].Nanoseconds()) / 1e3
}

// Text returns n bytes of compressible text, like the HTML and JSON a
// replicated session or a deployed page carries.
func Text(n int) []byte {
	words := strings.Fields(`the session replication of a cluster member sends attribute deltas to every
		other member of the group and waits for the acknowledgement when the options ask for it
		counter cart item price quantity user name created accessed jvmRoute node alpha beta gamma`)
	b := make([]byte, 0, n+16)
	x := uint32(2463534242)
	for len(b) < n {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b = append(b, words[x%uint32(len(words))]...)
		b = append(b, ' ')
		if x%7 == 0 {
			b = fmt.Appendf(b, "%d ", x%100000)
		}
	}
	return b[:n]
}

// Raw TCP: the receiver process's raw port reads a 5-byte header, 'S' or
// 'P' and a big-endian uint32 size. 'S' streams: the server counts and
// discards. 'P' ping-pongs: the server reads size bytes and answers 21.
const rawAckLen = 21

// rawThroughput streams size-byte writes for d and returns the MB/s the
// server counted.
func rawThroughput(addr string, size int, d time.Duration) (float64, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	var hdr [5]byte
	hdr[0] = 'S'
	binary.BigEndian.PutUint32(hdr[1:], uint32(size))
	if _, err := c.Write(hdr[:]); err != nil {
		return 0, err
	}
	buf := Text(size)
	start := time.Now()
	var n int64
	for time.Since(start) < d {
		k, err := c.Write(buf)
		n += int64(k)
		if err != nil {
			return 0, err
		}
	}
	c.(*net.TCPConn).CloseWrite()
	// The server answers with the byte count and its last read time.
	var reply [16]byte
	if _, err := io.ReadFull(c, reply[:]); err != nil {
		return 0, fmt.Errorf("raw tcp: %w", err)
	}
	got := int64(binary.BigEndian.Uint64(reply[:8]))
	last := int64(binary.BigEndian.Uint64(reply[8:]))
	secs := float64(last-start.UnixNano()) / 1e9
	if got != n || secs <= 0 {
		return 0, fmt.Errorf("raw tcp: server counted %d of %d bytes", got, n)
	}
	return float64(got) / secs / 1e6, nil
}

// rawPinger ping-pongs size bytes (answered with 21) on a raw connection.
type rawPinger struct {
	c   net.Conn
	buf []byte
	ack [rawAckLen]byte
}

func dialRawPinger(addr string, size int) (*rawPinger, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	var hdr [5]byte
	hdr[0] = 'P'
	binary.BigEndian.PutUint32(hdr[1:], uint32(size))
	if _, err := c.Write(hdr[:]); err != nil {
		c.Close()
		return nil, err
	}
	return &rawPinger{c: c, buf: Text(size)}, nil
}

func (p *rawPinger) roundTrip() (time.Duration, error) {
	t := time.Now()
	if _, err := p.c.Write(p.buf); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(p.c, p.ack[:]); err != nil {
		return 0, err
	}
	return time.Since(t), nil
}

func (p *rawPinger) close() { p.c.Close() }

func meanUs(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return float64(sum.Nanoseconds()) / float64(len(d)) / 1e3
}

// receiverProc is a running receiver process.
type receiverProc struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	member *tribes.Member
	raw    string
	mu     sync.Mutex
}

type receiverHello struct {
	Tribes string `json:"tribes"`
	Raw    string `json:"raw"`
}

type receiverStats struct {
	Msgs    int64 `json:"msgs"`
	Bytes   int64 `json:"bytes"`
	LastNs  int64 `json:"last_ns"`
	Mallocs int64 `json:"mallocs"`
}

func startReceiver(cmd *exec.Cmd) (*receiverProc, error) {
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting receiver: %w", err)
	}
	p := &receiverProc{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	var hello receiverHello
	if err := p.readJSON(&hello); err != nil {
		p.stop()
		return nil, fmt.Errorf("bench: receiver did not start: %w", err)
	}
	ap, err := netip.ParseAddrPort(hello.Tribes)
	if err != nil {
		p.stop()
		return nil, err
	}
	p.member = &tribes.Member{Host: ap.Addr(), Port: int(ap.Port()), SecurePort: -1, UDPPort: -1, UniqueID: tribes.NewUniqueID()}
	p.raw = hello.Raw
	return p, nil
}

func (p *receiverProc) readJSON(v any) error {
	if !p.out.Scan() {
		if err := p.out.Err(); err != nil {
			return err
		}
		return io.ErrUnexpectedEOF
	}
	return json.Unmarshal(p.out.Bytes(), v)
}

func (p *receiverProc) command(cmd string, v any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := io.WriteString(p.in, cmd+"\n"); err != nil {
		return fmt.Errorf("bench: receiver process: %w", err)
	}
	return p.readJSON(v)
}

func (p *receiverProc) reset() error {
	var ok struct{}
	return p.command("reset", &ok)
}

func (p *receiverProc) stats() (receiverStats, error) {
	var st receiverStats
	err := p.command("stats", &st)
	return st, err
}

// stop ends the process: closing its stdin makes it exit; it is killed if
// it has not within two seconds.
func (p *receiverProc) stop() {
	p.in.Close()
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}
