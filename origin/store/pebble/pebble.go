// Package pebble is the embedded store of the origin: sessions, change log,
// expiry index, customer index and webhook outbox in one Pebble database,
// with the read cache of origin/store/cache in front.
//
// Key layout (one byte of prefix, then big-endian numbers so that byte order
// is numeric order):
//
//	's' id(16)                      → CBOR session (wire.AppendSession)
//	'c' seq(8)                      → CBOR delta (wire.AppendDelta): the change log
//	'x' due(8) id(16)               → empty: the expiry index, ordered by time
//	'u' uvarint(len) customer id(16) → empty: the customer index
//	'o' seq(8)                      → webhook event body: the outbox
//	'w' due(8) id(16)               → empty: pending change events, by due time
//
// Every Commit is one Pebble batch written with pebble.Sync while the
// session's lock stripe is held, so a session's writes are serialized and
// each is durable before it is acknowledged. Committers of different sessions
// do not wait for each other: Pebble's commit pipeline appends concurrent
// batches to the WAL and its log writer syncs everything queued so far with
// one fsync, so N concurrent committers cost about one fsync, not N
// (group commit; see LogWriter.flushLoop and commitPipeline in Pebble).
//
// Every scan of a key prefix ends at the prefix's successor (prefixEnd),
// so keys whose next bytes are 0xff are inside it.
package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/origin/store/cache"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Config configures a Store. The zero value of each field means its default.
type Config struct {
	// Dir is the data directory; default "./data".
	Dir string
	// CacheBytes is the read cache's budget (origin/store/cache: each
	// session counts about the heap it holds); default 256
	// MiB; negative disables the cache.
	CacheBytes int64
	// BlockCacheBytes is Pebble's block cache; default 64 MiB.
	BlockCacheBytes int64
	// Retention is how many change-log entries are kept; default 1,000,000.
	// An edge whose cursor is older gets a Reset.
	Retention uint64
	// TombstoneTTL is how long a tombstone stays after the end when its
	// hard deadline does not bound its tokens (store.DueAt); default 24 h.
	// It must be at least the longest a token can stay valid after it is
	// issued (the shared sessions' token lifetime, every other kind's idle
	// timeout).
	TombstoneTTL time.Duration
	// NoSync skips fsync on commit (tests and benchmarks of the non-durable
	// path only); default false.
	NoSync bool
	// Logger receives the store's and Pebble's errors and notices; default
	// slog.Default().
	Logger *slog.Logger
}

const stripes = 4096

// Store is the Pebble-backed store.Store.
type Store struct {
	db           *pebble.DB
	cache        *cache.Cache // nil: disabled
	log          *slog.Logger
	wo           *pebble.WriteOptions
	retention    uint64
	tombstoneTTL int64

	locks [stripes]stripe

	leaseMu sync.Mutex
	leases  map[uint64]time.Time // outbox entries handed out, and when

	// pending holds the due time of every session's pending change event
	// (the 'w' keys), so a commit need not read Pebble to learn whether one
	// is pending. An id's entry changes only under the id's stripe.
	pendMu  sync.Mutex
	pending map[wire.ID]int64

	seq     atomic.Uint64 // last allocated change-log sequence
	outSeq  atomic.Uint64 // last allocated outbox sequence
	first   atomic.Uint64 // oldest retained change-log sequence
	live    atomic.Int64
	pub     publisher
	outNote chan struct{}

	closed    atomic.Bool
	stop      chan struct{}
	pruneDone chan struct{}
}

// Open opens (creating if needed) the store in cfg.Dir.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		cfg.Dir = "./data"
	}
	if cfg.BlockCacheBytes <= 0 {
		cfg.BlockCacheBytes = 64 << 20
	}
	if cfg.Retention == 0 {
		cfg.Retention = 1_000_000
	}
	if cfg.TombstoneTTL <= 0 {
		cfg.TombstoneTTL = 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	bc := pebble.NewCache(cfg.BlockCacheBytes)
	defer bc.Unref()
	db, err := pebble.Open(cfg.Dir, &pebble.Options{
		Cache:         bc,
		MemTableSize:  4 << 20,
		Logger:        pebbleLogger{cfg.Logger},
		EventListener: eventListener(cfg.Logger),
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open pebble store in %s: %w", cfg.Dir, err)
	}
	s := &Store{
		db: db, cache: cache.New(cache.Config{MaxBytes: cfg.CacheBytes}), log: cfg.Logger, retention: cfg.Retention,
		tombstoneTTL: cfg.TombstoneTTL.Milliseconds(),
		wo:           pebble.Sync,
		leases:       map[uint64]time.Time{},
		pending:      map[wire.ID]int64{},
		outNote:      make(chan struct{}, 1),
		stop:         make(chan struct{}),
		pruneDone:    make(chan struct{}),
	}
	if cfg.NoSync {
		s.wo = pebble.NoSync
	}
	if err := s.load(); err != nil {
		db.Close()
		return nil, err
	}
	go s.pruneLoop()
	return s, nil
}

// Key prefixes.
const (
	prefixSession  = 's'
	prefixLog      = 'c'
	prefixDue      = 'x'
	prefixCustomer = 'u'
	prefixOutbox   = 'o'
	prefixPending  = 'w'
)

// prefixEnd returns the exclusive upper bound of the keys that start with
// p: p's successor (p with its last byte below 0xff incremented, the bytes
// after it dropped), or nil (no upper bound) when p is all 0xff. Appending
// 0xff to p instead would leave out every key that continues with 0xff.
func prefixEnd(p []byte) []byte {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] != 0xff {
			end := append([]byte(nil), p[:i+1]...)
			end[i]++
			return end
		}
	}
	return nil
}

// prefixRange is the iterator range of the keys that start with p.
func prefixRange(p []byte) *pebble.IterOptions {
	return &pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)}
}

// load restores the sequences and the live-session count from the database.
func (s *Store) load() error {
	last := func(prefix byte) (uint64, bool, error) {
		it, err := s.db.NewIter(prefixRange([]byte{prefix}))
		if err != nil {
			return 0, false, err
		}
		defer it.Close()
		if !it.Last() {
			return 0, false, it.Error()
		}
		return binary.BigEndian.Uint64(it.Key()[1:9]), true, nil
	}
	head, _, err := last(prefixLog)
	if err != nil {
		return fmt.Errorf("cannot read change log: %w", err)
	}
	s.seq.Store(head)
	s.pub.head = head
	s.pub.ch = make(chan struct{})
	it, err := s.db.NewIter(prefixRange([]byte{prefixLog}))
	if err != nil {
		return err
	}
	if it.First() {
		s.first.Store(binary.BigEndian.Uint64(it.Key()[1:9]))
	} else {
		s.first.Store(head + 1)
	}
	if err := it.Close(); err != nil {
		return err
	}
	out, _, err := last(prefixOutbox)
	if err != nil {
		return fmt.Errorf("cannot read outbox: %w", err)
	}
	s.outSeq.Store(out)
	it, err = s.db.NewIter(prefixRange([]byte{prefixPending}))
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 25 {
			continue
		}
		var id wire.ID
		copy(id[:], k[9:])
		s.pending[id] = int64(binary.BigEndian.Uint64(k[1:9]))
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("cannot read pending change events: %w", err)
	}
	it, err = s.db.NewIter(prefixRange([]byte{prefixSession}))
	if err != nil {
		return err
	}
	var live, corrupt int64
	var sess wire.Session
	for it.First(); it.Valid(); it.Next() {
		if err := wire.DecodeSession(it.Value(), &sess); err != nil {
			corrupt++
			var id wire.ID
			copy(id[:], it.Key()[1:])
			s.log.Error("pebble: stored session is corrupt; not counted as live", "id", id.String(), "err", err)
			continue
		}
		if sess.Ended == 0 {
			live++
		}
	}
	s.live.Store(live)
	if corrupt > 0 {
		s.log.Error("pebble: corrupt sessions found while opening", "count", corrupt)
	}
	return it.Close()
}

func sessionKey(id wire.ID) []byte {
	k := make([]byte, 17)
	k[0] = prefixSession
	copy(k[1:], id[:])
	return k
}

func logKey(seq uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixLog
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

func dueKey(due int64, id wire.ID) []byte {
	k := make([]byte, 25)
	k[0] = prefixDue
	binary.BigEndian.PutUint64(k[1:9], uint64(due))
	copy(k[9:], id[:])
	return k
}

func customerPrefix(cid string) []byte {
	k := make([]byte, 1, 1+binary.MaxVarintLen64+len(cid)+16)
	k[0] = prefixCustomer
	k = binary.AppendUvarint(k, uint64(len(cid)))
	return append(k, cid...)
}

func customerKey(cid string, id wire.ID) []byte { return append(customerPrefix(cid), id[:]...) }

func pendingKey(due int64, id wire.ID) []byte {
	k := dueKey(due, id)
	k[0] = prefixPending
	return k
}

// pendingOf returns the due time of id's pending change event.
func (s *Store) pendingOf(id wire.ID) (int64, bool) {
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	due, ok := s.pending[id]
	return due, ok
}

// setPending records (due != 0) or forgets (due == 0) id's pending change
// event in memory, once its batch is written.
func (s *Store) setPending(id wire.ID, due int64) {
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	if due == 0 {
		delete(s.pending, id)
	} else {
		s.pending[id] = due
	}
}

func outboxKey(seq uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixOutbox
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

// stripe serializes the writers of the sessions that hash to it. Readers
// do not take it: the cache's tickets keep a slow read from caching a state
// older than a commit it raced with.
type stripe struct{ sync.Mutex }

// locked locks the stripe of id and returns it, for
// defer s.locked(id).Unlock().
func (s *Store) locked(id wire.ID) *stripe {
	mu := &s.locks[binary.LittleEndian.Uint16(id[8:10])%stripes]
	mu.Lock()
	return mu
}

// Get returns the session id from the cache, or from Pebble (filling the cache).
func (s *Store) Get(ctx context.Context, id wire.ID) (*wire.Session, error) {
	sess, _, err := s.get(id, 0)
	return sess, err
}

// GetAtLeast is Get that reads Pebble when the cached copy is older than
// minVersion.
func (s *Store) GetAtLeast(ctx context.Context, id wire.ID, minVersion uint64) (*wire.Session, error) {
	sess, _, err := s.get(id, minVersion)
	return sess, err
}

// GetCBOR returns the session id and its CBOR encoding (wire.AppendSession),
// both shared and immutable: callers copy the bytes, never modify them. A
// cache hit allocates nothing.
func (s *Store) GetCBOR(ctx context.Context, id wire.ID) (*wire.Session, []byte, error) {
	return s.get(id, 0)
}

// GetCBORAtLeast is GetCBOR with GetAtLeast's minVersion.
func (s *Store) GetCBORAtLeast(ctx context.Context, id wire.ID, minVersion uint64) (*wire.Session, []byte, error) {
	return s.get(id, minVersion)
}

func (s *Store) get(id wire.ID, minVersion uint64) (*wire.Session, []byte, error) {
	if s.closed.Load() {
		return nil, nil, store.ErrClosed
	}
	if sess, enc, ok := s.cache.GetAtLeast(id, minVersion); ok {
		return sess, enc, nil
	}
	t := s.cache.Begin(id)
	sess, enc, err := s.read(id)
	if err != nil {
		return nil, nil, err
	}
	s.cache.Fill(t, sess, enc)
	return sess, enc, nil
}

// current returns the stored state of id for a writer holding its stripe:
// the cached copy (always the newest, since every write of the id updates
// the cache under the stripe), or Pebble's.
func (s *Store) current(id wire.ID) (*wire.Session, error) {
	if sess, ok := s.cache.Peek(id); ok {
		return sess, nil
	}
	t := s.cache.Begin(id)
	sess, enc, err := s.read(id)
	if err != nil {
		return nil, err
	}
	s.cache.Fill(t, sess, enc)
	return sess, nil
}

func (s *Store) read(id wire.ID) (*wire.Session, []byte, error) {
	b, closer, err := s.db.Get(sessionKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil, fmt.Errorf("cannot get %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("cannot get %s: %w", id, err)
	}
	defer closer.Close()
	enc := append([]byte(nil), b...)
	sess := new(wire.Session)
	if err := wire.DecodeSession(enc, sess); err != nil {
		s.log.Error("pebble: stored session is corrupt", "id", id.String(), "err", err)
		return nil, nil, fmt.Errorf("cannot decode stored session %s: %w", id, err)
	}
	return sess, enc, nil
}

// CacheStats returns the read cache's counters.
func (s *Store) CacheStats() store.CacheStats { return s.cache.Stats() }

// Commit writes c in one synced Pebble batch under the session's lock.
func (s *Store) Commit(ctx context.Context, c *store.Commit) error {
	_, err := s.commit(c)
	return err
}

// commit is Commit, answering the change-log sequence of the delta.
func (s *Store) commit(c *store.Commit) (uint64, error) {
	if s.closed.Load() {
		return 0, store.ErrClosed
	}
	d := c.Delta
	if c.Session == nil || c.Session.ID != d.ID || c.Session.Version != d.Version {
		return 0, fmt.Errorf("commit for %s: session does not match its delta", d.ID)
	}
	defer s.locked(d.ID).Unlock()
	cur, err := s.current(d.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if d.BaseVersion != 0 {
			return 0, fmt.Errorf("cannot commit %s@%d: %w (session unknown)", d.ID, d.BaseVersion, store.ErrConflict)
		}
		cur = nil
	case err != nil:
		return 0, err
	case cur.Version != d.BaseVersion:
		return 0, fmt.Errorf("cannot commit %s@%d: %w (stored %d)", d.ID, d.BaseVersion, store.ErrConflict, cur.Version)
	}
	next := c.Session
	b := s.db.NewBatch()
	defer b.Close()
	enc := wire.AppendSession(make([]byte, 0, 512), next)
	b.Set(sessionKey(next.ID), enc, nil)
	s.indexes(b, cur, next)
	pendDue, pending := int64(0), false
	if c.Settle != nil || c.ChangeDue != 0 {
		pendDue, pending = s.pendingOf(d.ID)
	}
	settled, recorded := false, false
	if c.Settle != nil && pending {
		b.Set(outboxKey(s.outSeq.Add(1)), c.Settle, nil)
		b.Delete(pendingKey(pendDue, d.ID), nil)
		pending, settled = false, true
	}
	if c.ChangeDue != 0 && !pending {
		b.Set(pendingKey(c.ChangeDue, d.ID), nil, nil)
		recorded = true
	}
	for _, body := range c.Outbox {
		b.Set(outboxKey(s.outSeq.Add(1)), body, nil)
	}
	seq := s.seq.Add(1)
	b.Set(logKey(seq), wire.AppendDelta(nil, d), nil)
	err = s.db.Apply(b, s.wo)
	s.pub.done(seq)
	if err != nil {
		s.cache.Drop(d.ID)
		s.log.Error("pebble: commit failed", "id", d.ID.String(), "err", err)
		return 0, fmt.Errorf("cannot commit %s: %w", d.ID, err)
	}
	s.cache.Put(next, enc)
	switch {
	case recorded:
		s.setPending(d.ID, c.ChangeDue)
	case settled:
		s.setPending(d.ID, 0)
	}
	switch {
	case cur == nil && next.Ended == 0:
		s.live.Add(1)
	case cur != nil && cur.Ended == 0 && next.Ended != 0:
		s.live.Add(-1)
	}
	if len(c.Outbox) > 0 || settled {
		s.noteOutbox()
	}
	return seq, nil
}

// indexes updates the expiry and customer indexes for a change from cur (nil:
// new) to next.
func (s *Store) indexes(b *pebble.Batch, cur, next *wire.Session) {
	var oldDue int64
	var oldCID string
	if cur != nil {
		oldDue = store.DueAt(cur, s.tombstoneTTL)
		oldCID = cur.CustomerID()
	}
	newDue := store.DueAt(next, s.tombstoneTTL)
	if oldDue != newDue {
		if oldDue != 0 {
			b.Delete(dueKey(oldDue, next.ID), nil)
		}
		if newDue != 0 {
			b.Set(dueKey(newDue, next.ID), nil, nil)
		}
	}
	newCID := next.CustomerID()
	if oldCID != newCID {
		if oldCID != "" {
			b.Delete(customerKey(oldCID, next.ID), nil)
		}
		if newCID != "" {
			b.Set(customerKey(newCID, next.ID), nil, nil)
		}
	}
}

// Touch moves LastSeen and IdleDeadline forward without a new version.
// Touches are written without fsync: losing the last ones in a crash only
// makes a session look idle a little earlier.
func (s *Store) Touch(ctx context.Context, id wire.ID, lastSeen, idle int64) (*wire.Session, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	defer s.locked(id).Unlock()
	cur, err := s.current(id)
	if err != nil {
		return nil, err
	}
	if h := cur.HardDeadline; h != 0 && idle > h {
		idle = h // an idle deadline never passes the hard one
	}
	if cur.Ended != 0 || (lastSeen <= cur.LastSeen && (idle == 0 || idle <= cur.IdleDeadline)) {
		return cur, nil
	}
	next := cur.Clone()
	if lastSeen > next.LastSeen {
		next.LastSeen = lastSeen
	}
	if idle > next.IdleDeadline && next.IdleDeadline != 0 {
		next.IdleDeadline = idle
	}
	b := s.db.NewBatch()
	defer b.Close()
	enc := wire.AppendSession(make([]byte, 0, 512), next)
	b.Set(sessionKey(id), enc, nil)
	s.indexes(b, cur, next)
	if err := s.db.Apply(b, pebble.NoSync); err != nil {
		s.cache.Drop(id)
		s.log.Error("pebble: touch failed", "id", id.String(), "err", err)
		return nil, fmt.Errorf("cannot touch %s: %w", id, err)
	}
	s.cache.Put(next, enc)
	return next, nil
}

// Purge deletes a tombstone and its index entries.
func (s *Store) Purge(ctx context.Context, id wire.ID, version uint64) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	defer s.locked(id).Unlock()
	cur, err := s.current(id)
	if err != nil {
		return err
	}
	if cur.Version != version {
		return fmt.Errorf("cannot purge %s@%d: %w", id, version, store.ErrConflict)
	}
	b := s.db.NewBatch()
	defer b.Close()
	b.Delete(sessionKey(id), nil)
	if due := store.DueAt(cur, s.tombstoneTTL); due != 0 {
		b.Delete(dueKey(due, id), nil)
	}
	if cid := cur.CustomerID(); cid != "" {
		b.Delete(customerKey(cid, id), nil)
	}
	pendDue, pending := s.pendingOf(id)
	if pending {
		b.Delete(pendingKey(pendDue, id), nil)
	}
	err = s.db.Apply(b, s.wo)
	s.cache.Drop(id)
	if err == nil && pending {
		s.setPending(id, 0)
	}
	if err != nil {
		s.log.Error("pebble: purge failed", "id", id.String(), "err", err)
		return fmt.Errorf("cannot purge %s: %w", id, err)
	}
	if cur.Ended == 0 {
		s.live.Add(-1)
	}
	return nil
}

// The cursor of this store is the decimal change-log sequence of the last
// delta read; the empty cursor is 0, before the first.

func encodeCursor(seq uint64) store.Cursor { return store.Cursor(strconv.FormatUint(seq, 10)) }

// decodeCursor parses a cursor, which comes from outside (an edge's query
// string): only the canonical decimal form is one of this store's.
func decodeCursor(c store.Cursor) (uint64, bool) {
	if c == "" {
		return 0, true
	}
	if len(c) > 20 || (len(c) > 1 && c[0] == '0') {
		return 0, false
	}
	seq, err := strconv.ParseUint(string(c), 10, 64)
	if err != nil {
		return 0, false
	}
	return seq, true
}

// ChangesAfter returns up to limit deltas after cursor, never past the
// published head, so a reader never skips a delta still being committed.
func (s *Store) ChangesAfter(ctx context.Context, c store.Cursor, limit int) (store.Batch, error) {
	if s.closed.Load() {
		return store.Batch{}, store.ErrClosed
	}
	head := s.head()
	cursor, ok := decodeCursor(c)
	if !ok || cursor > head || cursor+1 < s.first.Load() {
		return store.Batch{Cursor: encodeCursor(head), Reset: true}, nil
	}
	bt := store.Batch{Cursor: encodeCursor(cursor)}
	if cursor == head || limit <= 0 {
		return bt, nil
	}
	upper := prefixEnd([]byte{prefixLog})
	if head < math.MaxUint64 {
		upper = logKey(head + 1)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(cursor + 1), UpperBound: upper})
	if err != nil {
		return bt, err
	}
	defer it.Close()
	for ok := it.First(); ok && len(bt.Deltas) < limit; ok = it.Next() {
		var d wire.Delta
		if err := wire.DecodeDelta(it.Value(), &d); err != nil {
			return bt, fmt.Errorf("cannot decode change-log entry: %w", err)
		}
		bt.Deltas = append(bt.Deltas, d)
		bt.Cursor = encodeCursor(binary.BigEndian.Uint64(it.Key()[1:9]))
	}
	// Pruning may have raced past the cursor while we read: the answer would
	// silently miss deltas, so report a reset instead.
	if cursor+1 < s.first.Load() {
		return store.Batch{Cursor: encodeCursor(head), Reset: true}, nil
	}
	return bt, it.Error()
}

// Head returns the newest published cursor.
func (s *Store) Head(ctx context.Context) (store.Cursor, error) { return encodeCursor(s.head()), nil }

func (s *Store) head() uint64 {
	s.pub.mu.Lock()
	defer s.pub.mu.Unlock()
	return s.pub.head
}

// WaitChanges blocks until the head passes cursor or ctx is done.
func (s *Store) WaitChanges(ctx context.Context, c store.Cursor) error {
	cursor, ok := decodeCursor(c)
	if !ok {
		return nil // not ours: ChangesAfter answers a reset at once
	}
	for {
		s.pub.mu.Lock()
		head, ch := s.pub.head, s.pub.ch
		s.pub.mu.Unlock()
		if head > cursor {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stop:
			return store.ErrClosed
		}
	}
}

// Expiring scans the expiry index up to before. An entry that no longer
// matches its session (the session is gone, or its due instant moved, as
// when the tombstone rule or TombstoneTTL changed between the write and
// the purge) is deleted instead of returned, so stale entries cannot pile up
// in front of the sweeper.
func (s *Store) Expiring(ctx context.Context, before int64, limit int) ([]store.Due, error) {
	return s.scanDue(prefixDue, before, limit, s.stale)
}

// scanDue lists the entries of a time-ordered index (dueKey's layout under
// prefix) due before before, oldest first, at most limit of them, passing
// over those skip (when not nil) reports.
func (s *Store) scanDue(prefix byte, before int64, limit int, skip func(store.Due) bool) ([]store.Due, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if before <= 0 || limit <= 0 {
		return nil, nil
	}
	upper := make([]byte, 9)
	upper[0] = prefix
	binary.BigEndian.PutUint64(upper[1:], uint64(before))
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []store.Due
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		k := it.Key()
		if len(k) != 25 {
			continue
		}
		d := store.Due{At: int64(binary.BigEndian.Uint64(k[1:9]))}
		copy(d.ID[:], k[9:])
		if skip != nil && skip(d) {
			continue
		}
		out = append(out, d)
	}
	return out, it.Error()
}

// stale checks an expiry-index entry against its session, under the
// session's stripe (so no commit moves the entry meanwhile), and deletes it
// when it no longer matches.
func (s *Store) stale(d store.Due) bool {
	defer s.locked(d.ID).Unlock()
	cur, err := s.current(d.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return false // the sweeper will meet the error itself
	case store.DueAt(cur, s.tombstoneTTL) == d.At:
		return false
	}
	if err := s.db.Delete(dueKey(d.At, d.ID), pebble.NoSync); err != nil {
		s.log.Error("pebble: cannot delete a stale expiry-index entry", "id", d.ID.String(), "err", err)
	}
	return true
}

// CustomerSessions scans the customer index.
func (s *Store) CustomerSessions(ctx context.Context, cid string) ([]wire.ID, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	p := customerPrefix(cid)
	it, err := s.db.NewIter(prefixRange(p))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var ids []wire.ID
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != len(p)+16 {
			continue
		}
		var id wire.ID
		copy(id[:], k[len(p):])
		ids = append(ids, id)
	}
	return ids, it.Error()
}

// OutboxClaim returns undelivered entries, oldest first, that no caller
// claimed within the last lease. Leases live in memory: one origin process owns a Pebble
// directory, and after a restart every entry is owed again.
func (s *Store) OutboxClaim(ctx context.Context, limit int, lease time.Duration) ([]store.OutboxEntry, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	it, err := s.db.NewIter(prefixRange([]byte{prefixOutbox}))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	now := time.Now()
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	var out []store.OutboxEntry
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		seq := binary.BigEndian.Uint64(it.Key()[1:9])
		if claimed, held := s.leases[seq]; held && now.Sub(claimed) < lease {
			continue
		}
		s.leases[seq] = now
		out = append(out, store.OutboxEntry{
			ID:   strconv.FormatUint(seq, 10),
			Body: append([]byte(nil), it.Value()...),
		})
	}
	return out, it.Error()
}

// OutboxDone deletes a delivered entry.
func (s *Store) OutboxDone(ctx context.Context, id string) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return fmt.Errorf("pebble: bad outbox entry id %q", id)
	}
	if err := s.db.Delete(outboxKey(seq), pebble.NoSync); err != nil {
		return err
	}
	s.leaseMu.Lock()
	delete(s.leases, seq)
	s.leaseMu.Unlock()
	return nil
}

// OutboxNotify signals commits that added outbox entries.
func (s *Store) OutboxNotify() <-chan struct{} { return s.outNote }

func (s *Store) noteOutbox() {
	select {
	case s.outNote <- struct{}{}:
	default:
	}
}

// ChangesDue scans the pending change events up to before.
func (s *Store) ChangesDue(ctx context.Context, before int64, limit int) ([]store.Due, error) {
	return s.scanDue(prefixPending, before, limit, nil)
}

// Emit writes each emission in its own batch without a sync, under the
// session's stripe, then syncs the log once: every batch written before
// the sync is durable with it.
func (s *Store) Emit(ctx context.Context, es []store.Emission) []error {
	errs := make([]error, len(es))
	if s.closed.Load() {
		for i := range errs {
			errs[i] = store.ErrClosed
		}
		return errs
	}
	var wrote []int
	outbox := false
	for i := range es {
		w, o, err := s.emit(&es[i])
		errs[i] = err
		if w {
			wrote = append(wrote, i)
		}
		outbox = outbox || o
	}
	if len(wrote) > 0 && s.wo.Sync {
		if err := s.db.LogData(nil, s.wo); err != nil {
			s.log.Error("pebble: cannot sync emitted events", "err", err)
			for _, i := range wrote {
				if errs[i] == nil {
					errs[i] = fmt.Errorf("cannot sync emitted events: %w", err)
				}
			}
		}
	}
	if outbox {
		s.noteOutbox()
	}
	return errs
}

// emit writes one emission; it reports whether it wrote anything, and
// whether to the outbox.
func (s *Store) emit(e *store.Emission) (wrote, outbox bool, err error) {
	defer s.locked(e.ID).Unlock()
	pendDue, pending := s.pendingOf(e.ID)
	cur, err := s.current(e.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if !pending {
			return false, false, err
		}
		if derr := s.db.Delete(pendingKey(pendDue, e.ID), pebble.NoSync); derr != nil {
			return false, false, derr
		}
		s.setPending(e.ID, 0)
		return true, false, err
	case err != nil:
		return false, false, err
	case cur.Version != e.Version:
		return false, false, fmt.Errorf("cannot emit events of %s@%d: %w (stored %d)", e.ID, e.Version, store.ErrConflict, cur.Version)
	}
	b := s.db.NewBatch()
	defer b.Close()
	if pending {
		if e.Pending != nil {
			b.Set(outboxKey(s.outSeq.Add(1)), e.Pending, nil)
			outbox = true
		}
		b.Delete(pendingKey(pendDue, e.ID), nil)
	}
	for _, body := range e.Outbox {
		b.Set(outboxKey(s.outSeq.Add(1)), body, nil)
		outbox = true
	}
	if b.Empty() {
		return false, false, nil
	}
	if err := s.db.Apply(b, pebble.NoSync); err != nil {
		s.log.Error("pebble: cannot write emitted events", "id", e.ID.String(), "err", err)
		return false, false, fmt.Errorf("cannot emit events of %s: %w", e.ID, err)
	}
	if pending {
		s.setPending(e.ID, 0)
	}
	return true, outbox, nil
}

// Stats returns the live-session count.
func (s *Store) Stats() store.Stats {
	return store.Stats{LiveSessions: s.live.Load()}
}

// pruneLoop keeps the change log within its retention.
func (s *Store) pruneLoop() {
	defer close(s.pruneDone)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.prune()
		}
	}
}

func (s *Store) prune() {
	head := s.head()
	if head <= s.retention {
		return
	}
	newFirst := head - s.retention + 1
	first := s.first.Load()
	if newFirst <= first {
		return
	}
	// Publish the new bound before deleting, so a concurrent reader that
	// finds entries missing also finds its cursor out of retention.
	s.first.Store(newFirst)
	if err := s.db.DeleteRange(logKey(first), logKey(newFirst), pebble.NoSync); err != nil {
		s.log.Error("pebble: cannot prune the change log", "err", err)
	}
}

// Close stops background work and closes the database.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.stop)
	<-s.pruneDone
	// Taking every stripe waits for commits in flight.
	for i := range s.locks {
		s.locks[i].Lock()
	}
	err := s.db.Close()
	for i := range s.locks {
		s.locks[i].Unlock()
	}
	return err
}

// publisher tracks the head cursor readers may see: the highest sequence
// below which every allocated sequence has finished committing. Sequences are
// allocated before the Pebble commit, and concurrent commits can finish out of
// order; publishing only a gap-free prefix keeps a reader from moving its
// cursor past a delta that becomes visible later.
type publisher struct {
	mu      sync.Mutex
	head    uint64
	pending map[uint64]struct{}
	ch      chan struct{} // closed and replaced when head advances
}

func (p *publisher) done(seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq != p.head+1 {
		if p.pending == nil {
			p.pending = make(map[uint64]struct{})
		}
		p.pending[seq] = struct{}{}
		return
	}
	p.head = seq
	for {
		if _, ok := p.pending[p.head+1]; !ok {
			break
		}
		delete(p.pending, p.head+1)
		p.head++
	}
	close(p.ch)
	p.ch = make(chan struct{})
}

// pebbleLogger hands Pebble's messages to the store's logger. Pebble
// reports errors through Infof too ("background error: ..."), so Infof is
// logged at Info; Fatalf logs at Error and panics, since Pebble does not
// expect it to return.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Info("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := "pebble: " + fmt.Sprintf(format, args...)
	l.log.Error(msg, "fatal", true)
	panic(msg)
}

// eventListener logs the Pebble events an operator must see: background
// errors (failed flushes and compactions), slow disks and write stalls.
func eventListener(log *slog.Logger) *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: func(err error) { log.Error("pebble: background error", "err", err) },
		DiskSlow: func(info pebble.DiskSlowInfo) {
			log.Warn("pebble: slow disk", "info", info.String())
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			log.Warn("pebble: write stall", "reason", info.Reason)
		},
		WriteStallEnd: func() { log.Info("pebble: write stall ended") },
	}
}

var _ store.Store = (*Store)(nil)
var _ store.CBORGetter = (*Store)(nil)
