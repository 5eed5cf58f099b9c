package redis

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// The outbox is one stream per shard, read through a consumer group, so
// several origin nodes share the deliveries: an entry goes to one node, and
// to another only if the first neither delivers nor acknowledges it within
// the lease (XAUTOCLAIM).

func (s *Store) ensureGroups(ctx context.Context) error {
	if s.groupsReady.Load() {
		return nil
	}
	cmds := make([]rueidis.Completed, s.cfg.Shards)
	for shard := range cmds {
		cmds[shard] = s.client.B().XgroupCreate().Key(s.outboxKey(shard)).Group(outboxGroup).Id("0").Mkstream().Build()
	}
	for _, r := range s.doMulti(ctx, cmds...) {
		if err := r.Error(); err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
			return s.wrap("outbox group", err)
		}
	}
	s.groupsReady.Store(true)
	return nil
}

// OutboxClaim hands out entries this node claimed earlier and has not
// handed out yet, then takes entries whose lease of another node ran out
// and new ones from every shard (two pipelined commands per shard), oldest
// first. Redis leases everything those commands return, up to limit per
// shard; what does not fit in this answer stays held by this node for its
// next call within the lease, instead of waiting a whole lease.
func (s *Store) OutboxClaim(ctx context.Context, limit int, lease time.Duration) ([]store.OutboxEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	if err := s.ensureGroups(ctx); err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	out := s.takeHeld(limit, now.Add(-lease))
	if len(out) == limit {
		return out, nil
	}
	room := limit - len(out)
	cmds := make([]rueidis.Completed, 0, 2*s.cfg.Shards)
	for shard := 0; shard < s.cfg.Shards; shard++ {
		key := s.outboxKey(shard)
		cmds = append(cmds,
			s.client.B().Xautoclaim().Key(key).Group(outboxGroup).Consumer(s.node).MinIdleTime(strconv.FormatInt(lease.Milliseconds(), 10)).Start("0-0").Count(int64(room)).Build(),
			s.client.B().Xreadgroup().Group(outboxGroup, s.node).Count(int64(room)).Streams().Key(key).Id(">").Build())
	}
	var claimed []heldEntry
	results := s.doMulti(ctx, cmds...)
	for shard := 0; shard < s.cfg.Shards; shard++ {
		reclaimed, err := results[2*shard].ToArray()
		if err != nil {
			return nil, s.wrap("outbox claim", err)
		}
		if len(reclaimed) > 1 {
			entries, err := reclaimed[1].AsXRange()
			if err != nil {
				return nil, s.unexpected("outbox claim", err)
			}
			if claimed, err = s.appendOutbox(claimed, shard, entries, now); err != nil {
				return nil, err
			}
		}
		fresh, err := results[2*shard+1].AsXRead()
		if err != nil && !rueidis.IsRedisNil(err) {
			return nil, s.wrap("outbox read", err)
		}
		if claimed, err = s.appendOutbox(claimed, shard, fresh[s.outboxKey(shard)], now); err != nil {
			return nil, err
		}
	}
	sort.Slice(claimed, func(i, j int) bool { return claimed[i].pos.less(claimed[j].pos) })
	n := min(room, len(claimed))
	for _, h := range claimed[:n] {
		out = append(out, h.entry)
	}
	if len(claimed) > n {
		s.heldMu.Lock()
		s.held = append(s.held, claimed[n:]...)
		s.heldMu.Unlock()
	}
	return out, nil
}

// heldEntry is an outbox entry this node claimed and has not handed out.
type heldEntry struct {
	entry store.OutboxEntry
	pos   streamID
	at    time.Time // when it was claimed
}

// takeHeld returns up to limit held entries claimed after since; older
// ones are forgotten (their lease ran out: any node may claim them again).
func (s *Store) takeHeld(limit int, since time.Time) []store.OutboxEntry {
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	var out []store.OutboxEntry
	keep := s.held[:0]
	for _, h := range s.held {
		switch {
		case !h.at.After(since):
		case len(out) < limit:
			out = append(out, h.entry)
		default:
			keep = append(keep, h)
		}
	}
	clear(s.held[len(keep):])
	s.held = keep
	return out
}

func (s *Store) appendOutbox(out []heldEntry, shard int, entries []rueidis.XRangeEntry, now time.Time) ([]heldEntry, error) {
	for _, e := range entries {
		if e.FieldValues == nil { // deleted while pending
			continue
		}
		pos, err := parseStreamID(e.ID)
		if err != nil {
			return nil, s.unexpected("outbox claim", err)
		}
		out = append(out, heldEntry{
			entry: store.OutboxEntry{ID: strconv.Itoa(shard) + "/" + e.ID, Body: []byte(e.FieldValues["b"])},
			pos:   pos, at: now,
		})
	}
	return out, nil
}

// OutboxDone acknowledges and deletes a delivered entry.
func (s *Store) OutboxDone(ctx context.Context, id string) error {
	shardText, pos, ok := strings.Cut(id, "/")
	shard, err := strconv.Atoi(shardText)
	if !ok || err != nil || shard < 0 || shard >= s.cfg.Shards {
		return errors.New("redis: bad outbox entry id " + id)
	}
	key := s.outboxKey(shard)
	for _, r := range s.doMulti(ctx,
		s.client.B().Xack().Key(key).Group(outboxGroup).Id(pos).Build(),
		s.client.B().Xdel().Key(key).Id(pos).Build()) {
		if err := r.Error(); err != nil {
			return s.wrap("outbox done", err)
		}
	}
	return nil
}

// OutboxNotify signals after commits (of any node) that added outbox entries.
func (s *Store) OutboxNotify() <-chan struct{} { return s.outbox }

// listen follows one shard's notification channel until ctx ends,
// reconnecting after failures. Missed notifications cost at most
// Config.CacheTTL of staleness and waitFallback of latency.
func (s *Store) listen(ctx context.Context, shard int) {
	defer s.wg.Done()
	const healthy = 10 * time.Second // a subscription that held this long was up
	backoff, failures := 50*time.Millisecond, 0
	for ctx.Err() == nil {
		began := time.Now()
		err := s.client.Receive(ctx, s.client.B().Ssubscribe().Channel(s.notifyKey(shard)).Build(),
			func(m rueidis.PubSubMessage) { s.onNotify(m.Message) })
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > healthy {
			backoff, failures = 50*time.Millisecond, 0
		}
		failures++
		// Until the subscription is back, other nodes' writes reach this
		// node's cache only through CacheTTL, and waiters through
		// waitFallback. The first failure, and every 30th while it lasts,
		// is a warning.
		level := slog.LevelDebug
		if failures == 1 || failures%30 == 0 {
			level = slog.LevelWarn
		}
		s.log.Log(ctx, level, "redis: change notifications lost; resubscribing", "shard", shard,
			"channel", s.notifyKey(shard), "failures", failures, "retry", backoff, "err", err)
		s.wake() // something may have changed while we were away
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// onNotify handles "id version outbox-count node" from a commit script.
// A node's own commits already updated its cache and woke its waiters.
func (s *Store) onNotify(msg string) {
	fields := strings.Fields(msg)
	if len(fields) == 4 && fields[3] == s.node {
		return
	}
	if len(fields) != 4 {
		s.log.Warn("redis: ignoring a malformed change notification", "message", msg)
	} else {
		id, err := wire.ParseID(fields[0])
		v, verr := strconv.ParseUint(fields[1], 10, 64)
		if err != nil || verr != nil {
			s.log.Warn("redis: ignoring a malformed change notification", "message", msg)
		} else {
			// Also stops reads in flight from caching what they read.
			s.cache.DropOlder(id, v)
		}
		if fields[2] != "0" {
			select {
			case s.outbox <- struct{}{}:
			default:
			}
		}
	}
	s.wake()
}

func (s *Store) wake() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Stats sums the shards' live-session counters.
func (s *Store) Stats() store.Stats {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	cmds := make([]rueidis.Completed, s.cfg.Shards)
	for shard := range cmds {
		cmds[shard] = s.client.B().Get().Key(s.liveKey(shard)).Build()
	}
	var st store.Stats
	for shard, r := range s.doMulti(ctx, cmds...) {
		n, err := r.AsInt64()
		switch {
		case err == nil:
			st.LiveSessions += n
		case !rueidis.IsRedisNil(err):
			s.log.Warn("redis: cannot read a shard's live-session count", "shard", shard, "err", err)
		}
	}
	return st
}

// Close stops the listeners and closes the connections.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.cancel()
	s.client.Close()
	s.wg.Wait()
	return nil
}

var _ store.Store = (*Store)(nil)
