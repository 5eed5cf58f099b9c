package filter

import (
	"unsafe"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/config"
)

// entryState says where a cached session came from.
type entryState uint8

const (
	stateOrigin  entryState = iota // fetched from the origin or built from its deltas
	stateLocal                     // minted here; the origin learns of it when its token comes back
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
	prot  bool // in the protected segment

	prev, next *entry // the segment's LRU list, most recent at head

	// checked is when the origin last vouched for this state (Unix ms): the
	// fetch or write that brought it, or the mint. With a working feed
	// every cached entry is current; without one, an entry is trusted for
	// cache.maxStale after checked.
	checked int64
	// hintSeen is the highest consistency hint this entry was fetched for:
	// a hint at or below it fetches nothing more, even if the origin had
	// nothing newer to give.
	hintSeen uint64
	// want is a version the app reported writing (x-session-written) that
	// this copy predates: it is not served again, the next request fetches
	// at least that version.
	want uint64

	// fwd caches the forwarded header values for one site's defaults, with
	// or without the consent cookie.
	fwdSite    *config.Site
	fwdConsent bool
	fwd        forwarded

	touched uint64 // touch epoch in which this session was last reported
}

// putSession caches next in place of whatever the cache holds of its
// session, keeping what the cache knows beyond the state: when the origin
// last vouched for it (checked), the hints it was fetched for (hintSeen),
// the touch epoch at the same generation, and above all a pending minimum
// version (want: a write the app or the shopper reported, or a feed delta
// an answer predated) that next does not reach yet, so no replacement (a
// feed delta, a fetch answer, a write's answer, captured values) can make
// the VM serve a version older than a reported write. Every path that
// replaces a cached session goes through it; callers that learn more (a
// fetch's time, the version it asked for) set it on the returned entry.
func (p *Plugin) putSession(next *wire.Session, state entryState, protect bool) *entry {
	old := p.sessions.peek(next.ID)
	ne := p.sessions.put(next, state, protect)
	if old != nil {
		ne.checked, ne.hintSeen = old.checked, old.hintSeen
		if old.sess.Generation == next.Generation {
			ne.touched = old.touched
		}
		if old.want > next.Version {
			ne.want = old.want
		}
	}
	return ne
}

// segment is one LRU list of the session cache.
type segment struct {
	head, tail *entry
	n, bytes   int
}

// sessionCache is a bounded segmented LRU of sessions, by entry count and by
// bytes. New entries minted here start in the probation segment; an entry
// seen again (its token came back) moves to the protected segment, as do
// entries the origin vouched for. Eviction takes the probation segment's
// oldest first, and the protected segment is capped at 80% of the budget
// (its oldest entries are demoted to probation), so a flood of one-shot
// sessions (bots, clients that drop cookies) churns only probation and
// cannot evict the sessions of returning clients.
//
// It is keyed by the first 8 bytes of the id: ids are random (or keyed
// hashes), an integer key hashes far faster than an array in a Go wasm
// guest, and a lookup compares the whole id, so a collision is a miss.
type sessionCache struct {
	m                      table[entry]
	prob, prot             segment
	maxEntries, maxBytes   int
	protEntries, protBytes int // caps of the protected segment
}

func newSessionCache(entries, bytes int) sessionCache {
	return sessionCache{maxEntries: entries, maxBytes: bytes,
		protEntries: entries * 8 / 10, protBytes: bytes / 10 * 8}
}

// idKey is the first 8 bytes of an id as one load (binary.LittleEndian
// assembles them byte by byte on wasm).
func idKey(id *wire.ID) uint64 { return *(*uint64)(unsafe.Pointer(&id[0])) }

// entryOverhead approximates the memory of an entry beyond its encoding.
const entryOverhead = 256

// peek returns the entry of id without touching the LRU order.
func (c *sessionCache) peek(id wire.ID) *entry {
	if e := c.m.get(idKey(&id)); e != nil && equalID(&e.id, &id) {
		return e
	}
	return nil
}

// get returns the entry of id as the most recent; a probation entry is
// promoted: this is its second sight.
func (c *sessionCache) get(id wire.ID) *entry {
	e := c.peek(id)
	if e == nil {
		return nil
	}
	if e.prot {
		if c.prot.head != e {
			c.prot.unlink(e)
			c.prot.pushFront(e)
		}
		return e
	}
	c.prob.unlink(e)
	e.prot = true
	c.prot.pushFront(e)
	c.balance()
	return e
}

// put inserts or replaces the session of id and returns its entry, in the
// protected segment when protect is set (or when it replaces a protected
// entry).
func (c *sessionCache) put(s *wire.Session, state entryState, protect bool) *entry {
	if old := c.m.get(idKey(&s.ID)); old != nil {
		protect = protect || old.prot && old.id == s.ID
		c.remove(old) // the same session, or a colliding one: a cache may forget
	}
	e := &entry{id: s.ID, sess: s, state: state, size: wire.SessionSize(s) + entryOverhead, prot: protect}
	c.m.set(idKey(&s.ID), e)
	if protect {
		c.prot.pushFront(e)
		c.balance()
	} else {
		c.prob.pushFront(e)
	}
	for c.m.len() > c.maxEntries || c.prob.bytes+c.prot.bytes > c.maxBytes {
		victim := c.prob.tail
		if victim == e || victim == nil {
			victim = c.prot.tail
		}
		if victim == e || victim == nil {
			break // one entry larger than the budget stays
		}
		c.remove(victim)
	}
	return e
}

// balance demotes the protected segment's oldest entries to probation while
// it holds more than its share.
func (c *sessionCache) balance() {
	for c.prot.tail != nil && (c.prot.n > c.protEntries || c.prot.bytes > c.protBytes) {
		t := c.prot.tail
		c.prot.unlink(t)
		t.prot = false
		c.prob.pushFront(t)
	}
}

func (c *sessionCache) drop(id wire.ID) {
	if e := c.peek(id); e != nil {
		c.remove(e)
	}
}

func (c *sessionCache) clear() {
	c.m.clear()
	c.prob, c.prot = segment{}, segment{}
}

func (c *sessionCache) len() int { return c.m.len() }

func (c *sessionCache) remove(e *entry) {
	if e.prot {
		c.prot.unlink(e)
	} else {
		c.prob.unlink(e)
	}
	c.m.del(idKey(&e.id))
}

func (sg *segment) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		sg.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		sg.tail = e.prev
	}
	e.prev, e.next = nil, nil
	sg.n--
	sg.bytes -= e.size
}

func (sg *segment) pushFront(e *entry) {
	e.next = sg.head
	if sg.head != nil {
		sg.head.prev = e
	}
	sg.head = e
	if sg.tail == nil {
		sg.tail = e
	}
	sg.n++
	sg.bytes += e.size
}

// tokenCache remembers tokens whose signature verified, so a repeat request
// costs a map lookup instead of an HMAC. Deadlines and generations are still
// checked on every hit; only the signature check is skipped. A token the
// origin refused (stale generation, ended session) is remembered as dead,
// so repeating it costs no origin call.
//
// The key is 8 bytes of the token's text taken from its HMAC tag, and a hit
// compares the whole token. A client can choose those bytes for a forged
// token, but a forged token never verifies, so it is never stored; it can
// only make a lookup miss and pay for one HMAC, as without the cache.
type tokenCache struct {
	m   table[tokenEntry]
	max int
}

type tokenEntry struct {
	tok    [wire.TokenLen]byte
	claims wire.Claims
	dead   bool
}

func newTokenCache(max int) tokenCache {
	return tokenCache{max: max}
}

func tokenKey(tok []byte) uint64 { return *(*uint64)(unsafe.Pointer(&tok[len(tok)-8])) }

// lookup returns the entry of tok, or nil.
func (c *tokenCache) lookup(tok []byte) *tokenEntry {
	if len(tok) != wire.TokenLen {
		return nil
	}
	if t := c.m.get(tokenKey(tok)); t != nil && equalBytes(t.tok[:], tok) {
		return t
	}
	return nil
}

// get returns the claims of a cached live token.
func (c *tokenCache) get(tok []byte) (wire.Claims, bool) {
	if t := c.lookup(tok); t != nil && !t.dead {
		return t.claims, true
	}
	return wire.Claims{}, false
}

// markDead remembers that tok was refused for good.
func (c *tokenCache) markDead(tok []byte) {
	if t := c.lookup(tok); t != nil {
		t.dead = true
	}
}

func (c *tokenCache) put(tok []byte, cl *wire.Claims) {
	if len(tok) != wire.TokenLen {
		return
	}
	k := tokenKey(tok)
	if t := c.m.get(k); t != nil {
		copy(t.tok[:], tok) // a colliding token replaces the older one
		t.claims, t.dead = *cl, false
		return
	}
	if c.m.len() >= c.max {
		// Evict an arbitrary entry: the first one at or after the new
		// token's slot, a random position, which is as good as LRU for a
		// cache of HMAC results and costs no bookkeeping on the hit path.
		victim, _ := c.m.any(k)
		c.m.del(victim)
	}
	t := &tokenEntry{claims: *cl}
	copy(t.tok[:], tok)
	c.m.set(k, t)
}
