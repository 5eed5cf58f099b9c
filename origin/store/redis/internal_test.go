package redis

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/origin/internal/redistest"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// TestGetAtLeastAcrossNodes: node b caches version 1, misses the
// notification of node a's write (its listeners are stopped), and so keeps
// serving version 1 from Get; GetAtLeast(2) reads Redis and answers 2.
func TestGetAtLeastAcrossNodes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := newStore(t, Config{URLs: urlsOf(srv.Addr), Shards: 4})
	b := newStore(t, Config{URLs: urlsOf(srv.Addr), Shards: 4, CacheTTL: time.Hour})
	b.cancel() // no notifications from here on
	b.wg.Wait()
	id, _ := wire.NewID()
	write(t, a, id, startOp())
	if got, err := b.Get(ctx, id); err != nil || got.Version != 1 {
		t.Fatalf("node b: %v, %v", got, err)
	}
	write(t, a, id, wire.Op{Code: wire.OpSetAttr, Key: "k", Value: wire.Int(2)})
	if got, _ := b.Get(ctx, id); got.Version != 1 {
		t.Fatalf("node b's Get = version %d; the test needs its stale cached copy", got.Version)
	}
	before := b.RoundTrips()
	got, err := b.GetAtLeast(ctx, id, 2)
	if err != nil || got.Version != 2 {
		t.Fatalf("GetAtLeast(2) on node b = %v, %v", got, err)
	}
	if n := b.RoundTrips() - before; n != 1 {
		t.Fatalf("GetAtLeast past a stale entry sent %d commands, want 1", n)
	}
	if _, enc, err := b.GetCBORAtLeast(ctx, id, 2); err != nil || !bytes.Equal(enc, wire.AppendSession(nil, got)) {
		t.Fatalf("GetCBORAtLeast(2): %v", err)
	}
	if got, _ := b.Get(ctx, id); got.Version != 2 {
		t.Fatalf("after GetAtLeast node b's Get = version %d, want 2", got.Version)
	}
	before = b.RoundTrips()
	if got, _ := b.GetAtLeast(ctx, id, 2); got.Version != 2 || b.RoundTrips() != before {
		t.Fatal("GetAtLeast at the cached version did not answer from the cache")
	}
}

// TestSubscriptionErrorsAreLogged kills Redis under a store: the lost
// notification subscriptions are logged with their cause.
func TestSubscriptionErrorsAreLogged(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	buf := &testbin.Buffer{}
	st := newStore(t, Config{URLs: urlsOf(srv.Addr), Shards: 2, Logger: buf.Logger()})
	id, _ := wire.NewID()
	write(t, st, id, startOp()) // the subscriptions are up by now, or soon
	time.Sleep(100 * time.Millisecond)
	srv.Stop()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := buf.String()
		if strings.Contains(out, "change notifications lost") && strings.Contains(out, "err=") &&
			(strings.Contains(out, "EOF") || strings.Contains(out, "refused") || strings.Contains(out, "reset") || strings.Contains(out, "closed")) {
			t.Logf("log:\n%s", out)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no lost subscription with its cause in the log:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTouchLeavesTombstonesInRedis touches a tombstone on a node without a
// cache, so the touch script itself must leave it alone.
func TestTouchLeavesTombstonesInRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st := newStore(t, Config{URLs: urlsOf(srv.Addr), Shards: 2, CacheBytes: -1})
	id, _ := wire.NewID()
	write(t, st, id, startOp())
	ended := write(t, st, id, wire.Op{Code: wire.OpEnd, Reason: wire.EndRevoked})
	got, err := st.Touch(ctx, id, ended.LastSeen+5000, ended.LastSeen+9000)
	if err != nil || !got.Equal(ended) {
		t.Fatalf("Touch of a tombstone = %+v, %v; want it unchanged", got, err)
	}
	if got, _ := st.Get(ctx, id); !got.Equal(ended) {
		t.Fatalf("Get after touching a tombstone = %+v", got)
	}
	if st.CacheStats().MaxBytes != 0 {
		t.Fatal("a disabled cache reports a budget")
	}
}

func TestPrefixWithBracesRefused(t *testing.T) {
	for _, p := range []string{"a}b", "{x", "}"} {
		if s, err := New(Config{URLs: []string{"redis://127.0.0.1:1"}, Prefix: p}); err == nil {
			s.Close()
			t.Fatalf("prefix %q accepted", p)
		}
	}
}

// TestGetHitAllocatesNothing: a read served by the cache allocates nothing
// and sends nothing, the CBOR one included.
func TestGetHitAllocatesNothing(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st := newStore(t, Config{URLs: urlsOf(srv.Addr), Shards: 2})
	id, _ := wire.NewID()
	write(t, st, id, startOp())
	before := st.RoundTrips()
	if n := testing.AllocsPerRun(1000, func() { st.Get(ctx, id) }); n != 0 {
		t.Fatalf("Get on a cache hit allocates %.1f times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { st.GetCBOR(ctx, id) }); n != 0 {
		t.Fatalf("GetCBOR on a cache hit allocates %.1f times", n)
	}
	if st.RoundTrips() != before {
		t.Fatal("cache hits sent commands")
	}
}
