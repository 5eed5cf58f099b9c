//go:build wasip1

package wire

import "time"

// The package's tests also run in a wasip1 build (scripts/bench-decode.sh),
// where VerifyAssertion and Duration.Std, which take and give time values,
// are left out of the package (assertion_std.go, duration_std.go); the
// tests get them here.

func (ak *AssertionKeys) VerifyAssertion(text, authority, path, ctx []byte, now time.Time, skew time.Duration, a *Assertion) error {
	return ak.verifyAssertion(text, authority, path, ctx, now.UnixMilli(), skew.Milliseconds(), a)
}

func (d Duration) Std() time.Duration { return time.Duration(max(d, 0)) }
