package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/wasmfarm/wasmfarm/bench"
	"github.com/wasmfarm/wasmfarm/farm"
	"github.com/wasmfarm/wasmfarm/host/monitor"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// farmRound is one measured deploy of "wasmfarm bench farm".
type farmRound struct {
	total    time.Duration // upload start until every member served the app
	local    time.Duration // upload, spool and the first member's deploy
	transfer time.Duration // the chunks to the other members
	remote   time.Duration // the others' verification and deploy, and the report
	serve    time.Duration // report until every member answered GET
	growth   []int64       // per member: peak RSS during the deploy minus before
	kept     []int64       // per member: RSS a second after the deploy minus before
}

// runBenchFarm measures a farmed deploy: members as separate processes on
// loopback (multicast on the loopback interface, TTL 0), a module of the
// given size (the counter app padded with a custom section) uploaded to
// the first member's admin endpoint, timed by phase, with every member's
// RSS sampled every 5 ms.
func runBenchFarm(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench farm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	members := fs.Int("members", 3, "cluster members (processes)")
	sizeMiB := fs.Int("size", 10, "module size in MiB (the counter app padded with a custom section)")
	rounds := fs.Int("rounds", 3, "deploys to measure, each on freshly started members; the median is reported")
	cache := fs.String("cache", "cold", `compilation cache: "cold" (an empty one per member: every member compiles, as on separate machines) or "shared" (one per round for all members: the first compiles, the others read its result, as members of one user on one machine do by default)`)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: wasmfarm bench farm [flags]\n\nDeploys a module through one member's admin endpoint to every member and reports the\ntime by phase and each member's memory during the deploy.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *members < 1 || *members > 9 {
		return errors.New("-members: 1 to 9")
	}
	if *sizeMiB < 1 || *sizeMiB > farm.DefaultMaxModuleBytes>>20 {
		return fmt.Errorf("-size: 1 to %d MiB (the default module limit)", farm.DefaultMaxModuleBytes>>20)
	}
	if *cache != "cold" && *cache != "shared" {
		return fmt.Errorf(`-cache: "cold" or "shared", not %q`, *cache)
	}
	if *rounds < 1 {
		return errors.New("-rounds: at least 1")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	size := *sizeMiB<<20 - 64 // the limit is inclusive; keep the largest size under it
	app := wasmapps.Counter()
	if size < len(app)+64 {
		return fmt.Errorf("-size %d: the counter app alone is %s", *sizeMiB, mib(int64(len(app))))
	}
	module := padModule(app, size)
	fmt.Fprintf(stdout, "farm deploy of a %s module to %d members on loopback, %s compilation cache, %d rounds\n",
		mib(int64(len(module))), *members, *cache, *rounds)
	var rs []farmRound
	for i := range *rounds {
		r, err := farmDeployRound(ctx, exe, *members, *cache, module)
		if err != nil {
			return fmt.Errorf("round %d: %w", i+1, err)
		}
		fmt.Fprintf(stdout, "  round %d: %s (first member %s, transfer %s at %.0f MB/s, the others' deploy %s, serving %s); RSS growth at the peak %s, a second later %s\n",
			i+1, ms(r.total), ms(r.local), ms(r.transfer), mbps(len(module), r.transfer), ms(r.remote), ms(r.serve), kibs(r.growth), kibs(r.kept))
		rs = append(rs, r)
	}
	med := func(f func(farmRound) time.Duration) time.Duration {
		v := make([]time.Duration, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	tr := med(func(r farmRound) time.Duration { return r.transfer })
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "median\tdeployed and serving\tfirst member\ttransfer\trate\tothers' deploy\n")
	fmt.Fprintf(tw, "\t%s\t%s\t%s\t%.0f MB/s\t%s\n", ms(med(func(r farmRound) time.Duration { return r.total })),
		ms(med(func(r farmRound) time.Duration { return r.local })), ms(tr), mbps(len(module), tr),
		ms(med(func(r farmRound) time.Duration { return r.remote + r.serve })))
	tw.Flush()
	var worst, kept int64
	for _, r := range rs {
		worst = max(worst, slices.Max(r.growth))
		kept = max(kept, slices.Max(r.kept))
	}
	fmt.Fprintf(stdout, "memory: the largest growth of a member's RSS during a deploy %s, a second after it %s (chunks are %s)\n",
		mib(worst), mib(kept), mib(farm.DefaultChunkSize))
	return nil
}

// farmDeployRound starts the members, deploys module once and stops them.
// A failed round keeps the members' logs and says where.
func farmDeployRound(ctx context.Context, exe string, n int, cache string, module []byte) (r farmRound, err error) {
	work, err := os.MkdirTemp("", "wasmfarm-bench-farm-")
	if err != nil {
		return r, err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w (the members' logs are in %s)", err, work)
		} else {
			os.RemoveAll(work)
		}
	}()
	token := randomHex(16)
	mcastPort, domain := 45600+rand.IntN(1000), "benchfarm-"+randomHex(4)
	var dms []*demoMember
	defer func() {
		for _, m := range dms {
			m.stop()
		}
	}()
	for i := range n {
		route := "jvm_" + string(rune('a'+i))
		dir := filepath.Join(work, "cache")
		if cache == "cold" {
			dir = filepath.Join(work, "cache-"+route)
		}
		m, err := startDemoMember(ctx, exe, work, route, 0, 0, token, "delta", mcastPort, domain,
			"-cache-dir", dir)
		if err != nil {
			return r, fmt.Errorf("member %s: %w", route, err)
		}
		dms = append(dms, m)
	}
	if err := awaitMembers(ctx, dms[0].admin, n-1); err != nil {
		return r, err
	}
	time.Sleep(500 * time.Millisecond) // let the startup's garbage be collected
	before := make([]int64, n)
	peak := make([]int64, n)
	for i, m := range dms {
		before[i] = bench.RSS(m.cmd.Process.Pid)
		peak[i] = before[i]
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			for i, m := range dms {
				peak[i] = max(peak[i], bench.RSS(m.cmd.Process.Pid))
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	err = timeDeploy(ctx, dms, token, module, &r)
	close(stop)
	wg.Wait()
	if err != nil {
		return r, err
	}
	r.growth = make([]int64, n)
	for i := range dms {
		r.growth[i] = peak[i] - before[i]
	}
	time.Sleep(time.Second)
	r.kept = make([]int64, n)
	for i, m := range dms {
		r.kept[i] = bench.RSS(m.cmd.Process.Pid) - before[i]
	}
	return r, nil
}

// timeDeploy uploads module to the first member as /big with progress
// lines, times the phases and then asks every member for the app.
func timeDeploy(ctx context.Context, dms []*demoMember, token string, module []byte, r *farmRound) error {
	u, err := url.Parse(dms[0].admin)
	if err != nil {
		return err
	}
	c := &adminClient{base: u, token: token, hc: &http.Client{}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	resp, err := c.request(ctx, http.MethodPut, url.Values{"path": {"/big"}, "name": {"big.wasm"}, "progress": {"1"}},
		bytes.NewReader(module), int64(len(module)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("deploy: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var localDone, transferDone time.Time
	var final farm.AdminResponse
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var line farm.AdminResponse
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("unreadable answer line %q: %v", sc.Text(), err)
		}
		if p := line.Progress; p != nil {
			if p.Done == p.Total && p.Phase == "deploy" {
				localDone = time.Now()
			} else if p.Done == p.Total && p.Phase == "transfer" {
				transferDone = time.Now()
			}
			continue
		}
		final = line
	}
	reported := time.Now()
	if err := sc.Err(); err != nil {
		return err
	}
	if final.Report == nil {
		return fmt.Errorf("deploy refused: %s", final.Error)
	}
	if err := final.Report.Err(); err != nil {
		return err
	}
	if len(final.Report.Members) != len(dms) {
		return fmt.Errorf("deployed on %d members, want %d", len(final.Report.Members), len(dms))
	}
	for _, m := range dms {
		resp, err := http.Get(m.http + "/big/json")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: GET /big/json: %s", m.route, resp.Status)
		}
	}
	end := time.Now()
	if localDone.IsZero() {
		return errors.New("no progress line for the first member's deploy")
	}
	if transferDone.IsZero() { // one member: nothing to transfer
		transferDone = localDone
	}
	r.total = end.Sub(start)
	r.local = localDone.Sub(start)
	r.transfer = transferDone.Sub(localDone)
	r.remote = reported.Sub(transferDone)
	r.serve = end.Sub(reported)
	return nil
}

// awaitMembers waits until the member at admin sees n others.
func awaitMembers(ctx context.Context, admin string, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st monitor.Snapshot
		resp, err := http.Get(admin + "/status")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		if err == nil && len(st.Members) >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the first member sees %d of %d members after 30 s (%v)", len(st.Members), n, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// padModule returns mod followed by a custom section named
// "wasmfarm.pad" so that the whole is about size bytes (at least mod plus
// the section's header). Custom sections change the digest, not the code.
func padModule(mod []byte, size int) []byte {
	const name = "wasmfarm.pad"
	n := max(0, size-len(mod)-1-2*binary.MaxVarintLen32-len(name))
	return appendCustomSection(mod, name, make([]byte, n))
}

// appendCustomSection returns a copy of mod with a custom section (id 0)
// named name holding payload; wasm allows custom sections anywhere.
func appendCustomSection(mod []byte, name string, payload []byte) []byte {
	content := binary.AppendUvarint(nil, uint64(len(name)))
	content = append(append(content, name...), payload...)
	out := append(append(make([]byte, 0, len(mod)+len(content)+6), mod...), 0)
	out = binary.AppendUvarint(out, uint64(len(content)))
	return append(out, content...)
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

func mbps(bytes int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / d.Seconds() / 1e6
}

func kibs(v []int64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%+d KiB", x>>10)
	}
	return strings.Join(s, ", ")
}
