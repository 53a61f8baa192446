//go:build !race

package server

// raceEnabled: timings under the race detector mean little.
const raceEnabled = false
