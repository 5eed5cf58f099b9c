package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Duration is a time.Duration that reads and writes as text ("30m", "24h")
// and can say "none": the zero Duration means "the default", None means
// "no timeout".
type Duration time.Duration

// None is the Duration that means "no timeout".
const None Duration = -1

// UnmarshalJSON reads "none", a Go duration string, or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err := json.Unmarshal(b, &secs); err != nil {
			return fmt.Errorf("duration must be a string such as \"30m\" or \"none\": %s", b)
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	return d.Set(s)
}

// MarshalJSON writes the text form.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// Set parses "none" or a Go duration string; it makes Duration a flag.Value.
func (d *Duration) Set(s string) error {
	if s == "none" {
		*d = None
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v <= 0 {
		return fmt.Errorf("duration %q must be positive (use \"none\" for no timeout)", s)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) String() string {
	if d == None {
		return "none"
	}
	return time.Duration(d).String()
}

func (d Duration) or(def Duration) Duration {
	if d == 0 {
		return def
	}
	return d
}

// deadline returns now+d in Unix ms (now in Unix ms), or 0 for None.
func (d Duration) deadline(now int64) int64 {
	if d == None || d == 0 {
		return 0
	}
	return now + time.Duration(d).Milliseconds()
}

// KindTimeouts are the idle and hard timeouts of one session kind.
type KindTimeouts struct {
	Idle Duration `json:"idle"`
	Hard Duration `json:"hard"`
}

// Timeouts holds the timeouts per kind (DESIGN.md §4).
type Timeouts struct {
	// Anonymous defaults to idle 60m, hard 24h.
	Anonymous KindTimeouts `json:"anonymous"`
	// Customer defaults to idle 30m, hard 6h.
	Customer KindTimeouts `json:"customer"`
	// Shared defaults to none and none.
	Shared KindTimeouts `json:"shared"`
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
	// Scopes: sessions:read, sessions:write, sessions:admin, edge:sync.
	Scopes []string `json:"scopes"`
}

// Webhook is where session start and end events go.
type Webhook struct {
	// URL receives POSTs; empty disables webhooks (and the outbox).
	URL string `json:"url"`
	// Secret signs bodies with HMAC-SHA256.
	Secret string `json:"secret"`
	// MaxBackoff caps the retry delay; default 5m.
	MaxBackoff Duration `json:"maxBackoff"`
	// Timeout bounds one delivery attempt; default 10s.
	Timeout Duration `json:"timeout"`
}

// Config configures the origin. Its zero value (plus token keys for
// production) is a working development origin.
type Config struct {
	// Listen is the address to serve on; default ":8081".
	Listen string `json:"listen"`
	// DataDir is the embedded store's directory; default "./data".
	DataDir string `json:"dataDir"`
	// Redis, when it lists URLs, keeps the state in Redis or Redis Cluster
	// instead of the embedded store, so several origin nodes can share it
	// (docs/redis.md).
	Redis RedisConfig `json:"redis"`
	// Store, when set, is used instead of opening the embedded store.
	Store store.Store `json:"-"`
	// APIKeys are the accepted keys; none means no authentication
	// (development only; a warning is logged).
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
	// Limits on context values; zero fields mean DESIGN.md §4 defaults.
	Limits wire.Limits `json:"limits"`
	// MaxBodyBytes caps request bodies (413 beyond); default 256 KiB.
	MaxBodyBytes int `json:"maxBodyBytes"`
	// Webhook configures session start/end events.
	Webhook Webhook `json:"webhook"`
	// SweepInterval is how often the expiry index is swept; default 1s.
	SweepInterval Duration `json:"sweepInterval"`
	// Retention is the number of change-log entries kept; default 1,000,000.
	Retention uint64 `json:"retention"`
	// CacheBytes bounds the session cache; default 256 MiB.
	CacheBytes int64 `json:"cacheBytes"`
	// ShutdownTimeout bounds graceful shutdown; default 10s.
	ShutdownTimeout Duration `json:"shutdownTimeout"`
	// Logger receives logs; default slog.Default().
	Logger *slog.Logger `json:"-"`
	// Now is the clock; default time.Now. Tests move it.
	Now func() time.Time `json:"-"`
}

// LoadConfigFile reads a JSON configuration file into cfg.
func LoadConfigFile(path string, cfg *Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read config: %w", err)
	}
	if err := json.Unmarshal(b, cfg); err != nil {
		return fmt.Errorf("cannot parse config %s: %w", path, err)
	}
	return nil
}

func decodeSecret(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("secret is not base64")
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
			return nil, false, fmt.Errorf("token key id %q is not 0-255", ids)
		}
		b, err := decodeSecret(sec)
		if err != nil {
			return nil, false, fmt.Errorf("token key %s: %w", ids, err)
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
	return kr, false, err
}

// RedisConfig selects the Redis backend; see redis.Config for the defaults.
type RedisConfig struct {
	// URLs are redis:// or rediss:// URLs; several are seeds of one cluster.
	URLs []string `json:"urls"`
	// Username and Password override those of the URLs.
	Username string `json:"username"`
	Password string `json:"password"`
	// Prefix starts every key; default "se".
	Prefix string `json:"prefix"`
	// Shards spreads sessions and the change feed; default 16. Choose once.
	Shards int `json:"shards"`
	// FeedLength is about how many deltas each shard keeps; default 100000.
	FeedLength int `json:"feedLength"`
	// CacheTTL bounds how stale this node's read cache may be after a missed
	// notification; default 2s.
	CacheTTL Duration `json:"cacheTTL"`
}
