package httpbench

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wasmfarm/wasmfarm/host/session"
)

// nativeCounter is the native Go twin of the counter app's /json route:
// same session manager, same attribute, same JSON, same cookie.
type nativeCounter struct {
	m     *session.StandardManager
	route string
	path  string
	txns  sync.Pool
}

func newNativeCounter(route, path string) (*nativeCounter, error) {
	m, err := session.NewStandardManager(session.Config{JvmRoute: route})
	if err != nil {
		return nil, err
	}
	h := &nativeCounter{m: m, route: route, path: path}
	h.txns.New = func() any { return new(session.Txn) }
	return h, nil
}

func (h *nativeCounter) Close() { h.m.Close() }

func (h *nativeCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := ""
	if c, err := r.Cookie("JSESSIONID"); err == nil {
		id = c.Value
	}
	tx := h.txns.Get().(*session.Txn)
	defer h.txns.Put(tx)
	tx.Reset(h.m, h.m.Limits(), id, time.Now())
	if _, err := tx.Open(true); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	var n int64
	if v, ok := tx.Get("counter"); ok {
		n, _ = strconv.ParseInt(string(v), 10, 64)
	}
	n++
	var buf [20]byte
	tx.Set("counter", strconv.AppendInt(buf[:0], n, 10))
	created := tx.CreationTime().UnixMilli()
	d := tx.Delta()
	if err := h.m.Commit(d); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	sid := d.FinalID()
	if sid != id {
		c := http.Cookie{Name: "JSESSIONID", Value: sid, Path: h.path, HttpOnly: true, SameSite: http.SameSiteLaxMode}
		w.Header().Add("Set-Cookie", c.String())
	}
	var b strings.Builder
	b.WriteString(`{"session":`)
	b.WriteString(strconv.Quote(sid))
	b.WriteString(`,"node":`)
	b.WriteString(strconv.Quote(h.route))
	b.WriteString(`,"created":`)
	b.WriteString(strconv.FormatInt(created, 10))
	b.WriteString(`,"counter":`)
	b.WriteString(strconv.FormatInt(n, 10))
	b.WriteString("}\n")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.Write([]byte(b.String()))
}
