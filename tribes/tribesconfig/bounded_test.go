package tribesconfig

import (
	"strings"
	"testing"

	"github.com/wasmfarm/wasmfarm/internal/serverxml"
	"github.com/wasmfarm/wasmfarm/internal/serverxml/serverxmltest"
)

// hostile returns inputs made to multiply the memory the loader allocates
// for its warnings: long element names in every warning's path, and more
// unknown elements and attributes than anyone reads.
func hostile() []struct{ name, in string } {
	deep := serverxmltest.Deep
	attrs := serverxmltest.ManyAttributes("<Cluster><Channel>", `<Interceptor className="TcpFailureDetector"`, 3<<20)
	return []struct{ name, in string }{
		// 60 ancestors with 20000-letter names: each warning's path was
		// 1.2 MB.
		{"long names", deep(60, 20000) + "<Cluster><Channel>" + strings.Repeat("<X/>", 100)},
		// Names of 200 letters, below any sensible limit, and 9000
		// unknown elements, each with a 12 kB path.
		{"deep", deep(60, 200) + "<Cluster><Channel>" + strings.Repeat("<X/>", 9000)},
		// 3 MiB of unknown attributes, each a warning with a suggestion.
		{"attributes", attrs},
	}
}

// TestParseAllocationBounded: a hostile file makes the loader allocate at
// most a small multiple of its size (plus a few kB for each warning it
// keeps), and return at most 1000 warnings and a last one counting the
// others.
func TestParseAllocationBounded(t *testing.T) {
	for _, tc := range hostile() {
		t.Run(tc.name, func(t *testing.T) {
			serverxmltest.CheckBounded(t, []byte(tc.in), func(data []byte) ([]serverxml.Warning, error) {
				_, ws, err := Parse("f.xml", data)
				return ws, err
			})
		})
	}
}
