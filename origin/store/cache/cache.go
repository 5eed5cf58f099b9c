// Package cache is the origin's read cache of sessions, used by every store
// backend: the decoded session and its CBOR encoding (docs/wire.md), by id,
// within a byte budget.
//
// Cost model: an entry counts len(encoding) + EntryOverhead bytes, plus
// ValueOverhead for every attribute and nested value, against the budget,
// whatever the backend. EntryOverhead covers what every entry holds besides
// its encoding: the decoded session's fixed part (wire.Session is about 800
// bytes) and the cache's bookkeeping; ValueOverhead the slot each decoded
// value takes (a wire.Value and its key, about 140 bytes of heap, where its
// encoding is often under 20). TestCostFollowsHeap checks that the count
// stays within 0.8–1.5 times the heap an entry holds, from sessions without
// attributes to sessions of 200.
//
// Coherence: a store changes the cache only in three ways.
//
//   - Put, after a write this process made (commit, touch): the entry
//     becomes that state, unless the cache holds a newer one.
//   - Drop and DropOlder, when the store learns of a change it cannot
//     install (another node's write, a failed or unknown write, a purge).
//   - Fill, after a read from the backend, with the Ticket taken before the
//     read: the fill lands only if no Put or Drop of the id happened since
//     the ticket, and never replaces a newer state. So a slow reader cannot
//     put back a state older than a write it raced with.
//
// "Newer" is the session's version, and at equal versions a state whose
// LastSeen and IdleDeadline are both later (touches move them without a new
// version). Tickets are per bucket of ids, not per id: an unrelated write
// in the same bucket at most costs a concurrent reader its fill.
//
// Entries may also expire (Config.TTL), for backends whose invalidations
// can be missed. Eviction is CLOCK (second chance) per shard: a hit only
// sets a flag, under a read lock, and allocates nothing.
//
// It is not a general-purpose cache such as ristretto on purpose: ristretto
// buffers its sets and admits new keys by frequency, asynchronously, so a
// fill cannot be ordered against a concurrent write, and a slow reader could
// put back a state older than a write the origin already acknowledged.
package cache

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// EntryOverhead is what every entry counts against the budget besides its
// encoding, in bytes.
const EntryOverhead = 1536

// ValueOverhead is what each attribute, list element or map member of a
// session counts against the budget besides its encoding, in bytes.
const ValueOverhead = 144

// entryCost is what the entry of s, encoded as enc, counts against the
// budget.
func entryCost(s *wire.Session, enc []byte) int64 {
	n := 0
	for i := range s.Fields {
		n += nestedValues(s.Fields[i])
	}
	for _, as := range s.Attrs {
		n += attrValues(as)
	}
	return int64(len(enc)) + EntryOverhead + ValueOverhead*int64(n)
}

func attrValues(as wire.Attrs) int {
	n := len(as)
	for i := range as {
		n += nestedValues(as[i].Value)
	}
	return n
}

// nestedValues counts the values inside v (the decoder bounds the depth).
func nestedValues(v wire.Value) int {
	switch v.Type {
	case wire.TypeList:
		n := len(v.List)
		for i := range v.List {
			n += nestedValues(v.List[i])
		}
		return n
	case wire.TypeMap:
		return attrValues(v.Map)
	}
	return 0
}

// DefaultBytes is the budget when the configuration gives none.
const DefaultBytes = 256 << 20

const (
	shardCount = 64 // a power of two
	buckets    = 64 // ticket buckets per shard, a power of two
)

// Config configures a Cache.
type Config struct {
	// MaxBytes is the budget under the cost model above; 0 means
	// DefaultBytes. New returns nil (a disabled cache, every method a no-op)
	// when it is negative.
	MaxBytes int64
	// TTL, when positive, is how long an entry may be served after it was
	// installed; 0 means entries do not expire.
	TTL time.Duration
	// Now returns the time; default time.Now. Tests move it.
	Now func() time.Time
}

// Cache holds sessions by id. It is safe for concurrent use; a nil *Cache
// is a disabled cache.
type Cache struct {
	shards   [shardCount]shard
	perShard int64
	maxBytes int64
	ttl      int64
	epoch    time.Time
	now      func() time.Time
}

type shard struct {
	mu    sync.RWMutex
	items map[wire.ID]*item
	// head is CLOCK's hand; new entries go to the tail.
	head, tail *item
	bytes      int64
	evictions  uint64
	tickets    [buckets]atomic.Uint64
	hits       atomic.Uint64
	misses     atomic.Uint64
	_          [64]byte // keep the next shard's lock off these counters' line
}

type item struct {
	sess       *wire.Session
	enc        []byte
	cost       int64
	expires    int64 // nanoseconds since Cache.epoch; 0: never
	ref        atomic.Bool
	prev, next *item
}

// New returns a cache, or nil when cfg.MaxBytes is negative.
func New(cfg Config) *Cache {
	if cfg.MaxBytes < 0 {
		return nil
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Cache{maxBytes: cfg.MaxBytes, perShard: cfg.MaxBytes / shardCount, ttl: int64(cfg.TTL), now: cfg.Now}
	c.epoch = c.now()
	for i := range c.shards {
		c.shards[i].items = make(map[wire.ID]*item)
	}
	return c
}

// locate returns id's shard and ticket bucket. Ids are random (or keyed
// hashes), so their bytes are a good hash.
func (c *Cache) locate(id wire.ID) (*shard, int) {
	h := binary.LittleEndian.Uint64(id[8:16])
	return &c.shards[h&(shardCount-1)], int(h>>32) & (buckets - 1)
}

func (c *Cache) clock() int64 { return int64(c.now().Sub(c.epoch)) }

func (c *Cache) live(it *item, now int64) bool { return it.expires == 0 || now < it.expires }

// Get returns the cached session id and its encoding, counting a hit or a
// miss. The returned values are shared and immutable.
func (c *Cache) Get(id wire.ID) (*wire.Session, []byte, bool) { return c.GetAtLeast(id, 0) }

// GetAtLeast is Get that counts an entry older than minVersion as a miss.
func (c *Cache) GetAtLeast(id wire.ID, minVersion uint64) (*wire.Session, []byte, bool) {
	if c == nil {
		return nil, nil, false
	}
	sh, _ := c.locate(id)
	s, enc, ok := c.lookup(sh, id)
	if ok && s.Version >= minVersion {
		sh.hits.Add(1)
		return s, enc, true
	}
	sh.misses.Add(1)
	return nil, nil, false
}

// Peek is Get for the store's own bookkeeping: it counts nothing and does
// not mark the entry as used.
func (c *Cache) Peek(id wire.ID) (*wire.Session, bool) {
	if c == nil {
		return nil, false
	}
	sh, _ := c.locate(id)
	var now int64
	if c.ttl > 0 {
		now = c.clock()
	}
	sh.mu.RLock()
	it := sh.items[id]
	var s *wire.Session
	if it != nil && c.live(it, now) {
		s = it.sess
	}
	sh.mu.RUnlock()
	return s, s != nil
}

func (c *Cache) lookup(sh *shard, id wire.ID) (*wire.Session, []byte, bool) {
	var now int64
	if c.ttl > 0 {
		now = c.clock()
	}
	sh.mu.RLock()
	it := sh.items[id]
	if it == nil || !c.live(it, now) {
		sh.mu.RUnlock()
		return nil, nil, false
	}
	if !it.ref.Load() {
		it.ref.Store(true)
	}
	s, enc := it.sess, it.enc
	sh.mu.RUnlock()
	return s, enc, true
}

// Ticket is taken before a read from the backend and handed to Fill.
type Ticket uint64

// Begin returns the ticket for a read of id that starts now.
func (c *Cache) Begin(id wire.ID) Ticket {
	if c == nil {
		return 0
	}
	sh, b := c.locate(id)
	return Ticket(sh.tickets[b].Load())
}

// Fill caches s (encoded as enc), read from the backend after Begin
// returned t. It reports whether s was cached: not when a Put or Drop of an
// id of the same bucket came after t, when the cache holds a state as new
// or newer, or when the entry alone exceeds a shard's budget.
func (c *Cache) Fill(t Ticket, s *wire.Session, enc []byte) bool {
	if c == nil {
		return false
	}
	sh, b := c.locate(s.ID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.tickets[b].Load() != uint64(t) {
		return false
	}
	return c.install(sh, s, enc)
}

// Put caches s (encoded as enc), a state this process has just written,
// unless the cache holds a newer one; it also stops fills of reads that
// started before it.
func (c *Cache) Put(s *wire.Session, enc []byte) {
	if c == nil {
		return
	}
	sh, b := c.locate(s.ID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.tickets[b].Add(1)
	if !c.install(sh, s, enc) {
		// Not cached (too large, or older than the entry): an entry older
		// than s must not stay.
		if it := sh.items[s.ID]; it != nil && newer(s, it.sess) {
			sh.remove(it)
		}
	}
}

// Drop forgets id and stops fills of reads that started before it.
func (c *Cache) Drop(id wire.ID) { c.DropOlder(id, 0) }

// DropOlder forgets id unless the cache holds version minVersion or later
// (minVersion 0 forgets it in any case), and stops fills of reads that
// started before it.
func (c *Cache) DropOlder(id wire.ID, minVersion uint64) {
	if c == nil {
		return
	}
	sh, b := c.locate(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.tickets[b].Add(1)
	if it := sh.items[id]; it != nil && (minVersion == 0 || it.sess.Version < minVersion) {
		sh.remove(it)
	}
}

// newer reports whether a is a later state of a session than b.
func newer(a, b *wire.Session) bool {
	if a.Version != b.Version {
		return a.Version > b.Version
	}
	return a.LastSeen >= b.LastSeen && a.IdleDeadline >= b.IdleDeadline &&
		(a.LastSeen > b.LastSeen || a.IdleDeadline > b.IdleDeadline)
}

// install puts s in sh (locked) unless a live entry is as new or newer.
func (c *Cache) install(sh *shard, s *wire.Session, enc []byte) bool {
	cost := entryCost(s, enc)
	if cost > c.perShard {
		return false
	}
	var now int64
	if c.ttl > 0 {
		now = c.clock()
	}
	if old := sh.items[s.ID]; old != nil {
		if c.live(old, now) && !newer(s, old.sess) {
			return false
		}
		sh.remove(old)
	}
	for sh.bytes+cost > c.perShard && sh.head != nil {
		it := sh.head
		if it.ref.Load() && c.live(it, now) {
			it.ref.Store(false)
			sh.unlink(it)
			sh.append(it)
			continue
		}
		sh.remove(it)
		sh.evictions++
	}
	it := &item{sess: s, enc: enc, cost: cost}
	if c.ttl > 0 {
		it.expires = now + c.ttl
	}
	sh.items[s.ID] = it
	sh.bytes += cost
	sh.append(it)
	return true
}

func (sh *shard) append(it *item) {
	it.prev, it.next = sh.tail, nil
	if sh.tail != nil {
		sh.tail.next = it
	} else {
		sh.head = it
	}
	sh.tail = it
}

func (sh *shard) unlink(it *item) {
	if it.prev != nil {
		it.prev.next = it.next
	} else {
		sh.head = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	} else {
		sh.tail = it.prev
	}
	it.prev, it.next = nil, nil
}

func (sh *shard) remove(it *item) {
	sh.unlink(it)
	delete(sh.items, it.sess.ID)
	sh.bytes -= it.cost
}

// Stats returns the cache's counters. A nil cache reports zeros.
func (c *Cache) Stats() store.CacheStats {
	if c == nil {
		return store.CacheStats{}
	}
	st := store.CacheStats{MaxBytes: c.maxBytes}
	for i := range c.shards {
		sh := &c.shards[i]
		st.Hits += sh.hits.Load()
		st.Misses += sh.misses.Load()
		sh.mu.RLock()
		st.Entries += int64(len(sh.items))
		st.Bytes += sh.bytes
		st.Evictions += sh.evictions
		sh.mu.RUnlock()
	}
	return st
}
