package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/sessionedge/sessionedge/origin/server"
	"github.com/sessionedge/sessionedge/origin/store"
	pebblestore "github.com/sessionedge/sessionedge/origin/store/pebble"
	redisstore "github.com/sessionedge/sessionedge/origin/store/redis"
)

// fileConfig is the configuration file: the server's settings and the
// storage settings, in one JSON object.
type fileConfig struct {
	server.Config
	storeConfig
}

// storeConfig selects and configures the store. It is the only place that
// knows the backends' options: a new one is added here and in the
// backend's Config.
type storeConfig struct {
	// DataDir is the embedded store's directory; default "./data",
	// created 0700.
	DataDir string `json:"dataDir"`
	// Redis, when it lists URLs, keeps the state in Redis or Redis Cluster
	// instead of the embedded store.
	Redis redisConfig `json:"redis"`
	// Retention is the number of change-log entries the embedded store
	// keeps; default 1,000,000.
	Retention uint64 `json:"retention"`
	// CacheBytes bounds the read cache; default 256 MiB; negative
	// disables it.
	CacheBytes int64 `json:"cacheBytes"`
}

// redisConfig is the file's form of redis.Config.
type redisConfig struct {
	URLs       []string        `json:"urls"`
	Username   string          `json:"username"`
	Password   string          `json:"password"`
	Prefix     string          `json:"prefix"`
	Shards     int             `json:"shards"`
	FeedLength int             `json:"feedLength"`
	CacheTTL   server.Duration `json:"cacheTTL"`
	Timeout    server.Duration `json:"timeout"`
}

// openStore opens the store sc selects. Tombstones are kept long enough for
// the tokens cfg issues (cfg.TombstoneTTL).
func openStore(sc storeConfig, cfg *server.Config, log *slog.Logger) (store.Store, error) {
	if len(sc.Redis.URLs) > 0 {
		r := sc.Redis
		st, err := redisstore.New(redisstore.Config{URLs: r.URLs, Username: r.Username, Password: r.Password,
			Prefix: r.Prefix, Shards: r.Shards, FeedLength: r.FeedLength, CacheBytes: sc.CacheBytes,
			CacheTTL: r.CacheTTL.Std(), Timeout: r.Timeout.Std(), TombstoneTTL: cfg.TombstoneTTL(), Now: cfg.Now, Logger: log})
		if err != nil {
			return nil, err
		}
		log.Info("store: redis", "servers", len(r.URLs))
		return st, nil
	}
	dir := sc.DataDir
	if dir == "" {
		dir = "./data"
	}
	// The directory holds every session's data: only the origin's user may
	// read it.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data directory: %w", err)
	}
	st, err := pebblestore.Open(pebblestore.Config{Dir: dir, Retention: sc.Retention, CacheBytes: sc.CacheBytes,
		TombstoneTTL: cfg.TombstoneTTL(), Logger: log})
	if err != nil {
		return nil, err
	}
	log.Info("store: embedded", "dir", dir)
	return st, nil
}
