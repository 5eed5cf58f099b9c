package redis

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// cost is what a cached session counts against CacheBytes.
func cost(b []byte) int64 { return int64(len(b)) + 200 }

func (s *Store) cacheGet(id wire.ID) (*wire.Session, bool) {
	if s.cache == nil {
		return nil, false
	}
	return s.cache.Get(string(id[:]))
}

// The cache stays coherent with two rules. Every change this node learns of
// (its own commit, a notification) bumps the id's change counter and deletes
// the entry; ristretto applies a Del after every Set queued before it, so an
// older Set cannot land after it. A read from Redis fills the cache only if
// the counter did not move while it read, so a slow read cannot put back a
// version older than a write it raced with.

func (s *Store) changeCounter(id wire.ID) *atomic.Uint64 {
	return &s.changes[(uint(id[2])<<8|uint(id[3]))%uint(len(s.changes))]
}

// cacheFill caches sess, read from Redis when the counter was seen.
func (s *Store) cacheFill(sess *wire.Session, size int, seen uint64) {
	if s.cache != nil && s.changeCounter(sess.ID).Load() == seen {
		s.cache.SetWithTTL(string(sess.ID[:]), sess, int64(size)+200, s.cfg.CacheTTL)
	}
}

// cacheDrop forgets id after a change.
func (s *Store) cacheDrop(id wire.ID) {
	if s.cache != nil {
		s.changeCounter(id).Add(1)
		s.cache.Del(string(id[:]))
	}
}

// cacheReplace caches the state this node just committed.
func (s *Store) cacheReplace(sess *wire.Session, size int) {
	if s.cache != nil {
		s.cacheDrop(sess.ID)
		s.cache.SetWithTTL(string(sess.ID[:]), sess, int64(size)+200, s.cfg.CacheTTL)
	}
}

// decodeStored turns a session's stored bytes and touch fields into a session.
func decodeStored(b []byte, ls, idle string) (*wire.Session, error) {
	sess := new(wire.Session)
	if err := wire.DecodeSession(b, sess); err != nil {
		return nil, fmt.Errorf("redis: stored session is corrupt: %w", err)
	}
	if v, err := strconv.ParseInt(ls, 10, 64); err == nil && v > sess.LastSeen {
		sess.LastSeen = v
	}
	if v, err := strconv.ParseInt(idle, 10, 64); err == nil && v > sess.IdleDeadline {
		sess.IdleDeadline = v
	}
	return sess, nil
}

// Get returns the session: from the read cache (no round trip) or with one
// HMGET.
func (s *Store) Get(ctx context.Context, id wire.ID) (*wire.Session, error) {
	if sess, ok := s.cacheGet(id); ok {
		return sess, nil
	}
	seen := s.changeCounter(id).Load()
	vals, err := s.do(ctx, s.client.B().Hmget().Key(s.sessionKey(id)).Field("b", "ls", "idle").Build()).ToArray()
	if err != nil {
		return nil, s.wrap("get", err)
	}
	b, err := vals[0].AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, fmt.Errorf("%w: %s", store.ErrNotFound, id)
	}
	if err != nil {
		return nil, s.wrap("get", err)
	}
	ls, _ := vals[1].ToString()
	idle, _ := vals[2].ToString()
	sess, err := decodeStored(b, ls, idle)
	if err != nil {
		return nil, err
	}
	s.cacheFill(sess, len(b), seen)
	return sess, nil
}

// expireAt is when Redis may drop a session key by itself: the safety net
// behind the expiry sweeper, a day after the sweeper would have purged it.
// It follows the hard deadline, which touches never move, so a session kept
// alive by touches alone never loses its key early.
func (s *Store) expireAt(sess *wire.Session) int64 {
	const margin = 24 * 60 * 60 * 1000
	var at int64
	switch {
	case sess.Ended != 0:
		at = store.DueAt(sess, s.cfg.TombstoneTTL.Milliseconds()) + margin
	case sess.HardDeadline != 0:
		at = sess.HardDeadline + margin
	default:
		return 0
	}
	// Never less than the margin from now: a deadline already past is the
	// sweeper's to act on (end, webhook), not Redis's to drop silently.
	return max(at, s.cfg.Now().UnixMilli()+margin)
}

func live(sess *wire.Session) bool { return sess != nil && sess.Ended == 0 }

// Commit writes c in one script call: one round trip.
func (s *Store) Commit(ctx context.Context, c *store.Commit) error {
	d, next := c.Delta, c.Session
	shard := s.shardOf(d.ID)
	idText := d.ID.String()
	oldCustomer := ""
	if c.Prev != nil && c.Prev.Version == d.BaseVersion {
		oldCustomer = c.Prev.CustomerID()
	} else if prev, ok := s.cacheGet(d.ID); ok && prev.Version == d.BaseVersion && prev.Ended == 0 {
		oldCustomer = prev.CustomerID()
	} else if d.BaseVersion != 0 {
		// Not cached at the base version: the customer index entry to drop
		// is whichever customer the stored session has; read it.
		prev, err := s.Get(ctx, d.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if prev != nil {
			oldCustomer = prev.CustomerID()
		}
	}
	newCustomer := ""
	if next.Ended == 0 {
		newCustomer = next.CustomerID()
	}
	liveDelta := 0
	if d.BaseVersion == 0 && live(next) {
		liveDelta = 1
	} else if d.BaseVersion != 0 && !live(next) && containsEnd(d) {
		liveDelta = -1
	}
	sessBytes := wire.AppendSession(nil, next)
	args := []string{
		strconv.FormatUint(d.BaseVersion, 10), strconv.FormatUint(d.Version, 10),
		rueidis.BinaryString(sessBytes), rueidis.BinaryString(wire.AppendDelta(nil, d)),
		strconv.FormatInt(store.DueAt(next, s.cfg.TombstoneTTL.Milliseconds()), 10), idText,
		strconv.Itoa(s.cfg.FeedLength), strconv.FormatInt(s.expireAt(next), 10),
		oldCustomer, newCustomer, strconv.Itoa(liveDelta), s.node,
	}
	for _, body := range c.Outbox {
		args = append(args, rueidis.BinaryString(body))
	}
	keys := []string{s.sessionKey(d.ID), s.feedKey(shard), s.dueKey(shard),
		s.customerKey(shard, oldCustomer), s.customerKey(shard, newCustomer),
		s.outboxKey(shard), s.liveKey(shard), s.notifyKey(shard)}
	err := s.exec(ctx, commitScript, keys, args).Error()
	if err != nil {
		s.cacheDrop(d.ID) // stale (conflict), or unknown (the script may have run)
		if msg := err.Error(); strings.HasPrefix(msg, "CONFLICT") {
			return fmt.Errorf("%w: %s is at version %s, delta base %d", store.ErrConflict, d.ID,
				strings.TrimSpace(strings.TrimPrefix(msg, "CONFLICT")), d.BaseVersion)
		}
		return s.wrap("commit", err)
	}
	s.cacheReplace(next, len(sessBytes))
	// Local waiters need not wait for the notification's round trip.
	if len(c.Outbox) > 0 {
		select {
		case s.outbox <- struct{}{}:
		default:
		}
	}
	s.wake()
	return nil
}

func containsEnd(d *wire.Delta) bool {
	for _, op := range d.Ops {
		if op.Code == wire.OpEnd {
			return true
		}
	}
	return false
}

// Touch moves last-seen and the idle deadline forward in one script call.
func (s *Store) Touch(ctx context.Context, id wire.ID, lastSeen, idleDeadline int64) (*wire.Session, error) {
	due := int64(0)
	if cur, ok := s.cacheGet(id); ok {
		if cur.Ended != 0 {
			return cur, nil
		}
		next := *cur
		next.LastSeen, next.IdleDeadline = max(cur.LastSeen, lastSeen), max(cur.IdleDeadline, idleDeadline)
		due = store.DueAt(&next, s.cfg.TombstoneTTL.Milliseconds())
	}
	shard := s.shardOf(id)
	seen := s.changeCounter(id).Load()
	vals, err := s.exec(ctx, touchScript, []string{s.sessionKey(id), s.dueKey(shard)}, []string{
		strconv.FormatInt(lastSeen, 10), strconv.FormatInt(idleDeadline, 10), strconv.FormatInt(due, 10), id.String(),
	}).ToArray()
	if rueidis.IsRedisNil(err) {
		return nil, fmt.Errorf("%w: %s", store.ErrNotFound, id)
	}
	if err != nil {
		return nil, s.wrap("touch", err)
	}
	b, _ := vals[0].AsBytes()
	ls, _ := vals[1].ToString()
	idle, _ := vals[2].ToString()
	sess, err := decodeStored(b, ls, idle)
	if err != nil {
		return nil, err
	}
	if sess.Ended != 0 {
		return sess, nil
	}
	if due == 0 { // not cached before: index it now that we know the session
		if d := store.DueAt(sess, s.cfg.TombstoneTTL.Milliseconds()); d != 0 {
			if err := s.do(ctx, s.client.B().Zadd().Key(s.dueKey(shard)).Gt().ScoreMember().ScoreMember(float64(d), id.String()).Build()).Error(); err != nil {
				return nil, s.wrap("touch", err)
			}
		}
	}
	s.cacheFill(sess, len(b), seen)
	return sess, nil
}

// Purge deletes a tombstone still at version.
func (s *Store) Purge(ctx context.Context, id wire.ID, version uint64) error {
	err := s.exec(ctx, purgeScript, []string{s.sessionKey(id), s.dueKey(s.shardOf(id))},
		[]string{strconv.FormatUint(version, 10), id.String()}).Error()
	s.cacheDrop(id)
	if err != nil {
		if strings.HasPrefix(err.Error(), "CONFLICT") {
			return fmt.Errorf("%w: %s changed before purge", store.ErrConflict, id)
		}
		return s.wrap("purge", err)
	}
	return nil
}

// entry is a change-log entry with its shard and position.
type entry struct {
	shard int
	pos   streamID
	delta []byte
}

// ChangesAfter reads every shard's stream after the cursor's position for
// it (one pipelined command per shard, plus one per shard to learn what was
// trimmed), merges them by position, and keeps up to limit.
func (s *Store) ChangesAfter(ctx context.Context, cursor store.Cursor, limit int) (store.Batch, error) {
	pos, err := decodeCursor(cursor, s.cfg.Shards)
	if errors.Is(err, errForeignCursor) {
		head, err := s.Head(ctx)
		return store.Batch{Cursor: head, Reset: true}, err
	}
	if limit <= 0 {
		limit = 1000
	}
	cmds := make([]rueidis.Completed, 0, 2*s.cfg.Shards)
	for shard, p := range pos {
		cmds = append(cmds,
			s.client.B().XinfoStream().Key(s.feedKey(shard)).Build(),
			s.client.B().Xrange().Key(s.feedKey(shard)).Start("("+p.String()).End("+").Count(int64(limit)).Build())
	}
	results := s.doMulti(ctx, cmds...)
	var all []entry
	for shard := range pos {
		info, err := results[2*shard].AsMap()
		if err != nil && !isNoSuchKey(err) {
			return store.Batch{}, s.wrap("sync", err)
		}
		if err == nil && trimmedPast(info, pos[shard]) {
			head, err := s.Head(ctx)
			return store.Batch{Cursor: head, Reset: true}, err
		}
		entries, err := results[2*shard+1].AsXRange()
		if err != nil && !rueidis.IsRedisNil(err) {
			return store.Batch{}, s.wrap("sync", err)
		}
		for _, e := range entries {
			p, err := parseStreamID(e.ID)
			if err != nil {
				return store.Batch{}, err
			}
			all = append(all, entry{shard: shard, pos: p, delta: []byte(e.FieldValues["d"])})
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].pos != all[j].pos {
			return all[i].pos.less(all[j].pos)
		}
		return all[i].shard < all[j].shard
	})
	// A shard may hold more than limit entries past the ones returned; the
	// cut keeps the merge exact because each shard's entries come in order.
	if len(all) > limit {
		all = all[:limit]
	}
	batch := store.Batch{Deltas: make([]wire.Delta, len(all))}
	for i, e := range all {
		if err := wire.DecodeDelta(e.delta, &batch.Deltas[i]); err != nil {
			return store.Batch{}, fmt.Errorf("redis: change log entry %s of shard %d is corrupt: %w", e.pos, e.shard, err)
		}
		pos[e.shard] = e.pos
	}
	batch.Cursor = encodeCursor(pos)
	return batch, nil
}

// trimmedPast reports whether the stream (XINFO STREAM) lost entries after
// pos to trimming: something was removed (more entries added than it holds)
// and its first retained entry lies beyond pos. It may answer true when pos
// was exactly the last trimmed entry; a needless reset only costs the edge
// its cache.
func trimmedPast(info map[string]rueidis.RedisMessage, pos streamID) bool {
	lengthMsg, addedMsg, firstMsg := info["length"], info["entries-added"], info["recorded-first-entry-id"]
	length, err1 := lengthMsg.AsInt64()
	added, err2 := addedMsg.AsInt64()
	firstText, err3 := firstMsg.ToString()
	if err1 != nil || err2 != nil || err3 != nil || added <= length {
		return false
	}
	first, err := parseStreamID(firstText)
	return err == nil && pos.less(first)
}

func isNoSuchKey(err error) bool {
	return err != nil && strings.Contains(strings.ToLower(err.Error()), "no such key")
}

// Head returns the cursor after every shard's newest entry.
func (s *Store) Head(ctx context.Context) (store.Cursor, error) {
	cmds := make([]rueidis.Completed, s.cfg.Shards)
	for shard := range cmds {
		cmds[shard] = s.client.B().Xrevrange().Key(s.feedKey(shard)).End("+").Start("-").Count(1).Build()
	}
	pos := make([]streamID, s.cfg.Shards)
	for shard, r := range s.doMulti(ctx, cmds...) {
		entries, err := r.AsXRange()
		if err != nil && !rueidis.IsRedisNil(err) {
			return "", s.wrap("head", err)
		}
		if len(entries) > 0 {
			if pos[shard], err = parseStreamID(entries[0].ID); err != nil {
				return "", err
			}
		}
	}
	return encodeCursor(pos), nil
}

// waitFallback bounds how long WaitChanges trusts notifications alone.
const waitFallback = 500 * time.Millisecond

// WaitChanges waits for a notification of a commit (from any origin node),
// ctx, or waitFallback, whichever comes first; notifications are
// fire-and-forget, so callers re-check with ChangesAfter either way.
func (s *Store) WaitChanges(ctx context.Context, cursor store.Cursor) error {
	s.mu.Lock()
	ch := s.changed
	s.mu.Unlock()
	t := time.NewTimer(waitFallback)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// Expiring reads every shard's expiry index up to before and merges them.
func (s *Store) Expiring(ctx context.Context, before int64, limit int) ([]store.Due, error) {
	cmds := make([]rueidis.Completed, s.cfg.Shards)
	for shard := range cmds {
		cmds[shard] = s.client.B().Zrange().Key(s.dueKey(shard)).Min("-inf").Max("("+strconv.FormatInt(before, 10)).
			Byscore().Limit(0, int64(limit)).Withscores().Build()
	}
	var due []store.Due
	for _, r := range s.doMulti(ctx, cmds...) {
		scores, err := r.AsZScores()
		if err != nil {
			return nil, s.wrap("expiring", err)
		}
		for _, z := range scores {
			id, err := wire.ParseID(z.Member)
			if err != nil {
				continue // not ours; never written by this store
			}
			due = append(due, store.Due{ID: id, At: int64(z.Score)})
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].At < due[j].At })
	if len(due) > limit {
		due = due[:limit]
	}
	return due, nil
}

// CustomerSessions reads the customer's set in every shard.
func (s *Store) CustomerSessions(ctx context.Context, cid string) ([]wire.ID, error) {
	cmds := make([]rueidis.Completed, s.cfg.Shards)
	for shard := range cmds {
		cmds[shard] = s.client.B().Smembers().Key(s.customerKey(shard, cid)).Build()
	}
	var ids []wire.ID
	for _, r := range s.doMulti(ctx, cmds...) {
		members, err := r.AsStrSlice()
		if err != nil {
			return nil, s.wrap("customer sessions", err)
		}
		for _, m := range members {
			if id, err := wire.ParseID(m); err == nil {
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}
