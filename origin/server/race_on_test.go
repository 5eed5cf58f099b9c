//go:build race

package server

// raceEnabled skips allocation tests: under -race sync.Pool drops items on purpose.
const raceEnabled = true
