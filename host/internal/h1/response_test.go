package h1

import (
	"net/http"
	"strings"
	"testing"
)

// TestAppendHead: a value cannot end the head early, a field name that
// is not a token is dropped, and the connector's Connection replaces the
// handler's.
func TestAppendHead(t *testing.T) {
	h := http.Header{
		"X-Split":      {"a\r\nInjected: 1"},
		"Bad Name":     {"x"},
		"Connection":   {"keep-alive"},
		"Content-Type": {"text/plain"},
	}
	got := string(AppendHead(nil, 599, h, "close"))
	if !strings.HasPrefix(got, "HTTP/1.1 599 status code 599\r\n") || !strings.HasSuffix(got, "\r\n\r\n") {
		t.Fatalf("head %q", got)
	}
	for _, want := range []string{"X-Split: a  Injected: 1\r\n", "Content-Type: text/plain\r\n", "Connection: close\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("head lacks %q: %q", want, got)
		}
	}
	for _, bad := range []string{"\nInjected", "Bad Name", "keep-alive"} {
		if strings.Contains(got, bad) {
			t.Errorf("head holds %q: %q", bad, got)
		}
	}
	if got := string(AppendHead(nil, 200, http.Header{"Connection": {"x"}}, "")); got != "HTTP/1.1 200 OK\r\nConnection: x\r\n\r\n" {
		t.Errorf("without a connection value: %q", got)
	}
}
