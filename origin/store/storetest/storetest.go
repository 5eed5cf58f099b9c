// Package storetest is the conformance suite every store.Store backend
// passes: storetest.Run(t, newStore). Prepare, Write and ReadFeed serve
// the backends' own tests too.
//
// Ids whose bytes sit at the edges of byte order (00, 7f, 80, fe, ff, first
// and last) go through every index and scan: a range that ends at
// prefix + 0xff instead of the prefix's successor loses the ids that start
// with 0xff, and random ids find that only once in 256 sessions.
package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// TombstoneTTL is the tombstone TTL the stores under test must be
// configured with.
const TombstoneTTL = time.Hour

// Run runs the suite. newStore returns a fresh, empty store for each subtest,
// configured with TombstoneTTL, and arranges its cleanup with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"GetUnknown", testGetUnknown},
		{"CreateAndGet", testCreateAndGet},
		{"Conflict", testConflict},
		{"ChangeLogOrder", testChangeLogOrder},
		{"ForeignCursorResets", testForeignCursor},
		{"WaitChanges", testWaitChanges},
		{"Touch", testTouch},
		{"ExpiryIndex", testExpiryIndex},
		{"CustomerIndex", testCustomerIndex},
		{"Outbox", testOutbox},
		{"Purge", testPurge},
		{"ConcurrentCAS", testConcurrentCAS},
		{"FeedUnderConcurrentCommits", testFeedUnderConcurrentCommits},
		{"Stats", testStats},
		{"BoundaryIDsGetTouchPurge", testBoundaryGetTouchPurge},
		{"BoundaryIDsCustomerIndex", testBoundaryCustomerIndex},
		{"BoundaryCustomerIDs", testBoundaryCustomerIDs},
		{"BoundaryIDsExpiryIndex", testBoundaryExpiryIndex},
		{"BoundaryIDsFeed", testBoundaryFeed},
		{"BoundaryIDsOutbox", testBoundaryOutbox},
		{"CustomerWithEveryFirstByte", testCustomerEveryFirstByte},
		{"GetAtLeast", testGetAtLeast},
		{"CacheStats", testCacheStats},
		{"TombstonePurgeTime", testTombstonePurgeTime},
		{"TouchLeavesTombstones", testTouchLeavesTombstones},
		{"PendingChanges", testPendingChanges},
		{"PendingChangesPurge", testPendingChangesPurge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

var ctx = context.Background()

func newID(t *testing.T) wire.ID {
	t.Helper()
	id, err := wire.NewID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// commit applies ops to the stored state of id (nil when unknown) and
// commits the result.
func commit(t *testing.T, st store.Store, id wire.ID, at int64, outbox [][]byte, ops ...wire.Op) *wire.Session {
	t.Helper()
	next, err := tryCommit(st, id, at, outbox, ops...)
	if err != nil {
		t.Fatal(err)
	}
	return next
}

// tryCommit is commit for goroutines other than the test's. It leaves
// Prev out: the backend finds the state it replaces by itself.
func tryCommit(st store.Store, id wire.ID, at int64, outbox [][]byte, ops ...wire.Op) (*wire.Session, error) {
	c, err := Prepare(st, id, at, ops...)
	if err != nil {
		return nil, err
	}
	c.Prev, c.Outbox = nil, outbox
	return c.Session, st.Commit(ctx, c)
}

// Prepare reads the stored state of id (nil when unknown) and returns the
// commit that applies ops to it as one delta at instant at (Unix ms): the
// delta, the state it produces and, as Prev, the state read.
func Prepare(st store.Store, id wire.ID, at int64, ops ...wire.Op) (*store.Commit, error) {
	cur, err := st.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		cur = nil
	} else if err != nil {
		return nil, err
	}
	d := &wire.Delta{ID: id, At: at, Ops: ops}
	if cur != nil {
		d.BaseVersion = cur.Version
	}
	d.Version = d.BaseVersion + 1
	next, err := wire.Apply(cur, d, &wire.DefaultLimits)
	if err != nil {
		return nil, err
	}
	return &store.Commit{Delta: d, Session: next, Prev: cur}, nil
}

// Write commits ops to id as Prepare prepares them, with c's event fields
// (Outbox, Settle, ChangeDue), and returns the new state. Any error fails
// the test.
func Write(t testing.TB, st store.Store, id wire.ID, at int64, c store.Commit, ops ...wire.Op) *wire.Session {
	t.Helper()
	p, err := Prepare(st, id, at, ops...)
	if err == nil {
		c.Delta, c.Session, c.Prev = p.Delta, p.Session, p.Prev
		err = st.Commit(ctx, &c)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c.Session
}

// concurrently runs fn(0), ..., fn(n-1), each in a goroutine of its own,
// and fails the test with the errors they return once all are done.
func concurrently(t *testing.T, n int, fn func(w int) error) {
	t.Helper()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() { errs <- fn(w) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func start(kind wire.Kind, idle, hard int64) wire.Op {
	return wire.Op{Code: wire.OpStart, Kind: kind, Generation: 1, Idle: idle, Hard: hard}
}

func setAttr(key string, v wire.Value) wire.Op {
	return wire.Op{Code: wire.OpSetAttr, NS: wire.NamespaceCustom, Key: key, Value: v}
}

func testGetUnknown(t *testing.T, st store.Store) {
	if _, err := st.Get(ctx, newID(t)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := st.Touch(ctx, newID(t), 1, 2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Touch(unknown) = %v, want ErrNotFound", err)
	}
}

func testCreateAndGet(t *testing.T, st store.Store) {
	id := newID(t)
	want := commit(t, st, id, 1000, nil, start(wire.KindAnonymous, 5000, 9000),
		setAttr("color", wire.Text("red")), wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("EUR")})
	got, err := st.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(want) {
		t.Fatalf("Get = %+v, want %+v", got, want)
	}
	want2 := commit(t, st, id, 2000, nil, setAttr("size", wire.Int(42)))
	got, _ = st.Get(ctx, id)
	if !got.Equal(want2) || got.Version != 2 {
		t.Fatalf("after second commit Get = %+v, want %+v", got, want2)
	}
}

func testConflict(t *testing.T, st store.Store) {
	id := newID(t)
	s1 := commit(t, st, id, 1000, nil, start(wire.KindAnonymous, 0, 0))
	tests := []struct {
		name string
		base uint64
	}{
		{"create over existing", 0},
		{"stale base", 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &wire.Delta{ID: id, BaseVersion: tc.base, Version: tc.base + 1, At: 2000, Ops: []wire.Op{setAttr("a", wire.Int(1))}}
			next := s1.Clone()
			next.Version = d.Version
			if err := st.Commit(ctx, &store.Commit{Delta: d, Session: next}); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("Commit = %v, want ErrConflict", err)
			}
		})
	}
	t.Run("unknown with base", func(t *testing.T) {
		other := newID(t)
		d := &wire.Delta{ID: other, BaseVersion: 3, Version: 4, At: 1, Ops: []wire.Op{setAttr("a", wire.Int(1))}}
		if err := st.Commit(ctx, &store.Commit{Delta: d, Session: &wire.Session{ID: other, Kind: wire.KindAnonymous, Version: 4}}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Commit = %v, want ErrConflict", err)
		}
	})
	got, _ := st.Get(ctx, id)
	if got.Version != 1 {
		t.Fatalf("failed commits changed the session: version %d", got.Version)
	}
}

func testChangeLogOrder(t *testing.T, st store.Store) {
	h0 := head(t, st)
	a, b := newID(t), newID(t)
	for i := 0; i < 3; i++ {
		for _, id := range []wire.ID{a, b} {
			ops := []wire.Op{setAttr("n", wire.Int(int64(i)))}
			if i == 0 {
				ops = append([]wire.Op{start(wire.KindAnonymous, 0, 0)}, ops...)
			}
			before := head(t, st)
			commit(t, st, id, int64(1000+i), nil, ops...)
			if head(t, st) == before {
				t.Fatal("Head did not move after a commit")
			}
		}
	}
	bt, err := st.ChangesAfter(ctx, h0, 4)
	if err != nil {
		t.Fatal(err)
	}
	if bt.Reset || len(bt.Deltas) != 4 {
		t.Fatalf("first page: reset %v, %d deltas; want 4", bt.Reset, len(bt.Deltas))
	}
	bt2, err := st.ChangesAfter(ctx, bt.Cursor, 100)
	if err != nil {
		t.Fatal(err)
	}
	all := append(bt.Deltas, bt2.Deltas...)
	if len(all) != 6 || bt2.Cursor != head(t, st) {
		t.Fatalf("got %d deltas, cursor %q, head %q", len(all), bt2.Cursor, head(t, st))
	}
	last := map[wire.ID]uint64{}
	for _, d := range all {
		if d.BaseVersion != last[d.ID] {
			t.Fatalf("delta of %s at base %d after version %d: per-session order broken", d.ID, d.BaseVersion, last[d.ID])
		}
		last[d.ID] = d.Version
	}
	bt3, _ := st.ChangesAfter(ctx, head(t, st), 100)
	if len(bt3.Deltas) != 0 || bt3.Reset || bt3.Cursor != head(t, st) {
		t.Fatalf("at head: %+v", bt3)
	}
}

// head returns the store's head cursor.
func head(t *testing.T, st store.Store) store.Cursor {
	t.Helper()
	h, err := st.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func testForeignCursor(t *testing.T, st store.Store) {
	commit(t, st, newID(t), 1, nil, start(wire.KindAnonymous, 0, 0))
	for _, c := range []store.Cursor{"not a cursor", "r!!", "99999999999999999999999"} {
		bt, err := st.ChangesAfter(ctx, c, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !bt.Reset || bt.Cursor != head(t, st) || len(bt.Deltas) != 0 {
			t.Fatalf("cursor %q: %+v, want a reset at head %q", c, bt, head(t, st))
		}
	}
}

func testWaitChanges(t *testing.T, st store.Store) {
	h := head(t, st)
	done := make(chan error, 1)
	go func() {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		done <- st.WaitChanges(c, h)
	}()
	time.Sleep(20 * time.Millisecond)
	commit(t, st, newID(t), 1, nil, start(wire.KindAnonymous, 0, 0))
	if err := <-done; err != nil {
		t.Fatalf("WaitChanges = %v", err)
	}
	c, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if err := st.WaitChanges(c, head(t, st)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitChanges at head = %v, want deadline exceeded", err)
	}
}

func testTouch(t *testing.T, st store.Store) {
	id := newID(t)
	commit(t, st, id, 1000, nil, start(wire.KindAnonymous, 5000, 100000))
	h := head(t, st)
	s, err := st.Touch(ctx, id, 3000, 8000)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != 1 || s.LastSeen != 3000 || s.IdleDeadline != 8000 {
		t.Fatalf("after touch: %+v", s)
	}
	if s, _ = st.Touch(ctx, id, 2000, 6000); s.LastSeen != 3000 || s.IdleDeadline != 8000 {
		t.Fatalf("an older touch moved the session back: %+v", s)
	}
	if head(t, st) != h {
		t.Fatalf("touch wrote to the change log")
	}
	due, _ := st.Expiring(ctx, 100000, 10)
	if len(due) != 1 || due[0].At != 8000 {
		t.Fatalf("expiry index after touch: %+v", due)
	}
	// An idle deadline never passes the hard one.
	if s, err = st.Touch(ctx, id, 4000, 250000); err != nil || s.IdleDeadline != 100000 {
		t.Fatalf("a touch past the hard deadline: %+v, %v", s, err)
	}
	if s, _ = st.Get(ctx, id); s.IdleDeadline != 100000 {
		t.Fatalf("after a touch past the hard deadline Get = %+v", s)
	}
}

func testExpiryIndex(t *testing.T, st store.Store) {
	a, b, c, sh := newID(t), newID(t), newID(t), newID(t)
	commit(t, st, a, 0, nil, start(wire.KindAnonymous, 3000, 9000))
	commit(t, st, b, 0, nil, start(wire.KindAnonymous, 1000, 9000))
	commit(t, st, c, 0, nil, start(wire.KindAnonymous, 0, 0))
	commit(t, st, sh, 0, nil, start(wire.KindShared, 500, 0))
	due, err := st.Expiring(ctx, 2500, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].ID != b || due[0].At != 1000 {
		t.Fatalf("Expiring(2500) = %+v, want only b at 1000", due)
	}
	// Ending b moves its entry to its purge time (hard deadline).
	commit(t, st, b, 1500, nil, wire.Op{Code: wire.OpEnd, Reason: wire.EndAbandoned})
	due, _ = st.Expiring(ctx, 10000, 10)
	want := []store.Due{{ID: a, At: 3000}, {ID: b, At: 9000}}
	if len(due) != 2 || due[0] != want[0] || due[1].ID != b {
		t.Fatalf("Expiring(10000) = %+v, want %+v", due, want)
	}
	if due, _ = st.Expiring(ctx, 10000, 1); len(due) != 1 {
		t.Fatalf("limit ignored: %d entries", len(due))
	}
}

func testCustomerIndex(t *testing.T, st store.Store) {
	a, b := newID(t), newID(t)
	for _, id := range []wire.ID{a, b} {
		commit(t, st, id, 0, nil, start(wire.KindAnonymous, 0, 0))
		commit(t, st, id, 1, nil, wire.Op{Code: wire.OpLogin, CustomerID: "c-1", Generation: 2})
	}
	ids, err := st.CustomerSessions(ctx, "c-1")
	if err != nil || len(ids) != 2 {
		t.Fatalf("CustomerSessions = %v, %v; want 2", ids, err)
	}
	if ids, _ = st.CustomerSessions(ctx, "c-"); len(ids) != 0 {
		t.Fatalf("prefix of a customer id matched: %v", ids)
	}
	commit(t, st, a, 2, nil, wire.Op{Code: wire.OpLogout, Generation: 3})
	commit(t, st, b, 2, nil, wire.Op{Code: wire.OpEnd, Reason: wire.EndRevoked})
	if ids, _ = st.CustomerSessions(ctx, "c-1"); len(ids) != 0 {
		t.Fatalf("after logout and end: %v", ids)
	}
}

func testOutbox(t *testing.T, st store.Store) {
	id := newID(t)
	commit(t, st, id, 0, [][]byte{[]byte("one"), []byte("two")}, start(wire.KindAnonymous, 0, 0))
	select {
	case <-st.OutboxNotify():
	case <-time.After(time.Second):
		t.Fatal("no outbox notification")
	}
	es, err := st.OutboxClaim(ctx, 10, time.Minute)
	if err != nil || len(es) != 2 || string(es[0].Body) != "one" || string(es[1].Body) != "two" {
		t.Fatalf("OutboxClaim = %+v, %v", es, err)
	}
	if again, _ := st.OutboxClaim(ctx, 10, time.Minute); len(again) != 0 {
		t.Fatalf("leased entries handed out again: %+v", again)
	}
	if err := st.OutboxDone(ctx, es[0].ID); err != nil {
		t.Fatal(err)
	}
	// Once a lease has passed, the undelivered entry is owed again.
	time.Sleep(20 * time.Millisecond)
	left, err := st.OutboxClaim(ctx, 10, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || string(left[0].Body) != "two" {
		t.Fatalf("after done and the lease: %+v", left)
	}
	if err := st.OutboxDone(ctx, left[0].ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if es, _ := st.OutboxClaim(ctx, 10, time.Millisecond); len(es) != 0 {
		t.Fatalf("entries left after all were done: %+v", es)
	}
}

func testPurge(t *testing.T, st store.Store) {
	id := newID(t)
	commit(t, st, id, 0, nil, start(wire.KindAnonymous, 0, 5000))
	s := commit(t, st, id, 1, nil, wire.Op{Code: wire.OpEnd, Reason: wire.EndAbandoned})
	Purge(t, st, id, s.Version)
	if due, _ := st.Expiring(ctx, 1<<62, 10); len(due) != 0 {
		t.Fatalf("index entries left after purge: %+v", due)
	}
}

// Purge purges the ended session id, stored at version, and checks that a
// purge at an older version conflicts and that the session is gone after.
func Purge(t testing.TB, st store.Store, id wire.ID, version uint64) {
	t.Helper()
	if err := st.Purge(ctx, id, version-1); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Purge at an old version = %v, want ErrConflict", err)
	}
	if err := st.Purge(ctx, id, version); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after purge = %v", err)
	}
}

// testConcurrentCAS runs writers that read, apply and compare-and-set the
// same session; every write must land exactly once.
func testConcurrentCAS(t *testing.T, st store.Store) {
	id := newID(t)
	commit(t, st, id, 0, nil, start(wire.KindAnonymous, 0, 0))
	const writers, each = 16, 10
	concurrently(t, writers, func(w int) error {
		for i := 0; i < each; i++ {
			for {
				_, err := tryCommit(st, id, 1, nil, setAttr(string(rune('a'+w))+"-"+string(rune('a'+i)), wire.Int(1)))
				if err == nil {
					break
				} else if !errors.Is(err, store.ErrConflict) {
					return err
				}
			}
		}
		return nil
	})
	s, _ := st.Get(ctx, id)
	if s.Version != 1+writers*each || len(s.Attrs[wire.NamespaceCustom]) != writers*each {
		t.Fatalf("version %d with %d attrs, want %d and %d", s.Version, len(s.Attrs[wire.NamespaceCustom]), 1+writers*each, writers*each)
	}
}

func testStats(t *testing.T, st store.Store) {
	before := st.Stats().LiveSessions
	a, b := newID(t), newID(t)
	commit(t, st, a, 0, nil, start(wire.KindAnonymous, 0, 0))
	commit(t, st, b, 0, nil, start(wire.KindAnonymous, 0, 0))
	commit(t, st, b, 1, nil, wire.Op{Code: wire.OpEnd, Reason: wire.EndAbandoned})
	if got := st.Stats().LiveSessions - before; got != 1 {
		t.Fatalf("live sessions grew by %d, want 1", got)
	}
}

// testFeedUnderConcurrentCommits follows the change log while writers commit
// concurrently: the reader sees every delta exactly once, in per-session
// order, even though commits finish out of cursor order.
func testFeedUnderConcurrentCommits(t *testing.T, st store.Store) {
	const writers, each = 16, 25
	first := head(t, st)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Go(func() {
			id, err := wire.NewID()
			if err != nil {
				t.Error(err)
				return
			}
			for i := 0; i < each; i++ {
				ops := []wire.Op{setAttr("n", wire.Int(int64(i)))}
				if i == 0 {
					ops = append([]wire.Op{start(wire.KindAnonymous, 0, 0)}, ops...)
				}
				if _, err := tryCommit(st, id, int64(i), nil, ops...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[wire.ID]uint64{}
	total := 0
	cursor := first
	finished := false
	for !finished {
		select {
		case <-done:
			finished = true // one last read below picks up the tail
		default:
		}
		bt, err := st.ChangesAfter(ctx, cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		if bt.Reset {
			t.Fatalf("reset while following the head")
		}
		for _, d := range bt.Deltas {
			if d.BaseVersion != seen[d.ID] {
				t.Fatalf("delta %s@%d after version %d: missed or reordered", d.ID, d.Version, seen[d.ID])
			}
			seen[d.ID] = d.Version
			total++
		}
		cursor = bt.Cursor
		if finished && cursor != head(t, st) {
			finished = false
		}
	}
	if total != writers*each {
		t.Fatalf("read %d deltas, want %d", total, writers*each)
	}
}
