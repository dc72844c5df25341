package serverconfig

import (
	"strings"
	"testing"

	"github.com/wasmfarm/wasmfarm/internal/serverxml"
	"github.com/wasmfarm/wasmfarm/internal/serverxml/serverxmltest"
)

// TestParseAllocationBounded: a hostile file makes the loader allocate at
// most a small multiple of its size (plus a few kB for each warning it
// keeps), and return at most 1000 warnings and a last one counting the
// others, whether they are the parser's (each
// with the path of a deep element) or the cluster's.
func TestParseAllocationBounded(t *testing.T) {
	deep := serverxmltest.Deep
	valves := serverxmltest.ManyAttributes("<Cluster>", `<Valve className="ReplicationValve"`, 3<<20)
	tests := []struct{ name, in string }{
		// 60 ancestors with 20000-letter names, and 150 unquoted values,
		// each a parser warning with a 1.2 MB path.
		{"long names", "<Server>" + deep(60, 20000) + strings.Repeat("<X a=1/>", 150)},
		// Names of 200 letters, below any sensible limit, and 20000
		// unquoted values: the parser keeps 1000 warnings, each with a
		// 12 kB path.
		{"deep", "<Server>" + deep(60, 200) + strings.Repeat("<X a=1 b=2 c=3 d=4/>", 5000)},
		// 3 MiB of unknown attributes of the cluster's valves.
		{"attributes", valves},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			serverxmltest.CheckBounded(t, []byte(tc.in), func(data []byte) ([]serverxml.Warning, error) {
				_, ws, err := Parse("f.xml", data)
				return ws, err
			})
		})
	}
}
