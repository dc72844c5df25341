//go:build wasip1

// Command cart is a shopping cart kept in the session, one attribute per
// item ("item:<name>" = quantity) plus the time of the last change, to show
// deltas of several attributes.
//
//	/cart                      the cart as JSON {"session","node","items":{name:qty},"updated"}
//	/cart/add?item=X[&qty=N]   add N (default 1) of X
//	/cart/remove?item=X        remove X
//	/cart/clear                remove every item
package main

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wasmfarm/wasmfarm/wasmapps/sdk"
)

func init() { sdk.HandleFunc(serve) }

func main() {}

const prefix = "item:"

func serve(w sdk.ResponseWriter, r *sdk.Request, s *sdk.Session) {
	item := r.FormValue("item")
	switch r.AppPath() {
	case "/", "/json":
	case "/add":
		if item == "" || len(item) > 64 {
			bad(w, "item must be 1 to 64 bytes")
			return
		}
		qty := int64(1)
		if q := r.FormValue("qty"); q != "" {
			n, err := strconv.ParseInt(q, 10, 32)
			if err != nil || n <= 0 || n > 1000 {
				bad(w, "qty must be 1 to 1000")
				return
			}
			qty = n
		}
		have, _ := s.GetInt(prefix + item)
		if err := s.SetInt(prefix+item, have+qty); err != nil {
			bad(w, err.Error())
			return
		}
		touch(s)
	case "/remove":
		s.Remove(prefix + item)
		touch(s)
	case "/clear":
		for _, k := range s.Keys() {
			if strings.HasPrefix(k, prefix) {
				s.Remove(k)
			}
		}
		touch(s)
	default:
		w.WriteHeader(404)
		w.WriteString("not found\n")
		return
	}
	writeCart(w, s)
}

func touch(s *sdk.Session) { s.SetInt("cart:updated", time.Now().UnixMilli()) }

func bad(w sdk.ResponseWriter, msg string) {
	w.WriteHeader(400)
	w.WriteString(msg + "\n")
}

func writeCart(w sdk.ResponseWriter, s *sdk.Session) {
	var names []string
	for _, k := range s.Keys() {
		if strings.HasPrefix(k, prefix) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	b := []byte(`{"session":` + strconv.Quote(s.ID()) + `,"node":` + strconv.Quote(sdk.Node()) + `,"items":{`)
	for i, k := range names {
		if i > 0 {
			b = append(b, ',')
		}
		n, _ := s.GetInt(k)
		b = strconv.AppendQuote(b, strings.TrimPrefix(k, prefix))
		b = append(b, ':')
		b = strconv.AppendInt(b, n, 10)
	}
	updated, _ := s.GetInt("cart:updated")
	b = append(b, `},"updated":`...)
	b = strconv.AppendInt(b, updated, 10)
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}
