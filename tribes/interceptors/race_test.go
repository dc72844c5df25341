//go:build race

package interceptors_test

// raceEnabled skips the zero-allocation tests: the race detector allocates.
const raceEnabled = true
