//go:build wasip1

// Command faulty is a misbehaving app for the host's sandbox tests; it is
// not embedded in the wasmapps package.
//
//	/ok                 counter (like the counter app)
//	/loop               loops forever
//	/panic              sets an attribute, then panics
//	/exit               exits the instance (os.Exit(3))
//	/oom                allocates until out of memory
//	/big?n=N            sets an attribute of N bytes, reports the error
//	/bigbody?n=N        writes a body of N bytes, reports the error
//	/sleep?ms=N         sleeps N ms, then answers
//	/echo               echoes the body, method, and header X-Test
//	/login              changes the session id
//	/head?m=M           sets the response head M names (see head)
//	/mutate             changes the request's fields, answers what they were
package main

import (
	"os"
	"strconv"
	"time"

	"github.com/wasmfarm/wasmfarm/wasmapps/sdk"
)

var hoard [][]byte

func init() {
	sdk.HandleFunc(serve)
	sdk.OnSessionCreated(func(s *sdk.Session) { s.SetString("hook:created", "yes") })
	sdk.OnSessionDestroyed(func(s *sdk.Session) {
		sdk.Log(sdk.LevelInfo, "destroyed "+s.ID()+" counter="+s.GetString("counter"))
	})
}

func main() {}

func serve(w sdk.ResponseWriter, r *sdk.Request, s *sdk.Session) {
	n, _ := strconv.Atoi(r.FormValue("n"))
	switch r.AppPath() {
	case "/ok":
		c, _ := s.GetInt("counter")
		s.SetInt("counter", c+1)
		w.WriteString(strconv.FormatInt(c+1, 10))
	case "/loop":
		for i := 0; ; i++ {
			if i < 0 {
				break
			}
		}
	case "/panic":
		s.SetString("counter", "poisoned")
		panic("faulty: asked to panic")
	case "/exit":
		s.SetString("counter", "poisoned")
		os.Exit(3)
	case "/oom":
		for {
			hoard = append(hoard, make([]byte, 8<<20))
		}
	case "/big":
		if err := s.Set("big", make([]byte, n)); err != nil {
			w.WriteHeader(413)
			w.WriteString(err.Error())
			return
		}
		w.WriteString("ok")
	case "/bigbody":
		if _, err := w.Write(make([]byte, n)); err != nil {
			w.WriteHeader(413)
			return
		}
	case "/sleep":
		ms, _ := strconv.Atoi(r.FormValue("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		w.WriteString("slept")
	case "/echo":
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Test", r.HeaderValue("X-Test"))
		w.Header().Set("X-Headers", strconv.Itoa(r.Header().Len()))
		w.Write(r.Body())
	case "/head":
		head(w, r.FormValue("m"), r.FormValue("v"))
	case "/mutate":
		w.WriteString(r.Method + " " + r.Path + " " + r.RawQuery + " " + r.ContextPath)
		r.Method, r.Path, r.RawQuery, r.ContextPath = "X", "/f/changed", "changed", "/changed"
	case "/login":
		old := s.ID()
		id, err := s.ChangeID()
		if err != nil {
			w.WriteHeader(500)
			return
		}
		w.WriteString(old + " " + id)
	default:
		w.WriteHeader(404)
	}
}

// head sets one of a few response heads, for the tests of the SDK's reuse
// of the previous head: literal values (the same strings on every
// request) and a value from the query (a new string on every request).
func head(w sdk.ResponseWriter, m, v string) {
	h := w.Header()
	switch m {
	case "a":
		h.Set("Content-Type", "text/plain")
		h.Set("X-A", "1")
	case "b": // X-A no longer set
		h.Set("Content-Type", "text/plain")
	case "c": // a status
		w.WriteHeader(201)
		h.Set("Content-Type", "text/plain")
		h.Set("X-A", "1")
	case "d": // two values
		h.Set("Content-Type", "text/plain")
		h.Add("X-A", "1")
		h.Add("X-A", "2")
	case "v": // a value from the query
		h.Set("Content-Type", "text/plain")
		h.Set("X-A", v)
	case "n": // a new name
		h.Set("Content-Type", "text/plain")
		h.Set("X-A", "1")
		h.Set("X-New", "new")
	}
	w.WriteString(m)
}
