package filter

import (
	"testing"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

func testSession(i int, attrs int) *wire.Session {
	s := &wire.Session{ID: wire.ID{byte(i), byte(i >> 8), 7, 7, 7, 7, 7, 7, 1}, Kind: wire.KindAnonymous, Generation: 1, Version: 1}
	for a := 0; a < attrs; a++ {
		s.Attrs[wire.NamespaceCustom] = s.Attrs[wire.NamespaceCustom].With("k"+string(rune('a'+a%26))+string(rune('a'+a/26)), wire.Text("0123456789012345678901234567890123456789"))
	}
	return s
}

func TestSessionCacheBounds(t *testing.T) {
	cases := []struct {
		name              string
		entries, bytes    int
		attrs, insert     int
		wantMax, wantLast int // most entries kept; the newest must be among them
	}{
		{"by entries", 10, 1 << 30, 0, 100, 10, 99},
		{"by bytes", 1000, 4096, 20, 100, 6, 99},
		{"one entry larger than the budget stays", 1000, 100, 20, 3, 1, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc := newSessionCache(c.entries, c.bytes)
			for i := 0; i < c.insert; i++ {
				sc.put(testSession(i, c.attrs), stateOrigin)
				if len(sc.m) > c.entries {
					t.Fatalf("%d entries, bound %d", len(sc.m), c.entries)
				}
				if len(sc.m) > 1 && sc.bytes > c.bytes {
					t.Fatalf("%d bytes, bound %d", sc.bytes, c.bytes)
				}
			}
			if len(sc.m) > c.wantMax || len(sc.m) == 0 {
				t.Fatalf("%d entries kept, want 1..%d", len(sc.m), c.wantMax)
			}
			if sc.get(testSession(c.wantLast, 0).ID) == nil {
				t.Fatal("the newest session was evicted")
			}
			total := 0
			n := 0
			for e := sc.head; e != nil; e = e.next {
				total += e.size
				n++
			}
			if total != sc.bytes || n != len(sc.m) {
				t.Fatalf("list holds %d entries, %d bytes; map %d, counter %d", n, total, len(sc.m), sc.bytes)
			}
		})
	}
}

func TestSessionCacheLRU(t *testing.T) {
	sc := newSessionCache(3, 1<<30)
	for i := 0; i < 3; i++ {
		sc.put(testSession(i, 0), stateOrigin)
	}
	sc.get(testSession(0, 0).ID) // 0 becomes the most recent
	sc.put(testSession(3, 0), stateOrigin)
	if sc.peek(testSession(1, 0).ID) != nil || sc.peek(testSession(0, 0).ID) == nil {
		t.Fatal("eviction did not take the least recently used session")
	}
	// A colliding id (same first 8 bytes) is a miss, and replaces the entry.
	other := testSession(3, 0)
	other.ID[15] = 9
	if sc.peek(other.ID) != nil {
		t.Fatal("a colliding id hit another session's entry")
	}
}

func TestTokenCacheBound(t *testing.T) {
	kr, _ := wire.NewKeyring(1, map[uint8][]byte{1: []byte("0123456789abcdef0123456789abcdef")})
	tc := newTokenCache(8)
	var last []byte
	for i := 0; i < 100; i++ {
		c := wire.Claims{Kind: wire.KindAnonymous, ID: wire.ID{byte(i)}, Generation: 1, IssuedAt: int64(i)}
		last = kr.AppendToken(nil, &c)
		tc.put(last, &c)
		if len(tc.m) > 8 {
			t.Fatalf("%d tokens cached, bound 8", len(tc.m))
		}
	}
	if c, ok := tc.get(last); !ok || c.ID[0] != 99 {
		t.Fatal("the newest token is not cached")
	}
	forged := append([]byte(nil), last...)
	forged[0] ^= 1 // same key bytes (the tail), different token
	if _, ok := tc.get(forged); ok {
		t.Fatal("a different token with the same key bytes hit")
	}
	if _, ok := tc.get(last[:10]); ok {
		t.Fatal("a short token hit")
	}
}
