package redis

import (
	"context"
	"errors"
	"github.com/sessionedge/sessionedge/origin/store/storetest"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/origin/internal/redistest"
	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

var ctx = context.Background()

// newStore connects a store with c and closes it when the test ends.
func newStore(tb testing.TB, c Config) *Store {
	tb.Helper()
	s, err := New(c)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func urlsOf(addrs ...string) []string {
	var out []string
	for _, a := range addrs {
		out = append(out, "redis://"+a)
	}
	return out
}

// write commits ops to id, now.
func write(t *testing.T, st store.Store, id wire.ID, ops ...wire.Op) *wire.Session {
	t.Helper()
	return storetest.Write(t, st, id, time.Now().UnixMilli(), store.Commit{}, ops...)
}

func TestRoundTripsPerCall(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st := newStore(t, Config{URLs: urlsOf(srv.Addr), Shards: 4})
	id, _ := wire.NewID()
	write(t, st, id, wire.Op{Code: wire.OpStart, Kind: wire.KindAnonymous, Generation: 1})
	// The cache holds what this node committed at once.
	if _, ok := st.cache.Peek(id); !ok {
		t.Fatal("the session this node committed is not cached")
	}
	before := st.RoundTrips()
	if _, err := st.Get(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := st.RoundTrips() - before; n != 0 {
		t.Errorf("Get on a cache hit sent %d commands, want 0", n)
	}
	before = st.RoundTrips()
	write(t, st, id, wire.Op{Code: wire.OpSetAttr, Key: "k", Value: wire.Int(1)})
	if n := st.RoundTrips() - before; n != 1 {
		t.Errorf("a PATCH-like write sent %d commands, want 1", n)
	}
}

func TestTwoNodesStayCoherent(t *testing.T) {
	c := redistest.StartCluster(t, 3, redistest.Options{})
	a := newStore(t, Config{URLs: urlsOf(c.Addrs()...), Shards: 8})
	b := newStore(t, Config{URLs: urlsOf(c.Addrs()[1]), Shards: 8})
	id, _ := wire.NewID()
	write(t, a, id, wire.Op{Code: wire.OpStart, Kind: wire.KindAnonymous, Generation: 1})
	if got, err := b.Get(ctx, id); err != nil || got.Version != 1 {
		t.Fatalf("node b: %v, %v", got, err)
	}
	write(t, a, id, wire.Op{Code: wire.OpSetAttr, Key: "k", Value: wire.Int(2)})
	deadline := time.Now().Add(time.Second)
	for {
		got, err := b.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node b still serves version %d a second after node a wrote version 2", got.Version)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startOp() wire.Op {
	return wire.Op{Code: wire.OpStart, Kind: wire.KindAnonymous, Generation: 1}
}

func TestFeedAcrossShards(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st := newStore(t, Config{URLs: urlsOf(srv.Addr), Shards: 4})
	head, err := st.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []wire.ID
	for i := 0; i < 20; i++ {
		id, _ := wire.NewID()
		ids = append(ids, id)
		write(t, st, id, startOp())
		write(t, st, id, wire.Op{Code: wire.OpSetAttr, Key: "n", Value: wire.Int(int64(i))})
	}
	// Page through with a small limit: every delta once, per-session order kept.
	seen, total := storetest.ReadFeed(t, st, head, 7, 100)
	if total != 40 {
		t.Fatalf("read %d deltas, want 40", total)
	}
	for _, id := range ids {
		if v := seen[id]; len(v) != 2 || v[0] != 1 || v[1] != 2 {
			t.Fatalf("session %s: versions %v, want [1 2]", id, v)
		}
	}
	if b, _ := st.ChangesAfter(ctx, "not a cursor", 10); !b.Reset {
		t.Fatal("a foreign cursor did not reset")
	}
	if b, _ := st.ChangesAfter(ctx, encodeCursor(make([]streamID, 3)), 10); !b.Reset {
		t.Fatal("a cursor for another shard count did not reset")
	}
}

func TestTrimmedCursorResets(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st := newStore(t, Config{URLs: urlsOf(srv.Addr), Shards: 1, FeedLength: 1})
	old, _ := st.Head(ctx)
	id, _ := wire.NewID()
	write(t, st, id, startOp())
	for i := 0; i < 300; i++ { // MAXLEN ~ trims whole nodes of ~100 entries
		write(t, st, id, wire.Op{Code: wire.OpSetAttr, Key: "n", Value: wire.Int(int64(i))})
	}
	b, err := st.ChangesAfter(ctx, old, 10)
	if err != nil || !b.Reset {
		t.Fatalf("a cursor behind the trimmed log: reset=%v err=%v", b.Reset, err)
	}
	head, _ := st.Head(ctx)
	if b.Cursor != head {
		t.Fatal("reset did not answer the head cursor")
	}
}

func TestTouchExpiryCustomerPurge(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st := newStore(t, Config{URLs: urlsOf(srv.Addr), Shards: 4})
	id, _ := wire.NewID()
	now := time.Now().UnixMilli()
	write(t, st, id, wire.Op{Code: wire.OpStart, Kind: wire.KindAnonymous, Generation: 1, Idle: now + 5_000, Hard: now + 90_000})
	got, err := st.Touch(ctx, id, now+3_000, now+8_000)
	if err != nil || got.LastSeen != now+3_000 || got.IdleDeadline != now+8_000 {
		t.Fatalf("Touch = %+v, %v", got, err)
	}
	if got, _ := st.Touch(ctx, id, 1, 2); got.LastSeen != now+3_000 || got.IdleDeadline != now+8_000 {
		t.Fatal("Touch moved a deadline back")
	}
	due, err := st.Expiring(ctx, now+10_000, 10)
	if err != nil || len(due) != 1 || due[0].ID != id || due[0].At != now+8_000 {
		t.Fatalf("Expiring = %+v, %v", due, err)
	}
	if due, _ := st.Expiring(ctx, now+8_000, 10); len(due) != 0 {
		t.Fatalf("Expiring before the due time = %+v", due)
	}
	write(t, st, id, wire.Op{Code: wire.OpLogin, CustomerID: "c-9", Generation: 2, Idle: now + 6_000, Hard: now + 90_000})
	if ids, err := st.CustomerSessions(ctx, "c-9"); err != nil || len(ids) != 1 || ids[0] != id {
		t.Fatalf("CustomerSessions = %v, %v", ids, err)
	}
	if st.Stats().LiveSessions != 1 {
		t.Fatalf("live = %d, want 1", st.Stats().LiveSessions)
	}
	ended := write(t, st, id, wire.Op{Code: wire.OpEnd, Reason: wire.EndRevoked})
	if ids, _ := st.CustomerSessions(ctx, "c-9"); len(ids) != 0 {
		t.Fatalf("an ended session is still listed for its customer: %v", ids)
	}
	if st.Stats().LiveSessions != 0 {
		t.Fatalf("live = %d after end, want 0", st.Stats().LiveSessions)
	}
	storetest.Purge(t, st, id, ended.Version)
}

func TestOutboxSharedByNodes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := newStore(t, Config{URLs: urlsOf(srv.Addr), Shards: 2})
	b := newStore(t, Config{URLs: urlsOf(srv.Addr), Shards: 2})
	for i := 0; i < 4; i++ {
		id, _ := wire.NewID()
		storetest.Write(t, a, id, 0, store.Commit{Outbox: [][]byte{[]byte("event " + id.String())}}, startOp())
	}
	gotA, err := a.OutboxClaim(ctx, 10, time.Minute)
	if err != nil || len(gotA) != 4 {
		t.Fatalf("node a claimed %d, %v; want 4", len(gotA), err)
	}
	if gotB, _ := b.OutboxClaim(ctx, 10, time.Minute); len(gotB) != 0 {
		t.Fatalf("node b got %d entries leased to node a", len(gotB))
	}
	if err := a.OutboxDone(ctx, gotA[0].ID); err != nil {
		t.Fatal(err)
	}
	// Node a "crashes": after the lease, node b takes the three it left.
	time.Sleep(30 * time.Millisecond)
	gotB, err := b.OutboxClaim(ctx, 10, 20*time.Millisecond)
	if err != nil || len(gotB) != 3 {
		t.Fatalf("node b reclaimed %d, %v; want 3", len(gotB), err)
	}
	for _, e := range gotB {
		if err := b.OutboxDone(ctx, e.ID); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(30 * time.Millisecond)
	if left, _ := a.OutboxClaim(ctx, 10, time.Millisecond); len(left) != 0 {
		t.Fatalf("%d entries left after all were done", len(left))
	}
	if err := a.OutboxDone(ctx, "nonsense"); err == nil {
		t.Fatal("OutboxDone accepted a malformed id")
	}
}

func TestRedisDownAndBack(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	st := newStore(t, Config{URLs: urlsOf(srv.Addr), Shards: 2, CacheBytes: -1})
	id, _ := wire.NewID()
	write(t, st, id, startOp())
	srv.Stop()
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := st.Get(short, id); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Get with Redis down = %v, want ErrUnavailable", err)
	}
	d := &wire.Delta{ID: id, BaseVersion: 1, Version: 2, Ops: []wire.Op{{Code: wire.OpTouch}}}
	if err := st.Commit(short, &store.Commit{Delta: d, Session: &wire.Session{ID: id, Kind: wire.KindAnonymous, Version: 2}}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Commit with Redis down = %v, want ErrUnavailable", err)
	}
	srv.Restart(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := st.Get(ctx, id)
		if err == nil {
			if got.Version != 1 {
				t.Fatalf("after restart version %d, want 1 (the failed commit must not have landed)", got.Version)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not recover after Redis came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConfigRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no URL", Config{}},
		{"bad scheme", Config{URLs: []string{"http://127.0.0.1:1"}}},
		{"bad second URL", Config{URLs: []string{"redis://127.0.0.1:1", "::"}}},
		{"too many shards", Config{URLs: []string{"redis://127.0.0.1:1"}, Shards: 5000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := New(tc.cfg); err == nil {
				s.Close()
				t.Fatal("New accepted the configuration")
			}
		})
	}
}
