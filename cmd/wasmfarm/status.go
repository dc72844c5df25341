package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wasmfarm/wasmfarm/host/monitor"
)

// runStatus prints a member's view of the cluster as tables: the members
// and their apps, and the apps with their sessions and replication.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := fs.String("admin", "http://127.0.0.1:9090", "a member's admin endpoint")
	timeout := fs.Duration("timeout", 5*time.Second, "request timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(*admin, "/")+"/status", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("%s/status: %s: %s", *admin, resp.Status, strings.TrimSpace(string(b)))
	}
	var st monitor.Snapshot
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&st); err != nil {
		return fmt.Errorf("%s/status: %w", *admin, err)
	}
	if st.Node.JvmRoute == "" && st.Node.Member == "" && len(st.Apps) == 0 {
		return errors.New("the answer is not a wasmfarm status")
	}
	ready := "ready"
	if !st.Node.Ready {
		ready = "NOT READY"
	}
	fmt.Fprintf(stdout, "member %s (%s) %s\n\n", st.Node.JvmRoute, st.Node.Member, ready)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tJVMROUTE\tAPPS")
	fmt.Fprintf(tw, "%s (this one)\t%s\t%s\n", st.Node.Member, st.Node.JvmRoute, appPaths(st.Apps))
	for _, m := range st.Members {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", m.Name, m.JvmRoute, strings.Join(m.Apps, " "))
	}
	tw.Flush()
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tDIGEST\tMANAGER\tSESSIONS\tCREATED\tEXPIRED\tSENT\tRECEIVED\tSTATE TRANSFER")
	for _, a := range st.Apps {
		d := a.Digest
		if len(d) > 12 {
			d = d[:12]
		}
		if m := a.Manager; m != nil {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d msgs %s\t%d msgs %s\t%d in %s\n", a.Path, d, m.Kind, a.ActiveSessions, m.SessionsCreated, m.SessionsExpired,
				m.Replicated, bytesIEC(m.ReplicatedBytes), m.Received, bytesIEC(m.ReceivedBytes), m.StateTransferred, m.StateTransfer.Round(time.Millisecond))
		} else {
			fmt.Fprintf(tw, "%s\t%s\tlocal\t%d\t-\t-\t-\t-\t-\n", a.Path, d, a.ActiveSessions)
		}
	}
	tw.Flush()
	if v := st.Valve; v != nil {
		fmt.Fprintf(stdout, "\nReplicationValve: %d requests, %d replications (%s), %d filtered, %d failed, %s spent; JvmRouteBinderValve: %d ids rewritten\n",
			v.Requests, v.Replications, bytesIEC(v.Bytes), v.Filtered, v.Failures, v.Time.Round(time.Millisecond), v.JvmRouteRewrites)
	}
	return nil
}

func appPaths(apps []monitor.App) string {
	var p []string
	for _, a := range apps {
		p = append(p, a.Path)
	}
	return strings.Join(p, " ")
}

func bytesIEC(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
