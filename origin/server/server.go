// Package server is the origin service: the /v1 API over fasthttp, the sync
// feed, the expiry sweeper and the webhook dispatcher, on top of a
// store.Store (the embedded Pebble store by default).
package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sessionedge/sessionedge/origin/store"
	pebblestore "github.com/sessionedge/sessionedge/origin/store/pebble"
	redisstore "github.com/sessionedge/sessionedge/origin/store/redis"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

func randRead(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
}

// scope is a permission an API key grants.
type scope uint8

const (
	scopeNone scope = iota // public route
	scopeRead
	scopeWrite
	scopeAdmin
	scopeSync
)

var scopeNames = map[string]scope{
	"sessions:read": scopeRead, "sessions:write": scopeWrite, "sessions:admin": scopeAdmin, "edge:sync": scopeSync,
}

type apiKey struct {
	name   string
	hash   [sha256.Size]byte
	scopes [5]bool
}

// Server is a configured origin. Create it with New, serve with Serve or
// Run, and stop it with Shutdown.
type Server struct {
	cfg      Config
	log      *slog.Logger
	st       store.Store
	ownStore bool
	keyring  *wire.Keyring
	shared   []byte
	keys     []apiKey
	lim      wire.Limits
	now      func() time.Time
	tm       [4]KindTimeouts // by wire.Kind
	maxBody  int

	http    *fasthttp.Server
	metrics *metrics
	routes  []route
	locks   [writeStripes]sync.Mutex

	base     context.Context
	cancel   context.CancelFunc
	bg       sync.WaitGroup
	shutOnce sync.Once
}

// New validates cfg, opens the store and returns a Server that is not yet
// serving.
func New(cfg Config) (*Server, error) {
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.Listen == "" {
		s.cfg.Listen = ":8081"
	}
	s.maxBody = cfg.MaxBodyBytes
	if s.maxBody <= 0 {
		s.maxBody = 256 << 10
	}
	s.lim = cfg.Limits.WithDefaults()
	s.tm[wire.KindAnonymous] = KindTimeouts{cfg.Timeouts.Anonymous.Idle.or(Duration(time.Hour)), cfg.Timeouts.Anonymous.Hard.or(Duration(24 * time.Hour))}
	s.tm[wire.KindCustomer] = KindTimeouts{cfg.Timeouts.Customer.Idle.or(Duration(30 * time.Minute)), cfg.Timeouts.Customer.Hard.or(Duration(6 * time.Hour))}
	s.tm[wire.KindShared] = KindTimeouts{cfg.Timeouts.Shared.Idle.or(None), cfg.Timeouts.Shared.Hard.or(None)}
	kr, random, err := cfg.keyring()
	if err != nil {
		return nil, err
	}
	if random {
		s.log.Warn("no token keys configured: using a random key; tokens will not verify at edges or after restart")
	}
	s.keyring = kr
	if cfg.SharedSecret == "" {
		s.shared = make([]byte, 32)
		randRead(s.shared)
		s.log.Warn("no shared secret configured: shared-session ids change on restart")
	} else if s.shared, err = decodeSecret(cfg.SharedSecret); err != nil {
		return nil, fmt.Errorf("sharedSecret: %w", err)
	}
	for _, k := range cfg.APIKeys {
		ak := apiKey{name: k.Name}
		switch {
		case k.SHA256 != "":
			h, err := hex.DecodeString(k.SHA256)
			if err != nil || len(h) != sha256.Size {
				return nil, fmt.Errorf("API key %q: sha256 must be 64 hex digits", k.Name)
			}
			copy(ak.hash[:], h)
		case k.Key != "":
			ak.hash = sha256.Sum256([]byte(k.Key))
		default:
			return nil, fmt.Errorf("API key %q has neither sha256 nor key", k.Name)
		}
		for _, sc := range k.Scopes {
			v, ok := scopeNames[sc]
			if !ok {
				return nil, fmt.Errorf("API key %q: unknown scope %q", k.Name, sc)
			}
			ak.scopes[v] = true
		}
		s.keys = append(s.keys, ak)
	}
	if len(s.keys) == 0 {
		s.log.Warn("no API keys configured: the API is open to anyone who can reach it")
	}
	if cfg.Webhook.URL != "" && cfg.Webhook.Secret == "" {
		return nil, errors.New("webhook.secret is required with webhook.url")
	}
	s.st = cfg.Store
	if s.st == nil && len(cfg.Redis.URLs) > 0 {
		rs, err := redisstore.New(redisstore.Config{URLs: cfg.Redis.URLs, Username: cfg.Redis.Username,
			Password: cfg.Redis.Password, Prefix: cfg.Redis.Prefix, Shards: cfg.Redis.Shards,
			FeedLength: cfg.Redis.FeedLength, CacheBytes: cfg.CacheBytes, CacheTTL: time.Duration(cfg.Redis.CacheTTL)})
		if err != nil {
			return nil, err
		}
		s.st, s.ownStore = rs, true
	}
	if s.st == nil {
		dir := cfg.DataDir
		if dir == "" {
			dir = "./data"
		}
		ps, err := pebblestore.Open(pebblestore.Config{Dir: dir, Retention: cfg.Retention, CacheBytes: cfg.CacheBytes})
		if err != nil {
			return nil, err
		}
		s.st, s.ownStore = ps, true
	}
	s.base, s.cancel = context.WithCancel(context.Background())
	s.routes = s.routeTable()
	s.metrics = newMetrics(s)
	s.http = &fasthttp.Server{
		Handler:            s.handle,
		Name:               "sessionedge-origin",
		MaxRequestBodySize: s.maxBody * 4,
		ReadTimeout:        60 * time.Second,
		WriteTimeout:       60 * time.Second,
		IdleTimeout:        120 * time.Second,
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			if errors.Is(err, fasthttp.ErrBodyTooLarge) {
				writeError(ctx, errBodyTooLarge)
				return
			}
			writeError(ctx, badInput("request", "malformed HTTP request"))
		},
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
	}
	return s, nil
}

// Store returns the server's store.
func (s *Server) Store() store.Store { return s.st }

// Serve serves on ln until Shutdown, running the expiry sweeper and webhook
// dispatcher alongside.
func (s *Server) Serve(ln net.Listener) error {
	s.bg.Add(1)
	go s.sweepLoop()
	if s.cfg.Webhook.URL != "" {
		s.bg.Add(1)
		go s.webhookLoop()
	}
	s.log.Info("origin serving", "addr", ln.Addr().String())
	return s.http.Serve(ln)
}

// Shutdown stops accepting connections, wakes long-polls, waits for
// in-flight requests (up to ctx), stops background work and closes the store.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.shutOnce.Do(func() {
		s.cancel()
		err = s.http.ShutdownWithContext(ctx)
		s.bg.Wait()
		if s.ownStore {
			if cerr := s.st.Close(); err == nil {
				err = cerr
			}
		}
	})
	return err
}

// Run serves cfg until ctx is done, then shuts down gracefully.
func Run(ctx context.Context, cfg Config) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		s.Shutdown(context.Background())
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	select {
	case err = <-errc:
		s.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	s.log.Info("origin shutting down")
	timeout := time.Duration(s.cfg.ShutdownTimeout.or(Duration(10 * time.Second)))
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.Shutdown(sctx)
}

// authorize checks the bearer key for scope sc in constant time per key.
func (s *Server) authorize(ctx *fasthttp.RequestCtx, sc scope) error {
	if sc == scopeNone || len(s.keys) == 0 {
		return nil
	}
	h := ctx.Request.Header.Peek("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !bytes.EqualFold(h[:len(prefix)], []byte(prefix)) {
		return errUnauthorized
	}
	sum := sha256.Sum256(h[len(prefix):])
	found := -1
	for i := range s.keys {
		if subtle.ConstantTimeCompare(sum[:], s.keys[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return errUnauthorized
	}
	if !s.keys[found].scopes[sc] {
		return errForbidden
	}
	return nil
}

func (s *Server) nowMS() int64 { return s.now().UnixMilli() }

// sessionLock serializes writers of one session in this process, so that
// concurrent PATCHes of one session queue instead of failing their
// compare-and-set over and over; the store's CAS still guards against other
// origin nodes.
//
// Writers of different sessions that share a stripe wait for each other's
// fsync, so there are many stripes: 64 concurrent writers rarely collide.
func (s *Server) sessionLock(id wire.ID) *sync.Mutex {
	return &s.locks[binary.LittleEndian.Uint16(id[14:16])%writeStripes]
}

const writeStripes = 4096
