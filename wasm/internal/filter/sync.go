package filter

import (
	"encoding/binary"
	"strconv"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
	"github.com/sessionedge/sessionedge/wasm/internal/config"
)

// Sync across VMs (docs/filter.md, "Sync with many VMs").
//
// Envoy runs one VM per worker, and every VM ticks. One VM at a time holds a
// lease in shared data and polls the origin's feed once per interval; it
// publishes each batch into a ring of shared-data slots and advances a head
// record. Every VM (the leader included) applies batches from the ring in
// sequence order to its own cache. A VM that finds a gap (a slot already
// overwritten, or a batch that does not continue from its cursor) drops its
// cache, which is always safe: the next request refetches. So the origin
// sees one poll per interval per edge process, whatever the number of VMs.
//
// Shared-data values (big-endian integers):
//
//	lease:    | nonce (8) | expiry, Unix ms (8) |
//	head:     | seq (8) | cursor ... |
//	slot n%R: | seq (8) | len (2) | cursor before | len (2) | cursor after | batch CBOR ... |
const ringSlots = 16

type syncState struct {
	keyLease, keyHead string
	keySlot           [ringSlots]string
	nonce             [8]byte
	interval          int64 // ms
	limit             uint32

	joined              bool   // seq and cursor follow the shared head
	seq                 uint64 // last batch applied
	cursor              string // cursor after seq
	solo                bool   // the host has no shared data: this VM polls for itself
	polling             bool
	lastPoll, lastFlush int64
	fresh               int64 // Unix ms: when the feed last delivered (a batch applied, published or followed)
	buf                 []byte
}

func (st *syncState) init(cfg *config.Config, nowMs int64) {
	prefix := "sessionedge/sync/" + cfg.Origin.Cluster + "/"
	st.keyLease, st.keyHead = prefix+"lease", prefix+"head"
	for i := range st.keySlot {
		st.keySlot[i] = prefix + "slot" + strconv.Itoa(i)
	}
	// Random bytes from a fresh session id: the guest links no crypto/rand.
	if id, err := wire.NewID(); err == nil {
		copy(st.nonce[:], id[:])
	} else {
		logf(abi.LogError, "no randomness for the sync lease nonce: "+err.Error())
	}
	st.interval = cfg.SyncInterval.Milliseconds()
	st.limit = cfg.SyncLimit
	st.joined, st.seq, st.cursor, st.solo, st.polling = false, 0, "", false, false
	st.lastPoll, st.lastFlush = 0, 0
	st.fresh = nowMs // a new cache holds nothing the feed could have missed
}

func (p *Plugin) tick(vm *VM) {
	now := abi.NowNanos() / 1e6
	st := &p.sync
	if !st.solo {
		p.follow(now)
	}
	if !st.polling && now-st.lastPoll >= st.interval && (st.solo || p.holdLease(now)) {
		p.poll(now)
	} else if st.polling && !st.solo {
		// Keep the lease while the poll is in flight, however long the
		// origin takes: a VM taking it over would poll from the same head,
		// and two VMs would publish one sequence.
		p.holdLease(now)
	}
	// Touches go out once per interval, and at once when a post's worth is
	// waiting, so a busy VM reports every active session.
	if now-st.lastFlush >= st.interval || len(p.touches.list) >= touchesPerPost {
		st.lastFlush = now
		p.flushTouches(now)
	}
	if p.breaker.open && !st.polling && len(p.touches.list) == 0 {
		p.probeOrigin(now)
	}
	p.checkStale(now)
}

// probeOrigin is the circuit breaker's probe of a VM that has nothing else
// to send: an open breaker is probed by request-path calls and by touch
// reports (flushTouches), so without this a VM that serves only cached
// sessions and reports nothing would keep it open until an uncached token
// came. After the cool-down it asks for the feed's head (GET
// /v1/sync?limit=1 without a cursor: an empty batch, cheap for the origin);
// the answer counts only for the breaker. The lease holder's own polls
// count too, so it probes only while none is in flight.
func (p *Plugin) probeOrigin(now int64) {
	ok, probe := p.breakerAllow(now)
	if !ok {
		return
	}
	c := &call{kind: callProbe, probe: probe}
	if !p.send("GET", "/v1/sync?limit=1", "", nil, nil, c, 0) {
		p.breakerRecord(false, probe, now)
	}
}

// checkStale follows the age of the feed: older than cache.maxStale, cached
// sessions are no longer served on the feed's word (see resolve).
func (p *Plugin) checkStale(now int64) {
	max := p.cfg.MaxStale.Milliseconds()
	stale := max > 0 && now-p.sync.fresh > max
	if stale == p.stale {
		return
	}
	p.stale = stale
	if stale {
		p.metricAdd(p.metrics.feedStale, 1)
		logf(abi.LogWarn, "sync feed silent for more than "+p.cfg.MaxStale.String()+": cached sessions are revalidated with the origin")
	} else {
		p.metricAdd(p.metrics.feedStale, -1)
		logf(abi.LogInfo, "sync feed delivering again: cached sessions trusted")
	}
}

// holdLease renews or takes the poll lease; it reports whether this VM
// holds it.
func (p *Plugin) holdLease(now int64) bool {
	st := &p.sync
	b, cas, status := abi.GetSharedData(st.keyLease)
	var val [16]byte
	copy(val[:8], st.nonce[:])
	binary.BigEndian.PutUint64(val[8:], uint64(now+3*st.interval))
	switch status {
	case abi.StatusOK:
		if len(b) == 16 && string(b[:8]) == string(st.nonce[:]) {
			if int64(binary.BigEndian.Uint64(b[8:]))-now >= 2*st.interval {
				return true
			}
		} else if len(b) == 16 && int64(binary.BigEndian.Uint64(b[8:])) > now {
			return false // another VM holds a live lease
		}
	case abi.StatusNotFound:
		cas = 0
	default:
		logf(abi.LogWarn, "shared data unavailable ("+status.Err().Error()+"); this VM polls the origin itself")
		st.solo = true
		return true
	}
	if rc := abi.SetSharedData(st.keyLease, val[:], cas); rc != abi.StatusOK {
		return false
	}
	// Two VMs that both found the key absent both succeed (the host ignores
	// the CAS of an absent key); reading back leaves one winner.
	b, _, status = abi.GetSharedData(st.keyLease)
	return status == abi.StatusOK && len(b) == 16 && string(b[:8]) == string(st.nonce[:])
}

// readHead returns the shared head record.
func (p *Plugin) readHead() (seq uint64, cursor string, cas uint32, ok bool) {
	b, cas, status := abi.GetSharedData(p.sync.keyHead)
	if status != abi.StatusOK || len(b) < 8 {
		return 0, "", 0, false
	}
	return binary.BigEndian.Uint64(b), string(b[8:]), cas, true
}

// follow applies the batches other VMs published since the last one seen.
func (p *Plugin) follow(now int64) {
	st := &p.sync
	headSeq, headCursor, _, ok := p.readHead()
	if !ok {
		return
	}
	if !st.joined {
		// Entries cached before joining may have missed deltas: start over.
		st.joined, st.seq, st.cursor = true, headSeq, headCursor
		p.dropCache()
		st.fresh = now
		return
	}
	if st.seq > headSeq || st.seq == headSeq && st.cursor != headCursor {
		// Out of step with the shared head: another VM published this
		// sequence too (two first publishers of a new ring, or one whose
		// batch overwrote the slot of the head's). No batch published
		// later continues from here, and as the lease holder this VM would
		// never poll again (poll waits for it to catch up): start over from
		// the head.
		p.resync(headSeq, headCursor, "this VM's feed position is out of step with the shared head")
		return
	}
	if st.seq < headSeq {
		st.fresh = now // the leader polled successfully
	}
	for st.seq < headSeq {
		next := st.seq + 1
		b, _, status := abi.GetSharedData(st.keySlot[next%ringSlots])
		slotSeq, prev, after, batch, good := parseSlot(b)
		var bt wire.Batch
		if good && status == abi.StatusOK && slotSeq == next && prev == st.cursor {
			good = wire.DecodeBatch(batch, &bt) == nil
		} else {
			good = false
		}
		if !good {
			p.resync(headSeq, headCursor, "missed published batches")
			return
		}
		p.applyBatch(&bt)
		st.seq, st.cursor = next, after
	}
}

// resync drops the session cache and continues from the shared head: the
// VM missed published batches, or its position is out of step with the
// head. It is logged (why, never a session id) and counted in
// sessionedge_feed_resyncs_total.
func (p *Plugin) resync(headSeq uint64, headCursor, why string) {
	logf(abi.LogWarn, "sync: "+why+"; dropping the session cache")
	p.counters.Resets++
	p.metricAdd(p.metrics.feedResyncs, 1)
	p.dropCache()
	p.sync.seq, p.sync.cursor = headSeq, headCursor
}

// dropCache drops every cached session, which is always safe: the next
// request fetches. The answers of calls in flight (fetches, logouts,
// writes) may predate the deltas that made the VM drop its cache: they
// serve the requests that wait for them and are not kept (call.stale).
func (p *Plugin) dropCache() {
	p.sessions.clear()
	for _, c := range p.calls {
		c.stale = true
	}
}

// appendSlot appends a ring slot: the batch seq, published from cursor prev,
// continuing at cursor after.
func appendSlot(dst []byte, seq uint64, prev, after string, batch []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, seq)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(prev)))
	dst = append(dst, prev...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(after)))
	dst = append(dst, after...)
	return append(dst, batch...)
}

func parseSlot(b []byte) (seq uint64, prev, after string, batch []byte, ok bool) {
	if len(b) < 12 {
		return
	}
	seq = binary.BigEndian.Uint64(b)
	b = b[8:]
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n+2 {
		return
	}
	prev = string(b[2 : 2+n])
	b = b[2+n:]
	m := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+m {
		return
	}
	after = string(b[2 : 2+m])
	return seq, prev, after, b[2+m:], true
}

func (p *Plugin) poll(now int64) {
	st := &p.sync
	if !st.solo {
		seq, cursor, _, ok := p.readHead()
		if ok && (seq != st.seq || cursor != st.cursor) {
			return // not caught up yet; follow first
		}
	}
	path := "/v1/sync?limit=" + strconv.FormatUint(uint64(st.limit), 10)
	if st.cursor != "" {
		path += "&after=" + queryEscape(st.cursor)
	}
	c := &call{kind: callPoll, from: st.cursor}
	st.lastPoll = now
	p.counters.SyncPolls++
	if p.send("GET", path, "", nil, nil, c, 0) {
		st.polling = true
	}
}

func (p *Plugin) polled(vm *VM, c *call, status int, body []byte, now int64) {
	st := &p.sync
	st.polling = false
	if status != 200 {
		logf(abi.LogWarn, "sync poll failed (status "+strconv.Itoa(status)+")")
		return
	}
	st.buf = append(st.buf[:0], body...) // body is invalidated by the shared-data calls below
	var bt wire.Batch
	if err := wire.DecodeBatch(st.buf, &bt); err != nil {
		logf(abi.LogWarn, "sync: bad batch from the origin: "+err.Error())
		return
	}
	if len(bt.Cursor) > 0xffff || len(c.from) > 0xffff {
		logf(abi.LogWarn, "sync: cursor longer than 64 KiB")
		return
	}
	full := len(bt.Deltas) >= int(st.limit)
	if st.solo {
		if c.from == "" {
			// The first poll starts from the head: what this VM cached
			// before may have missed the deltas up to it.
			p.dropCache()
		}
		p.applyBatch(&bt)
		st.cursor = bt.Cursor
		st.fresh = now
		if full {
			p.poll(now) // a full batch: more are waiting, do not wait an interval
		}
		return
	}
	seq, cursor, cas, ok := p.readHead()
	if !ok {
		seq, cursor, cas = 0, "", 0
	}
	if seq != st.seq || cursor != c.from {
		return // another VM published meanwhile; follow picks it up
	}
	// Another VM may be publishing this sequence from the same head (a
	// poll it sent while it held the lease): its slot is written, its head
	// not yet. Overwriting the slot would leave the head naming one batch
	// and the slot holding another; finish its publication instead (follow
	// applies it). A slot it writes after our read fails our CAS.
	key := st.keySlot[(seq+1)%ringSlots]
	old, slotCAS, got := abi.GetSharedData(key)
	switch got {
	case abi.StatusOK:
		if oseq, prev, after, _, ok := parseSlot(old); ok && oseq == seq+1 && prev == cursor {
			head := binary.BigEndian.AppendUint64(nil, seq+1)
			abi.SetSharedData(st.keyHead, append(head, after...), cas)
			return
		}
	case abi.StatusNotFound:
		slotCAS = 0
	}
	slot := appendSlot(make([]byte, 0, 12+len(c.from)+len(bt.Cursor)+len(st.buf)), seq+1, c.from, bt.Cursor, st.buf)
	if s := abi.SetSharedData(key, slot, slotCAS); s != abi.StatusOK {
		if s != abi.StatusCASMismatch {
			logf(abi.LogWarn, "sync: cannot publish a batch: "+s.Err().Error())
		}
		return // another VM publishes this sequence; follow picks it up
	}
	head := binary.BigEndian.AppendUint64(slot[:0], seq+1)
	head = append(head, bt.Cursor...)
	if s := abi.SetSharedData(st.keyHead, head, cas); s != abi.StatusOK {
		return
	}
	if !st.joined {
		// This VM started the ring from the head: what it cached before
		// may have missed the deltas up to it, as for a VM joining later.
		st.joined = true
		p.dropCache()
	}
	p.applyBatch(&bt)
	st.seq, st.cursor = seq+1, bt.Cursor
	st.fresh = now
	if full {
		p.poll(now) // a full batch: more are waiting, do not wait an interval
	}
}

// applyBatch applies a feed batch to the cache. Only cached sessions are
// touched; a delta that does not continue the cached version drops the
// entry, and the next request refetches it.
func (p *Plugin) applyBatch(bt *wire.Batch) {
	if bt.Reset {
		p.counters.Resets++
		p.dropCache()
	}
	for i := range bt.Deltas {
		d := &bt.Deltas[i]
		e := p.sessions.peek(d.ID)
		if e == nil {
			if c := p.inflight[d.ID]; c != nil && c.kind == callFetch && d.Version > c.feedVersion {
				c.feedVersion = d.Version // its answer may predate this delta
			}
			continue
		}
		if e.sess.Ended != 0 {
			continue
		}
		base := e.sess
		if e.state != stateOrigin {
			base = nil // minted here or unknown there: the origin's start delta creates it
		} else if d.Version <= base.Version {
			continue // already part of the fetched state
		}
		next, err := wire.Apply(base, d, &p.cfg.Limits)
		if err != nil {
			p.counters.SyncDropped++
			p.sessions.drop(d.ID)
			continue
		}
		p.counters.SyncApplied++
		p.putSession(next, stateOrigin, e.prot)
	}
}

// touchBuffer collects activity for the next touch reports, one record per
// session, at most limit records (sync.touchBuffer) counting those of
// posts in flight. Each record costs about 100 bytes with its index entry
// (TestTouchBufferMemory measures it; devices are shared records, see
// Plugin.device), so the default of 100,000 bounds the buffer near 10 MB
// per VM. A post that fails puts its records back, so an unreachable
// origin loses no activity until the buffer is full; at the cap, sessions
// not yet in the buffer are left out of this round (counted in
// sessionedge_touches_dropped_total) and reported in a later one if they
// are still active.
type touchBuffer struct {
	list []touchRec
	idx  map[wire.ID]int32
	// init holds what the edge applied to sessions the origin may not know
	// yet (Touch.Init), for the few records that have it.
	init     map[wire.ID][]wire.Op
	epoch    uint64
	inflight int // records in posts not answered yet
	limit    int
}

// touchRec is one buffered touch report (wire.Touch without its Init,
// with a shared device).
type touchRec struct {
	id         wire.ID
	kind       wire.Kind
	gen        uint32
	lastSeen   int64
	idle, hard int64
	dev        *wire.Device
}

// touchesPerPost bounds one report; a tick sends as many posts as the
// buffer needs.
const touchesPerPost = 5000

func (t *touchBuffer) reset(limit int) {
	t.list = t.list[:0]
	t.idx = map[wire.ID]int32{}
	t.init = map[wire.ID][]wire.Op{}
	t.epoch = 1
	t.inflight = 0
	t.limit = limit
}

// add records that the session of cl was seen at nowMs by the client dev;
// init, when set, is what the edge applied to a session the origin may not
// know yet.
func (t *touchBuffer) add(p *Plugin, cl *wire.Claims, nowMs int64, dev *wire.Device, init []wire.Op) {
	t.put(p, touchRec{id: cl.ID, kind: cl.Kind, gen: cl.Generation, lastSeen: nowMs,
		idle: cl.IdleDeadline * 1000, hard: cl.HardDeadline * 1000, dev: dev}, init)
}

// put records x, replacing an older record of its session.
func (t *touchBuffer) put(p *Plugin, x touchRec, init []wire.Op) {
	if i, ok := t.idx[x.id]; ok {
		if old := &t.list[i]; old.lastSeen <= x.lastSeen {
			*old = x
			if init != nil {
				t.init[x.id] = init
			}
		}
		return
	}
	if len(t.list)+t.inflight >= t.limit {
		p.counters.TouchesDropped++
		p.metricAdd(p.metrics.touchesDropped, 1)
		return
	}
	t.idx[x.id] = int32(len(t.list))
	t.list = append(t.list, x)
	if init != nil {
		t.init[x.id] = init
	}
}

// addTouch reports the activity of the stream's session with its client's
// device; a session the origin may not know yet (minted here, or unknown
// to the origin) carries what the edge applied to it.
func (p *Plugin) addTouch(s *stream, e *entry) {
	var init []wire.Op
	if e != nil && e.state != stateOrigin {
		init = initOps(e.sess, s.site)
	}
	p.touches.add(p, &s.claims, s.nowMs, p.device(s), init)
}

// flushTouches posts every buffered record, touchesPerPost at a time. While
// the circuit breaker is open they wait; after its cool-down one post goes
// out as its probe (the rest follow once it closed).
func (p *Plugin) flushTouches(now int64) {
	t := &p.touches
	if len(t.list) == 0 {
		return
	}
	probe := false
	if p.breaker.open {
		var ok bool
		if ok, probe = p.breakerAllow(now); !ok {
			return
		}
	}
	all := t.list
	for len(t.list) > 0 {
		n := min(len(t.list), touchesPerPost)
		c := &call{kind: callTouch, touches: make([]wire.Touch, n)}
		for i := range c.touches {
			r := &t.list[i]
			x := &c.touches[i]
			*x = wire.Touch{ID: r.id, Kind: r.kind, Generation: r.gen, LastSeen: r.lastSeen, IdleDeadline: r.idle,
				HardDeadline: r.hard, Init: t.init[r.id]}
			if r.dev != nil {
				x.Device = *r.dev
			}
		}
		c.probe = probe
		p.scratch = wire.AppendTouches(p.scratch[:0], c.touches)
		if !p.send("POST", "/v1/sync/touch", "application/cbor", p.scratch, nil, c, 0) {
			if probe {
				p.breakerRecord(false, probe, now)
			}
			break
		}
		for i := range c.touches {
			delete(t.init, c.touches[i].ID)
		}
		p.counters.TouchPosts++
		t.inflight += n
		t.list = t.list[n:]
		if probe {
			break // the others wait for the probe's answer
		}
	}
	t.list = all[:copy(all, t.list)]
	clear(t.idx)
	for i := range t.list {
		t.idx[t.list[i].id] = int32(i)
	}
	t.epoch++
}

// touchAnswered settles a touch post: a failed one puts its records back
// (newer records of the same sessions win).
func (p *Plugin) touchAnswered(c *call, status int) {
	t := &p.touches
	t.inflight = max(0, t.inflight-len(c.touches)) // a reconfigure started the count over
	if status/100 == 2 {
		return
	}
	logf(abi.LogWarn, "touch report not accepted by the origin (status "+strconv.Itoa(status)+"); kept for the next one")
	for i := range c.touches {
		x := &c.touches[i]
		var dev *wire.Device
		if !x.Device.IsZero() {
			dev = &x.Device
		}
		t.put(p, touchRec{id: x.ID, kind: x.Kind, gen: x.Generation, lastSeen: x.LastSeen, idle: x.IdleDeadline,
			hard: x.HardDeadline, dev: dev}, x.Init)
	}
}

// queryEscape percent-encodes s for a query parameter (everything but
// unreserved characters), without pulling net/url into the module.
func queryEscape(s string) string {
	const hexDigits = "0123456789ABCDEF"
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	return string(b)
}
