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
		return openStore(t, Config{CacheBytes: 8 << 20, BlockCacheBytes: 8 << 20, TombstoneTTL: storetest.TombstoneTTL})
	})
}

// openStore opens a store with c, in a temporary directory unless c.Dir
// is set, and closes it when the test ends (closing it sooner is fine).
func openStore(tb testing.TB, c Config) *Store {
	tb.Helper()
	if c.Dir == "" {
		c.Dir = tb.TempDir()
	}
	s, err := Open(c)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// commitNew creates session id, with an outbox entry.
func commitNew(t *testing.T, s *Store, id wire.ID) {
	t.Helper()
	storetest.Write(t, s, id, 1, store.Commit{Outbox: [][]byte{[]byte("x")}}, wire.Op{Code: wire.OpStart, Kind: wire.KindAnonymous, Generation: 1})
}

// TestReopen checks that sessions, the cursor and the outbox survive a
// close and reopen.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Config{Dir: dir})
	var ids []wire.ID
	for i := 0; i < 10; i++ {
		id, _ := wire.NewID()
		ids = append(ids, id)
		commitNew(t, s, id)
	}
	head := s.head()
	s.Close()
	s = openStore(t, Config{Dir: dir})
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
	s := openStore(t, Config{Retention: 5})
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
	s := openStore(t, Config{})
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
	s := openStore(t, Config{Dir: dir})
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
	storetest.Write(t, s, id, 5, store.Commit{}, wire.Op{Code: wire.OpSetAttr, NS: wire.NamespacePublic, Key: "k", Value: wire.Text("v")})
	check("commit")
	if _, err := s.Touch(ctx, id, 100, 0); err != nil {
		t.Fatal(err)
	}
	check("touch")
	s.Close()
	s = openStore(t, Config{Dir: dir})
	check("reopen")
}

// TestPendingChangesSurviveReopen: a pending change event is part of the
// database, not of the process: after a close and reopen it is still due,
// a commit still sees it (and records no second one), and settling it works.
func TestPendingChangesSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, Config{Dir: dir})
	id, _ := wire.NewID()
	commitNew(t, s, id)
	set := wire.Op{Code: wire.OpSetAttr, NS: wire.NamespaceCustom, Key: "a", Value: wire.Int(1)}
	storetest.Write(t, s, id, 2, store.Commit{ChangeDue: 500}, set)
	s.Close()

	s = openStore(t, Config{Dir: dir})
	due, err := s.ChangesDue(context.Background(), 501, 10)
	if err != nil || len(due) != 1 || due[0].ID != id || due[0].At != 500 {
		t.Fatalf("after reopen ChangesDue = %+v, %v", due, err)
	}
	next := storetest.Write(t, s, id, 2, store.Commit{ChangeDue: 900}, set)
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
