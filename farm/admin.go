package farm

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// NewAdminHandler returns the admin HTTP API of d:
//
//	PUT    /apps?path=/shop[&name=shop.wasm][&progress=1]   body: the module
//	DELETE /apps?path=/shop
//	GET    /apps
//
// Every request needs "Authorization: Bearer <token>" (compared in
// constant time); an empty token refuses every request. PUT streams the
// body to TempDir (at most MaxModuleBytes: 413 beyond) and farms it out;
// it answers the [Report] as JSON: 200 when every member deployed it, 502
// when some failed (the report says which), 422 when this member refused
// the module (then no other member got it), with {"error": "..."}. With
// progress=1 the answer is NDJSON instead, always 200: {"progress":
// [Progress]} lines while the deploy runs, then one {"report": ...,
// "error": "..."} line. DELETE answers the undeploy [Report] (404 when no
// app is there); GET the [ClusterApps].
func NewAdminHandler(d *Deployer, token string) http.Handler {
	return &admin{d: d, token: []byte(token)}
}

type admin struct {
	d     *Deployer
	token []byte
}

// AdminResponse is a line or body of the admin API's answers.
type AdminResponse struct {
	Progress *Progress    `json:"progress,omitempty"`
	Report   *Report      `json:"report,omitempty"`
	Apps     *ClusterApps `json:"apps,omitempty"`
	Error    string       `json:"error,omitempty"`
}

func (a *admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !a.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wasmfarm admin"`)
		writeJSON(w, http.StatusUnauthorized, AdminResponse{Error: "missing or wrong bearer token"})
		return
	}
	if r.URL.Path != "/apps" {
		writeJSON(w, http.StatusNotFound, AdminResponse{Error: "no such endpoint; try /apps"})
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		apps, err := a.d.ClusterApps(r.Context())
		if err != nil {
			writeJSON(w, statusOf(err), AdminResponse{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, AdminResponse{Apps: apps})
	case http.MethodPut, http.MethodPost:
		a.deploy(w, r)
	case http.MethodDelete:
		path := r.URL.Query().Get("path")
		rep, err := a.d.Undeploy(r.Context(), path)
		writeReport(w, rep, err)
	default:
		w.Header().Set("Allow", "GET, PUT, DELETE")
		writeJSON(w, http.StatusMethodNotAllowed, AdminResponse{Error: "method not allowed"})
	}
}

func (a *admin) authorized(r *http.Request) bool {
	if len(a.token) == 0 {
		return false
	}
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), a.token) == 1
}

func (a *admin) deploy(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	path := q.Get("path")
	if err := CheckPath(path); err != nil {
		writeJSON(w, http.StatusBadRequest, AdminResponse{Error: err.Error()})
		return
	}
	limit := a.d.cfg.MaxModuleBytes
	if r.ContentLength > limit {
		writeJSON(w, http.StatusRequestEntityTooLarge, AdminResponse{Error: fmt.Sprintf("module of %d bytes, limit %d", r.ContentLength, limit)})
		return
	}
	body := http.MaxBytesReader(w, r.Body, limit+1) // Deploy sees the +1 and says ErrModuleTooLarge
	opts := DeployOptions{Name: q.Get("name")}
	if q.Get("progress") == "" {
		rep, err := a.d.Deploy(r.Context(), path, body, opts)
		writeReport(w, rep, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	var mu sync.Mutex
	last := time.Time{}
	opts.Progress = func(p Progress) {
		// At most ~20 lines a second, but always the last of a phase.
		if now := time.Now(); now.Sub(last) > 50*time.Millisecond || p.Done == p.Total {
			last = now
			mu.Lock()
			enc.Encode(AdminResponse{Progress: &p})
			rc.Flush()
			mu.Unlock()
		}
	}
	rep, err := a.d.Deploy(r.Context(), path, body, opts)
	resp := AdminResponse{Report: rep}
	if err != nil {
		resp.Error = err.Error()
	}
	mu.Lock()
	enc.Encode(resp)
	mu.Unlock()
}

func writeReport(w http.ResponseWriter, rep *Report, err error) {
	resp := AdminResponse{Report: rep}
	if err != nil {
		resp.Error = err.Error()
	}
	writeJSON(w, statusOf(err), resp)
}

// statusOf maps an operation's error to an HTTP status.
func statusOf(err error) int {
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrModuleTooLarge), errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrBadPath):
		return http.StatusBadRequest
	case errors.Is(err, ErrAppNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrMembersFailed):
		return http.StatusBadGateway
	case errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable
	default:
		return http.StatusUnprocessableEntity // refused by this member's host
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// LoadOrCreateToken returns the admin token stored in file, or, when the
// file does not exist, generates one (32 random bytes, hex), stores it with
// mode 0600 (creating the directory with 0700) and reports created. A file
// that others can read, or that holds no token, is an error.
func LoadOrCreateToken(file string) (token string, created bool, err error) {
	b, err := os.ReadFile(file)
	if err == nil {
		info, serr := os.Stat(file)
		if serr == nil && info.Mode().Perm()&0o077 != 0 {
			return "", false, fmt.Errorf("farm: token file %s has mode %v; want 0600", file, info.Mode().Perm())
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", false, fmt.Errorf("farm: token file %s is empty", file)
		}
		return tok, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("farm: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return "", false, fmt.Errorf("farm: %w", err)
	}
	var raw [32]byte
	rand.Read(raw[:])
	tok := hex.EncodeToString(raw[:])
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race
			return LoadOrCreateToken(file)
		}
		return "", false, fmt.Errorf("farm: %w", err)
	}
	_, err = f.WriteString(tok + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
		return "", false, fmt.Errorf("farm: %w", err)
	}
	return tok, true, nil
}
