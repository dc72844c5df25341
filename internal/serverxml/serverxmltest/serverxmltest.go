// Package serverxmltest holds what the tests of the loaders built on
// package serverxml share: hostile inputs and the check that a loader's
// allocations and warnings stay bounded on them.
package serverxmltest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/wasmfarm/wasmfarm/internal/serverxml"
)

// PerWarning is what each warning may take: its message and a path of at
// most 256 bytes (names included in the message), and the copies of the
// slices holding it.
const PerWarning = 4 << 10

// Deep returns n nested start tags whose names are size letters long.
func Deep(n, size int) string {
	var sb strings.Builder
	for i := range n {
		sb.WriteString("<" + strings.Repeat(string(rune('a'+i%26)), size) + ">")
	}
	return sb.String()
}

// ManyAttributes returns open followed by elements (an element's start,
// e.g. `<Valve className="ReplicationValve"`) with 250 unknown attributes
// each, until the text is at least size bytes.
func ManyAttributes(open, element string, size int) string {
	var sb strings.Builder
	sb.WriteString(open)
	for sb.Len() < size {
		sb.WriteString(element)
		for j := range 250 {
			fmt.Fprintf(&sb, ` %c%d=""`, 'a'+j%26, j)
		}
		sb.WriteString("/>")
	}
	return sb.String()
}

// CheckBounded runs parse on data and fails t when it allocated more than
// 64 times the input plus PerWarning for each warning kept, or returned
// more than MaxWarnings warnings and a last one counting the others.
func CheckBounded(t *testing.T, data []byte, parse func([]byte) ([]serverxml.Warning, error)) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ws, err := parse(data)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	if limit := 64*uint64(len(data)) + PerWarning*serverxml.MaxWarnings; alloc > limit {
		t.Errorf("%d-byte input, %d warnings: %d bytes allocated (%.0fx)", len(data), len(ws), alloc, float64(alloc)/float64(len(data)))
	}
	if len(ws) > serverxml.MaxWarnings+1 {
		t.Errorf("%d warnings", len(ws))
	} else if len(ws) == serverxml.MaxWarnings+1 && !strings.HasSuffix(ws[len(ws)-1].Msg, " more warnings not shown") {
		t.Errorf("last warning %v", ws[len(ws)-1])
	}
	t.Logf("%d bytes, %d warnings, %d bytes allocated (%.1fx), error %.200v", len(data), len(ws), alloc, float64(alloc)/float64(len(data)), err)
}
