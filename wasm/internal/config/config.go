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
	"strconv"
	"strings"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Duration is a length of time in nanoseconds, as wire.Duration reads it
// (the guest links no time package, so the configuration does not use
// time.Duration).
type Duration = wire.Duration

// Units of Duration.
const (
	Millisecond Duration = 1e6
	Second               = 1000 * Millisecond
	Minute               = 60 * Second
	Hour                 = 60 * Minute
)

// IdleAction is what happens to a session whose idle deadline passed.
type IdleAction uint8

// The idle actions of a session kind.
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
	Idle   Duration // idle (soft) timeout; 0 = none
	Hard   Duration // absolute timeout; 0 = none
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

// Site holds the defaults of a new session for one host, and the values a
// shopper may choose for the settable fields (siteCodes, currencies,
// targetLocations, locales). A field without a list accepts only its
// default; the default is always accepted.
type Site struct {
	SiteCode, Currency, TargetLocation, Locale string

	SiteCodes, Currencies, TargetLocations, Locales []string
}

// Default returns the site's default of well-known field f ("" for fields
// without one).
func (s *Site) Default(f wire.Field) string {
	switch f {
	case wire.FieldSiteCode:
		return s.SiteCode
	case wire.FieldCurrency:
		return s.Currency
	case wire.FieldTargetLocation:
		return s.TargetLocation
	case wire.FieldLocale:
		return s.Locale
	}
	return ""
}

// Allows reports whether a shopper may set text field f to v on this site:
// v is the site's default or in the field's list.
func (s *Site) Allows(f wire.Field, v string) bool {
	if v != "" && v == s.Default(f) {
		return true
	}
	var list []string
	switch f {
	case wire.FieldSiteCode:
		list = s.SiteCodes
	case wire.FieldCurrency:
		list = s.Currencies
	case wire.FieldTargetLocation:
		list = s.TargetLocations
	case wire.FieldLocale:
		list = s.Locales
	}
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// CaptureName is one name of the capture configuration: a query parameter
// or a cookie (or both) whose value is written into the public namespace
// under this name.
type CaptureName struct {
	Name          string
	Query, Cookie bool
	Tracking      bool // not captured when the request carries the consent cookie
	Segment       bool // its value enters the segment
}

// Capture holds the edge-derived attributes (capture).
type Capture struct {
	Names       []CaptureName
	Segment     []int // indexes into Names of the segment names, in configuration order
	MaxValueLen int   // bytes of a captured value; default 100
	MaxCount    int   // values captured per request; default 8
	Query       bool  // some name is a query parameter
	Cookies     bool  // some name is a cookie
}

// Device says what the filter records of the client (device): the user
// agent, the site code, and the client address cut to a prefix of AddrV4
// or AddrV6 bits (0: no address of that family).
type Device struct {
	AddrV4, AddrV6 int // default 24 and 48
}

// maxCaptureNames bounds each list of capture: every query parameter and
// cookie of a request is compared with them.
const maxCaptureNames = 32

// DefaultSelfServiceFields are the well-known fields a shopper may set
// through self-service by default.
const DefaultSelfServiceFields = 1<<wire.FieldSiteCode | 1<<wire.FieldCurrency | 1<<wire.FieldTargetLocation | 1<<wire.FieldTrackingAllowed

// Origin says how the filter reaches the origin service.
type Origin struct {
	Cluster   string // proxy cluster (Envoy), upstream (nginx); default "origin"
	Authority string // :authority of calls; default the cluster name
	APIKey    string // bearer token with scopes edge:sync and edge:selfservice; default none
	TimeoutMs uint32 // per call (origin.timeout); default 2000

	// The circuit breaker (origin.breaker): after BreakerFailures
	// consecutive failed calls, calls on the request path are not made for
	// BreakerCoolDown; then one call probes the origin.
	BreakerFailures int      // default 5
	BreakerCoolDown Duration // default 5s
}

// Forward modes (forward.mode).
const (
	ForwardFields  = "fields"  // per-field headers, x-session-context, status and assertion
	ForwardCompact = "compact" // x-session-context, status and assertion only
)

// Config is the validated plugin configuration.
type Config struct {
	Cookie  Cookie
	Keyring *wire.Keyring
	Kinds   [4]KindPolicy // indexed by wire.Kind

	Sites       map[string]*Site // by lower-case host without port
	DefaultSite Site             // the "*" entry; default empty

	Origin Origin

	SyncInterval Duration // default 1s; the tick runs 4 times per interval
	SyncLimit    uint32   // deltas per poll; default 1000
	TouchBuffer  int      // sessions whose activity waits for a touch report (sync.touchBuffer); default 100000

	CacheEntries int      // sessions in the context cache; default 10000
	CacheBytes   int      // encoded bytes in the context cache; default 32 MiB
	TokenEntries int      // verified tokens cached; default 10000
	MaxStale     Duration // cache.maxStale: how long cached sessions are trusted without a working feed; 0 = forever; default 1m

	FailClosed         bool                // origin unreachable → 503 instead of degraded; default false
	SelfServicePrefix  string              // default "/.session/"
	SelfServiceFields  uint8               // well-known fields a shopper may set (bit 1<<field); default DefaultSelfServiceFields
	SelfServiceOrigins []string            // origins besides the request's own allowed to write through self-service (lower case)
	SkipMint           []string            // path prefixes where no session is minted (mint.skipPaths)
	Forward            uint8               // namespaces forwarded (bit 1<<ns); default custom and public
	Compact            bool                // forward.mode "compact"
	Assertion          *wire.AssertionKeys // signs x-session-assertion; nil: no assertion
	TokenRequest       string              // request header carrying the token for cookie-less clients; default none
	TokenResponse      string              // response header a new token comes back in; default TokenRequest

	// Derived names of the consistency hint: the cookie (cookie name + "v")
	// and, with token headers, the request and response headers (token
	// header + "-hint").
	HintCookie, HintRequest, HintResponse string

	Limits wire.Limits // context limits; default wire.DefaultLimits

	Capture       Capture // edge-derived attributes; default none
	Device        Device  // what is recorded of the client
	ConsentCookie string  // consent.cookie: a cookie whose presence turns tracking off; default none

	// SingleHeaderWrites edits request headers one call at a time
	// (proxy_remove/add_header_map_value, "single"); false ("pairs", the
	// default) replaces the map with one proxy_set_header_map_pairs.
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
		Origin: Origin{Cluster: "origin", TimeoutMs: 2000, BreakerFailures: 5, BreakerCoolDown: 5 * Second},

		SyncInterval: Second,
		SyncLimit:    1000,
		TouchBuffer:  100000,
		CacheEntries: 10000,
		CacheBytes:   32 << 20,
		TokenEntries: 10000,
		MaxStale:     Minute,

		SelfServicePrefix: "/.session/",
		SelfServiceFields: DefaultSelfServiceFields,
		Device:            Device{AddrV4: 24, AddrV6: 48},
		Forward:           1<<wire.NamespaceCustom | 1<<wire.NamespacePublic,
		Limits:            wire.DefaultLimits,

		SingleHeaderWrites: false,
	}
	c.Kinds[wire.KindAnonymous] = KindPolicy{Idle: 60 * Minute, Hard: 24 * Hour, OnIdle: IdleEnd}
	c.Kinds[wire.KindCustomer] = KindPolicy{Idle: 30 * Minute, Hard: 6 * Hour, OnIdle: IdleSoftLogout}
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
	maxStaleSet := false
	for _, a := range root.Map {
		v := a.Value
		switch a.Key {
		case "cookie":
			err = c.parseCookie(v)
		case "keys":
			keys, err = parseKeys("keys", v)
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
			maxStaleSet, err = c.parseCache(v)
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
		case "selfServiceOrigins":
			c.SelfServiceOrigins, err = parseOrigins(v)
		case "selfService":
			err = c.parseSelfService(v)
		case "capture":
			err = c.parseCapture(v)
		case "device":
			err = c.parseDevice(v)
		case "consent":
			err = c.parseConsent(v)
		case "mint":
			err = c.parseMint(v)
		case "forwardNamespaces":
			err = c.parseForwardNamespaces(v)
		case "forward":
			err = c.parseForward(v)
		case "assertion":
			err = c.parseAssertion(v)
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
	if active, err = activeKey("activeKey", keys, active); err != nil {
		return nil, err
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
	c.HintCookie = c.Cookie.Name + "v"
	if c.TokenRequest != "" {
		c.HintRequest, c.HintResponse = c.TokenRequest+"-hint", c.TokenResponse+"-hint"
	}
	if strings.HasPrefix(c.Cookie.Name, "__Host-") && (c.Cookie.Domain != "" || c.Cookie.Path != "/" || !c.Cookie.Secure) {
		return nil, bad("cookie.name", "a __Host- cookie needs Secure, Path=/ and no Domain")
	}
	if c.ConsentCookie != "" && (c.ConsentCookie == c.Cookie.Name || c.ConsentCookie == c.HintCookie) {
		return nil, bad("consent.cookie", "must not be the session or hint cookie")
	}
	for _, n := range c.Capture.Names {
		if n.Cookie && (n.Name == c.Cookie.Name || n.Name == c.HintCookie || n.Name == c.ConsentCookie) {
			return nil, bad("capture.cookies", n.Name+" is the session, hint or consent cookie")
		}
	}
	if c.Cookie.SameSite == "None" && !c.Cookie.Secure {
		return nil, bad("cookie.sameSite", "SameSite=None needs Secure")
	}
	if c.MaxStale > 0 && c.MaxStale < 3*c.SyncInterval {
		if maxStaleSet {
			return nil, bad("cache.maxStale", "must be at least three sync intervals ("+(3*c.SyncInterval).String()+"), or \"none\"")
		}
		c.MaxStale = 3 * c.SyncInterval // the default follows a long interval
	}
	return &c, nil
}

// activeKey checks the active key id of a key set: required with more than
// one key, else the only one.
func activeKey(field string, keys map[uint8][]byte, active int) (int, error) {
	if active < 0 {
		if len(keys) != 1 {
			return 0, bad(field, "required when keys holds more than one key")
		}
		for id := range keys {
			active = int(id)
		}
	}
	if _, ok := keys[uint8(active)]; !ok {
		return 0, bad(field, "names no key of keys")
	}
	return active, nil
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

func parseKeys(field string, v wire.Value) (map[uint8][]byte, error) {
	keys := map[uint8][]byte{}
	err := object(field, v, func(k string, v wire.Value) error {
		f := field + "." + k
		id, err := strconv.ParseUint(k, 10, 8)
		if err != nil {
			return bad(f, "key id must be a number from 0 to 255")
		}
		s, err := text(f, v)
		if err != nil {
			return err
		}
		secret, ok := wire.DecodeKeySecret(s)
		if !ok {
			return bad(f, "secret is not base64")
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
				err = kindTimeout(f, v, &p.Idle)
			case "hard":
				err = kindTimeout(f, v, &p.Hard)
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
			case "siteCodes":
				s.SiteCodes, err = textList(f, v, siteValue)
			case "currencies":
				s.Currencies, err = textList(f, v, siteValue)
			case "targetLocations":
				s.TargetLocations, err = textList(f, v, siteValue)
			case "locales":
				s.Locales, err = textList(f, v, siteValue)
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

// siteValue checks one entry of a site's allowed list.
func siteValue(f, s string) error {
	if s == "" || !headerSafe(s) || len(s) > 256 {
		return bad(f, "must be a non-empty value of at most 256 bytes without control characters")
	}
	return nil
}

func (c *Config) parseSelfService(v wire.Value) error {
	return object("selfService", v, func(k string, v wire.Value) (err error) {
		f := "selfService." + k
		switch k {
		case "fields":
			c.SelfServiceFields = 0
			_, err = textList(f, v, func(f, s string) error {
				fl, ok := wire.ParseField(s)
				if !ok || fl == wire.FieldCustomerID || fl == wire.FieldCartID {
					return bad(f, `must be "siteCode", "currency", "targetLocation", "locale" or "trackingAllowed"`)
				}
				c.SelfServiceFields |= 1 << fl
				return nil
			})
		default:
			err = bad(f, "unknown field")
		}
		return err
	})
}

func (c *Config) parseCapture(v wire.Value) error {
	cp := Capture{MaxValueLen: 100, MaxCount: 8}
	var tracking, segment []string
	index := func(name string) int {
		for i := range cp.Names {
			if cp.Names[i].Name == name {
				return i
			}
		}
		cp.Names = append(cp.Names, CaptureName{Name: name})
		return len(cp.Names) - 1
	}
	err := object("capture", v, func(k string, v wire.Value) (err error) {
		f := "capture." + k
		var names []string
		switch k {
		case "query", "cookies", "tracking", "segment":
			names, err = textList(f, v, func(f, s string) error {
				if wire.DefaultLimits.ValidateKey(f, s) != nil {
					return bad(f, "must be a name of 1 to 64 characters A-Z a-z 0-9 _ . -")
				}
				return nil
			})
			if err == nil && len(names) > maxCaptureNames {
				err = bad(f, "holds more than "+strconv.Itoa(maxCaptureNames)+" names")
			}
		case "maxValueLen":
			var n int64
			n, err = intIn(f, v, 1, int64(wire.DefaultLimits.MaxTextLen))
			cp.MaxValueLen = int(n)
		case "maxCount":
			var n int64
			n, err = intIn(f, v, 1, 64)
			cp.MaxCount = int(n)
		default:
			err = bad(f, "unknown field")
		}
		if err != nil {
			return err
		}
		switch k {
		case "query":
			for _, n := range names {
				cp.Names[index(n)].Query = true
				cp.Query = true
			}
		case "cookies":
			for _, n := range names {
				cp.Names[index(n)].Cookie = true
				cp.Cookies = true
			}
		case "tracking":
			tracking = names
		case "segment":
			segment = names
		}
		return nil
	})
	if err != nil {
		return err
	}
	find := func(f, name string) (int, error) {
		for i := range cp.Names {
			if cp.Names[i].Name == name {
				return i, nil
			}
		}
		return 0, bad(f, "names no query parameter or cookie of capture")
	}
	for i, n := range tracking {
		j, err := find("capture.tracking["+strconv.Itoa(i)+"]", n)
		if err != nil {
			return err
		}
		cp.Names[j].Tracking = true
	}
	for i, n := range segment {
		j, err := find("capture.segment["+strconv.Itoa(i)+"]", n)
		if err != nil {
			return err
		}
		if !cp.Names[j].Segment {
			cp.Names[j].Segment = true
			cp.Segment = append(cp.Segment, j)
		}
	}
	c.Capture = cp
	return nil
}

func (c *Config) parseDevice(v wire.Value) error {
	return object("device", v, func(k string, v wire.Value) (err error) {
		f := "device." + k
		switch k {
		case "addrPrefix":
			if v.Type == wire.TypeText {
				if v.Text != "none" {
					return bad(f, `must be "none" or an object as {"v4": 24, "v6": 48}`)
				}
				c.Device.AddrV4, c.Device.AddrV6 = 0, 0
				return nil
			}
			err = object(f, v, func(k string, v wire.Value) (err error) {
				var n int64
				switch k {
				case "v4":
					n, err = intIn(f+".v4", v, 0, 32)
					c.Device.AddrV4 = int(n)
				case "v6":
					n, err = intIn(f+".v6", v, 0, 128)
					c.Device.AddrV6 = int(n)
				default:
					err = bad(f+"."+k, "unknown field")
				}
				return err
			})
		default:
			err = bad(f, "unknown field")
		}
		return err
	})
}

func (c *Config) parseConsent(v wire.Value) error {
	return object("consent", v, func(k string, v wire.Value) (err error) {
		f := "consent." + k
		switch k {
		case "cookie":
			if c.ConsentCookie, err = text(f, v); err == nil && !validToken(c.ConsentCookie) {
				err = bad(f, "is not a valid cookie name")
			}
		default:
			err = bad(f, "unknown field")
		}
		return err
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
		case "timeout":
			var d Duration
			if d, err = durationIn(f, v, Millisecond, Minute); err == nil && d != 0 {
				c.Origin.TimeoutMs = uint32(d.Milliseconds())
			}
		case "breaker":
			err = object(f, v, func(k string, v wire.Value) (err error) {
				f := "origin.breaker." + k
				switch k {
				case "failures":
					var n int64
					n, err = intIn(f, v, 1, 1000)
					c.Origin.BreakerFailures = int(n)
				case "coolDown":
					var d Duration
					if d, err = durationIn(f, v, 100*Millisecond, Hour); err == nil && d != 0 {
						c.Origin.BreakerCoolDown = d
					}
				default:
					err = bad(f, "unknown field")
				}
				return err
			})
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
			var d Duration
			if d, err = durationIn(f, v, 100*Millisecond, Hour); err == nil && d != 0 {
				c.SyncInterval = d
			}
		case "limit":
			var n int64
			n, err = intIn(f, v, 1, 100000)
			c.SyncLimit = uint32(n)
		case "touchBuffer":
			var n int64
			n, err = intIn(f, v, 1000, 10_000_000)
			c.TouchBuffer = int(n)
		default:
			err = bad(f, "unknown field")
		}
		return err
	})
}

func (c *Config) parseCache(v wire.Value) (maxStaleSet bool, err error) {
	err = object("cache", v, func(k string, v wire.Value) (err error) {
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
		case "maxStale":
			var d Duration
			var none bool
			if d, none, err = duration(f, v, true); err == nil {
				switch {
				case none:
					c.MaxStale, maxStaleSet = 0, true
				case d != 0:
					c.MaxStale, maxStaleSet = d, true
				}
			}
		default:
			err = bad(f, "unknown field")
		}
		return err
	})
	return maxStaleSet, err
}

func (c *Config) parseMint(v wire.Value) error {
	return object("mint", v, func(k string, v wire.Value) (err error) {
		f := "mint." + k
		switch k {
		case "skipPaths":
			c.SkipMint, err = textList(f, v, func(f, s string) error {
				if !strings.HasPrefix(s, "/") {
					return bad(f, `must start with "/", as "/static/"`)
				}
				return nil
			})
		default:
			err = bad(f, "unknown field")
		}
		return err
	})
}

// parseOrigins reads selfServiceOrigins: "scheme://host[:port]" each, kept
// in lower case without a default port, as requests are compared.
func parseOrigins(v wire.Value) ([]string, error) {
	out, err := textList("selfServiceOrigins", v, func(f, s string) error {
		scheme, host, ok := strings.Cut(lowerASCII(s), "://")
		if !ok || (scheme != "https" && scheme != "http") || host == "" || strings.ContainsAny(host, "/?#@ ") || !headerSafe(host) {
			return bad(f, `must be an origin, as "https://admin.example.com"`)
		}
		return nil
	})
	for i, s := range out {
		out[i] = string(CanonicalOrigin(nil, []byte(lowerASCII(s))))
	}
	return out, err
}

// CanonicalOrigin appends origin (lower case) without the default port of
// its scheme: browsers leave it out of the Origin header, proxies may keep
// it in :authority.
func CanonicalOrigin(dst, origin []byte) []byte {
	switch {
	case hasSuffix(origin, ":443") && hasPrefix(origin, "https://"):
		origin = origin[:len(origin)-4]
	case hasSuffix(origin, ":80") && hasPrefix(origin, "http://"):
		origin = origin[:len(origin)-3]
	}
	return append(dst, origin...)
}

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }
func hasSuffix(b []byte, p string) bool { return len(b) >= len(p) && string(b[len(b)-len(p):]) == p }

func (c *Config) parseForward(v wire.Value) error {
	return object("forward", v, func(k string, v wire.Value) (err error) {
		f := "forward." + k
		switch k {
		case "mode":
			var s string
			if s, err = text(f, v); err == nil {
				switch s {
				case ForwardFields:
					c.Compact = false
				case ForwardCompact:
					c.Compact = true
				default:
					err = bad(f, `must be "fields" or "compact"`)
				}
			}
		default:
			err = bad(f, "unknown field")
		}
		return err
	})
}

func (c *Config) parseAssertion(v wire.Value) error {
	var keys map[uint8][]byte
	active := -1
	err := object("assertion", v, func(k string, v wire.Value) (err error) {
		switch k {
		case "keys":
			keys, err = parseKeys("assertion.keys", v)
		case "activeKey":
			var n int64
			n, err = intIn("assertion.activeKey", v, 0, 255)
			active = int(n)
		default:
			err = bad("assertion."+k, "unknown field")
		}
		return err
	})
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return bad("assertion.keys", "at least one key is required")
	}
	if active, err = activeKey("assertion.activeKey", keys, active); err != nil {
		return err
	}
	if c.Assertion, err = wire.NewAssertionKeys(uint8(active), keys); err != nil {
		return bad("assertion.keys", err.Error())
	}
	return nil
}

func (c *Config) parseForwardNamespaces(v wire.Value) error {
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
		if sessionHeader(s) || s == "cookie" || s == "set-cookie" {
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

// sessionHeader reports whether name is an x-session-* header, with '_'
// read as '-' (some proxies turn one into the other).
func sessionHeader(name string) bool {
	const prefix = "x-session-"
	if len(name) < len(prefix) {
		return false
	}
	for i := range len(prefix) {
		if c := name[i]; c != prefix[i] && !(c == '_' && prefix[i] == '-') {
			return false
		}
	}
	return true
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

// duration reads a duration as every sessionedge configuration spells it
// (wire.DurationFromValue): a Go duration string ("90s", "30m"), "none"
// (reported as none, refused unless noneOK), or a number of seconds. Zero
// means "the default"; callers leave the default in place.
func duration(field string, v wire.Value, noneOK bool) (d Duration, none bool, err error) {
	wd, err := wire.DurationFromValue(v)
	if err != nil {
		return 0, false, bad(field, `must be a duration as "30m", "24h", "none", or a number of seconds`)
	}
	if wd.IsNone() {
		if !noneOK {
			return 0, false, bad(field, `cannot be "none"`)
		}
		return 0, true, nil
	}
	return wd, false, nil
}

// durationIn reads a duration that must not be "none" and, when set,
// lies within [min, max].
func durationIn(field string, v wire.Value, min, max Duration) (Duration, error) {
	d, _, err := duration(field, v, false)
	if err == nil && d != 0 && (d < min || d > max) {
		err = bad(field, "must be between "+min.String()+" and "+max.String())
	}
	return d, err
}

// kindTimeout reads a session timeout: "none" is no timeout, zero keeps the
// default.
func kindTimeout(field string, v wire.Value, dst *Duration) error {
	d, none, err := duration(field, v, true)
	switch {
	case err != nil:
		return err
	case none:
		*dst = 0
	case d != 0:
		if d < Second || d > 10*365*24*Hour {
			return bad(field, "must be between 1s and 10 years, or \"none\"")
		}
		*dst = d
	}
	return nil
}

// textList reads a list of strings, each checked by check.
func textList(field string, v wire.Value, check func(f, s string) error) ([]string, error) {
	if v.Type != wire.TypeList {
		return nil, bad(field, "must be a list of strings")
	}
	out := make([]string, 0, len(v.List))
	for i, e := range v.List {
		f := field + "[" + strconv.Itoa(i) + "]"
		s, err := text(f, e)
		if err != nil {
			return nil, err
		}
		if err := check(f, s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
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
