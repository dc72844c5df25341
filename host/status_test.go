package host_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/host/internal/wasmtest"
	"github.com/wasmfarm/wasmfarm/internal/syncbuf"
)

// statusModule is a guest whose handle opens a session, creating it
// (session_open), sets the response status to code (response_status) and
// writes body.
func statusModule(code int, body string) []byte {
	const status, write, open = 0, 1, 2
	h := append(wasmtest.I32(1), wasmtest.Call(open)...)
	h = append(append(h, wasmtest.I32(code)...), wasmtest.Call(status)...)
	h = append(append(append(h, wasmtest.I32(0)...), wasmtest.I32(len(body))...), wasmtest.Call(write)...)
	h = append(h, wasmtest.I32(0)...)
	return wasmtest.Guest([]wasmtest.Import{{Name: "response_status", Params: 1}, {Name: "response_write", Params: 2}, {Name: "session_open", Params: 1}},
		body, h)
}

// TestGuestInformationalStatus: a guest whose final status is 1xx (100
// Continue, 101 Switching Protocols, 103, 199) is refused on both
// connectors, as a guest failure: 500, a warning naming the status, and
// no interim response before it; the session the guest created is
// dropped. A final status of 200 or more is served as written, with its
// session.
func TestGuestInformationalStatus(t *testing.T) {
	for _, conn := range []string{host.ConnectorH1, host.ConnectorNetHTTP} {
		t.Run(conn, func(t *testing.T) {
			var logs syncbuf.Buffer
			cfg := host.Config{Connector: conn, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}
			apps := map[string][]byte{"/s202": statusModule(202, "accepted")}
			codes := []int{100, 101, 103, 199}
			for _, code := range codes {
				apps[fmt.Sprintf("/s%d", code)] = statusModule(code, "interim")
			}
			_, base := newServer(t, cfg, apps)
			c := dialRaw(t, base)
			for _, code := range codes {
				c.send(fmt.Sprintf("GET /s%d/ HTTP/1.1\r\nHost: x\r\n\r\n", code))
				r, body := c.answer("GET")
				if r.StatusCode != http.StatusInternalServerError || !strings.Contains(body, fmt.Sprint(code)) {
					t.Errorf("final status %d: got %d %q, want 500 naming the status", code, r.StatusCode, body)
				}
				if ck := r.Header.Get("Set-Cookie"); ck != "" {
					t.Errorf("final status %d: the session the guest created was kept (Set-Cookie %q)", code, ck)
				}
				if !warned(logs.String(), fmt.Sprintf("status %d", code)) {
					t.Errorf("final status %d: no warning names it; logs:\n%s", code, logs.String())
				}
				if t.Failed() {
					return // the connection may be out of step
				}
			}
			c.send("GET /s202/ HTTP/1.1\r\nHost: x\r\n\r\n")
			if r, body := c.answer("GET"); r.StatusCode != http.StatusAccepted || body != "accepted" || r.Header.Get("Set-Cookie") == "" {
				t.Errorf("status 202: got %d %q, Set-Cookie %q; want 202 \"accepted\" with the new session's cookie", r.StatusCode, body, r.Header.Get("Set-Cookie"))
			}
		})
	}
}

// warned reports whether a warning in the text log names s.
func warned(log, s string) bool {
	for line := range strings.Lines(log) {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, s) {
			return true
		}
	}
	return false
}
