//go:build !wasip1

package filter_test

import (
	"testing"

	"github.com/sessionedge/sessionedge/wasm/internal/abi"
	"github.com/sessionedge/sessionedge/wasm/internal/proxytest"
)

var newNative = proxytest.NewNative

func TestScenarios(t *testing.T) { proxytest.Run(t, newNative) }

// TestWarmRequestAllocs proves the warm path (cached token and context,
// request and response callbacks, stream create and delete) allocates
// nothing in the filter, and with captures configured but absent from the
// request makes no host call beyond those of a request without them; the
// mock discards header writes so that only the guest is measured.
func TestWarmRequestAllocs(t *testing.T) {
	for name, extra := range map[string]string{
		"default":   "",
		"assertion": proxytest.AssertionConfig,
		"compact":   proxytest.AssertionConfig + `,"forward":{"mode":"compact"}`,
		"single":    proxytest.AssertionConfig + `,"headerWrites":"single"`,
		"max stale": `,"cache":{"maxStale":"10s"}`,
		// Captures, consent and devices configured, none of them in the
		// replayed request (its query and cookies hold other names).
		"captures": proxytest.AssertionConfig + `,"capture":{"query":["utm_source","cc"],"cookies":["ab"],` +
			`"tracking":["utm_source"],"segment":["cc"]},"consent":{"cookie":"se_dnt"},"device":{"addrPrefix":{"v4":16,"v6":32}},` +
			`"selfService":{"fields":["currency","locale"]}`,
	} {
		t.Run(name, func(t *testing.T) {
			r := proxytest.NewReplayWith(t, newNative, extra)
			if a := r.Do(0); a != uint32(abi.ActionContinue) {
				t.Fatalf("warm request action %d", a)
			}
			props := r.E.M.PropertyCalls
			allocs := testing.AllocsPerRun(1000, func() { r.Do(0) })
			if allocs != 0 {
				t.Fatalf("warm request allocates %.1f times", allocs)
			}
			if n := r.E.M.PropertyCalls - props; n != 0 {
				t.Fatalf("warm requests read %d host properties", n)
			}
		})
	}
}

// TestCapturedValueHeldAllocs: a request that carries a captured value
// its session already holds costs no allocation either.
func TestCapturedValueHeldAllocs(t *testing.T) {
	r := proxytest.NewReplayWith(t, newNative, `,"capture":{"query":["utm_source","cc"],"segment":["cc"]}`)
	r.SetPath("/products/42?color=red&cc=ch")
	if a := r.Do(0); a != uint32(abi.ActionContinue) {
		t.Fatalf("request action %d", a)
	}
	if c := r.E.G.(proxytest.Counting).Counters(); c.Captured != 1 {
		t.Fatalf("captured %d times, want once", c.Captured)
	}
	if allocs := testing.AllocsPerRun(1000, func() { r.Do(0) }); allocs != 0 {
		t.Fatalf("a request with a value the session holds allocates %.1f times", allocs)
	}
	if c := r.E.G.(proxytest.Counting).Counters(); c.Captured != 1 {
		t.Fatalf("captured %d times, want once", c.Captured)
	}
}

func BenchmarkWarmRequest(b *testing.B) {
	r := proxytest.NewReplay(b, newNative)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Do(i)
	}
}

func BenchmarkFirstSight(b *testing.B) {
	r := proxytest.NewReplay(b, newNative)
	r.FreshTokens(b, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Do(i)
	}
}
