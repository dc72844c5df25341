package host_test

import (
	"encoding/binary"
	"io"
	"net/http"
	"testing"

	"github.com/wasmfarm/wasmfarm/host"
)

// teModule is a guest that sets the response header "Transfer-Encoding:
// chunked" (response_header op 0) and writes body, unchunked.
func teModule(body string) []byte {
	sec := func(id byte, c []byte) []byte {
		return append(append([]byte{id}, binary.AppendUvarint(nil, uint64(len(c)))...), c...)
	}
	name := func(s string) []byte { return append(binary.AppendUvarint(nil, uint64(len(s))), s...) }
	i32 := func(v int) []byte { return append([]byte{0x41}, binary.AppendUvarint(nil, uint64(v))...) } // v < 64
	data := "Transfer-Encodingchunked" + body
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, sec(1, []byte{0x03, 0x60, 0x00, 0x01, 0x7f,
		0x60, 0x05, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f})...)
	imp := []byte{0x02}
	imp = append(append(append(imp, name("wasmfarm")...), name("response_header")...), 0x00, 0x01)
	imp = append(append(append(imp, name("wasmfarm")...), name("response_write")...), 0x00, 0x02)
	m = append(m, sec(2, imp)...)
	m = append(m, sec(3, []byte{0x02, 0x00, 0x00})...)
	m = append(m, sec(5, []byte{0x01, 0x00, 0x01})...)
	exp := []byte{0x03}
	exp = append(append(exp, name("wasmfarm_abi_version")...), 0x00, 0x02)
	exp = append(append(exp, name("handle")...), 0x00, 0x03)
	exp = append(append(exp, name("memory")...), 0x02, 0x00)
	m = append(m, sec(7, exp)...)
	version := []byte{0x00, 0x41, 0x01, 0x0b}
	h := []byte{0x00}
	for _, v := range []int{0, 0, 17, 17, 7} { // op, name at 0 (17 bytes), value at 17 (7)
		h = append(h, i32(v)...)
	}
	h = append(h, 0x10, 0x00, 0x1a)
	h = append(append(h, i32(24)...), i32(len(body))...)
	h = append(h, 0x10, 0x01, 0x1a, 0x41, 0x00, 0x0b)
	code := []byte{0x02}
	code = append(append(code, binary.AppendUvarint(nil, uint64(len(version)))...), version...)
	code = append(append(code, binary.AppendUvarint(nil, uint64(len(h)))...), h...)
	m = append(m, sec(10, code)...)
	return append(m, sec(11, append([]byte{0x01, 0x00, 0x41, 0x00, 0x0b}, name(data)...))...)
}

// TestGuestTransferEncodingDropped: the response's framing is the host's.
// A guest's Transfer-Encoding used to go out next to the host's
// Content-Length on the h1 connector, so a client read the body as chunks,
// and a body holding "0\r\n\r\n" and a response of its own answered the
// client's next request on the connection.
func TestGuestTransferEncodingDropped(t *testing.T) {
	forged := "0\r\n\r\nHTTP/1.1 200 OK\r\nX-Forged: yes\r\nContent-Length: 0\r\n\r\n"
	for _, conn := range []string{host.ConnectorH1, host.ConnectorNetHTTP} {
		t.Run(conn, func(t *testing.T) {
			_, base := newServer(t, host.Config{Connector: conn}, map[string][]byte{"/te": teModule(forged)})
			c := dialRaw(t, base)
			c.send("GET /te/ HTTP/1.1\r\nHost: x\r\n\r\nGET /te/ HTTP/1.1\r\nHost: x\r\n\r\n")
			for i := range 2 {
				resp, body := c.answer("GET")
				if te := resp.TransferEncoding; len(te) > 0 && resp.ContentLength >= 0 {
					t.Errorf("response %d: both Transfer-Encoding %v and Content-Length %d", i, te, resp.ContentLength)
				}
				if resp.Header.Get("X-Forged") != "" || body != forged {
					t.Fatalf("response %d: %v %q, want the guest's body as it wrote it", i, resp.Header, body)
				}
			}
			// Nothing more on the connection.
			c.send("GET /te/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			resp, _ := c.answer("GET")
			if _, err := io.Copy(io.Discard, c.br); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("third response: %v %v", resp.Status, err)
			}
		})
	}
}
