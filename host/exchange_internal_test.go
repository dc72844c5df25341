package host

import (
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/host/session"
)

// TestExchangeReset: reset clears every field of an exchange but the
// buffers it keeps for reuse (a field added to Exchange and not to reset
// fails here).
func TestExchangeReset(t *testing.T) {
	x := &Exchange{
		Request: &http.Request{}, Path: "/p", Context: &Context{}, RequestedSessionID: "id",
		SessionIDFromURL: true, Status: 500, Header: http.Header{"A": {"b"}}, Body: []byte("x"),
		SessionCookie: "c", Delta: &session.Delta{}, Err: errors.New("e"), Start: time.Now(),
		Attributes: map[string]string{"a": "b"}, clientSessionID: "cid",
		body: make([]byte, 3, 16),
	}
	x.contentLength(42)
	kept := map[string]bool{"call": true, "txn": true, "body": true, "cl": true, "ctype": true} // ctype is overwritten before use
	v := reflect.ValueOf(x).Elem()
	for i := range v.NumField() { // so that the check below means something
		if name := v.Type().Field(i).Name; !kept[name] && v.Field(i).IsZero() {
			t.Fatalf("the test does not set %s", name)
		}
	}
	x.reset()
	for i := range v.NumField() {
		if name := v.Type().Field(i).Name; !kept[name] && !v.Field(i).IsZero() {
			t.Errorf("reset left %s set", name)
		}
	}
	if len(x.body) != 0 || cap(x.body) != 16 {
		t.Errorf("body: len %d cap %d, want 0 and the kept 16", len(x.body), cap(x.body))
	}
	if x.cl.n != 42 {
		t.Error("reset dropped the cached Content-Length")
	}
}

// TestDateHeader: the Date value is made once a second and is the one
// net/http would write.
func TestDateHeader(t *testing.T) {
	s := &Server{}
	t0 := time.Date(2026, 11, 22, 3, 4, 5, 100, time.FixedZone("X", 3600))
	a := s.dateHeader(t0)
	if want := t0.UTC().Format(http.TimeFormat); len(a) != 1 || a[0] != want || a[0] != "Sun, 22 Nov 2026 02:04:05 GMT" {
		t.Fatalf("Date %q, want %q", a, want)
	}
	if b := s.dateHeader(t0.Add(999 * time.Millisecond)); &b[0] != &a[0] {
		t.Error("a second Date in the same second was formatted again")
	}
	if c := s.dateHeader(t0.Add(time.Second)); c[0] != "Sun, 22 Nov 2026 02:04:06 GMT" {
		t.Errorf("next second: %q", c)
	}
}
