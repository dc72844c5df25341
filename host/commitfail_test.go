package host_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/wasmapps"
)

// refusingManager is a StandardManager whose Commit fails with err once
// armed.
type refusingManager struct {
	session.Manager
	err *error
}

func (m refusingManager) Commit(d *session.Delta) error {
	if *m.err != nil {
		return *m.err
	}
	return m.Manager.Commit(d)
}

// TestCommitFailureIsNotAnsweredOK: when the manager refuses a request's
// session changes (the session would pass its limits, or the manager is
// closing), the client must not get the app's 200, which claims a change
// that was not kept; a session gone meanwhile (ErrNotFound) keeps it.
func TestCommitFailureIsNotAnsweredOK(t *testing.T) {
	var fail error
	cfg := host.Config{JvmRoute: "n1", NewManager: func(path string, c session.Config) (session.Manager, error) {
		m, err := session.NewStandardManager(c)
		return refusingManager{Manager: m, err: &fail}, err
	}}
	_, base := newServer(t, cfg, map[string][]byte{"/counter": wasmapps.Counter()})
	get := func(cookie string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), "GET", base+"/counter/json", nil)
		if cookie != "" {
			req.Header.Set("Cookie", "JSESSIONID="+cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var id string
		for _, c := range resp.Cookies() {
			id = c.Value
		}
		return resp.StatusCode, string(b), id
	}
	st, _, id := get("")
	if st != 200 || id == "" {
		t.Fatalf("first request: %d, cookie %q", st, id)
	}
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("%w: concurrent requests", session.ErrTooManyAttributes), 500},
		{fmt.Errorf("%w: concurrent requests", session.ErrAttributeTooLarge), 500},
		{session.ErrClosed, 503},
		{fmt.Errorf("%w: %s", session.ErrNotFound, id), 200},
	} {
		fail = tc.err
		st, body, _ := get(id)
		if st != tc.want {
			t.Errorf("commit failing with %q: %d %q, want %d", tc.err, st, strings.TrimSpace(body), tc.want)
		}
	}
}
