package pebble

import (
	"context"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/origin/store/storetest"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(Config{Dir: t.TempDir(), CacheBytes: 8 << 20, BlockCacheBytes: 8 << 20, TombstoneTTL: storetest.TombstoneTTL})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func commitNew(t *testing.T, s *Store, id wire.ID) {
	t.Helper()
	d := &wire.Delta{ID: id, Version: 1, At: 1, Ops: []wire.Op{{Code: wire.OpStart, Kind: wire.KindAnonymous, Generation: 1}}}
	next, err := wire.Apply(nil, d, &wire.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(context.Background(), &store.Commit{Delta: d, Session: next, Outbox: [][]byte{[]byte("x")}}); err != nil {
		t.Fatal(err)
	}
}

// TestReopen checks that sessions, the cursor and the outbox survive a
// close and reopen.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var ids []wire.ID
	for i := 0; i < 10; i++ {
		id, _ := wire.NewID()
		ids = append(ids, id)
		commitNew(t, s, id)
	}
	head := s.head()
	s.Close()
	s, err = Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.head() != head {
		t.Fatalf("head %d after reopen, want %d", s.head(), head)
	}
	for _, id := range ids {
		if _, err := s.Get(context.Background(), id); err != nil {
			t.Fatalf("Get(%s) after reopen: %v", id, err)
		}
	}
	if got := s.Stats().LiveSessions; got != 10 {
		t.Fatalf("live %d after reopen, want 10", got)
	}
	es, _ := s.OutboxClaim(context.Background(), 100, time.Minute)
	if len(es) != 10 {
		t.Fatalf("outbox has %d entries after reopen, want 10", len(es))
	}
	commitNew(t, s, wire.ID{1})
	if s.head() != head+1 {
		t.Fatalf("cursor did not continue: %d after %d", s.head(), head)
	}
}

// TestRetention checks that a cursor older than the retained log gets a reset.
func TestRetention(t *testing.T) {
	s, err := Open(Config{Dir: t.TempDir(), Retention: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 20; i++ {
		id, _ := wire.NewID()
		commitNew(t, s, id)
	}
	s.prune()
	bt, err := s.ChangesAfter(context.Background(), encodeCursor(2), 100)
	if err != nil {
		t.Fatal(err)
	}
	if !bt.Reset || bt.Cursor != encodeCursor(s.head()) {
		t.Fatalf("old cursor: %+v, want reset at %d", bt, s.head())
	}
	bt, _ = s.ChangesAfter(context.Background(), encodeCursor(s.head()-5), 100)
	if bt.Reset || len(bt.Deltas) != 5 {
		t.Fatalf("retained cursor: reset %v, %d deltas, want 5", bt.Reset, len(bt.Deltas))
	}
}

// TestGetHitAllocs proves a cache hit allocates nothing.
func TestGetHitAllocs(t *testing.T) {
	s, err := Open(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id, _ := wire.NewID()
	commitNew(t, s, id)
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { s.Get(ctx, id) }); n != 0 {
		t.Fatalf("Get on a cache hit allocates %.1f times", n)
	}
}

// TestGetCBORMatchesSession checks that the cached encoding always equals
// the encoding of the cached session, across commits, touches and a reopen.
func TestGetCBORMatchesSession(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, _ := wire.NewID()
	commitNew(t, s, id)
	check := func(step string) {
		t.Helper()
		sess, enc, err := s.GetCBOR(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := wire.AppendSession(nil, sess); string(enc) != string(want) {
			t.Fatalf("%s: cached encoding differs from the session", step)
		}
	}
	check("create")
	cur, _ := s.Get(ctx, id)
	d := &wire.Delta{ID: id, BaseVersion: 1, Version: 2, At: 5, Ops: []wire.Op{{Code: wire.OpSetAttr, NS: wire.NamespacePublic, Key: "k", Value: wire.Text("v")}}}
	next, _ := wire.Apply(cur, d, &wire.DefaultLimits)
	if err := s.Commit(ctx, &store.Commit{Delta: d, Session: next}); err != nil {
		t.Fatal(err)
	}
	check("commit")
	if _, err := s.Touch(ctx, id, 100, 0); err != nil {
		t.Fatal(err)
	}
	check("touch")
	s.Close()
	if s, err = Open(Config{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check("reopen")
}

// TestPendingChangesSurviveReopen: a pending change event is part of the
// database, not of the process: after a close and reopen it is still due,
// a commit still sees it (and records no second one), and settling it works.
func TestPendingChangesSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := wire.NewID()
	commitNew(t, s, id)
	commitOps := func(s *Store, c store.Commit, ops ...wire.Op) *wire.Session {
		t.Helper()
		cur, err := s.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		d := &wire.Delta{ID: id, BaseVersion: cur.Version, Version: cur.Version + 1, At: 2, Ops: ops}
		next, err := wire.Apply(cur, d, &wire.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		c.Delta, c.Session = d, next
		if err := s.Commit(context.Background(), &c); err != nil {
			t.Fatal(err)
		}
		return next
	}
	set := wire.Op{Code: wire.OpSetAttr, NS: wire.NamespaceCustom, Key: "a", Value: wire.Int(1)}
	commitOps(s, store.Commit{ChangeDue: 500}, set)
	s.Close()

	s, err = Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	due, err := s.ChangesDue(context.Background(), 501, 10)
	if err != nil || len(due) != 1 || due[0].ID != id || due[0].At != 500 {
		t.Fatalf("after reopen ChangesDue = %+v, %v", due, err)
	}
	next := commitOps(s, store.Commit{ChangeDue: 900}, set)
	if due, _ := s.ChangesDue(context.Background(), 1000, 10); len(due) != 1 || due[0].At != 500 {
		t.Fatalf("a commit after reopen recorded another change event: %+v", due)
	}
	if errs := s.Emit(context.Background(), []store.Emission{{ID: id, Version: next.Version, Pending: []byte("changed")}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if due, _ := s.ChangesDue(context.Background(), 1000, 10); len(due) != 0 {
		t.Fatalf("still pending after Emit: %+v", due)
	}
	es, _ := s.OutboxClaim(context.Background(), 10, time.Minute)
	if len(es) != 2 || string(es[1].Body) != "changed" {
		t.Fatalf("outbox after Emit: %+v", es)
	}
}
