package pebble

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/origin/store"
)

func TestCursorDecode(t *testing.T) {
	for _, tc := range []struct {
		in  string
		seq uint64
		ok  bool
	}{
		{"", 0, true}, {"0", 0, true}, {"42", 42, true},
		{strconv.FormatUint(^uint64(0), 10), ^uint64(0), true},
		{"18446744073709551616", 0, false}, {"042", 0, false}, {"+1", 0, false},
		{"-1", 0, false}, {" 1", 0, false}, {"1e3", 0, false}, {"r3", 0, false},
	} {
		seq, ok := decodeCursor(store.Cursor(tc.in))
		if ok != tc.ok || seq != tc.seq {
			t.Errorf("decodeCursor(%q) = %d, %v; want %d, %v", tc.in, seq, ok, tc.seq, tc.ok)
		}
	}
}

// decodeBudget is the time one cursor within the size cap may take to
// decode; anything slower is a failure (cursors come from outside).
const decodeBudget = 50 * time.Millisecond

func FuzzDecodeCursor(f *testing.F) {
	for _, s := range []string{"", "0", "1", "18446744073709551615", "18446744073709551616", "007", strings.Repeat("9", 5000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if len(text) > 64<<10 {
			return // beyond any query string the origin reads
		}
		start := time.Now()
		seq, ok := decodeCursor(store.Cursor(text))
		if d := time.Since(start); d > decodeBudget {
			t.Fatalf("decoding a %d-byte cursor took %v", len(text), d)
		}
		if ok && text != "" && string(encodeCursor(seq)) != text {
			t.Fatalf("accepted %q, which encodes back as %q", text, encodeCursor(seq))
		}
	})
}
