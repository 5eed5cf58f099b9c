package server

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Duration is the configuration's duration (wire.Duration): a JSON string
// in Go syntax ("500ms", "30m", "24h"), "none" where a timeout may be
// absent, or a bare JSON number of seconds. Zero (or absent) means the
// default; negative values are refused.
type Duration = wire.Duration

// None is the Duration that means "no timeout".
const None = wire.NoTimeout

// deadlineAfter returns now+d in Unix ms (now in Unix ms), or 0 for none.
func deadlineAfter(d Duration, now int64) int64 {
	if d.IsNone() || d == 0 {
		return 0
	}
	return now + d.Std().Milliseconds()
}

// KindTimeouts are the idle and hard timeouts of one session kind, and the
// longest a session of the kind may ask for as its own lifetime.
type KindTimeouts struct {
	Idle Duration `json:"idle"`
	Hard Duration `json:"hard"`
	// MaxIdle and MaxHard bound a session's own lifetime (the "lifetime"
	// of create and login bodies, ?idleTimeout and ?hardTimeout of an
	// upsert); default 4 × Idle and 4 × Hard, "none" (no bound) when the
	// kind's timeout is "none".
	MaxIdle Duration `json:"maxIdle"`
	MaxHard Duration `json:"maxHard"`
}

// SharedTimeouts are the timeouts of shared sessions and of their tokens.
type SharedTimeouts struct {
	Idle Duration `json:"idle"`
	Hard Duration `json:"hard"`
	// MaxIdle and MaxHard: as in KindTimeouts.
	MaxIdle Duration `json:"maxIdle"`
	MaxHard Duration `json:"maxHard"`
	// TokenLifetime bounds the hard deadline of a token the origin issues
	// for a shared session (now + TokenLifetime, or the session's hard
	// deadline when earlier); default 24h, "none" for tokens that never
	// expire.
	TokenLifetime Duration `json:"tokenLifetime"`
}

// Timeouts holds the timeouts per kind.
type Timeouts struct {
	// Anonymous defaults to idle 60m, hard 24h.
	Anonymous KindTimeouts `json:"anonymous"`
	// Customer defaults to idle 30m, hard 6h (from the session's start).
	Customer KindTimeouts `json:"customer"`
	// Shared defaults to none and none, tokens 24h.
	Shared SharedTimeouts `json:"shared"`
}

// APIKey is one API key and the scopes it grants.
type APIKey struct {
	// Name labels the key in logs.
	Name string `json:"name"`
	// SHA256 is the hex SHA-256 of the key; the key itself is never stored.
	SHA256 string `json:"sha256"`
	// Key is the plain key, accepted for development only; it is hashed at
	// load and dropped.
	Key string `json:"key,omitempty"`
	// Scopes: sessions:read, sessions:write, sessions:admin, edge:sync,
	// edge:selfservice (docs/api.md lists the routes each opens).
	Scopes []string `json:"scopes"`
	// Namespaces are the namespaces this key sees in session views and feed
	// deltas when a request is admitted by an edge scope; default custom
	// and public. Requests admitted by an app scope see everything.
	Namespaces []string `json:"namespaces,omitempty"`
	// SelfServiceFields are the well-known fields a request admitted by
	// edge:selfservice may set besides the public namespace; default
	// siteCode, currency, targetLocation and trackingAllowed. customerId
	// is never one of them.
	SelfServiceFields []string `json:"selfServiceFields,omitempty"`
}

// Webhook is where session events go.
type Webhook struct {
	// URL receives POSTs; empty disables webhooks (and the outbox).
	URL string `json:"url"`
	// Secret signs bodies with HMAC-SHA256.
	Secret string `json:"secret"`
	// MaxBackoff caps the retry delay; default 5m.
	MaxBackoff Duration `json:"maxBackoff"`
	// Timeout bounds one delivery attempt; default 10s.
	Timeout Duration `json:"timeout"`
	// ChangedWindow coalesces session.changed events: at most one per
	// session per window, sent when the window ends (or before the
	// session's next login, logout, end or flush) with the session's state
	// then; default 5s.
	ChangedWindow Duration `json:"changedWindow"`
}

// CustomerSessions limits how many live sessions one customer may hold.
type CustomerSessions struct {
	// Max is the most sessions a customer may be logged in with at once;
	// 0 means no limit.
	Max int `json:"max"`
	// OnLimit is what a login beyond Max does: "evictOldest" (the default:
	// the customer's oldest other sessions end, reason evicted) or
	// "refuse" (409 session_limit).
	OnLimit string `json:"onLimit"`
}

// The values of CustomerSessions.OnLimit.
const (
	OnLimitEvictOldest = "evictOldest"
	OnLimitRefuse      = "refuse"
)

// HTTPConfig bounds what one client can hold of the API listener.
type HTTPConfig struct {
	// HeaderTimeout bounds the wait for a request's head (and a new
	// connection's first byte); default 5s.
	HeaderTimeout Duration `json:"headerTimeout"`
	// ReadTimeout bounds reading a request's body once its head arrived;
	// default 30s.
	ReadTimeout Duration `json:"readTimeout"`
	// WriteTimeout bounds writing a response; default 30s.
	WriteTimeout Duration `json:"writeTimeout"`
	// IdleTimeout closes keep-alive connections idle this long; default 2m.
	IdleTimeout Duration `json:"idleTimeout"`
	// MaxConnsPerIP caps concurrent connections from one client address;
	// default 1024.
	MaxConnsPerIP int `json:"maxConnsPerIP"`
	// MaxConns caps concurrent connections in all; default 65536.
	MaxConns int `json:"maxConns"`
	// MaxHeaderBytes caps a request's head (431 beyond); default 8 KiB.
	MaxHeaderBytes int `json:"maxHeaderBytes"`
}

// Config configures the origin. Its zero value plus API keys (or Insecure),
// token keys and a Store is a working origin.
type Config struct {
	// Listen is the API address; default "127.0.0.1:8081".
	Listen string `json:"listen"`
	// Admin is the address of /metrics, /healthz and /readyz; default
	// "127.0.0.1:9091", "-" for none.
	Admin string `json:"admin"`
	// Insecure allows starting without API keys: the API is then open to
	// anyone who reaches it (a warning is logged at every start).
	Insecure bool `json:"insecure"`
	// APIKeys are the accepted keys; without any the origin refuses to
	// start unless Insecure is set.
	APIKeys []APIKey `json:"apiKeys"`
	// TokenKeys maps key id (0-255, as text) to a base64 secret of at least
	// 32 bytes; the same keyring as the edges. Empty: a random key is
	// generated (development only).
	TokenKeys map[string]string `json:"tokenKeys"`
	// ActiveKey is the id of the key that signs; default the lowest id.
	ActiveKey *uint8 `json:"activeKey"`
	// SharedSecret (base64) derives shared-session ids; empty: random
	// (development only).
	SharedSecret string `json:"sharedSecret"`
	// Timeouts per kind.
	Timeouts Timeouts `json:"timeouts"`
	// Limits on context values; zero fields mean the defaults of
	// docs/wire.md.
	Limits wire.Limits `json:"limits"`
	// MaxBodyBytes caps request bodies (413 beyond); default 256 KiB.
	MaxBodyBytes int `json:"maxBodyBytes"`
	// HTTP bounds connections and their timeouts.
	HTTP HTTPConfig `json:"http"`
	// Webhook configures session events.
	Webhook Webhook `json:"webhook"`
	// CustomerSessions limits the sessions of one customer.
	CustomerSessions CustomerSessions `json:"customerSessions"`
	// SweepInterval is how often the expiry index is swept; default 1s.
	SweepInterval Duration `json:"sweepInterval"`
	// ShutdownTimeout bounds graceful shutdown; default 10s.
	ShutdownTimeout Duration `json:"shutdownTimeout"`

	// Store holds the state; required (the command opens it from its
	// storage settings).
	Store store.Store `json:"-"`
	// Logger receives logs; default slog.Default().
	Logger *slog.Logger `json:"-"`
	// Now is the clock; default time.Now. Tests move it.
	Now func() time.Time `json:"-"`
}

// Default addresses.
const (
	DefaultListen = "127.0.0.1:8081"
	DefaultAdmin  = "127.0.0.1:9091"
)

// TombstoneTTL is how long a store must keep the tombstone of a session
// whose hard deadline does not bound its tokens (store.DueAt) after its
// end: the longest a token the origin or an edge issues can stay valid, at
// least 24 h. That is the longest of the shared sessions' token lifetime and
// every kind's timeouts (a token re-issued at the edge lives up to its hard
// deadline). A timeout of "none" puts no bound on tokens and is left out:
// with it, tokens may outlive tombstones.
//
// Sessions with a lifetime of their own count too: the kinds' maxima
// (maxIdle, maxHard) are in the set.
func (c *Config) TombstoneTTL() time.Duration {
	ttl := 24 * time.Hour
	ds := []Duration{c.Timeouts.Shared.TokenLifetime}
	for _, k := range c.kindTimeouts() {
		ds = append(ds, k.Idle, k.Hard, k.MaxIdle, k.MaxHard)
	}
	for _, d := range ds {
		if !d.IsNone() && d.Std() > ttl {
			ttl = d.Std()
		}
	}
	return ttl
}

// kindTimeouts returns the timeouts of every kind with the defaults
// filled in, by wire.Kind.
func (c *Config) kindTimeouts() [4]KindTimeouts {
	var tm [4]KindTimeouts
	t := c.Timeouts
	tm[wire.KindAnonymous] = KindTimeouts{t.Anonymous.Idle.Or(Duration(time.Hour)), t.Anonymous.Hard.Or(Duration(24 * time.Hour)),
		t.Anonymous.MaxIdle, t.Anonymous.MaxHard}
	tm[wire.KindCustomer] = KindTimeouts{t.Customer.Idle.Or(Duration(30 * time.Minute)), t.Customer.Hard.Or(Duration(6 * time.Hour)),
		t.Customer.MaxIdle, t.Customer.MaxHard}
	tm[wire.KindShared] = KindTimeouts{t.Shared.Idle.Or(None), t.Shared.Hard.Or(None), t.Shared.MaxIdle, t.Shared.MaxHard}
	for k := wire.KindAnonymous; k <= wire.KindShared; k++ {
		tm[k].MaxIdle = tm[k].MaxIdle.Or(times4(tm[k].Idle))
		tm[k].MaxHard = tm[k].MaxHard.Or(times4(tm[k].Hard))
	}
	return tm
}

// times4 is the default maximum of a timeout: four times it, or none.
func times4(d Duration) Duration {
	if d.IsNone() || d > math.MaxInt64/4 {
		return None
	}
	return 4 * d
}

// LoadConfigFile reads a JSON configuration file into v (a *Config, or a
// struct that embeds one) strictly, see DecodeConfig.
func LoadConfigFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read config: %w", err)
	}
	if err := DecodeConfig(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func decodeSecret(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("secret is not base64")
}

func (c *Config) keyring() (*wire.Keyring, bool, error) {
	if len(c.TokenKeys) == 0 {
		secret := make([]byte, 32)
		randRead(secret)
		kr, err := wire.NewKeyring(0, map[uint8][]byte{0: secret})
		return kr, true, err
	}
	keys := map[uint8][]byte{}
	active := -1
	for ids, sec := range c.TokenKeys {
		id, err := strconv.ParseUint(ids, 10, 8)
		if err != nil {
			return nil, false, fmt.Errorf("config: tokenKeys.%s: key id is not 0-255", ids)
		}
		b, err := decodeSecret(sec)
		if err != nil {
			return nil, false, fmt.Errorf("config: tokenKeys.%s: %w", ids, err)
		}
		keys[uint8(id)] = b
		if active < 0 || int(id) < active {
			active = int(id)
		}
	}
	if c.ActiveKey != nil {
		active = int(*c.ActiveKey)
	}
	kr, err := wire.NewKeyring(uint8(active), keys)
	if err != nil {
		return nil, false, fmt.Errorf("config: tokenKeys: %w", err)
	}
	return kr, false, nil
}

// configError names the field of a configuration that is wrong.
func configError(path, msg string) error {
	if path == "" {
		path = "(document)"
	}
	return fmt.Errorf("config: %s: %s", path, msg)
}

// joinPath appends a member name to a field path.
func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// trimErr drops the "json: " prefixes of encoding/json's messages.
func trimErr(err error) string { return strings.TrimPrefix(err.Error(), "json: ") }
