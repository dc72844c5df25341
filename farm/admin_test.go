package farm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAdminHandler(t *testing.T) {
	_, ms := newCluster(t, 3, nil)
	srv := httptest.NewServer(NewAdminHandler(ms[0].d, "s3cret"))
	defer srv.Close()
	do := func(method, target, token string, body []byte) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+target, bytes.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	mod := counterModule(100<<10, 1)
	tests := []struct {
		name, method, target, token string
		body                        []byte
		status                      int
		contains                    string
	}{
		{"no token", "GET", "/apps", "", nil, 401, "bearer token"},
		{"wrong token", "PUT", "/apps?path=/shop", "s3cre", mod, 401, "bearer token"},
		{"unknown endpoint", "GET", "/x", "s3cret", nil, 404, "no such endpoint"},
		{"bad path", "PUT", "/apps?path=shop", "s3cret", mod, 400, "bad context path"},
		{"not wasm", "PUT", "/apps?path=/shop", "s3cret", []byte("nope"), 422, "wasm module"},
		{"deploy", "PUT", "/apps?path=/shop&name=shop.wasm", "s3cret", mod, 200, `"member": "c"`},
		{"list", "GET", "/apps", "s3cret", nil, 200, `"path": "/shop"`},
		{"undeploy", "DELETE", "/apps?path=/shop", "s3cret", nil, 200, `"op": "undeploy"`},
		{"undeploy again", "DELETE", "/apps?path=/shop", "s3cret", nil, 404, "no app"},
		{"method", "PATCH", "/apps", "s3cret", nil, 405, "not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(tc.method, tc.target, tc.token, tc.body)
			if code != tc.status || !strings.Contains(body, tc.contains) {
				t.Errorf("%s %s = %d %s; want %d containing %q", tc.method, tc.target, code, body, tc.status, tc.contains)
			}
		})
	}

	t.Run("too large", func(t *testing.T) {
		ms[0].d.cfg.MaxModuleBytes = 1 << 10
		defer func() { ms[0].d.cfg.MaxModuleBytes = DefaultMaxModuleBytes }()
		if code, body := do("PUT", "/apps?path=/shop", "s3cret", mod); code != 413 {
			t.Errorf("got %d %s", code, body)
		}
		// Without a Content-Length the limit still holds.
		req, _ := http.NewRequest("PUT", srv.URL+"/apps?path=/shop", io.MultiReader(bytes.NewReader(mod)))
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Errorf("chunked upload over the limit: %d", resp.StatusCode)
		}
	})

	t.Run("progress", func(t *testing.T) {
		req, _ := http.NewRequest("PUT", srv.URL+"/apps?path=/shop&progress=1", bytes.NewReader(mod))
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var phases []string
		var last AdminResponse
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var line AdminResponse
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			if line.Progress != nil && (len(phases) == 0 || phases[len(phases)-1] != line.Progress.Phase) {
				phases = append(phases, line.Progress.Phase)
			}
			last = line
		}
		if strings.Join(phases, ",") != "deploy,transfer,results" || last.Report == nil || last.Error != "" || len(last.Report.Members) != 3 {
			t.Errorf("phases %v, last line %+v", phases, last)
		}
		mustServe(t, ms, "/shop", hexDigest(mod))
	})

	t.Run("empty token refuses all", func(t *testing.T) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/apps", nil)
		req.Header.Set("Authorization", "Bearer ")
		NewAdminHandler(ms[0].d, "").ServeHTTP(rec, req)
		if rec.Code != 401 {
			t.Errorf("got %d", rec.Code)
		}
	})
}

func TestLoadOrCreateToken(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sub", "admin.token")
	tok, created, err := LoadOrCreateToken(file)
	if err != nil || !created || len(tok) != 64 {
		t.Fatalf("create: %q %v %v", tok, created, err)
	}
	if info, err := os.Stat(file); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", info.Mode(), err)
	}
	again, created, err := LoadOrCreateToken(file)
	if err != nil || created || again != tok {
		t.Fatalf("load: %q %v %v", again, created, err)
	}
	os.Chmod(file, 0o644)
	if _, _, err := LoadOrCreateToken(file); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Errorf("world-readable token file: %v", err)
	}
	os.WriteFile(file, []byte("\n"), 0o600)
	os.Chmod(file, 0o600)
	if _, _, err := LoadOrCreateToken(file); err == nil {
		t.Error("empty token file accepted")
	}
}
