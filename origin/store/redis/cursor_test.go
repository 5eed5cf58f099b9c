package redis

import (
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/origin/store"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, shards := range []int{1, 3, 16, 1024} {
		pos := make([]streamID, shards)
		for i := range pos {
			pos[i] = streamID{ms: uint64(i) * 1_700_000_000_123, seq: uint64(i*i) << (i % 60)}
		}
		pos[0] = streamID{^uint64(0), ^uint64(0)}
		c := encodeCursor(pos)
		if len(c) > maxCursorLen(shards) {
			t.Fatalf("%d shards: cursor of %d bytes, cap %d", shards, len(c), maxCursorLen(shards))
		}
		got, err := decodeCursor(c, shards)
		if err != nil {
			t.Fatalf("%d shards: %v", shards, err)
		}
		for i := range pos {
			if got[i] != pos[i] {
				t.Fatalf("%d shards: position %d is %v, want %v", shards, i, got[i], pos[i])
			}
		}
		if _, err := decodeCursor(c, shards+1); err == nil {
			t.Fatalf("a cursor of %d shards decoded for %d", shards, shards+1)
		}
	}
}

func TestCursorRefusesNonCanonical(t *testing.T) {
	c := string(encodeCursor([]streamID{{5, 1}}))     // "r" + base64 of 05 01
	overlong := "r" + "hQAB"                          // 85 00 01: 5 as a two-byte uvarint
	strayBits := c[:len(c)-1] + string(c[len(c)-1]+1) // the last character's unused bits set
	for _, bad := range []string{overlong, strayBits, c + "=", " " + c, strings.ToUpper(c)} {
		if _, err := decodeCursor(store.Cursor(bad), 1); err == nil {
			t.Errorf("decodeCursor(%q) accepted a non-canonical cursor", bad)
		}
	}
	if _, err := decodeCursor(store.Cursor(c), 1); err != nil {
		t.Fatal(err)
	}
}

// decodeBudget is the time one cursor within the size cap may take to
// decode; anything slower is a failure (cursors come from outside).
const decodeBudget = 50 * time.Millisecond

func FuzzDecodeCursor(f *testing.F) {
	f.Add("", 16)
	f.Add(string(encodeCursor(make([]streamID, 16))), 16)
	f.Add(string(encodeCursor([]streamID{{1700000000000, 3}, {^uint64(0), 0}})), 2)
	f.Add("r"+strings.Repeat("_", 400), 16)
	f.Add("r"+strings.Repeat("gICAgICAgICAgAE", 30), 16)
	f.Add("not a cursor", 1)
	f.Fuzz(func(t *testing.T, text string, shards int) {
		if shards < 1 || shards > 1024 {
			return // what Config accepts
		}
		if len(text) > 64<<10 {
			return // beyond any query string the origin reads
		}
		start := time.Now()
		pos, err := decodeCursor(store.Cursor(text), shards)
		if d := time.Since(start); d > decodeBudget {
			t.Fatalf("decoding a %d-byte cursor took %v", len(text), d)
		}
		if err != nil {
			return
		}
		if len(pos) != shards {
			t.Fatalf("%d positions for %d shards", len(pos), shards)
		}
		if text != "" && string(encodeCursor(pos)) != text {
			t.Fatalf("accepted %q, which encodes back as %q", text, encodeCursor(pos))
		}
	})
}
