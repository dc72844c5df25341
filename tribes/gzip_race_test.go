//go:build race

package tribes

// Under the race detector sync.Pool drops items at random, so pooled code
// paths allocate; the zero-allocation tests of the gzip codec skip.
func init() { raceEnabled = true }
