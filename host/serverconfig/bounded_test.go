package serverconfig

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/wasmfarm/wasmfarm/internal/serverxml"
)

// perWarning is what each warning may take: its message and a path of at
// most 256 bytes (names included in the message), and the copies of the
// slices holding it.
const perWarning = 4 << 10

// TestParseAllocationBounded: a hostile file makes the loader allocate at
// most a small multiple of its size (plus a few kB for each warning it
// keeps), and return at most 1000 warnings and a last one counting the
// others, whether they are the parser's (each
// with the path of a deep element) or the cluster's.
func TestParseAllocationBounded(t *testing.T) {
	deep := func(n, size int) string {
		var sb strings.Builder
		for i := range n {
			sb.WriteString("<" + strings.Repeat(string(rune('a'+i%26)), size) + ">")
		}
		return sb.String()
	}
	var valves strings.Builder
	valves.WriteString("<Cluster>")
	for valves.Len() < 3<<20 {
		valves.WriteString(`<Valve className="ReplicationValve"`)
		for j := range 250 {
			fmt.Fprintf(&valves, ` %c%d=""`, 'a'+j%26, j)
		}
		valves.WriteString("/>")
	}
	tests := []struct{ name, in string }{
		// 60 ancestors with 20000-letter names, and 150 unquoted values,
		// each a parser warning with a 1.2 MB path.
		{"long names", "<Server>" + deep(60, 20000) + strings.Repeat("<X a=1/>", 150)},
		// Names of 200 letters, below any sensible limit, and 20000
		// unquoted values: the parser keeps 1000 warnings, each with a
		// 12 kB path.
		{"deep", "<Server>" + deep(60, 200) + strings.Repeat("<X a=1 b=2 c=3 d=4/>", 5000)},
		// 3 MiB of unknown attributes of the cluster's valves.
		{"attributes", valves.String()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.in)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, ws, err := Parse("f.xml", data)
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			if limit := 64*uint64(len(data)) + perWarning*serverxml.MaxWarnings; alloc > limit {
				t.Errorf("%d-byte input, %d warnings: %d bytes allocated (%.0fx)", len(data), len(ws), alloc, float64(alloc)/float64(len(data)))
			}
			if len(ws) > serverxml.MaxWarnings+1 {
				t.Errorf("%d warnings", len(ws))
			} else if len(ws) == serverxml.MaxWarnings+1 && !strings.HasSuffix(ws[len(ws)-1].Msg, " more warnings not shown") {
				t.Errorf("last warning %v", ws[len(ws)-1])
			}
			t.Logf("%d bytes, %d warnings, %d bytes allocated (%.1fx), error %.200v", len(data), len(ws), alloc, float64(alloc)/float64(len(data)), err)
		})
	}
}
