package filter

import (
	"runtime"
	"testing"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

func testSession(i int, attrs int) *wire.Session {
	s := &wire.Session{ID: wire.ID{byte(i), byte(i >> 8), byte(i >> 16), 7, 7, 7, 7, 7, 1}, Kind: wire.KindAnonymous, Generation: 1, Version: 1}
	for a := 0; a < attrs; a++ {
		s.Attrs[wire.NamespaceCustom] = s.Attrs[wire.NamespaceCustom].With("k"+string(rune('a'+a%26))+string(rune('a'+a/26)), wire.Text("0123456789012345678901234567890123456789"))
	}
	return s
}

// walk checks the cache's lists against its map and counters and returns
// the number of entries in each segment.
func walk(t *testing.T, sc *sessionCache) (prob, prot int) {
	t.Helper()
	total := 0
	for _, sg := range []*segment{&sc.prob, &sc.prot} {
		n, bytes := 0, 0
		for e := sg.head; e != nil; e = e.next {
			if e.prot != (sg == &sc.prot) {
				t.Fatal("an entry is in the wrong segment")
			}
			n++
			bytes += e.size
		}
		if n != sg.n || bytes != sg.bytes {
			t.Fatalf("segment holds %d entries, %d bytes; counters say %d, %d", n, bytes, sg.n, sg.bytes)
		}
		total += n
	}
	if total != sc.m.len() {
		t.Fatalf("lists hold %d entries, map %d", total, sc.m.len())
	}
	return sc.prob.n, sc.prot.n
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
		for _, protect := range []bool{false, true} {
			t.Run(c.name, func(t *testing.T) {
				sc := newSessionCache(c.entries, c.bytes)
				for i := 0; i < c.insert; i++ {
					sc.put(testSession(i, c.attrs), stateOrigin, protect)
					if sc.m.len() > c.entries {
						t.Fatalf("%d entries, bound %d", sc.m.len(), c.entries)
					}
					if b := sc.prob.bytes + sc.prot.bytes; sc.m.len() > 1 && b > c.bytes {
						t.Fatalf("%d bytes, bound %d", b, c.bytes)
					}
					walk(t, &sc)
				}
				if sc.m.len() > c.wantMax || sc.m.len() == 0 {
					t.Fatalf("%d entries kept, want 1..%d", sc.m.len(), c.wantMax)
				}
				if sc.get(testSession(c.wantLast, 0).ID) == nil {
					t.Fatal("the newest session was evicted")
				}
				walk(t, &sc)
			})
		}
	}
}

func TestSessionCacheLRU(t *testing.T) {
	sc := newSessionCache(3, 1<<30)
	for i := 0; i < 3; i++ {
		sc.put(testSession(i, 0), stateOrigin, false)
	}
	sc.get(testSession(0, 0).ID) // 0 is seen again: promoted
	sc.put(testSession(3, 0), stateOrigin, false)
	if sc.peek(testSession(1, 0).ID) != nil || sc.peek(testSession(0, 0).ID) == nil {
		t.Fatal("eviction did not take the oldest probation session")
	}
	// A colliding id (same first 8 bytes) is a miss, and replaces the entry.
	other := testSession(3, 0)
	other.ID[15] = 9
	if sc.peek(other.ID) != nil {
		t.Fatal("a colliding id hit another session's entry")
	}
	walk(t, &sc)
}

// TestSessionCacheFlood shows what the probation segment is for: a flood of
// sessions minted for clients that never come back (one put each, never
// seen again) does not evict sessions whose tokens came back.
func TestSessionCacheFlood(t *testing.T) {
	sc := newSessionCache(1000, 1<<30)
	for i := 0; i < 500; i++ { // returning clients: minted, then seen again
		sc.put(testSession(i, 0), stateLocal, false)
		sc.get(testSession(i, 0).ID)
	}
	for i := 0; i < 100; i++ { // fetched for a returning token
		sc.put(testSession(1000+i, 0), stateOrigin, true)
	}
	for i := 0; i < 100000; i++ { // bots
		sc.put(testSession(10000+i, 0), stateLocal, false)
	}
	for i := 0; i < 500; i++ {
		if sc.peek(testSession(i, 0).ID) == nil {
			t.Fatalf("established session %d evicted by one-shot sessions", i)
		}
	}
	for i := 0; i < 100; i++ {
		if sc.peek(testSession(1000+i, 0).ID) == nil {
			t.Fatalf("fetched session %d evicted by one-shot sessions", i)
		}
	}
	prob, prot := walk(t, &sc)
	if prot != 600 || prob != 400 {
		t.Fatalf("segments hold %d probation, %d protected; want 400 and 600", prob, prot)
	}
	// Beyond the protected share (80%), the oldest protected entries are
	// demoted to probation rather than growing without bound.
	for i := 0; i < 300; i++ {
		sc.put(testSession(2000+i, 0), stateOrigin, true)
	}
	if _, prot := walk(t, &sc); prot != 800 {
		t.Fatalf("protected holds %d, cap 800", prot)
	}
	if sc.peek(testSession(0, 0).ID) == nil {
		t.Fatal("a demoted session was evicted before the one-shot ones")
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
		if tc.m.len() > 8 {
			t.Fatalf("%d tokens cached, bound 8", tc.m.len())
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
	tc.markDead(last)
	if _, ok := tc.get(last); ok || tc.lookup(last) == nil || !tc.lookup(last).dead {
		t.Fatal("a dead token still counts as live")
	}
}

func TestMergeCacheControl(t *testing.T) {
	cases := []struct{ app, want string }{
		{"", "private"},
		{"public", "private"},
		{"public, max-age=600", "private, max-age=600"},
		{"no-store", "private, no-store"},
		{"max-age=60, s-maxage=3600", "private, max-age=60"},
		{"S-MaxAge=10,Public,no-cache", "private, no-cache"},
		{"private", "private"},
		{`private="set-cookie", max-age=5`, "private, max-age=5"},
		{`no-cache="set-cookie, x-a", public`, `private, no-cache="set-cookie, x-a"`},
		{"must-revalidate, max-age=0, immutable", "private, must-revalidate, max-age=0, immutable"},
		{" , ,max-age=1", "private, max-age=1"},
	}
	for _, c := range cases {
		if got := string(mergeCacheControl(nil, []byte(c.app))); got != c.want {
			t.Errorf("merge(%q) = %q, want %q", c.app, got, c.want)
		}
	}
}

func TestHeaderFolding(t *testing.T) {
	for _, name := range []string{"x-session-id", "X-Session-Id", "x_session_id", "X_SESSION_CUSTOMER", "x-session_kind", "x_session-", "X-SESSION-"} {
		if !isSessionHeader([]byte(name)) {
			t.Errorf("%q is not recognized as an x-session-* header", name)
		}
	}
	for _, name := range []string{"x-session", "x-sessionid", "xx-session-id", "x.session.id", "session-id", "x-sessio-n"} {
		if isSessionHeader([]byte(name)) {
			t.Errorf("%q is taken for an x-session-* header", name)
		}
	}
	if !equalHeader([]byte("SessionEdge_Token"), "sessionedge-token") || equalHeader([]byte("sessionedge-tokens"), "sessionedge-token") {
		t.Error("token header folding")
	}
}

func TestAppendPct(t *testing.T) {
	cases := map[string]string{"DE": "DE", "müller": "m%C3%BCller", "a b": "a%20b", "100%": "100%25",
		"x\r\ny\x00": "x%0D%0Ay%00", "\x7f~!": "%7F~!"}
	for in, want := range cases {
		if got := string(appendPct(nil, in)); got != want {
			t.Errorf("appendPct(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTouchBufferMemory measures what a buffered touch report costs, the
// figure behind the documented cap (sync.touchBuffer): about 100 bytes.
func TestTouchBufferMemory(t *testing.T) {
	const n = 100000
	p := &Plugin{}
	p.touches.reset(n)
	dev := &wire.Device{UserAgent: "Mozilla/5.0", Addr: "192.0.2.0/24", Site: "DE"} // shared by every record
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		id := wire.ID{byte(i), byte(i >> 8), byte(i >> 16), 1}
		p.touches.add(p, &wire.Claims{ID: id, Kind: wire.KindAnonymous, Generation: 1}, int64(i), dev, nil)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%d buffered touches: %.0f bytes each, %.1f MB", n, per, float64(after.HeapAlloc-before.HeapAlloc)/1e6)
	if len(p.touches.list) != n || per > 200 {
		t.Fatalf("%d touches buffered at %.0f bytes each", len(p.touches.list), per)
	}
	p.touches.add(p, &wire.Claims{ID: wire.ID{9, 9, 9, 9}, Kind: wire.KindAnonymous, Generation: 1}, 0, dev, nil)
	if len(p.touches.list) != n || p.counters.TouchesDropped != 1 {
		t.Fatal("the buffer grew past its cap")
	}
}
