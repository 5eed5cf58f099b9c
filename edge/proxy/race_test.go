//go:build race

package proxy_test

// raceEnabled: timing under the race detector says nothing about the server.
const raceEnabled = true
