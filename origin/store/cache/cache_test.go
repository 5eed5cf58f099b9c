package cache

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// idFor returns an id that lands in shard and ticket bucket b of the cache
// (the rest of its bytes from n), so tests can aim at one shard.
func idFor(n uint64, shard, b int) wire.ID {
	var id wire.ID
	for i := 0; i < 8; i++ {
		id[i] = byte(n >> (8 * i))
	}
	h := uint64(shard) | uint64(b)<<32 | (n&0xffffff)<<8
	for i := 0; i < 8; i++ {
		id[8+i] = byte(h >> (8 * i))
	}
	return id
}

func newID(t testing.TB) wire.ID {
	id, err := wire.NewID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// session returns a session of id at version with an encoding of size
// bytes (the cache does not decode it).
func session(id wire.ID, version uint64, size int) (*wire.Session, []byte) {
	return &wire.Session{ID: id, Kind: wire.KindAnonymous, Generation: 1, Version: version}, make([]byte, size)
}

func TestCostAccounting(t *testing.T) {
	const budget = shardCount * 8 * 1024 // 8 KiB per shard
	c := New(Config{MaxBytes: budget})
	var want int64
	var ids []wire.ID
	for i := 0; i < 100; i++ {
		id := idFor(uint64(i), i%shardCount, 0) // at most two per shard: no eviction
		s, enc := session(id, 1, 10+i)
		c.Put(s, enc)
		ids = append(ids, id)
		want += int64(len(enc)) + EntryOverhead
	}
	st := c.Stats()
	if st.Bytes != want || st.Entries != 100 || st.MaxBytes != budget {
		t.Fatalf("after 100 puts: %+v, want %d bytes in 100 entries", st, want)
	}
	// Replacing an entry counts the new size only.
	s, enc := session(ids[0], 2, 500)
	c.Put(s, enc)
	want += 500 - 10
	if st = c.Stats(); st.Bytes != want || st.Entries != 100 {
		t.Fatalf("after a replacement: %+v, want %d bytes", st, want)
	}
	c.Drop(ids[0])
	want -= 500 + EntryOverhead
	if st = c.Stats(); st.Bytes != want || st.Entries != 99 {
		t.Fatalf("after a drop: %+v, want %d bytes", st, want)
	}
	// An entry larger than a shard's budget is not cached, and a Put of one
	// removes the older entry it supersedes.
	s, enc = session(ids[1], 2, budget/shardCount)
	c.Put(s, enc)
	if _, _, ok := c.Get(ids[1]); ok {
		t.Fatal("an entry above a shard's budget was cached, or its older version kept")
	}
}

func TestEvictionKeepsBudget(t *testing.T) {
	const budget = shardCount * 16 * 1024
	c := New(Config{MaxBytes: budget})
	for i := 0; i < 10_000; i++ {
		s, enc := session(newID(t), 1, 200+i%700)
		c.Put(s, enc)
		if i%1000 == 0 {
			if st := c.Stats(); st.Bytes > budget {
				t.Fatalf("cache holds %d bytes, budget %d", st.Bytes, budget)
			}
		}
	}
	st := c.Stats()
	if st.Bytes > budget || st.Evictions == 0 || st.Bytes < budget/2 {
		t.Fatalf("after 10,000 puts: %+v (budget %d)", st, budget)
	}
}

func TestSecondChance(t *testing.T) {
	// One shard holds 4 entries of this size; a hot entry survives a
	// stream of cold ones.
	const size = 1000
	c := New(Config{MaxBytes: shardCount * 4 * (size + EntryOverhead)})
	hot := idFor(1, 5, 0)
	s, enc := session(hot, 1, size)
	c.Put(s, enc)
	for i := uint64(2); i < 100; i++ {
		if _, _, ok := c.Get(hot); !ok {
			t.Fatalf("hot entry evicted after %d cold ones", i-2)
		}
		s, enc := session(idFor(i, 5, 0), 1, size)
		c.Put(s, enc)
	}
}

func TestVersionGuard(t *testing.T) {
	c := New(Config{})
	id := newID(t)
	v := func(version uint64, lastSeen int64) (*wire.Session, []byte) {
		s, enc := session(id, version, 50)
		s.LastSeen = lastSeen
		return s, enc
	}
	cached := func() uint64 {
		t.Helper()
		s, ok := c.Peek(id)
		if !ok {
			return 0
		}
		return s.Version
	}

	// A fill whose read raced with a write is refused, even with the cache
	// empty.
	tk := c.Begin(id)
	s2, e2 := v(2, 0)
	c.Put(s2, e2)
	c.Drop(id)
	s1, e1 := v(1, 0)
	if c.Fill(tk, s1, e1) || cached() != 0 {
		t.Fatal("a fill that began before a write was cached")
	}

	// A fill never replaces a newer version; Put neither.
	c.Put(s2, e2)
	if c.Fill(c.Begin(id), s1, e1) || cached() != 2 {
		t.Fatalf("a fill replaced version 2 with 1 (cached %d)", cached())
	}
	c.Put(s1, e1)
	if cached() != 2 {
		t.Fatalf("a Put of version 1 replaced version 2 (cached %d)", cached())
	}
	s3, e3 := v(3, 0)
	if !c.Fill(c.Begin(id), s3, e3) || cached() != 3 {
		t.Fatal("a fill of a newer version was refused")
	}

	// At equal versions, a later touch state wins, an earlier one does not.
	s3t, e3t := v(3, 500)
	c.Put(s3t, e3t)
	if s, _ := c.Peek(id); s.LastSeen != 500 {
		t.Fatal("a touched state of the same version was not installed")
	}
	if c.Fill(c.Begin(id), s3, e3) {
		t.Fatal("a fill moved LastSeen back")
	}

	// DropOlder keeps an entry at or above the version, drops an older one.
	c.DropOlder(id, 3)
	if cached() != 3 {
		t.Fatal("DropOlder(3) dropped version 3")
	}
	c.DropOlder(id, 4)
	if cached() != 0 {
		t.Fatal("DropOlder(4) kept version 3")
	}
}

func TestTTL(t *testing.T) {
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	c := New(Config{TTL: 2 * time.Second, Now: clock})
	id := newID(t)
	s, enc := session(id, 5, 50)
	c.Put(s, enc)
	advance(1999 * time.Millisecond)
	if _, _, ok := c.Get(id); !ok {
		t.Fatal("entry gone before its TTL")
	}
	advance(time.Millisecond)
	if _, _, ok := c.Get(id); ok {
		t.Fatal("entry served after its TTL")
	}
	// An expired entry does not block a fill of an older state (it may
	// have missed an invalidation; the backend is the truth).
	old, oenc := session(id, 4, 50)
	if !c.Fill(c.Begin(id), old, oenc) {
		t.Fatal("an expired entry blocked a fill")
	}
}

func TestHitRatio(t *testing.T) {
	c := New(Config{})
	ids := make([]wire.ID, 10)
	for i := range ids {
		ids[i] = newID(t)
		if i < 8 {
			s, enc := session(ids[i], 3, 20)
			c.Put(s, enc)
		}
	}
	for _, id := range ids {
		c.Get(id)
	}
	c.GetAtLeast(ids[0], 4) // older than asked: a miss
	c.GetAtLeast(ids[1], 3)
	c.Peek(ids[2]) // not counted
	st := c.Stats()
	if st.Hits != 9 || st.Misses != 3 {
		t.Fatalf("hits %d misses %d, want 9 and 3", st.Hits, st.Misses)
	}
	if r := st.HitRatio(); r != 0.75 {
		t.Fatalf("hit ratio %v, want 0.75", r)
	}
}

func TestNilCacheIsDisabled(t *testing.T) {
	c := New(Config{MaxBytes: -1})
	if c != nil {
		t.Fatal("negative MaxBytes did not disable the cache")
	}
	id := newID(t)
	s, enc := session(id, 1, 10)
	c.Put(s, enc)
	if c.Fill(c.Begin(id), s, enc) {
		t.Fatal("a disabled cache took a fill")
	}
	if _, _, ok := c.Get(id); ok {
		t.Fatal("a disabled cache answered")
	}
	c.Drop(id)
	if st := c.Stats(); st != (store.CacheStats{}) {
		t.Fatalf("stats of a disabled cache: %+v", st)
	}
}

func TestHitAllocatesNothing(t *testing.T) {
	for _, ttl := range []time.Duration{0, time.Hour} {
		c := New(Config{TTL: ttl})
		id := newID(t)
		s, enc := session(id, 1, 100)
		c.Put(s, enc)
		if n := testing.AllocsPerRun(1000, func() { c.Get(id) }); n != 0 {
			t.Fatalf("TTL %v: a hit allocates %.1f times", ttl, n)
		}
	}
}

// TestVersionGuardUnderConcurrency runs writers that commit increasing
// versions to a "backend" and Put them, and readers that read the backend
// slowly and Fill, on a few ids. Once a Put of version v returned, no Get
// may answer an older version, whatever the readers do.
func TestVersionGuardUnderConcurrency(t *testing.T) {
	c := New(Config{MaxBytes: shardCount * 64 * 1024})
	const ids, writes = 4, 2000
	type backend struct {
		mu        sync.Mutex // serializes a session's writers, as a store does
		committed atomic.Uint64
		put       atomic.Uint64 // highest version whose Put returned
	}
	var be [ids]backend
	var idOf [ids]wire.ID
	for i := range idOf {
		idOf[i] = idFor(uint64(i), i%2, 0) // two per shard and bucket: false sharing of tickets too
	}
	stop := make(chan struct{})
	var readers, writers sync.WaitGroup
	var violations atomic.Int64
	for r := 0; r < 8; r++ {
		readers.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := rng.IntN(ids)
				floor := be[i].put.Load()
				if s, _, ok := c.Get(idOf[i]); ok && s.Version < floor {
					violations.Add(1)
				}
				tk := c.Begin(idOf[i])
				v := be[i].committed.Load()
				if rng.IntN(4) == 0 {
					runtime.Gosched() // a slow reader
				}
				if v > 0 {
					s, enc := session(idOf[i], v, 64)
					c.Fill(tk, s, enc)
				}
			}
		})
	}
	for w := 0; w < ids; w++ {
		writers.Add(1)
		go func(i int) {
			defer writers.Done()
			for v := uint64(1); v <= writes; v++ {
				be[i].mu.Lock()
				be[i].committed.Store(v) // durable in the backend first
				s, enc := session(idOf[i], v, 64)
				c.Put(s, enc)
				be[i].put.Store(v)
				be[i].mu.Unlock()
				if v%64 == 0 {
					c.Drop(idOf[(i+1)%ids]) // an invalidation from elsewhere
				}
			}
		}(w)
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	if n := violations.Load(); n != 0 {
		t.Fatalf("%d reads saw a version older than one already written", n)
	}
	for i := range idOf {
		if s, ok := c.Peek(idOf[i]); ok && s.Version != writes {
			t.Fatalf("id %d: cache ends at version %d, the backend at %d", i, s.Version, writes)
		}
	}
}
