//go:build !race

package tribes

const transportRace = false
