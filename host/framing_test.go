package host_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/wasmfarm/wasmfarm/host"
	"github.com/wasmfarm/wasmfarm/host/internal/wasmtest"
)

// teModule is a guest that sets the response header "Transfer-Encoding:
// chunked" (response_header op 0) and writes body, unchunked.
func teModule(body string) []byte {
	const header, write = 0, 1
	var code []byte
	for _, v := range []int{0, 0, 17, 17, 7} { // op, name at 0 (17 bytes), value at 17 (7)
		code = append(code, wasmtest.I32(v)...)
	}
	code = append(code, wasmtest.Call(header)...)
	code = append(append(code, wasmtest.I32(24)...), wasmtest.I32(len(body))...)
	code = append(append(code, wasmtest.Call(write)...), wasmtest.I32(0)...)
	return wasmtest.Guest([]wasmtest.Import{{Name: "response_header", Params: 5}, {Name: "response_write", Params: 2}},
		"Transfer-Encodingchunked"+body, code)
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
