//go:build race

package tribes

// transportRace reports a race-detector build, where sync.Pool drops items
// at random and allocation counts mean nothing.
const transportRace = true
