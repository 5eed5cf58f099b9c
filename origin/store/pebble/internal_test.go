package pebble

import (
	"bytes"
	"context"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"u", "v"},
		{"u\x03abc", "u\x03abd"},
		{"u\x01\xff", "u\x02"},
		{"u\xfe\xff\xff", "u\xff"},
		{"\x00", "\x01"},
		{"\xff", ""},
		{"\xff\xff\xff", ""},
		{"", ""},
	} {
		got := prefixEnd([]byte(tc.in))
		if tc.want == "" && got != nil || tc.want != "" && string(got) != tc.want {
			t.Errorf("prefixEnd(%q) = %q, want %q", tc.in, got, tc.want)
		}
		// Every key that starts with the prefix sorts below the bound.
		for _, tail := range []string{"", "\x00", "\xff", "\xff\xff\xff\xff"} {
			k := []byte(tc.in + tail)
			if got != nil && bytes.Compare(k, got) >= 0 {
				t.Errorf("key %q is not below prefixEnd(%q) = %q", k, tc.in, got)
			}
		}
	}
}

// TestGetAtLeastBypassesStaleCache changes a session in Pebble behind the
// cache: Get answers the cached copy, GetAtLeast the newer stored one (and
// caches it).
func TestGetAtLeastBypassesStaleCache(t *testing.T) {
	s, err := Open(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	id, _ := wire.NewID()
	commitNew(t, s, id)
	cur, _ := s.Get(ctx, id)
	next := cur.Clone()
	next.Version = 2
	if err := s.db.Set(sessionKey(id), wire.AppendSession(nil, next), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, id); got.Version != 1 {
		t.Fatalf("Get = version %d, want the cached 1", got.Version)
	}
	if got, err := s.GetAtLeast(ctx, id, 2); err != nil || got.Version != 2 {
		t.Fatalf("GetAtLeast(2) = %v, %v", got, err)
	}
	if _, enc, err := s.GetCBORAtLeast(ctx, id, 2); err != nil || string(enc) != string(wire.AppendSession(nil, next)) {
		t.Fatalf("GetCBORAtLeast(2): %v", err)
	}
	if got, _ := s.Get(ctx, id); got.Version != 2 {
		t.Fatalf("after GetAtLeast, Get = version %d, want 2", got.Version)
	}
}
