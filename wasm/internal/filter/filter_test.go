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
// nothing in the filter; the mock discards header writes so that only the
// guest is measured.
func TestWarmRequestAllocs(t *testing.T) {
	for name, extra := range map[string]string{
		"default":   "",
		"assertion": proxytest.AssertionConfig,
		"compact":   proxytest.AssertionConfig + `,"forward":{"mode":"compact"}`,
		"pairs":     proxytest.AssertionConfig + `,"headerWrites":"pairs"`,
		"max stale": `,"cache":{"maxStale":"10s"}`,
	} {
		t.Run(name, func(t *testing.T) {
			r := proxytest.NewReplayWith(t, newNative, extra)
			if a := r.Do(0); a != uint32(abi.ActionContinue) {
				t.Fatalf("warm request action %d", a)
			}
			allocs := testing.AllocsPerRun(1000, func() { r.Do(0) })
			if allocs != 0 {
				t.Fatalf("warm request allocates %.1f times", allocs)
			}
		})
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
