// Package server is the origin service: the /v1 API over fasthttp, the sync
// feed, the expiry sweeper and the webhook dispatcher, on top of a
// store.Store, plus an admin listener for metrics and health.
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
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sessionedge/sessionedge/origin/store"
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
	scopeNone        scope = iota // public route
	scopeRead                     // sessions:read
	scopeWrite                    // sessions:write
	scopeAdmin                    // sessions:admin
	scopeSync                     // edge:sync
	scopeSelfService              // edge:selfservice
	numScopes
)

var scopeNames = map[string]scope{
	"sessions:read": scopeRead, "sessions:write": scopeWrite, "sessions:admin": scopeAdmin,
	"edge:sync": scopeSync, "edge:selfservice": scopeSelfService,
}

// isEdgeScope reports whether sc is one of the narrow scopes an edge holds.
func (sc scope) isEdgeScope() bool { return sc == scopeSync || sc == scopeSelfService }

// defaultEdgeNamespaces are what an edge-scoped key sees unless configured.
const defaultEdgeNamespaces = 1<<wire.NamespaceCustom | 1<<wire.NamespacePublic

type apiKey struct {
	name       string
	hash       [sha256.Size]byte
	scopes     [numScopes]bool
	namespaces uint8 // visible to requests admitted by an edge scope
	// fields are the well-known fields (bits by wire.Field) a request
	// admitted by edge:selfservice may set.
	fields uint16
}

// defaultSelfServiceFields are what a shopper may set through an edge
// unless the key says otherwise.
const defaultSelfServiceFields = 1<<wire.FieldSiteCode | 1<<wire.FieldCurrency | 1<<wire.FieldTargetLocation | 1<<wire.FieldTrackingAllowed

// Server is a configured origin. Create it with New, serve with Serve (API)
// and ServeAdmin (metrics and health), or Run, and stop it with Shutdown.
type Server struct {
	cfg     Config
	log     *slog.Logger
	st      store.Store
	keyring *wire.Keyring
	shared  []byte
	keys    []apiKey
	lim     wire.Limits
	now     func() time.Time
	tm      [4]KindTimeouts // by wire.Kind, defaults filled in
	// changedWindow coalesces session.changed events (ms).
	changedWindow int64
	// sharedTokenLife bounds shared sessions' token hard deadlines.
	sharedTokenLife Duration
	maxBody         int

	http    *fasthttp.Server
	admin   *fasthttp.Server
	metrics *metrics
	routes  []route
	locks   [writeStripes]sync.Mutex
	// customerLocks serialize the logins of a customer (customerLock).
	customerLocks [256]sync.Mutex
	// retrying is how many outbox entries the webhook loop holds retry
	// state for.
	retrying atomic.Int64

	base     context.Context
	cancel   context.CancelFunc
	bg       sync.WaitGroup
	bgOnce   sync.Once
	shutOnce sync.Once
}

// New validates cfg and returns a Server that is not yet serving. The
// caller keeps ownership of cfg.Store and closes it after Shutdown.
func New(cfg Config) (*Server, error) {
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now, st: cfg.Store}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.st == nil {
		return nil, errors.New("server: no store")
	}
	if s.cfg.Listen == "" {
		s.cfg.Listen = DefaultListen
	}
	if s.cfg.Admin == "" {
		s.cfg.Admin = DefaultAdmin
	}
	s.maxBody = cfg.MaxBodyBytes
	if s.maxBody <= 0 {
		s.maxBody = 256 << 10
	}
	s.lim = cfg.Limits.WithDefaults()
	s.tm = cfg.kindTimeouts()
	s.sharedTokenLife = cfg.Timeouts.Shared.TokenLifetime.Or(Duration(24 * time.Hour))
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
		return nil, fmt.Errorf("config: sharedSecret: %w", err)
	}
	for i, k := range cfg.APIKeys {
		ak, err := parseAPIKey(i, k)
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, ak)
	}
	switch {
	case len(s.keys) == 0 && !cfg.Insecure:
		return nil, errors.New("config: apiKeys: none configured; the origin refuses to serve an open API (set \"insecure\": true for development)")
	case len(s.keys) == 0:
		s.log.Warn("insecure: no API keys configured: the API is open to anyone who can reach it")
	case cfg.Insecure:
		s.log.Warn("insecure is set but API keys are configured: keys are required")
	}
	for name, d := range map[string]Duration{"sweepInterval": cfg.SweepInterval, "shutdownTimeout": cfg.ShutdownTimeout,
		"webhook.maxBackoff": cfg.Webhook.MaxBackoff, "webhook.changedWindow": cfg.Webhook.ChangedWindow} {
		if d.IsNone() {
			return nil, fmt.Errorf("config: %s: may not be \"none\"", name)
		}
	}
	s.changedWindow = cfg.Webhook.ChangedWindow.Or(Duration(5 * time.Second)).Std().Milliseconds()
	switch cs := cfg.CustomerSessions; {
	case cs.Max < 0:
		return nil, errors.New("config: customerSessions.max: may not be negative")
	case cs.OnLimit != "" && cs.OnLimit != OnLimitEvictOldest && cs.OnLimit != OnLimitRefuse:
		return nil, fmt.Errorf("config: customerSessions.onLimit: must be %q or %q", OnLimitEvictOldest, OnLimitRefuse)
	}
	if cfg.Webhook.URL != "" && cfg.Webhook.Secret == "" {
		return nil, errors.New("config: webhook.secret: required with webhook.url")
	}
	s.base, s.cancel = context.WithCancel(context.Background())
	s.routes = s.routeTable()
	s.metrics = newMetrics(s)
	h := cfg.HTTP
	readTimeout := h.ReadTimeout.Or(Duration(30 * time.Second)).Std()
	s.http = &fasthttp.Server{
		Handler:            s.handle,
		Name:               "sessionedge-origin",
		MaxRequestBodySize: s.maxBody * 4,
		// ReadTimeout is the deadline of a connection's first byte and of
		// each request's head; the body gets readTimeout once the head is in.
		ReadTimeout:  h.HeaderTimeout.Or(Duration(5 * time.Second)).Std(),
		WriteTimeout: h.WriteTimeout.Or(Duration(30 * time.Second)).Std(),
		IdleTimeout:  h.IdleTimeout.Or(Duration(2 * time.Minute)).Std(),
		HeaderReceived: func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
			return fasthttp.RequestConfig{ReadTimeout: readTimeout}
		},
		Concurrency:    orInt(h.MaxConns, 65536),
		ReadBufferSize: orInt(h.MaxHeaderBytes, 8<<10),
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			var small *fasthttp.ErrSmallBuffer
			var timeout net.Error
			switch {
			case errors.Is(err, fasthttp.ErrBodyTooLarge):
				writeError(ctx, errBodyTooLarge)
			case errors.As(err, &small):
				writeError(ctx, errHeaderTooLarge)
			case errors.As(err, &timeout) && timeout.Timeout():
				writeError(ctx, errRequestTimeout)
			default:
				writeError(ctx, badInput("request", "malformed HTTP request"))
			}
			s.metrics.refused(ctx.Response.StatusCode())
		},
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		// Connection-level errors (malformed requests, limits) go to the
		// debug log, without request contents (they may hold tokens).
		Logger:                debugPrintf{s.log},
		SecureErrorLogMessage: true,
	}
	s.admin = &fasthttp.Server{
		Handler:               s.handleAdmin,
		Name:                  "sessionedge-origin-admin",
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           2 * time.Minute,
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		Logger:                debugPrintf{s.log},
		SecureErrorLogMessage: true,
	}
	return s, nil
}

// debugPrintf is fasthttp's logger: its messages at debug level.
type debugPrintf struct{ log *slog.Logger }

func (d debugPrintf) Printf(format string, args ...any) {
	if d.log.Enabled(context.Background(), slog.LevelDebug) {
		d.log.Debug("http: " + fmt.Sprintf(format, args...))
	}
}

func orInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func parseAPIKey(i int, k APIKey) (apiKey, error) {
	at := fmt.Sprintf("config: apiKeys[%d]", i)
	ak := apiKey{name: k.Name, namespaces: defaultEdgeNamespaces, fields: defaultSelfServiceFields}
	switch {
	case k.SHA256 != "":
		h, err := hex.DecodeString(k.SHA256)
		if err != nil || len(h) != sha256.Size {
			return ak, fmt.Errorf("%s.sha256: must be 64 hex digits", at)
		}
		copy(ak.hash[:], h)
	case k.Key != "":
		ak.hash = sha256.Sum256([]byte(k.Key))
	default:
		return ak, fmt.Errorf("%s: has neither sha256 nor key", at)
	}
	edge := false
	for _, sc := range k.Scopes {
		v, ok := scopeNames[sc]
		if !ok {
			return ak, fmt.Errorf("%s.scopes: unknown scope %q", at, sc)
		}
		ak.scopes[v] = true
		edge = edge || v.isEdgeScope()
	}
	if k.Namespaces != nil {
		if !edge {
			return ak, fmt.Errorf("%s.namespaces: only keys with an edge scope (edge:sync, edge:selfservice) are filtered", at)
		}
		ak.namespaces = 0
		for _, n := range k.Namespaces {
			ns, ok := wire.ParseNamespace(n)
			if !ok {
				return ak, fmt.Errorf("%s.namespaces: unknown namespace %q", at, n)
			}
			ak.namespaces |= 1 << ns
		}
	}
	if k.SelfServiceFields != nil {
		if !ak.scopes[scopeSelfService] {
			return ak, fmt.Errorf("%s.selfServiceFields: only keys with edge:selfservice write through self-service", at)
		}
		ak.fields = 0
		for _, n := range k.SelfServiceFields {
			f, ok := wire.ParseField(n)
			switch {
			case !ok:
				return ak, fmt.Errorf("%s.selfServiceFields: unknown field %q", at, n)
			case f == wire.FieldCustomerID:
				return ak, fmt.Errorf("%s.selfServiceFields: customerId is set only by login", at)
			}
			ak.fields |= 1 << f
		}
	}
	return ak, nil
}

// Store returns the server's store.
func (s *Server) Store() store.Store { return s.st }

// startBackground starts the expiry sweeper and the webhook dispatcher once.
func (s *Server) startBackground() {
	s.bgOnce.Do(func() {
		s.bg.Add(1)
		go s.sweepLoop()
		if s.cfg.Webhook.URL != "" {
			s.bg.Add(1)
			go s.webhookLoop()
		}
	})
}

// Serve serves the API on ln until Shutdown, running the expiry sweeper and
// webhook dispatcher alongside.
func (s *Server) Serve(ln net.Listener) error {
	s.startBackground()
	s.log.Info("origin serving", "addr", ln.Addr().String())
	return s.http.Serve(newPerIPListener(ln, orInt(s.cfg.HTTP.MaxConnsPerIP, 1024), s.metrics.connsRefused.Inc))
}

// ServeAdmin serves /metrics, /healthz and /readyz on ln until Shutdown.
func (s *Server) ServeAdmin(ln net.Listener) error {
	s.log.Info("origin admin serving", "addr", ln.Addr().String())
	return s.admin.Serve(newPerIPListener(ln, 64, func() {}))
}

// Shutdown stops accepting connections, wakes long-polls, waits for
// in-flight requests (up to ctx) and stops background work. It does not
// close the store.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.shutOnce.Do(func() {
		s.cancel()
		err = s.http.ShutdownWithContext(ctx)
		if aerr := s.admin.ShutdownWithContext(ctx); err == nil {
			err = aerr
		}
		s.bg.Wait()
	})
	return err
}

// Run serves cfg until ctx is done, then shuts down gracefully. It does not
// close cfg.Store.
func Run(ctx context.Context, cfg Config) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Listen, err)
	}
	errc := make(chan error, 2)
	if s.cfg.Admin != "-" {
		aln, err := net.Listen("tcp", s.cfg.Admin)
		if err != nil {
			ln.Close()
			return fmt.Errorf("admin listen %s: %w", s.cfg.Admin, err)
		}
		go func() { errc <- s.ServeAdmin(aln) }()
	}
	go func() { errc <- s.Serve(ln) }()
	select {
	case err = <-errc:
		s.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	s.log.Info("origin shutting down")
	timeout := s.cfg.ShutdownTimeout.Or(Duration(10 * time.Second)).Std()
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.Shutdown(sctx)
}

// access is what the API key of a request may do on the matched route.
type access struct {
	// edge: admitted by an edge scope (not an app scope): the route's
	// edge rules apply (session token required on session routes,
	// namespace filter, device metadata hidden, self-service
	// restrictions).
	edge bool
	// namespaces the answer may show (wire namespace bits).
	namespaces uint8
	// fields a self-service write may set (wire field bits).
	fields uint16
}

var fullAccess = access{namespaces: wire.AllNamespaces}

// authorize finds the bearer key (comparing with every key in constant
// time) and the first of the route's grants it holds.
func (s *Server) authorize(ctx *fasthttp.RequestCtx, r *route) (access, error) {
	if len(r.grants) == 0 || len(s.keys) == 0 {
		return fullAccess, nil
	}
	h := ctx.Request.Header.Peek("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !bytes.EqualFold(h[:len(prefix)], []byte(prefix)) {
		return access{}, errUnauthorized
	}
	sum := sha256.Sum256(h[len(prefix):])
	found := -1
	for i := range s.keys {
		if subtle.ConstantTimeCompare(sum[:], s.keys[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return access{}, errUnauthorized
	}
	k := &s.keys[found]
	for _, g := range r.grants {
		if !k.scopes[g] {
			continue
		}
		if g.isEdgeScope() {
			return access{edge: true, namespaces: k.namespaces, fields: k.fields}, nil
		}
		return fullAccess, nil
	}
	return access{}, errForbidden
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
