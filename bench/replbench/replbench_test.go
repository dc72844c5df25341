package replbench

import (
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/bench/httpbench"
)

// TestRunSmall runs the throughput benchmark briefly on plain and a
// 2-member synchronous cluster, with the load in this process.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("a benchmark run; skipped with -short")
	}
	ts := DefaultTargets()
	res, err := Run(t.Context(), Config{Targets: []Target{ts[0], ts[2]},
		Load: httpbench.Config{Connections: 2, Duration: 400 * time.Millisecond, Warmup: 50 * time.Millisecond, Rounds: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Name != "plain" || res[1].Name != "delta-sync-2" {
		t.Fatalf("results %+v", res)
	}
	for _, r := range res {
		if r.Requests == 0 || r.Errors != 0 {
			t.Errorf("%s: %d requests, %d errors", r.Name, r.Requests, r.Errors)
		}
		if len(r.RoundRatios) != 2 {
			t.Errorf("%s: round ratios %v, want one per round", r.Name, r.RoundRatios)
		}
		for _, x := range r.RoundRatios {
			if x <= 0 || r.Name == "plain" && x != 1 {
				t.Errorf("%s: round ratios %v", r.Name, r.RoundRatios)
			}
		}
	}
}

// TestMeasureTransferSmall transfers a few sessions and checks that all
// arrived and the figures are filled.
func TestMeasureTransferSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("a benchmark run; skipped with -short")
	}
	r, err := MeasureTransfer(t.Context(), 2500, 100, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sessions != 2500 || !r.Complete || r.TransferMs <= 0 || r.AttributeBytes < 100 {
		t.Fatalf("report %+v", r)
	}
}
