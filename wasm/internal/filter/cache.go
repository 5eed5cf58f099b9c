package filter

import (
	"encoding/binary"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/config"
)

// entryState says where a cached session came from.
type entryState uint8

const (
	stateOrigin  entryState = iota // fetched from the origin or built from its deltas
	stateLocal                     // minted here; the origin learns of it from touches
	stateUnknown                   // the origin answered 404: a fresh session with site defaults
)

// entry is one cached session. Entries are replaced, never mutated, when the
// session changes, so the forwarded header values computed for an entry
// stay valid for its lifetime.
type entry struct {
	id    wire.ID
	sess  *wire.Session
	state entryState
	size  int

	prev, next *entry // LRU list, most recent at head

	// fwd caches the forwarded header values for one site's defaults.
	fwdSite *config.Site
	fwd     forwarded

	touched uint64 // touch epoch in which this session was last reported
}

// sessionCache is a bounded LRU of sessions, by entry count and by bytes.
// It is keyed by the first 8 bytes of the id: ids are random (or keyed
// hashes), an integer key hashes far faster than an array in a Go wasm
// guest, and a lookup compares the whole id, so a collision is a miss.
type sessionCache struct {
	m          map[uint64]*entry
	head, tail *entry
	bytes      int
	maxEntries int
	maxBytes   int
}

func newSessionCache(entries, bytes int) sessionCache {
	return sessionCache{m: make(map[uint64]*entry, min(entries, 1024)), maxEntries: entries, maxBytes: bytes}
}

func idKey(id *wire.ID) uint64 { return binary.LittleEndian.Uint64(id[:8]) }

// peek returns the entry of id without touching the LRU order.
func (c *sessionCache) peek(id wire.ID) *entry {
	if e := c.m[idKey(&id)]; e != nil && e.id == id {
		return e
	}
	return nil
}

// entryOverhead approximates the memory of an entry beyond its encoding.
const entryOverhead = 256

func (c *sessionCache) get(id wire.ID) *entry {
	e := c.peek(id)
	if e != nil && c.head != e {
		c.unlink(e)
		c.pushFront(e)
	}
	return e
}

// put inserts or replaces the session of id and returns its entry.
func (c *sessionCache) put(s *wire.Session, state entryState) *entry {
	if old := c.m[idKey(&s.ID)]; old != nil {
		c.remove(old) // the same session, or a colliding one: a cache may forget
	}
	e := &entry{id: s.ID, sess: s, state: state, size: wire.SessionSize(s) + entryOverhead}
	c.m[idKey(&s.ID)] = e
	c.pushFront(e)
	c.bytes += e.size
	for c.tail != nil && c.tail != e && (len(c.m) > c.maxEntries || c.bytes > c.maxBytes) {
		c.remove(c.tail)
	}
	return e
}

func (c *sessionCache) drop(id wire.ID) {
	if e := c.peek(id); e != nil {
		c.remove(e)
	}
}

func (c *sessionCache) clear() {
	clear(c.m)
	c.head, c.tail, c.bytes = nil, nil, 0
}

func (c *sessionCache) remove(e *entry) {
	c.unlink(e)
	delete(c.m, idKey(&e.id))
	c.bytes -= e.size
}

func (c *sessionCache) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (c *sessionCache) pushFront(e *entry) {
	e.next = c.head
	if c.head != nil {
		c.head.prev = e
	}
	c.head = e
	if c.tail == nil {
		c.tail = e
	}
}

// tokenCache remembers tokens whose signature verified, so a repeat request
// costs a map lookup instead of an HMAC. Deadlines and generations are still
// checked on every hit; only the signature check is skipped.
//
// The key is 8 bytes of the token's text taken from its HMAC tag, and a hit
// compares the whole token. A client can choose those bytes for a forged
// token, but a forged token never verifies, so it is never stored; it can
// only make a lookup miss and pay for one HMAC, as without the cache.
type tokenCache struct {
	m   map[uint64]*tokenEntry
	max int
}

type tokenEntry struct {
	tok    [wire.TokenLen]byte
	claims wire.Claims
}

func newTokenCache(max int) tokenCache {
	return tokenCache{m: make(map[uint64]*tokenEntry, min(max, 1024)), max: max}
}

func tokenKey(tok []byte) uint64 { return binary.LittleEndian.Uint64(tok[len(tok)-8:]) }

func (c *tokenCache) get(tok []byte) (wire.Claims, bool) {
	if len(tok) != wire.TokenLen {
		return wire.Claims{}, false
	}
	if t := c.m[tokenKey(tok)]; t != nil && string(t.tok[:]) == string(tok) {
		return t.claims, true
	}
	return wire.Claims{}, false
}

func (c *tokenCache) put(tok []byte, cl *wire.Claims) {
	if len(tok) != wire.TokenLen {
		return
	}
	k := tokenKey(tok)
	if t := c.m[k]; t != nil {
		copy(t.tok[:], tok) // a colliding token replaces the older one
		t.claims = *cl
		return
	}
	if len(c.m) >= c.max {
		// Evict an arbitrary entry: map iteration starts at a random
		// position, which is as good as LRU for a cache of HMAC results and
		// costs no bookkeeping on the hit path.
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	t := &tokenEntry{claims: *cl}
	copy(t.tok[:], tok)
	c.m[k] = t
}
