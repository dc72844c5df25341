package tribesconfig

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

// hostile returns inputs made to multiply the memory the loader allocates
// for its warnings: long element names in every warning's path, and more
// unknown elements and attributes than anyone reads.
func hostile() []struct{ name, in string } {
	deep := func(n, size int) string {
		var sb strings.Builder
		for i := range n {
			sb.WriteString("<" + strings.Repeat(string(rune('a'+i%26)), size) + ">")
		}
		return sb.String()
	}
	var attrs strings.Builder
	attrs.WriteString("<Cluster><Channel>")
	for attrs.Len() < 3<<20 {
		attrs.WriteString(`<Interceptor className="TcpFailureDetector"`)
		for j := range 250 {
			fmt.Fprintf(&attrs, ` %c%d=""`, 'a'+j%26, j)
		}
		attrs.WriteString("/>")
	}
	return []struct{ name, in string }{
		// 60 ancestors with 20000-letter names: each warning's path was
		// 1.2 MB.
		{"long names", deep(60, 20000) + "<Cluster><Channel>" + strings.Repeat("<X/>", 100)},
		// Names of 200 letters, below any sensible limit, and 9000
		// unknown elements, each with a 12 kB path.
		{"deep", deep(60, 200) + "<Cluster><Channel>" + strings.Repeat("<X/>", 9000)},
		// 3 MiB of unknown attributes, each a warning with a suggestion.
		{"attributes", attrs.String()},
	}
}

// TestParseAllocationBounded: a hostile file makes the loader allocate at
// most a small multiple of its size (plus a few kB for each warning it
// keeps), and return at most 1000 warnings and a last one counting the
// others.
func TestParseAllocationBounded(t *testing.T) {
	for _, tc := range hostile() {
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
