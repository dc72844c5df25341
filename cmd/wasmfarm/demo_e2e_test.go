package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/internal/syncbuf"
)

// TestDemo drives "wasmfarm demo" as a user would: start it, use the
// counter through the balancer, kill the member serving the session, see
// the session continue on another member, Ctrl-C, and no process left.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes; skipped with -short")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "demo", "-http", "127.0.0.1:0", "-member-port", "0", "-admin-port", "0")
	cmd.Env = append(os.Environ(), "WASMFARM_TEST_MAIN=1")
	out := new(syncbuf.Buffer)
	cmd.Stderr = out
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	front := make(chan string, 1)
	pids := map[string]int{}
	var pidsMu = make(chan struct{}, 1)
	pidsMu <- struct{}{}
	go func() {
		reFront := regexp.MustCompile(`open (http://127\.0\.0\.1:[0-9]+)/counter/`)
		reMember := regexp.MustCompile(`^  (jvm_[a-z]) +([0-9]+) `)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			out.Write([]byte(line + "\n"))
			if m := reMember.FindStringSubmatch(line); m != nil {
				<-pidsMu
				pids[m[1]], _ = strconv.Atoi(m[2])
				pidsMu <- struct{}{}
			}
			if m := reFront.FindStringSubmatch(line); m != nil {
				front <- m[1]
			}
		}
		cmd.Wait()
		close(done)
	}()
	defer func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("demo output:\n%s", out)
		}
	}()
	var url string
	select {
	case url = <-front:
	case <-done:
		t.Fatal("demo exited early")
	case <-time.After(90 * time.Second):
		t.Fatal("demo did not print its URL within 90 s")
	}
	// The member table follows the URL line.
	waitFor(t, "the member table", 5*time.Second, func() bool { <-pidsMu; n := len(pids); pidsMu <- struct{}{}; return n == 3 })

	client := &http.Client{Timeout: 5 * time.Second}
	get := func(cookie string) (counterState, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url+"/counter/json", nil)
		if cookie != "" {
			req.Header.Set("Cookie", "JSESSIONID="+cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var st counterState
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return st, st.Session
	}
	st, id := get("")
	st, id = get(id)
	if st.Counter != 2 {
		t.Fatalf("second request: %+v", st)
	}
	<-pidsMu
	victim := pids[st.Node]
	pidsMu <- struct{}{}
	if victim == 0 {
		t.Fatalf("no pid for %s", st.Node)
	}
	syscall.Kill(victim, syscall.SIGKILL)
	after, _ := get(id)
	if after.Counter != 3 || after.Node == st.Node {
		t.Fatalf("after killing %s: %+v", st.Node, after)
	}

	cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("demo did not stop within 20 s of Ctrl-C")
	}
	<-pidsMu
	defer func() { pidsMu <- struct{}{} }()
	for route, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("member %s (pid %d) still running after the demo stopped", route, pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
