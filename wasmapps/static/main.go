//go:build wasip1

// Command static serves the files embedded under files/ (index.html,
// style.css, logo.svg, hello.txt) without touching the session, and one
// session page, /static/visits, that counts visits. It shows the
// replication valve's filter: static requests produce no session delta.
package main

import (
	"embed"
	"path"
	"strconv"
	"strings"

	"github.com/wasmfarm/wasmfarm/wasmapps/sdk"
)

//go:embed files
var files embed.FS

var types = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".txt":  "text/plain; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".png":  "image/png",
}

func init() { sdk.HandleFunc(serve) }

func main() {}

func serve(w sdk.ResponseWriter, r *sdk.Request, s *sdk.Session) {
	p := r.AppPath()
	if p == "/visits" {
		n, _ := s.GetInt("visits")
		s.SetInt("visits", n+1)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteString("session " + s.ID() + " on node " + sdk.Node() + ": " + strconv.FormatInt(n+1, 10) + " visits\n")
		return
	}
	if r.Method != "GET" && r.Method != "HEAD" {
		w.Header().Set("Allow", "GET, HEAD")
		w.WriteHeader(405)
		return
	}
	if strings.HasSuffix(p, "/") {
		p += "index.html"
	}
	name := path.Clean("files" + p)
	b, err := files.ReadFile(name)
	if err != nil {
		w.WriteHeader(404)
		w.WriteString("not found\n")
		return
	}
	if t, ok := types[path.Ext(name)]; ok {
		w.Header().Set("Content-Type", t)
	}
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Write(b)
}
