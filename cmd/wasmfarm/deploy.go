package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/wasmfarm/wasmfarm/farm"
)

// adminTokenEnv names the environment variable holding the admin token.
const adminTokenEnv = "WASMFARM_ADMIN_TOKEN"

// adminFlags are the flags shared by deploy, undeploy and apps.
type adminFlags struct {
	admin   *string
	token   *string
	timeout *time.Duration
}

func addAdminFlags(fs *flag.FlagSet) adminFlags {
	return adminFlags{
		admin:   fs.String("admin", "http://127.0.0.1:9090", "a member's admin endpoint"),
		token:   fs.String("token", "", "admin bearer token (default $"+adminTokenEnv+")"),
		timeout: fs.Duration("timeout", 10*time.Minute, "give up after this long"),
	}
}

// client is a small client of farm's admin API.
type adminClient struct {
	base  *url.URL
	token string
	hc    *http.Client
}

func (f adminFlags) client() (*adminClient, error) {
	u, err := url.Parse(*f.admin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("-admin %q: want http://host:port", *f.admin)
	}
	tok := *f.token
	if tok == "" {
		tok = os.Getenv(adminTokenEnv)
	}
	if tok == "" {
		return nil, fmt.Errorf("no admin token: pass -token or set %s (the node prints it, or stores it in its token file)", adminTokenEnv)
	}
	return &adminClient{base: u, token: tok, hc: &http.Client{}}, nil
}

func (c *adminClient) request(ctx context.Context, method string, q url.Values, body io.Reader, size int64) (*http.Response, error) {
	u := c.base.JoinPath("apps")
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/wasm")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		resp.Body.Close()
		return nil, fmt.Errorf("%s refused the token (401): check -token or $%s", c.base, adminTokenEnv)
	}
	return resp, nil
}

// decodeAnswer reads a JSON answer of the admin API; a non-2xx status
// without a report is an error.
func decodeAnswer(resp *http.Response) (farm.AdminResponse, error) {
	defer resp.Body.Close()
	var a farm.AdminResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&a); err != nil {
		return a, fmt.Errorf("%s: unreadable answer: %v", resp.Status, err)
	}
	if resp.StatusCode/100 != 2 && a.Report == nil {
		if a.Error == "" {
			a.Error = resp.Status
		}
		return a, errors.New(a.Error)
	}
	return a, nil
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// progressBar draws one line, redrawn in place.
type progressBar struct {
	w    io.Writer
	last time.Time
	on   bool
}

func (p *progressBar) draw(phase string, done, total int64, force bool) {
	if now := time.Now(); !force && now.Sub(p.last) < 100*time.Millisecond {
		return
	} else {
		p.last = now
	}
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	n := int(frac * width)
	detail := fmt.Sprintf("%d/%d", done, total)
	if phase == "upload" || phase == "transfer" {
		detail = mib(done) + "/" + mib(total)
	} else if phase == "results" {
		detail = fmt.Sprintf("%d/%d members", done, total)
	}
	fmt.Fprintf(p.w, "\r%-8s [%s%s] %3.0f%% %-22s", phase, strings.Repeat("#", n), strings.Repeat(" ", width-n), 100*frac, detail)
	p.on = true
}

func (p *progressBar) done() {
	if p.on {
		fmt.Fprintln(p.w)
		p.on = false
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// runDeploy runs "wasmfarm deploy": upload a module to one member's admin
// endpoint, which deploys it on every member.
func runDeploy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("deploy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := addAdminFlags(fs)
	path := fs.String("path", "", "context path (default from the file name: shop.wasm is /shop, ROOT.wasm is /, a#b.wasm is /a/b, or its .json manifest)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: wasmfarm deploy [-admin URL] [-token T] [-path /shop] app.wasm\n\nUploads a module to a member's admin endpoint, which deploys it there and on every other\nmember; returns when each member reported, and fails naming the members that did not deploy it.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("want exactly one module file")
	}
	file := fs.Arg(0)
	if *path == "" {
		p, err := modulePath(file)
		if err != nil {
			return err
		}
		*path = p
	}
	if err := farm.CheckPath(*path); err != nil {
		return err
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *af.timeout)
	defer cancel()

	tty := isTerminal(stdout)
	bar := &progressBar{w: stdout}
	body := &countingReader{r: f}
	uploadDone := make(chan struct{})
	if tty {
		go func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-uploadDone:
					return
				case <-t.C:
					bar.draw("upload", body.n.Load(), info.Size(), false)
				}
			}
		}()
	}
	q := url.Values{"path": {*path}, "name": {filepath.Base(file)}, "progress": {"1"}}
	start := time.Now()
	resp, err := c.request(ctx, http.MethodPut, q, body, info.Size())
	close(uploadDone)
	if err != nil {
		bar.done()
		return err
	}
	var final farm.AdminResponse
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct == "application/x-ndjson" {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			var line farm.AdminResponse
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				bar.done()
				return fmt.Errorf("unreadable answer line %q: %v", sc.Text(), err)
			}
			if line.Progress != nil {
				if tty {
					p := line.Progress
					bar.draw(p.Phase, p.Done, p.Total, p.Done == p.Total)
				}
				continue
			}
			final = line
		}
		bar.done()
		if err := sc.Err(); err != nil {
			return fmt.Errorf("reading the answer: %w", err)
		}
		if final.Report == nil && final.Error == "" {
			return errors.New("the member closed the answer before the report")
		}
	} else {
		bar.done()
		if final, err = decodeAnswer(resp); err != nil {
			return err
		}
	}
	if final.Report == nil {
		return fmt.Errorf("deploy %s refused: %s", *path, final.Error)
	}
	return printReport(stdout, final.Report, time.Since(start))
}

// modulePath returns the context path of a module file: from its manifest
// ("file.json") if any, else from its name.
func modulePath(file string) (string, error) {
	if b, err := os.ReadFile(file + farm.ManifestExt); err == nil {
		m, err := farm.ParseManifest(b)
		if err != nil {
			return "", fmt.Errorf("%s: %w", file+farm.ManifestExt, err)
		}
		if m.Path != "" {
			return m.Path, nil
		}
	}
	return farm.ContextPath(file)
}

// printReport prints one line for the operation and one per failed member,
// and returns an error naming the failed members.
func printReport(w io.Writer, r *farm.Report, elapsed time.Duration) error {
	failed := r.Failed()
	ok := len(r.Members) - len(failed)
	verb := r.Op + "ed"
	what := r.Path
	if r.Op == "deploy" && len(r.Digest) >= 12 {
		what += fmt.Sprintf(" (sha256 %s, %s)", r.Digest[:12], mib(r.Size))
	}
	if len(failed) == 0 {
		fmt.Fprintf(w, "%s %s on %d of %d members in %s\n", verb, what, ok, len(r.Members), elapsed.Round(time.Millisecond))
		return nil
	}
	fmt.Fprintf(w, "%s %s on %d of %d members; failed on %d:\n", verb, what, ok, len(r.Members), len(failed))
	names := make([]string, len(failed))
	for i, f := range failed {
		fmt.Fprintf(w, "  %s: %s\n", f.Label(), f.Error)
		names[i] = f.Member
	}
	return fmt.Errorf("%s %s failed on %s", r.Op, r.Path, strings.Join(names, ", "))
}

// runUndeploy runs "wasmfarm undeploy".
func runUndeploy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("undeploy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := addAdminFlags(fs)
	path := fs.String("path", "", "context path of the app to undeploy on every member (required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: wasmfarm undeploy [-admin URL] [-token T] -path /shop\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := farm.CheckPath(*path); err != nil {
		return fmt.Errorf("-path: %w", err)
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *af.timeout)
	defer cancel()
	start := time.Now()
	resp, err := c.request(ctx, http.MethodDelete, url.Values{"path": {*path}}, nil, 0)
	if err != nil {
		return err
	}
	a, err := decodeAnswer(resp)
	if err != nil {
		return err
	}
	return printReport(stdout, a.Report, time.Since(start))
}

// runApps runs "wasmfarm apps": the apps of the cluster and where they run.
func runApps(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("apps", flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := addAdminFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: wasmfarm apps [-admin URL] [-token T]\n\nLists each app of the cluster, its module digest and the members serving it.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *af.timeout)
	defer cancel()
	resp, err := c.request(ctx, http.MethodGet, nil, nil, 0)
	if err != nil {
		return err
	}
	a, err := decodeAnswer(resp)
	if err != nil {
		return err
	}
	if a.Apps == nil {
		return errors.New("the answer holds no app list")
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tDIGEST\tSIZE\tMEMBERS")
	n := len(a.Apps.Members)
	for _, app := range a.Apps.Apps {
		size := "-"
		if app.Size > 0 {
			size = mib(app.Size)
		}
		d := app.Digest
		if len(d) > 12 {
			d = d[:12]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d %s\n", app.Path, d, size, len(app.Members), n, strings.Join(app.Members, ","))
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d member(s) answered: %s\n", n, strings.Join(a.Apps.Members, ", "))
	if len(a.Apps.Unanswered) > 0 {
		fmt.Fprintf(stdout, "no answer from: %s\n", strings.Join(a.Apps.Unanswered, ", "))
	}
	return nil
}
