// Package eventually is the one polling helper of the origin's tests: wait
// until a condition holds, with a generous deadline for loaded machines.
package eventually

import (
	"testing"
	"time"
)

// True polls cond every 10 ms until it holds, and fails the test (naming
// what) when timeout passes first.
func True(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	if err := Wait(timeout, cond); err != nil {
		tb.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Wait polls cond every 10 ms until it holds (nil) or timeout passes
// (errTimeout); for callers that must not fail the test from another
// goroutine.
func Wait(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return errTimeout
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

type timeoutError struct{}

func (timeoutError) Error() string { return "eventually: timed out" }

var errTimeout error = timeoutError{}
