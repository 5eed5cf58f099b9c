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
