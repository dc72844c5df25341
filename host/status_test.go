package host_test

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/internal/syncbuf"
)

// statusModule is a guest whose handle opens a session, creating it
// (session_open), sets the response status to code (response_status) and
// writes body.
func statusModule(code int, body string) []byte {
	sec := func(id byte, c []byte) []byte {
		return append(append([]byte{id}, binary.AppendUvarint(nil, uint64(len(c)))...), c...)
	}
	name := func(s string) []byte { return append(binary.AppendUvarint(nil, uint64(len(s))), s...) }
	i32 := func(v int) []byte { // i32.const v, signed LEB128
		b := []byte{0x41}
		for {
			c := byte(v & 0x7f)
			v >>= 7
			if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
				return append(b, c)
			}
			b = append(b, c|0x80)
		}
	}
	m := []byte("\x00asm\x01\x00\x00\x00")
	// Types: 0 () -> i32, 1 (i32) -> i32, 2 (i32, i32) -> i32.
	m = append(m, sec(1, []byte{0x03, 0x60, 0x00, 0x01, 0x7f, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f})...)
	imp := []byte{0x03}
	imp = append(append(append(imp, name("wasmfarm")...), name("response_status")...), 0x00, 0x01)
	imp = append(append(append(imp, name("wasmfarm")...), name("response_write")...), 0x00, 0x02)
	imp = append(append(append(imp, name("wasmfarm")...), name("session_open")...), 0x00, 0x01)
	m = append(m, sec(2, imp)...)
	m = append(m, sec(3, []byte{0x02, 0x00, 0x00})...)
	m = append(m, sec(5, []byte{0x01, 0x00, 0x01})...)
	exp := []byte{0x03}
	exp = append(append(exp, name("wasmfarm_abi_version")...), 0x00, 0x03)
	exp = append(append(exp, name("handle")...), 0x00, 0x04)
	exp = append(append(exp, name("memory")...), 0x02, 0x00)
	m = append(m, sec(7, exp)...)
	version := []byte{0x00, 0x41, 0x01, 0x0b}
	h := append([]byte{0x00}, i32(1)...)
	h = append(h, 0x10, 0x02, 0x1a) // call session_open, drop
	h = append(h, i32(code)...)
	h = append(h, 0x10, 0x00, 0x1a) // call response_status, drop
	h = append(append(h, i32(0)...), i32(len(body))...)
	h = append(h, 0x10, 0x01, 0x1a) // call response_write, drop
	h = append(append(h, i32(0)...), 0x0b)
	code2 := []byte{0x02}
	code2 = append(append(code2, binary.AppendUvarint(nil, uint64(len(version)))...), version...)
	code2 = append(append(code2, binary.AppendUvarint(nil, uint64(len(h)))...), h...)
	m = append(m, sec(10, code2)...)
	return append(m, sec(11, append([]byte{0x01, 0x00, 0x41, 0x00, 0x0b}, name(body)...))...)
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
