//go:build race

package host_test

// raceEnabled: the race detector changes what allocates.
const raceEnabled = true
