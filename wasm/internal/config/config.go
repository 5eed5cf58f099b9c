// Package config parses and validates the filter's plugin configuration, the
// JSON document the proxy hands over in proxy_on_configure. docs/filter.md
// documents every field with its default and gives Envoy, Istio and nginx
// examples.
//
// The JSON is read with wire.ParseValueJSON, the reflection-free parser the
// guest already links for self-service bodies: encoding/json would add a
// reflection-heavy dependency that TinyGo builds poorly and that only this
// one call would use. Unknown keys are errors, so a typo is caught at load
// time instead of silently falling back to a default.
package config

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// IdleAction is what happens to a session whose idle deadline passed.
type IdleAction uint8

// The idle actions of DESIGN.md §4.
const (
	IdleNone       IdleAction = 0 // nothing: the session has no idle timeout
	IdleEnd        IdleAction = 1 // the session ends; the client gets a new anonymous one
	IdleSoftLogout IdleAction = 2 // privacy cleared, kind anonymous, same id, cart and custom kept
)

// String returns the action's configuration name.
func (a IdleAction) String() string {
	switch a {
	case IdleEnd:
		return "end"
	case IdleSoftLogout:
		return "softLogout"
	}
	return "none"
}

// KindPolicy holds the timeouts of one session kind. Zero means none.
type KindPolicy struct {
	Idle   time.Duration // idle (soft) timeout; 0 = none
	Hard   time.Duration // absolute timeout; 0 = none
	OnIdle IdleAction
}

// Cookie holds the session cookie's name and attributes.
type Cookie struct {
	Name     string // default "__Host-sid"
	Path     string // default "/"
	Domain   string // default none (required for the __Host- prefix)
	HTTPOnly bool   // default true
	Secure   bool   // default true
	SameSite string // "Lax" (default), "Strict", "None" or "" (attribute left out)
}

// Site holds the defaults of a new session for one host.
type Site struct {
	SiteCode, Currency, TargetLocation, Locale string
}

// Origin says how the filter reaches the origin service.
type Origin struct {
	Cluster   string // proxy cluster (Envoy), upstream (nginx); default "origin"
	Authority string // :authority of calls; default the cluster name
	APIKey    string // bearer token with scopes edge:sync and sessions:write; default none
	TimeoutMs uint32 // per call; default 2000
}

// Config is the validated plugin configuration.
type Config struct {
	Cookie  Cookie
	Keyring *wire.Keyring
	Kinds   [4]KindPolicy // indexed by wire.Kind

	Sites       map[string]*Site // by lower-case host without port
	DefaultSite Site             // the "*" entry; default empty

	Origin Origin

	SyncInterval time.Duration // default 1s; the tick runs 4 times per interval
	SyncLimit    uint32        // deltas per poll; default 1000

	CacheEntries int // sessions in the context cache; default 10000
	CacheBytes   int // encoded bytes in the context cache; default 32 MiB
	TokenEntries int // verified tokens cached; default 10000

	FailClosed        bool   // origin unreachable → 503 instead of degraded; default false
	SelfServicePrefix string // default "/.session/"
	Forward           uint8  // namespaces forwarded (bit 1<<ns); default all
	TokenRequest      string // request header carrying the token for cookie-less clients; default none
	TokenResponse     string // response header a new token comes back in; default TokenRequest

	Limits wire.Limits // context limits; defaults of DESIGN §4

	// SingleHeaderWrites edits request headers one call at a time
	// (proxy_remove/add_header_map_value), the default ("single"); false
	// ("pairs") replaces the map with one proxy_set_header_map_pairs.
	SingleHeaderWrites bool
}

// Error names the offending field of a configuration.
type Error struct {
	Field  string
	Reason string
}

func (e *Error) Error() string { return "config: " + e.Field + ": " + e.Reason }

func bad(field, reason string) error { return &Error{Field: field, Reason: reason} }

// Default returns the defaults of every field; it has no keyring, so it is
// not a usable configuration on its own.
func Default() Config {
	c := Config{
		Cookie: Cookie{Name: "__Host-sid", Path: "/", HTTPOnly: true, Secure: true, SameSite: "Lax"},
		Sites:  map[string]*Site{},
		Origin: Origin{Cluster: "origin", TimeoutMs: 2000},

		SyncInterval: time.Second,
		SyncLimit:    1000,
		CacheEntries: 10000,
		CacheBytes:   32 << 20,
		TokenEntries: 10000,

		SelfServicePrefix: "/.session/",
		Forward:           wire.AllNamespaces,
		Limits:            wire.DefaultLimits,

		SingleHeaderWrites: true,
	}
	c.Kinds[wire.KindAnonymous] = KindPolicy{Idle: 60 * time.Minute, Hard: 24 * time.Hour, OnIdle: IdleEnd}
	c.Kinds[wire.KindCustomer] = KindPolicy{Idle: 30 * time.Minute, Hard: 6 * time.Hour, OnIdle: IdleSoftLogout}
	c.Kinds[wire.KindShared] = KindPolicy{}
	return c
}

// Parse reads a JSON plugin configuration. Errors are *Error and name the
// field, as "cookie.sameSite" or "keys.2".
func Parse(b []byte) (*Config, error) {
	c := Default()
	root, err := wire.ParseValueJSON(b)
	if err != nil {
		return nil, bad("(document)", err.Error())
	}
	if root.Type != wire.TypeMap {
		return nil, bad("(document)", "must be a JSON object")
	}
	var keys map[uint8][]byte
	active := -1
	for _, a := range root.Map {
		v := a.Value
		switch a.Key {
		case "cookie":
			err = c.parseCookie(v)
		case "keys":
			keys, err = parseKeys(v)
		case "activeKey":
			var n int64
			n, err = intIn("activeKey", v, 0, 255)
			active = int(n)
		case "sessions":
			err = c.parseSessions(v)
		case "sites":
			err = c.parseSites(v)
		case "origin":
			err = c.parseOrigin(v)
		case "sync":
			err = c.parseSync(v)
		case "cache":
			err = c.parseCache(v)
		case "failMode":
			var s string
			if s, err = text("failMode", v); err == nil {
				switch s {
				case "open":
					c.FailClosed = false
				case "closed":
					c.FailClosed = true
				default:
					err = bad("failMode", `must be "open" or "closed"`)
				}
			}
		case "selfServicePrefix":
			var s string
			if s, err = text("selfServicePrefix", v); err == nil {
				if !strings.HasPrefix(s, "/") || !strings.HasSuffix(s, "/") || len(s) < 2 {
					err = bad("selfServicePrefix", `must start and end with "/", as "/.session/"`)
				}
				c.SelfServicePrefix = s
			}
		case "forwardNamespaces":
			err = c.parseForward(v)
		case "tokenHeader":
			err = c.parseTokenHeader(v)
		case "limits":
			err = c.parseLimits(v)
		case "headerWrites":
			var s string
			if s, err = text("headerWrites", v); err == nil {
				switch s {
				case "pairs":
					c.SingleHeaderWrites = false
				case "single":
					c.SingleHeaderWrites = true
				default:
					err = bad("headerWrites", `must be "pairs" or "single"`)
				}
			}
		default:
			err = bad(a.Key, "unknown field")
		}
		if err != nil {
			return nil, err
		}
	}
	if len(keys) == 0 {
		return nil, bad("keys", "at least one signing key is required")
	}
	if active < 0 {
		if len(keys) != 1 {
			return nil, bad("activeKey", "required when keys holds more than one key")
		}
		for id := range keys {
			active = int(id)
		}
	}
	if _, ok := keys[uint8(active)]; !ok {
		return nil, bad("activeKey", "names no key of keys")
	}
	if c.Keyring, err = wire.NewKeyring(uint8(active), keys); err != nil {
		return nil, bad("keys", err.Error())
	}
	if c.Origin.Authority == "" {
		c.Origin.Authority = c.Origin.Cluster
	}
	if c.TokenResponse == "" {
		c.TokenResponse = c.TokenRequest
	}
	if strings.HasPrefix(c.Cookie.Name, "__Host-") && (c.Cookie.Domain != "" || c.Cookie.Path != "/" || !c.Cookie.Secure) {
		return nil, bad("cookie.name", "a __Host- cookie needs Secure, Path=/ and no Domain")
	}
	if c.Cookie.SameSite == "None" && !c.Cookie.Secure {
		return nil, bad("cookie.sameSite", "SameSite=None needs Secure")
	}
	return &c, nil
}

// Site returns the site defaults for host (any case, port ignored).
func (c *Config) Site(host []byte) *Site {
	if i := lastColon(host); i >= 0 {
		host = host[:i]
	}
	if len(c.Sites) > 0 {
		var buf [128]byte
		if len(host) <= len(buf) {
			lower := buf[:len(host)]
			for i, ch := range host {
				if 'A' <= ch && ch <= 'Z' {
					ch += 'a' - 'A'
				}
				lower[i] = ch
			}
			if s, ok := c.Sites[string(lower)]; ok {
				return s
			}
		}
	}
	return &c.DefaultSite
}

// lastColon finds a port separator, skipping the colons of an IPv6 literal.
func lastColon(h []byte) int {
	for i := len(h) - 1; i >= 0; i-- {
		switch h[i] {
		case ':':
			return i
		case ']':
			return -1
		}
	}
	return -1
}

func (c *Config) parseCookie(v wire.Value) error {
	return object("cookie", v, func(k string, v wire.Value) (err error) {
		f := "cookie." + k
		switch k {
		case "name":
			if c.Cookie.Name, err = text(f, v); err == nil && !validToken(c.Cookie.Name) {
				err = bad(f, "is not a valid cookie name")
			}
		case "path":
			if c.Cookie.Path, err = text(f, v); err == nil && !strings.HasPrefix(c.Cookie.Path, "/") {
				err = bad(f, `must start with "/"`)
			}
		case "domain":
			c.Cookie.Domain, err = text(f, v)
		case "httpOnly":
			c.Cookie.HTTPOnly, err = boolean(f, v)
		case "secure":
			c.Cookie.Secure, err = boolean(f, v)
		case "sameSite":
			if c.Cookie.SameSite, err = text(f, v); err == nil {
				switch c.Cookie.SameSite {
				case "Lax", "Strict", "None", "":
				default:
					err = bad(f, `must be "Lax", "Strict", "None" or ""`)
				}
			}
		default:
			err = bad(f, "unknown field")
		}
		if err == nil && strings.ContainsAny(c.Cookie.Path+c.Cookie.Domain, ";\r\n\x00 ") {
			err = bad(f, "holds a character not allowed in a cookie attribute")
		}
		return err
	})
}

func parseKeys(v wire.Value) (map[uint8][]byte, error) {
	keys := map[uint8][]byte{}
	err := object("keys", v, func(k string, v wire.Value) error {
		f := "keys." + k
		id, err := strconv.ParseUint(k, 10, 8)
		if err != nil {
			return bad(f, "key id must be a number from 0 to 255")
		}
		s, err := text(f, v)
		if err != nil {
			return err
		}
		secret, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			if secret, err = base64.RawURLEncoding.DecodeString(s); err != nil {
				return bad(f, "secret is not base64")
			}
		}
		if len(secret) < wire.MinKeyLen {
			return bad(f, "secret is "+strconv.Itoa(len(secret))+" bytes, want at least "+strconv.Itoa(wire.MinKeyLen))
		}
		keys[uint8(id)] = secret
		return nil
	})
	return keys, err
}

func (c *Config) parseSessions(v wire.Value) error {
	return object("sessions", v, func(k string, v wire.Value) error {
		kind, ok := wire.ParseKind(k)
		if !ok {
			return bad("sessions."+k, `unknown kind; use "anonymous", "customer" or "shared"`)
		}
		p := &c.Kinds[kind]
		return object("sessions."+k, v, func(name string, v wire.Value) (err error) {
			f := "sessions." + k + "." + name
			switch name {
			case "idle":
				p.Idle, err = duration(f, v)
			case "hard":
				p.Hard, err = duration(f, v)
			case "onIdle":
				var s string
				if s, err = text(f, v); err == nil {
					switch s {
					case "none":
						p.OnIdle = IdleNone
					case "end":
						p.OnIdle = IdleEnd
					case "softLogout":
						if kind != wire.KindCustomer {
							return bad(f, "softLogout applies only to customer sessions")
						}
						p.OnIdle = IdleSoftLogout
					default:
						err = bad(f, `must be "none", "end" or "softLogout"`)
					}
				}
			default:
				err = bad(f, "unknown field")
			}
			return err
		})
	})
}

func (c *Config) parseSites(v wire.Value) error {
	return object("sites", v, func(host string, v wire.Value) error {
		var s Site
		err := object("sites."+host, v, func(k string, v wire.Value) (err error) {
			f := "sites." + host + "." + k
			switch k {
			case "siteCode":
				s.SiteCode, err = text(f, v)
			case "currency":
				s.Currency, err = text(f, v)
			case "targetLocation":
				s.TargetLocation, err = text(f, v)
			case "locale":
				s.Locale, err = text(f, v)
			default:
				err = bad(f, "unknown field")
			}
			if err == nil && !headerSafe(v.Text) {
				err = bad(f, "holds a control character")
			}
			return err
		})
		if err != nil {
			return err
		}
		if host == "*" {
			c.DefaultSite = s
		} else {
			c.Sites[lowerASCII(host)] = &s
		}
		return nil
	})
}

func (c *Config) parseOrigin(v wire.Value) error {
	return object("origin", v, func(k string, v wire.Value) (err error) {
		f := "origin." + k
		switch k {
		case "cluster":
			if c.Origin.Cluster, err = text(f, v); err == nil && c.Origin.Cluster == "" {
				err = bad(f, "is empty")
			}
		case "authority":
			c.Origin.Authority, err = text(f, v)
		case "apiKey":
			c.Origin.APIKey, err = text(f, v)
		case "timeoutMs":
			var n int64
			n, err = intIn(f, v, 1, 60000)
			c.Origin.TimeoutMs = uint32(n)
		default:
			err = bad(f, "unknown field")
		}
		if err == nil && !headerSafe(v.Text) {
			err = bad(f, "holds a control character")
		}
		return err
	})
}

func (c *Config) parseSync(v wire.Value) error {
	return object("sync", v, func(k string, v wire.Value) (err error) {
		f := "sync." + k
		switch k {
		case "interval":
			c.SyncInterval, err = duration(f, v)
			if err == nil && (c.SyncInterval < 100*time.Millisecond || c.SyncInterval > time.Hour) {
				err = bad(f, "must be between 100ms and 1h")
			}
		case "limit":
			var n int64
			n, err = intIn(f, v, 1, 100000)
			c.SyncLimit = uint32(n)
		default:
			err = bad(f, "unknown field")
		}
		return err
	})
}

func (c *Config) parseCache(v wire.Value) error {
	return object("cache", v, func(k string, v wire.Value) (err error) {
		f := "cache." + k
		var n int64
		switch k {
		case "entries":
			n, err = intIn(f, v, 1, 10_000_000)
			c.CacheEntries = int(n)
		case "bytes":
			n, err = intIn(f, v, 1<<10, 1<<32)
			c.CacheBytes = int(n)
		case "tokens":
			n, err = intIn(f, v, 1, 10_000_000)
			c.TokenEntries = int(n)
		default:
			err = bad(f, "unknown field")
		}
		return err
	})
}

func (c *Config) parseForward(v wire.Value) error {
	if v.Type != wire.TypeList {
		return bad("forwardNamespaces", `must be a list of namespaces, as ["custom", "public"]`)
	}
	c.Forward = 0
	for i, e := range v.List {
		f := "forwardNamespaces[" + strconv.Itoa(i) + "]"
		s, err := text(f, e)
		if err != nil {
			return err
		}
		ns, ok := wire.ParseNamespace(s)
		if !ok {
			return bad(f, `unknown namespace; use "custom", "privacy" or "public"`)
		}
		c.Forward |= 1 << ns
	}
	return nil
}

func (c *Config) parseTokenHeader(v wire.Value) error {
	return object("tokenHeader", v, func(k string, v wire.Value) (err error) {
		f := "tokenHeader." + k
		var s string
		if s, err = text(f, v); err != nil {
			return err
		}
		s = lowerASCII(s)
		if !validToken(s) || strings.HasPrefix(s, ":") {
			return bad(f, "is not a valid header name")
		}
		if strings.HasPrefix(s, "x-session-") || s == "cookie" || s == "set-cookie" {
			return bad(f, "must not be cookie, set-cookie or an x-session-* header (those are stripped)")
		}
		switch k {
		case "request":
			c.TokenRequest = s
		case "response":
			c.TokenResponse = s
		default:
			err = bad(f, "unknown field")
		}
		return err
	})
}

func (c *Config) parseLimits(v wire.Value) error {
	var l wire.Limits
	err := object("limits", v, func(k string, v wire.Value) (err error) {
		f := "limits." + k
		var n int64
		n, err = intIn(f, v, 1, 1<<20)
		switch k {
		case "maxTextLen":
			l.MaxTextLen = int(n)
		case "maxKeyLen":
			l.MaxKeyLen = int(n)
		case "maxAttrs":
			l.MaxAttrs = int(n)
		case "maxSessionBytes":
			l.MaxSessionBytes = int(n)
		case "maxDepth":
			l.MaxDepth = int(n)
		default:
			err = bad(f, "unknown field")
		}
		return err
	})
	c.Limits = l.WithDefaults()
	return err
}

func object(field string, v wire.Value, fn func(k string, v wire.Value) error) error {
	if v.Type != wire.TypeMap {
		return bad(field, "must be a JSON object")
	}
	for _, a := range v.Map {
		if err := fn(a.Key, a.Value); err != nil {
			return err
		}
	}
	return nil
}

func text(field string, v wire.Value) (string, error) {
	if v.Type != wire.TypeText {
		return "", bad(field, "must be a string")
	}
	return v.Text, nil
}

func boolean(field string, v wire.Value) (bool, error) {
	if v.Type != wire.TypeBool {
		return false, bad(field, "must be true or false")
	}
	return v.BoolValue(), nil
}

func intIn(field string, v wire.Value, min, max int64) (int64, error) {
	if v.Type != wire.TypeInt {
		return 0, bad(field, "must be an integer")
	}
	if v.Int < min || v.Int > max {
		return 0, bad(field, "must be between "+strconv.FormatInt(min, 10)+" and "+strconv.FormatInt(max, 10))
	}
	return v.Int, nil
}

// duration reads "30m", "24h", "90s", "none" (or "0"), or an integer number
// of seconds.
func duration(field string, v wire.Value) (time.Duration, error) {
	switch v.Type {
	case wire.TypeInt:
		if v.Int < 0 || v.Int > 10*365*86400 {
			return 0, bad(field, "seconds out of range")
		}
		return time.Duration(v.Int) * time.Second, nil
	case wire.TypeText:
		if v.Text == "none" || v.Text == "0" {
			return 0, nil
		}
		d, err := time.ParseDuration(v.Text)
		if err != nil || d < 0 {
			return 0, bad(field, `must be a duration as "30m", "24h", or "none"`)
		}
		if d%time.Second != 0 && d > time.Second {
			d = d.Truncate(time.Second)
		}
		return d, nil
	}
	return 0, bad(field, `must be a duration as "30m", "24h", "none", or a number of seconds`)
}

// validToken reports whether s is an RFC 7230 token (header or cookie name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// lowerASCII lower-cases ASCII letters only: host and header names are
// ASCII, and strings.ToLower would link the Unicode case tables into the
// module for nothing.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
