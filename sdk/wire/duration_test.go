package wire

import (
	"math"
	"testing"
	"time"
)

// durationTexts are inputs for the comparison with package time: valid
// spellings, every unit, fractions, overflow at each step, and malformed
// text.
var durationTexts = []string{
	"0", "+0", "-0", "0s", "1ns", "1us", "1µs", "1μs", "1ms", "1s", "1m", "1h",
	"1.5h", "2h45m", "1h2m3.5s", ".5s", "5.s", "1.000000001s", "0.000000001s",
	"1.0000000000000000001s", "100000000000000000000ns", "9223372036854775807ns",
	"9223372036854775808ns", "-9223372036854775808ns", "-9223372036854775809ns",
	"2562047h47m16.854775807s", "2562047h47m16.854775808s", "2562048h",
	"0.9223372036854775807h", "1.8446744073709551616s", "-1.5h", "+3m",
	"", "-", "+", ".", "s", "1", "1x", "1.s.", "..5s", "1e3s", " 1s", "1s ",
	"1h-1m", "1m1", "3ms4us", "12345678901234567890.5s",
}

func TestDurationMatchesTime(t *testing.T) {
	for _, s := range durationTexts {
		want, werr := time.ParseDuration(s)
		got, ok := parseGoDuration(s)
		if ok != (werr == nil) || ok && got != int64(want) {
			t.Errorf("parse %q: got %d %v, time gives %d %v", s, got, ok, want, werr)
		}
	}
	values := []int64{0, 1, 999, 1000, 1001, 1500, 999999, 1e6, 1500000, 999999999, 1e9,
		1e9 + 1, 61e9, 3600e9, 3661e9 + 5e8, math.MaxInt64, math.MinInt64, -1, -1500, -3661e9}
	for v := int64(1); v < math.MaxInt64/7; v = v*7 + 3 {
		values = append(values, v, -v)
	}
	for _, v := range values {
		if got, want := string(appendGoDuration(nil, v)), time.Duration(v).String(); got != want {
			t.Errorf("format %d: got %q, time gives %q", v, got, want)
		}
	}
}

func FuzzDurationMatchesTime(f *testing.F) {
	for _, s := range durationTexts {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, werr := time.ParseDuration(s)
		got, ok := parseGoDuration(s)
		if ok != (werr == nil) || ok && got != int64(want) {
			t.Fatalf("parse %q: got %d %v, time gives %d %v", s, got, ok, want, werr)
		}
		if ok {
			if f := string(appendGoDuration(nil, got)); f != want.String() {
				t.Fatalf("format %d: got %q, time gives %q", got, f, want.String())
			}
		}
	})
}
