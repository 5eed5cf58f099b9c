package wire

import (
	"slices"
	"testing"
)

// TestSortStableFunc compares sortStableFunc with slices.SortStableFunc on
// slices of every length up to a few merge rounds, with many equal keys so
// that stability shows.
func TestSortStableFunc(t *testing.T) {
	type kv struct{ k, seq int }
	cmp := func(a, b kv) int { return a.k - b.k }
	x := uint32(1)
	for n := 0; n <= 140; n++ {
		s := make([]kv, n)
		for i := range s {
			x = x*1664525 + 1013904223
			s[i] = kv{int(x>>24) % 9, i}
		}
		want := slices.Clone(s)
		slices.SortStableFunc(want, cmp)
		sortStableFunc(s, cmp)
		if !slices.Equal(s, want) {
			t.Fatalf("n=%d: got %v, want %v", n, s, want)
		}
	}
}
