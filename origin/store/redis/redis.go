// Package redis is the Redis backend of origin/store, for Redis standalone
// and Redis Cluster, so several origin nodes can share one deployment.
//
// It uses github.com/redis/rueidis: one client speaks to a standalone server
// and to a cluster (it follows MOVED/ASK and the slot map), pipelines
// concurrent commands on shared connections (so one API call costs one round
// trip without a connection per request), and runs Lua scripts by SHA.
//
// Layout (docs/redis.md draws it): sessions are spread over Shards shards by
// their id; every key of a shard carries the hash tag {PREFIX.N}, so a
// script that updates a session, its shard's change-log stream, expiry index,
// customer index and outbox touches one slot (no CROSSSLOT) and runs
// atomically on one node. The change feed is one stream per shard, so no key
// is hot; a cursor names a position in each.
package redis

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/origin/store/cache"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Config configures the store. The zero value of each field means its default.
type Config struct {
	// URLs lists the servers: redis://[user:password@]host:port[/db], or
	// rediss:// for TLS. Several URLs are seed nodes of one cluster (or one
	// standalone server with fallbacks); a cluster is detected by itself.
	URLs []string
	// Username and Password override those of the URLs.
	Username, Password string
	// TLS, when set, is used for every connection (rediss:// URLs set a
	// default one).
	TLS *tls.Config
	// Prefix starts every key; default "se". Deployments sharing a Redis
	// need different prefixes. It goes inside the keys' hash tags, so it
	// may not contain '{' or '}'.
	Prefix string
	// Shards is the number of shards; default 16. Changing it orphans the
	// data of an existing deployment: choose once.
	Shards int
	// FeedLength is the approximate number of deltas each shard's change log
	// keeps; default 100000. An edge whose cursor falls behind gets a reset.
	FeedLength int
	// TombstoneTTL is how long a tombstone stays after the end when its
	// hard deadline does not bound its tokens (store.DueAt); default 24h. It
	// must be at least the longest a token can stay valid after it is
	// issued (the shared sessions' token lifetime, every other kind's idle
	// timeout).
	TombstoneTTL time.Duration
	// CacheBytes is the read cache's budget (origin/store/cache: each
	// session counts about the heap it holds); default 256
	// MiB; negative disables the cache.
	CacheBytes int64
	// CacheTTL bounds how long a cached session may be served without a
	// notification from the shard that would invalidate it (notifications
	// are fire-and-forget); default 2s.
	CacheTTL time.Duration
	// Timeout bounds every call to Redis whose context has no deadline, so
	// a request fails with store.ErrUnavailable instead of hanging while
	// Redis is down; default 2s.
	Timeout time.Duration
	// Now returns the time; default time.Now.
	Now func() time.Time
	// Logger receives the store's errors (a lost subscription, a reply it
	// cannot read); default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if len(c.URLs) == 0 {
		return c, errors.New("redis: no server URL configured")
	}
	if c.Prefix == "" {
		c.Prefix = "se"
	}
	if strings.ContainsAny(c.Prefix, "{}") {
		// A brace would end the hash tag early (or make it empty), and the
		// keys of one shard would no longer share a slot.
		return c, fmt.Errorf("redis: prefix %q may not contain '{' or '}'", c.Prefix)
	}
	if c.Shards == 0 {
		c.Shards = 16
	}
	if c.Shards < 1 || c.Shards > 1024 {
		return c, fmt.Errorf("redis: shards %d out of range 1..1024", c.Shards)
	}
	if c.FeedLength == 0 {
		c.FeedLength = 100_000
	}
	if c.TombstoneTTL == 0 {
		c.TombstoneTTL = 24 * time.Hour
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = 2 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Store is the Redis backend. It is safe for concurrent use.
type Store struct {
	cfg    Config
	client rueidis.Client
	cache  *cache.Cache // nil when disabled
	log    *slog.Logger
	node   string // this process's consumer name in the outbox groups

	// changed is closed and replaced whenever a notification arrives, to
	// wake WaitChanges callers.
	mu      sync.Mutex
	changed chan struct{}
	outbox  chan struct{}

	heldMu sync.Mutex
	held   []heldEntry // outbox entries claimed and not handed out yet

	groupsReady atomic.Bool  // the outbox consumer groups exist
	roundTrips  atomic.Int64 // commands sent, for the one-round-trip benchmark
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	closed      atomic.Bool
}

// New connects to Redis and starts the notification listeners.
func New(cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	opt, err := rueidis.ParseURL(cfg.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	for _, u := range cfg.URLs[1:] {
		more, err := rueidis.ParseURL(u)
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		opt.InitAddress = append(opt.InitAddress, more.InitAddress...)
	}
	if cfg.Username != "" {
		opt.Username = cfg.Username
	}
	if cfg.Password != "" {
		opt.Password = cfg.Password
	}
	if cfg.TLS != nil {
		opt.TLSConfig = cfg.TLS
	}
	// Our own read cache (origin/store/cache) is coherent through
	// notifications; rueidis's server-assisted cache would be a second one.
	opt.DisableCache = true
	// rueidis retries a lost subscription by itself, silently; the
	// listeners retry it instead, and log why it was lost.
	opt.RetryDelay = retryDelay
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("redis: cannot connect: %w", err)
	}
	var node [8]byte
	rand.Read(node[:])
	s := &Store{cfg: cfg, client: client, log: cfg.Logger, node: hex.EncodeToString(node[:]),
		changed: make(chan struct{}), outbox: make(chan struct{}, 1),
		cache: cache.New(cache.Config{MaxBytes: cfg.CacheBytes, TTL: cfg.CacheTTL, Now: cfg.Now})}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for shard := 0; shard < cfg.Shards; shard++ {
		s.wg.Add(1)
		go s.listen(ctx, shard)
	}
	return s, nil
}

// retryDelay is rueidis's default retry policy (exponential backoff with
// jitter, at most a second), except that subscriptions are not retried
// inside rueidis: the listener that made them logs the error and retries.
func retryDelay(attempts int, cmd rueidis.Completed, err error) time.Duration {
	if c := cmd.Commands(); len(c) > 0 && strings.EqualFold(c[0], "SSUBSCRIBE") {
		return -1
	}
	base := time.Duration(1<<min(attempts, 20)) * time.Microsecond
	return min(time.Second, base+time.Duration(mrand.Int64N(int64(base)+1)))
}

// RoundTrips returns the number of Redis commands this store has sent.
func (s *Store) RoundTrips() int64 { return s.roundTrips.Load() }

func (s *Store) shardOf(id wire.ID) int {
	return int(uint16(id[0])<<8|uint16(id[1])) % s.cfg.Shards
}

func (s *Store) tag(shard int) string {
	return "{" + s.cfg.Prefix + "." + strconv.Itoa(shard) + "}"
}

func (s *Store) sessionKey(id wire.ID) string { return s.tag(s.shardOf(id)) + ":s:" + id.String() }
func (s *Store) feedKey(shard int) string     { return s.tag(shard) + ":feed" }
func (s *Store) dueKey(shard int) string      { return s.tag(shard) + ":due" }
func (s *Store) outboxKey(shard int) string   { return s.tag(shard) + ":outbox" }
func (s *Store) pendingKey(shard int) string  { return s.tag(shard) + ":changes" }
func (s *Store) liveKey(shard int) string     { return s.tag(shard) + ":live" }
func (s *Store) notifyKey(shard int) string   { return s.tag(shard) + ":notify" }
func (s *Store) customerKey(shard int, cid string) string {
	return s.tag(shard) + ":c:" + cid
}

const outboxGroup = "webhooks"

// bounded gives ctx the store's timeout unless it has a deadline already.
func (s *Store) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.cfg.Timeout)
}

// do runs one command and counts it.
func (s *Store) do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	s.roundTrips.Add(1)
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	return s.client.Do(ctx, cmd)
}

// doMulti pipelines commands (to several nodes of a cluster at once).
func (s *Store) doMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	s.roundTrips.Add(int64(len(cmds)))
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	return s.client.DoMulti(ctx, cmds...)
}

func (s *Store) exec(ctx context.Context, script *rueidis.Lua, keys, args []string) rueidis.RedisResult {
	s.roundTrips.Add(1)
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	return script.Exec(ctx, s.client, keys, args)
}

// unexpected reports a reply the store cannot read: logged, since it means
// a bug or a Redis that is not what the store expects.
func (s *Store) unexpected(op string, err error) error {
	s.log.Error("redis: unexpected reply", "op", op, "err", err)
	return fmt.Errorf("redis: %s: unexpected reply: %w", op, err)
}

// wrap turns a failure to reach Redis into store.ErrUnavailable, so the API
// answers 503 and the caller knows nothing was acknowledged.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if s.closed.Load() || errors.Is(err, rueidis.ErrClosing) {
		return fmt.Errorf("redis: %s: %w", op, store.ErrClosed)
	}
	return fmt.Errorf("redis: %s: %w (%v)", op, store.ErrUnavailable, err)
}
