package storetest

import (
	"errors"
	"testing"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

func testGetAtLeast(t *testing.T, st store.Store) {
	id := newID(t)
	commit(t, st, id, 1, nil, start(wire.KindAnonymous, 0, 0))
	commit(t, st, id, 2, nil, setAttr("a", wire.Int(1)))
	for _, tc := range []struct {
		min, want uint64
	}{{0, 2}, {1, 2}, {2, 2}, {3, 2}, {1 << 40, 2}} {
		got, err := st.GetAtLeast(ctx, id, tc.min)
		if err != nil || got.Version != tc.want {
			t.Fatalf("GetAtLeast(%d) = %v, %v; want version %d", tc.min, got, err, tc.want)
		}
		if cg, ok := st.(store.CBORGetter); ok {
			sess, enc, err := cg.GetCBORAtLeast(ctx, id, tc.min)
			if err != nil || sess.Version != tc.want {
				t.Fatalf("GetCBORAtLeast(%d) = %v, %v; want version %d", tc.min, sess, err, tc.want)
			}
			if string(enc) != string(wire.AppendSession(nil, sess)) {
				t.Fatalf("GetCBORAtLeast(%d): the encoding is not the session's", tc.min)
			}
		}
	}
	if _, err := st.GetAtLeast(ctx, newID(t), 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetAtLeast(unknown) = %v, want ErrNotFound", err)
	}
	// A touch moves the session on without a new version: GetAtLeast at
	// that version answers the touched state.
	if _, err := st.Touch(ctx, id, 50, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := st.GetAtLeast(ctx, id, 2); err != nil || got.LastSeen != 50 {
		t.Fatalf("GetAtLeast after a touch = %+v, %v", got, err)
	}
}

func testCacheStats(t *testing.T, st store.Store) {
	id := newID(t)
	commit(t, st, id, 1, nil, start(wire.KindAnonymous, 0, 0))
	before := st.CacheStats()
	if before.MaxBytes <= 0 {
		t.Fatalf("the store under test has no read cache: %+v", before)
	}
	for i := 0; i < 3; i++ {
		if _, err := st.Get(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	st.Get(ctx, newID(t))       // unknown: a miss
	st.GetAtLeast(ctx, id, 100) // cached copy older than asked: a miss
	after := st.CacheStats()
	if hits, misses := after.Hits-before.Hits, after.Misses-before.Misses; hits != 3 || misses != 2 {
		t.Fatalf("3 hits and 2 misses counted as %d and %d", hits, misses)
	}
	if after.Entries < 1 || after.Bytes <= 0 || after.Bytes > after.MaxBytes {
		t.Fatalf("cache stats: %+v", after)
	}
	if r := after.HitRatio(); r <= 0 || r > 1 {
		t.Fatalf("hit ratio %v", r)
	}
}

// testTombstonePurgeTime checks where a tombstone sits in the expiry index:
// at its hard deadline when every token of the session carries that
// deadline, else at the later of its hard deadline and its end plus
// TombstoneTTL.
func testTombstonePurgeTime(t *testing.T, st store.Store) {
	ttl := TombstoneTTL.Milliseconds()
	type tc struct {
		name string
		ops  [][]wire.Op // one delta each, the last one ends the session at end
		end  int64
		want int64
	}
	endOp := wire.Op{Code: wire.OpEnd, Reason: wire.EndRevoked}
	cases := []tc{
		{"anonymous with a hard deadline", [][]wire.Op{{start(wire.KindAnonymous, 10_000, 50_000)}, {endOp}}, 20_000, 50_000},
		{"hard-expired", [][]wire.Op{{start(wire.KindAnonymous, 10_000, 50_000)}, {{Code: wire.OpEnd, Reason: wire.EndHardExpired}}}, 50_000, 50_000},
		{"anonymous without a hard deadline", [][]wire.Op{{start(wire.KindAnonymous, 10_000, 0)}, {endOp}}, 20_000, 20_000 + ttl},
		{"shared", [][]wire.Op{{start(wire.KindShared, 0, 0)}, {endOp}}, 30_000, 30_000 + ttl},
		// A login lowered the hard deadline: tokens of generation 1 carry
		// the earlier, later deadline; they die within TombstoneTTL of the
		// end.
		{"login lowered the hard deadline", [][]wire.Op{
			{start(wire.KindAnonymous, 10_000, 100*ttl)},
			{{Code: wire.OpLogin, CustomerID: "c-t", Generation: 2, Idle: 20_000, Hard: 40_000}},
			{endOp}}, 35_000, 35_000 + ttl},
		{"customer hard deadline after end + TTL", [][]wire.Op{
			{start(wire.KindAnonymous, 10_000, 100*ttl)},
			{{Code: wire.OpLogin, CustomerID: "c-t", Generation: 2, Idle: 20_000, Hard: 90 * ttl}},
			{endOp}}, 35_000, 90 * ttl},
	}
	ids := map[wire.ID]tc{}
	for _, c := range cases {
		id := newID(t)
		for i, ops := range c.ops {
			at := int64(1000 * (i + 1))
			if i == len(c.ops)-1 {
				at = c.end
			}
			commit(t, st, id, at, nil, ops...)
		}
		got, _ := st.Get(ctx, id)
		if due := store.DueAt(got, ttl); due != c.want {
			t.Fatalf("%s: DueAt = %d, want %d", c.name, due, c.want)
		}
		ids[id] = c
	}
	for id, c := range ids {
		if due := dueOf(t, st, id, c.want); due != 0 {
			t.Fatalf("%s: due at %d, found before %d", c.name, due, c.want)
		}
		if due := dueOf(t, st, id, c.want+1); due != c.want {
			t.Fatalf("%s: indexed at %d, want %d", c.name, due, c.want)
		}
	}
}

// dueOf returns the instant id is indexed at before the bound, or 0.
func dueOf(t *testing.T, st store.Store, id wire.ID, before int64) int64 {
	t.Helper()
	due, err := st.Expiring(ctx, before, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range due {
		if d.ID == id {
			return d.At
		}
	}
	return 0
}

func testTouchLeavesTombstones(t *testing.T, st store.Store) {
	id := newID(t)
	commit(t, st, id, 1000, nil, start(wire.KindShared, 0, 0))
	ended := commit(t, st, id, 2000, nil, wire.Op{Code: wire.OpEnd, Reason: wire.EndRevoked})
	got, err := st.Touch(ctx, id, 5000, 9000)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(ended) {
		t.Fatalf("Touch changed a tombstone: %+v", got)
	}
	if got, _ = st.Get(ctx, id); !got.Equal(ended) {
		t.Fatalf("after a touch Get = %+v, want the tombstone %+v", got, ended)
	}
	want := 2000 + TombstoneTTL.Milliseconds()
	if due := dueOf(t, st, id, want+1); due != want {
		t.Fatalf("a touched tombstone is indexed at %d, want %d", due, want)
	}
}
