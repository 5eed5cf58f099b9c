//go:build !wasip1

package wire

import "time"

// VerifyAssertion checks an assertion header value against the request the
// app received (authority, path with query, and the x-session-context value,
// nil when absent) at time now, accepting issue times within skew either
// way, and fills a. It runs in constant time with respect to the tags and
// does not allocate.
func (ak *AssertionKeys) VerifyAssertion(text, authority, path, ctx []byte, now time.Time, skew time.Duration, a *Assertion) error {
	return ak.verifyAssertion(text, authority, path, ctx, now.UnixMilli(), skew.Milliseconds(), a)
}
