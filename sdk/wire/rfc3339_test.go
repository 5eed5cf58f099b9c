package wire

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// The hand-written RFC 3339 code must agree with the time package.
func TestRFC3339AgainstTimePackage(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	samples := []int64{0, -1, 1, MinTime, MaxTime, 951782400000 /* 2000-02-29 */, -2208988800001, 1767225600123}
	for i := 0; i < 20000; i++ {
		samples = append(samples, MinTime+r.Int64N(MaxTime-MinTime))
	}
	for _, ms := range samples {
		got := string(appendRFC3339(nil, ms))
		want := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
		if got != want {
			t.Fatalf("format %d = %s, time says %s", ms, got, want)
		}
		back, ok := parseRFC3339(got)
		if !ok || back != ms {
			t.Fatalf("parse %s = %d %v, want %d", got, back, ok, ms)
		}
	}
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"2026-11-22T03:04:05Z", true}, {"2026-11-22t03:04:05.5z", true}, {"2026-11-22T03:04:05.123456789+02:00", true},
		{"2026-11-22T03:04:05-00:30", true}, {"2024-02-29T00:00:00Z", true},
		{"2023-02-29T00:00:00Z", false}, {"2026-13-01T00:00:00Z", false}, {"2026-11-22T24:00:00Z", false},
		{"2026-11-22T03:04:05", false}, {"2026-11-22 03:04:05Z", false}, {"2026-11-22T03:04:05.Z", false},
		{"0000-01-01T00:00:00Z", false}, {"2026-11-22T03:04:05+2:00", false}, {"", false},
	} {
		ms, ok := parseRFC3339(tc.in)
		if ok != tc.ok {
			t.Errorf("parse %q ok = %v, want %v", tc.in, ok, tc.ok)
			continue
		}
		if ok {
			want, err := time.Parse(time.RFC3339Nano, strings.ToUpper(tc.in)) // RFC 3339 allows t and z; Go does not
			if err != nil || want.UnixMilli() != ms {
				t.Errorf("parse %q = %d, time says %d (%v)", tc.in, ms, want.UnixMilli(), err)
			}
		}
	}
}
