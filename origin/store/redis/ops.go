package redis

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// The read cache (origin/store/cache) stays coherent with this node's
// writes (Put after a commit), other nodes' writes (their notifications
// drop older entries, see onNotify), and reads racing with either (a read
// fills the cache only with the ticket it took before asking Redis). A
// missed notification costs at most Config.CacheTTL of staleness.

// decodeStored turns a session's stored bytes and touch fields into a
// session and its encoding: the stored bytes themselves, or a new encoding
// when the touch fields moved the session on.
func decodeStored(b []byte, ls, idle string) (*wire.Session, []byte, error) {
	sess := new(wire.Session)
	if err := wire.DecodeSession(b, sess); err != nil {
		return nil, nil, fmt.Errorf("redis: stored session is corrupt: %w", err)
	}
	moved := false
	if v, err := strconv.ParseInt(ls, 10, 64); err == nil && v > sess.LastSeen {
		sess.LastSeen, moved = v, true
	}
	if v, err := strconv.ParseInt(idle, 10, 64); err == nil && v > sess.IdleDeadline {
		if h := sess.HardDeadline; h != 0 && v > h {
			v = h // an idle deadline never passes the hard one
		}
		sess.IdleDeadline, moved = v, v != sess.IdleDeadline || moved
	}
	if moved {
		b = wire.AppendSession(make([]byte, 0, len(b)+8), sess)
	}
	return sess, b, nil
}

// Get returns the session: from the read cache (no round trip) or with one
// HMGET.
func (s *Store) Get(ctx context.Context, id wire.ID) (*wire.Session, error) {
	sess, _, err := s.get(ctx, id, 0)
	return sess, err
}

// GetAtLeast is Get that asks Redis when the cached copy is older than
// minVersion (another node's write whose notification has not arrived).
func (s *Store) GetAtLeast(ctx context.Context, id wire.ID, minVersion uint64) (*wire.Session, error) {
	sess, _, err := s.get(ctx, id, minVersion)
	return sess, err
}

// GetCBOR returns the session and its CBOR encoding; a cache hit allocates
// nothing and sends nothing.
func (s *Store) GetCBOR(ctx context.Context, id wire.ID) (*wire.Session, []byte, error) {
	return s.get(ctx, id, 0)
}

// GetCBORAtLeast is GetCBOR with GetAtLeast's minVersion.
func (s *Store) GetCBORAtLeast(ctx context.Context, id wire.ID, minVersion uint64) (*wire.Session, []byte, error) {
	return s.get(ctx, id, minVersion)
}

func (s *Store) get(ctx context.Context, id wire.ID, minVersion uint64) (*wire.Session, []byte, error) {
	if sess, enc, ok := s.cache.GetAtLeast(id, minVersion); ok {
		return sess, enc, nil
	}
	t := s.cache.Begin(id)
	vals, err := s.do(ctx, s.client.B().Hmget().Key(s.sessionKey(id)).Field("b", "ls", "idle").Build()).ToArray()
	if err != nil {
		return nil, nil, s.wrap("get", err)
	}
	if len(vals) != 3 {
		return nil, nil, s.unexpected("get", fmt.Errorf("HMGET answered %d values", len(vals)))
	}
	b, err := vals[0].AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, nil, fmt.Errorf("%w: %s", store.ErrNotFound, id)
	}
	if err != nil {
		return nil, nil, s.wrap("get", err)
	}
	ls, _ := vals[1].ToString()
	idle, _ := vals[2].ToString()
	sess, enc, err := decodeStored(b, ls, idle)
	if err != nil {
		s.log.Error("redis: stored session is corrupt", "id", id.String(), "err", err)
		return nil, nil, err
	}
	s.cache.Fill(t, sess, enc)
	return sess, enc, nil
}

// CacheStats returns the read cache's counters.
func (s *Store) CacheStats() store.CacheStats { return s.cache.Stats() }

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
	} else if prev, ok := s.cache.Peek(d.ID); ok && prev.Version == d.BaseVersion && prev.Ended == 0 {
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
	ended := "0"
	if next.Ended != 0 {
		ended = "1"
	}
	sessBytes := wire.AppendSession(nil, next)
	args := []string{
		strconv.FormatUint(d.BaseVersion, 10), strconv.FormatUint(d.Version, 10),
		rueidis.BinaryString(sessBytes), rueidis.BinaryString(wire.AppendDelta(nil, d)),
		strconv.FormatInt(store.DueAt(next, s.cfg.TombstoneTTL.Milliseconds()), 10), idText,
		strconv.Itoa(s.cfg.FeedLength), strconv.FormatInt(s.expireAt(next), 10),
		oldCustomer, newCustomer, strconv.Itoa(liveDelta), s.node, ended,
		strconv.FormatInt(c.ChangeDue, 10), rueidis.BinaryString(c.Settle),
	}
	for _, body := range c.Outbox {
		args = append(args, rueidis.BinaryString(body))
	}
	keys := []string{s.sessionKey(d.ID), s.feedKey(shard), s.dueKey(shard),
		s.customerKey(shard, oldCustomer), s.customerKey(shard, newCustomer),
		s.outboxKey(shard), s.liveKey(shard), s.notifyKey(shard), s.pendingKey(shard)}
	err := s.exec(ctx, commitScript, keys, args).Error()
	if err != nil {
		s.cache.Drop(d.ID) // stale (conflict), or unknown (the script may have run)
		if msg := err.Error(); strings.HasPrefix(msg, "CONFLICT") {
			return fmt.Errorf("%w: %s is at version %s, delta base %d", store.ErrConflict, d.ID,
				strings.TrimSpace(strings.TrimPrefix(msg, "CONFLICT")), d.BaseVersion)
		}
		return s.wrap("commit", err)
	}
	s.cache.Put(next, sessBytes)
	// Local waiters need not wait for the notification's round trip.
	if len(c.Outbox) > 0 || c.Settle != nil {
		s.noteOutbox()
	}
	s.wake()
	return nil
}

func (s *Store) noteOutbox() {
	select {
	case s.outbox <- struct{}{}:
	default:
	}
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
	if cur, ok := s.cache.Peek(id); ok {
		if cur.Ended != 0 {
			return cur, nil
		}
		next := *cur
		next.LastSeen, next.IdleDeadline = max(cur.LastSeen, lastSeen), max(cur.IdleDeadline, idleDeadline)
		due = store.DueAt(&next, s.cfg.TombstoneTTL.Milliseconds())
	}
	shard := s.shardOf(id)
	t := s.cache.Begin(id)
	vals, err := s.exec(ctx, touchScript, []string{s.sessionKey(id), s.dueKey(shard)}, []string{
		strconv.FormatInt(lastSeen, 10), strconv.FormatInt(idleDeadline, 10), strconv.FormatInt(due, 10), id.String(),
	}).ToArray()
	if rueidis.IsRedisNil(err) {
		return nil, fmt.Errorf("%w: %s", store.ErrNotFound, id)
	}
	if err != nil {
		return nil, s.wrap("touch", err)
	}
	if len(vals) != 3 {
		return nil, s.unexpected("touch", fmt.Errorf("the touch script answered %d values", len(vals)))
	}
	b, _ := vals[0].AsBytes()
	ls, _ := vals[1].ToString()
	idle, _ := vals[2].ToString()
	sess, enc, err := decodeStored(b, ls, idle)
	if err != nil {
		s.log.Error("redis: stored session is corrupt", "id", id.String(), "err", err)
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
	s.cache.Fill(t, sess, enc)
	return sess, nil
}

// Purge deletes a tombstone still at version.
func (s *Store) Purge(ctx context.Context, id wire.ID, version uint64) error {
	shard := s.shardOf(id)
	err := s.exec(ctx, purgeScript, []string{s.sessionKey(id), s.dueKey(shard), s.pendingKey(shard)},
		[]string{strconv.FormatUint(version, 10), id.String()}).Error()
	s.cache.Drop(id)
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
// An entry whose session key is missing (deleted out of band, evicted under
// maxmemory) is dropped from the index, logged, and not returned: the
// sweeper could never act on it, and left in place such entries would
// pile up in front of the ones it can act on.
func (s *Store) Expiring(ctx context.Context, before int64, limit int) ([]store.Due, error) {
	var kept []store.Due
	// Each round drops what it found dangling and reads again to fill the
	// answer; a long run of dangling entries takes several calls.
	for range 8 {
		due, err := s.dueBefore(ctx, "expiring", s.dueKey, before, limit)
		if err != nil || len(due) == 0 {
			return due, err
		}
		kept, err = s.dropDangling(ctx, due)
		if err != nil || len(kept) == len(due) || len(due) < limit {
			return kept, err
		}
	}
	return kept, nil
}

// dropDangling returns the entries of due whose session key exists, and
// drops the others from the expiry index (each atomically with a check that
// the key is still missing).
func (s *Store) dropDangling(ctx context.Context, due []store.Due) ([]store.Due, error) {
	cmds := make([]rueidis.Completed, len(due))
	for i, d := range due {
		cmds[i] = s.client.B().Hexists().Key(s.sessionKey(d.ID)).Field("v").Build()
	}
	kept := due[:0:0]
	for i, r := range s.doMulti(ctx, cmds...) {
		exists, err := r.AsBool()
		if err != nil {
			return nil, s.wrap("expiring", err)
		}
		d := due[i]
		if exists {
			kept = append(kept, d)
			continue
		}
		// The purge script with version 0 (no session has it) only drops
		// index entries, and only when the session key is missing.
		shard := s.shardOf(d.ID)
		err = s.exec(ctx, purgeScript, []string{s.sessionKey(d.ID), s.dueKey(shard), s.pendingKey(shard)},
			[]string{"0", d.ID.String()}).Error()
		switch {
		case err == nil:
			s.log.Warn("redis: the expiry index names a session whose key is missing; entry dropped", "id", d.ID.String())
		case strings.HasPrefix(err.Error(), "CONFLICT"):
			kept = append(kept, d) // written meanwhile
		default:
			return nil, s.wrap("expiring", err)
		}
	}
	return kept, nil
}

// ChangesDue reads every shard's pending change events up to before and
// merges them.
func (s *Store) ChangesDue(ctx context.Context, before int64, limit int) ([]store.Due, error) {
	return s.dueBefore(ctx, "changes due", s.pendingKey, before, limit)
}

// dueBefore reads the sorted set key(shard) of every shard up to before
// (ids scored by Unix ms) and merges them, the earliest first.
func (s *Store) dueBefore(ctx context.Context, op string, key func(int) string, before int64, limit int) ([]store.Due, error) {
	if before <= 0 || limit <= 0 {
		return nil, nil
	}
	cmds := make([]rueidis.Completed, s.cfg.Shards)
	for shard := range cmds {
		cmds[shard] = s.client.B().Zrange().Key(key(shard)).Min("-inf").Max("("+strconv.FormatInt(before, 10)).
			Byscore().Limit(0, int64(limit)).Withscores().Build()
	}
	var due []store.Due
	for _, r := range s.doMulti(ctx, cmds...) {
		scores, err := r.AsZScores()
		if err != nil {
			return nil, s.wrap(op, err)
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

// Emit runs the emit script once per emission, all in one pipeline (one
// round trip per node). Redis makes each durable as its configuration says
// (see Commit).
func (s *Store) Emit(ctx context.Context, es []store.Emission) []error {
	errs := make([]error, len(es))
	if len(es) == 0 {
		return errs
	}
	execs := make([]rueidis.LuaExec, len(es))
	for i := range es {
		e := &es[i]
		shard := s.shardOf(e.ID)
		args := []string{strconv.FormatUint(e.Version, 10), e.ID.String(), rueidis.BinaryString(e.Pending), s.node}
		for _, body := range e.Outbox {
			args = append(args, rueidis.BinaryString(body))
		}
		execs[i] = rueidis.LuaExec{Keys: []string{s.sessionKey(e.ID), s.outboxKey(shard), s.pendingKey(shard), s.notifyKey(shard)}, Args: args}
	}
	s.roundTrips.Add(int64(len(execs)))
	bctx, cancel := s.bounded(ctx)
	results := emitScript.ExecMulti(bctx, s.client, execs...)
	cancel()
	outbox := false
	for i, r := range results {
		n, err := r.AsInt64()
		switch {
		case err == nil:
			outbox = outbox || n > 0
		case strings.HasPrefix(err.Error(), "NOTFOUND"):
			errs[i] = fmt.Errorf("%w: %s", store.ErrNotFound, es[i].ID)
		case strings.HasPrefix(err.Error(), "CONFLICT"):
			s.cache.Drop(es[i].ID) // the caller reads it again
			errs[i] = fmt.Errorf("%w: %s is at version %s, not %d", store.ErrConflict, es[i].ID,
				strings.TrimSpace(strings.TrimPrefix(err.Error(), "CONFLICT")), es[i].Version)
		default:
			errs[i] = s.wrap("emit", err)
		}
	}
	if outbox {
		s.noteOutbox()
	}
	return errs
}
