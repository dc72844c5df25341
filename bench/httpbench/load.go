package httpbench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Result is the measurement of one target.
type Result struct {
	Target    string  `json:"target"` // "native" or "wasm"
	Tool      string  `json:"tool"`   // "go" (this package's load generator) or "wrk"
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	Seconds   float64 `json:"seconds"`
	ReqPerSec float64 `json:"reqPerSec"`
	P50us     float64 `json:"p50us"`
	P90us     float64 `json:"p90us"`
	P99us     float64 `json:"p99us"`
	MaxUs     float64 `json:"maxUs"`
	// AllRequests counts the warmup's requests too.
	AllRequests int64 `json:"allRequests"`
	// ServerCPUus is the serving process's CPU time per request in µs,
	// measured only when the load generator is a separate process.
	ServerCPUus float64 `json:"serverCPUus,omitempty"`
	// Sessions is the number of sessions the target held after it was
	// driven (set by [Run]): one per connection or wrk thread and round
	// when the load generator sends the cookie back.
	Sessions int `json:"sessions,omitempty"`
}

// Load drives rawURL with conns keep-alive connections, each with its own
// session cookie (taken from the first response), for warmup and then
// measures for dur.
func Load(ctx context.Context, rawURL string, conns int, warmup, dur time.Duration) (Result, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Result{}, err
	}
	if u.Scheme != "http" {
		return Result{}, fmt.Errorf("httpbench: only http:// URLs, got %q", rawURL)
	}
	path := u.RequestURI()
	start := time.Now()
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(dur)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		lats []int64
		reqs int64
		all  int64
		errs int64
		ferr error
	)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, n, a, e, err := drive(ctx, u.Host, path, measureFrom, end)
			mu.Lock()
			defer mu.Unlock()
			lats = append(lats, l...)
			reqs += n
			all += a
			errs += e
			if err != nil && ferr == nil {
				ferr = err
			}
		}()
	}
	wg.Wait()
	if ferr != nil && reqs == 0 {
		return Result{}, ferr
	}
	slices.Sort(lats)
	r := Result{Tool: "go", Requests: reqs, AllRequests: all, Errors: errs, Seconds: dur.Seconds(), ReqPerSec: float64(reqs) / dur.Seconds()}
	if len(lats) > 0 {
		pct := func(p float64) float64 { return float64(lats[int(p*float64(len(lats)-1))]) / 1e3 }
		r.P50us, r.P90us, r.P99us, r.MaxUs = pct(0.50), pct(0.90), pct(0.99), float64(lats[len(lats)-1])/1e3
	}
	return r, nil
}

// drive runs one connection until end, recording latencies after
// measureFrom.
func drive(ctx context.Context, hostport, path string, measureFrom, end time.Time) (lats []int64, n, all, errs int64, err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, 0, 0, 1, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	br := bufio.NewReaderSize(conn, 16<<10)
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: " + hostport + "\r\n\r\n")
	var resp response
	for {
		now := time.Now()
		if now.After(end) {
			return lats, n, all, errs, nil
		}
		conn.SetDeadline(now.Add(30 * time.Second))
		if _, err := conn.Write(req); err != nil {
			return lats, n, all, errs + 1, err
		}
		if err := resp.read(br); err != nil {
			return lats, n, all, errs + 1, err
		}
		done := time.Now()
		all++
		if resp.cookie != "" {
			req = []byte("GET " + path + " HTTP/1.1\r\nHost: " + hostport + "\r\nCookie: JSESSIONID=" + resp.cookie + "\r\n\r\n")
			resp.cookie = ""
		}
		if !now.Before(measureFrom) && !done.After(end) {
			if resp.status != 200 {
				errs++
				continue
			}
			n++
			lats = append(lats, done.Sub(now).Nanoseconds())
		}
	}
}

type response struct {
	status int
	cookie string
	body   []byte
}

var errBadResponse = errors.New("httpbench: malformed response")

// read parses one HTTP/1.1 response with a Content-Length body.
func (r *response) read(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return errBadResponse
	}
	r.status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return errBadResponse
	}
	length := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		name, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return errBadResponse
		}
		val = bytes.TrimSpace(val)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, err = strconv.Atoi(string(val))
			if err != nil {
				return errBadResponse
			}
		case bytes.EqualFold(name, []byte("Set-Cookie")):
			if v, ok := strings.CutPrefix(string(val), "JSESSIONID="); ok {
				r.cookie, _, _ = strings.Cut(v, ";")
			}
		}
	}
	if length < 0 {
		return fmt.Errorf("%w: no Content-Length", errBadResponse)
	}
	if cap(r.body) < length {
		r.body = make([]byte, length)
	}
	_, err = io.ReadFull(br, r.body[:length])
	return err
}
