//go:build !wasip1

package proxytest

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
	"github.com/sessionedge/sessionedge/wasm/internal/filter"
)

// Secret is the signing key of the test configurations (key id 1).
var Secret = []byte("0123456789abcdef0123456789abcdef")

// Keyring signs test tokens the filter accepts.
var Keyring, _ = wire.NewKeyring(1, map[uint8][]byte{1: Secret})

// Start is the clock of every scenario.
var Start = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// Config returns a valid plugin configuration; extra is inserted as more
// top-level members (",\"failMode\":\"closed\""), and replaces the default
// origin or sites member when it has one.
func Config(extra string) string {
	c := `{"keys":{"1":"` + base64.StdEncoding.EncodeToString(Secret) + `"},"activeKey":1`
	if !strings.Contains(extra, `"origin":`) {
		c += `,"origin":{"cluster":"origin","apiKey":"edge-key"}`
	}
	if !strings.Contains(extra, `"sites":`) {
		c += `,"sites":{"shop.example.com":{"siteCode":"DE","currency":"EUR","targetLocation":"DE","locale":"de-DE"},` +
			`"*":{"siteCode":"INT","currency":"USD"}}`
	}
	return c + extra + `}`
}

// Counting is implemented by native guests, which can show their counters.
type Counting interface{ Counters() filter.Counters }

// SetCookies returns the Set-Cookie values of a response.
func SetCookies(ps []abi.Pair) []string { return abi.All(ps, "set-cookie") }

// CookieToken returns the session token in a Set-Cookie value, or "".
func CookieToken(setCookie string) string {
	v, ok := strings.CutPrefix(setCookie, "__Host-sid=")
	if !ok {
		return ""
	}
	tok, _, _ := strings.Cut(v, ";")
	return tok
}

// Token signs claims with the test keyring.
func Token(c wire.Claims) string { return string(Keyring.AppendToken(nil, &c)) }

// Claims verifies a token at the scenario's clock.
func Claims(t testing.TB, tok string, now time.Time) wire.Claims {
	t.Helper()
	var c wire.Claims
	if err := Keyring.VerifyToken([]byte(tok), now.Unix(), &c); err != nil {
		t.Fatalf("token %q does not verify: %v", tok, err)
	}
	return c
}

// ForwardedSession decodes the x-session-context header of s.
func ForwardedSession(t testing.TB, s *Stream) *wire.Session {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(s.Header("x-session-context"))
	if err != nil {
		t.Fatalf("x-session-context is not base64url: %v", err)
	}
	var sess wire.Session
	if err := wire.DecodeSession(raw, &sess); err != nil {
		t.Fatalf("x-session-context is not a session: %v", err)
	}
	return &sess
}

// fixture is an origin, a configured VM and a helper to mint sessions.
type fixture struct {
	t      *testing.T
	o      *Origin
	e      *Env
	cookie string
}

// baseExtra is added to every fixture's configuration; Run sets it for the
// pass with single header writes.
var baseExtra string

func newFixture(t *testing.T, ng NewGuest, extra string) *fixture {
	return newFixtureWith(t, ng, extra, func(*Env) {})
}

// newFixtureWith is newFixture with setup run on the Env before it is
// configured.
func newFixtureWith(t *testing.T, ng NewGuest, extra string, setup func(*Env)) *fixture {
	o := NewOrigin(Start)
	o.APIKey = "edge-key"
	e := NewEnv(t, ng, o)
	setup(e)
	e.MustConfigure(Config(baseExtra + extra))
	return &fixture{t: t, o: o, e: e}
}

// EdgeDevice is the device the edge reports for a test request without a
// user agent (the test hosts' client address is 192.0.2.1).
var EdgeDevice = wire.Device{Addr: "192.0.2.0/24", Site: "DE"}

// session creates session id at the origin with ops and returns a cookie
// header for a token of generation gen. The session starts with the device
// of EdgeDevice, so the touch reports of requests without a user agent
// change nothing at the origin.
func (f *fixture) session(kind wire.Kind, gen uint32, ops ...wire.Op) (wire.ID, string) {
	id, _ := wire.NewID()
	if _, err := f.o.Write(id, append([]wire.Op{{Code: wire.OpDevice, Device: EdgeDevice}}, ops...)...); err != nil {
		f.t.Fatal(err)
	}
	now := f.e.Now().Unix()
	tok := Token(wire.Claims{Kind: kind, ID: id, Generation: gen, IssuedAt: now, IdleDeadline: now + 1800, HardDeadline: now + 6*3600})
	return id, "__Host-sid=" + tok
}

// Run runs every scenario against guests made by ng.
func Run(t *testing.T, ng NewGuest) {
	t.Run("config", func(t *testing.T) { testConfig(t, ng) })
	t.Run("mint", func(t *testing.T) { testMint(t, ng) })
	t.Run("strip-and-cookies", func(t *testing.T) { testStripAndCookies(t, ng) })
	t.Run("bad-tokens", func(t *testing.T) { testBadTokens(t, ng) })
	t.Run("idle-and-rolling", func(t *testing.T) { testIdleAndRolling(t, ng) })
	t.Run("fetch", func(t *testing.T) { testFetch(t, ng) })
	t.Run("fetch-failures", func(t *testing.T) { testFetchFailures(t, ng) })
	t.Run("response", func(t *testing.T) { testResponse(t, ng) })
	t.Run("token-header", func(t *testing.T) { testTokenHeader(t, ng) })
	t.Run("self-service", func(t *testing.T) { testSelfService(t, ng) })
	t.Run("self-service-trailers", func(t *testing.T) { testSelfServiceTrailers(t, ng) })
	t.Run("sync", func(t *testing.T) { testSync(t, ng) })
	t.Run("sync-many-vms", func(t *testing.T) { testSyncManyVMs(t, ng) })
	t.Run("touches", func(t *testing.T) { testTouches(t, ng) })
	t.Run("sync-without-shared-data", func(t *testing.T) { testSyncSolo(t, ng) })
	t.Run("sync-start", func(t *testing.T) { testSyncStart(t, ng) })
	t.Run("sync-gap-during-fetch", func(t *testing.T) { testSyncGapDuringFetch(t, ng) })
	t.Run("sync-slow-poll", func(t *testing.T) { testSyncSlowPoll(t, ng) })
	t.Run("generation", func(t *testing.T) { testGeneration(t, ng) })
	t.Run("soft-logout", func(t *testing.T) { testSoftLogout(t, ng) })
	t.Run("read-your-writes", func(t *testing.T) { testReadYourWrites(t, ng) })
	t.Run("stripping", func(t *testing.T) { testStripping(t, ng) })
	t.Run("encoding", func(t *testing.T) { testEncoding(t, ng) })
	t.Run("cross-site", func(t *testing.T) { testCrossSite(t, ng) })
	t.Run("cache-control", func(t *testing.T) { testCacheControl(t, ng) })
	t.Run("assertion", func(t *testing.T) { testAssertion(t, ng) })
	t.Run("lifetimes", func(t *testing.T) { testLifetimes(t, ng) })
	t.Run("skip-mint", func(t *testing.T) { testSkipMint(t, ng) })
	t.Run("no-secrets-in-logs", func(t *testing.T) { testNoSecretsInLogs(t, ng) })
	t.Run("breaker", func(t *testing.T) { testBreaker(t, ng) })
	t.Run("max-stale", func(t *testing.T) { testMaxStale(t, ng) })
	t.Run("full-batches", func(t *testing.T) { testFullBatches(t, ng) })
	t.Run("touch-load", func(t *testing.T) { testTouchLoad(t, ng) })
	t.Run("forward-segment", func(t *testing.T) { testForwardSegment(t, ng) })
	t.Run("site-defaults-at-origin", func(t *testing.T) { testSiteDefaultsAtOrigin(t, ng) })
	t.Run("shopper-fields", func(t *testing.T) { testShopperFields(t, ng) })
	t.Run("devices", func(t *testing.T) { testDevices(t, ng) })
	t.Run("sessions-list", func(t *testing.T) { testSessionsList(t, ng) })
	t.Run("captures", func(t *testing.T) { testCaptures(t, ng) })
	t.Run("single-header-writes", func(t *testing.T) {
		baseExtra = `,"headerWrites":"single"`
		defer func() { baseExtra = "" }()
		t.Run("mint", func(t *testing.T) { testMint(t, ng) })
		t.Run("strip-and-cookies", func(t *testing.T) { testStripAndCookies(t, ng) })
		t.Run("fetch", func(t *testing.T) { testFetch(t, ng) })
		t.Run("fetch-failures", func(t *testing.T) { testFetchFailures(t, ng) })
		t.Run("generation", func(t *testing.T) { testGeneration(t, ng) })
		t.Run("soft-logout", func(t *testing.T) { testSoftLogout(t, ng) })
		t.Run("read-your-writes", func(t *testing.T) { testReadYourWrites(t, ng) })
		t.Run("stripping", func(t *testing.T) { testStripping(t, ng) })
		t.Run("assertion", func(t *testing.T) { testAssertion(t, ng) })
		t.Run("skip-mint", func(t *testing.T) { testSkipMint(t, ng) })
		t.Run("captures", func(t *testing.T) { testCaptures(t, ng) })
	})
}

func testConfig(t *testing.T, ng NewGuest) {
	key := base64.StdEncoding.EncodeToString(Secret)
	cases := []struct {
		name, config, field string
		ok                  bool
	}{
		{"valid", Config(""), "", true},
		{"empty", ``, "(document)", false},
		{"not json", `{"keys":`, "(document)", false},
		{"no keys", `{}`, "keys", false},
		{"short key", `{"keys":{"1":"c2hvcnQ="}}`, "keys.1", false},
		{"bad key id", `{"keys":{"x":"` + key + `"}}`, "keys.x", false},
		{"active missing", `{"keys":{"1":"` + key + `"},"activeKey":2}`, "activeKey", false},
		{"unknown field", Config(`,"colour":1`), "colour", false},
		{"bad samesite", Config(`,"cookie":{"sameSite":"sometimes"}`), "cookie.sameSite", false},
		{"host cookie with domain", Config(`,"cookie":{"domain":"example.com"}`), "cookie.name", false},
		{"bad duration", Config(`,"sessions":{"anonymous":{"idle":"soon"}}`), "sessions.anonymous.idle", false},
		{"none timeouts", Config(`,"sessions":{"anonymous":{"idle":"none","hard":"none","onIdle":"none"}}`), "", true},
		{"soft logout on anonymous", Config(`,"sessions":{"anonymous":{"onIdle":"softLogout"}}`), "sessions.anonymous.onIdle", false},
		{"bad fail mode", Config(`,"failMode":"maybe"`), "failMode", false},
		{"bad namespace", Config(`,"forwardNamespaces":["secret"]`), "forwardNamespaces[0]", false},
		{"stripped token header", Config(`,"tokenHeader":{"request":"x-session-token"}`), "tokenHeader.request", false},
		{"bad prefix", Config(`,"selfServicePrefix":"session"`), "selfServicePrefix", false},
		{"bad cache", Config(`,"cache":{"entries":0}`), "cache.entries", false},
		{"sync interval", Config(`,"sync":{"interval":"10ms"}`), "sync.interval", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := NewEnv(t, ng, nil)
			if got := e.Configure(c.config); got != c.ok {
				t.Fatalf("configure = %v, want %v (logs %v)", got, c.ok, e.Logs())
			}
			if !c.ok && !e.Logged("invalid plugin configuration", c.field) {
				t.Fatalf("no log line naming %q: %v", c.field, e.Logs())
			}
			if c.ok && e.TickMs() == 0 {
				t.Fatal("no tick period set")
			}
		})
	}
}

func testMint(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, "")
	e := f.e
	s := e.Request("GET", "/", nil)
	if !s.Forwarded() {
		t.Fatal("request with no cookie was not forwarded")
	}
	if n := len(e.Pending()); n != 0 {
		t.Fatalf("minting called the origin %d times", n)
	}
	if want, n, ok := map[string]int{"": 1, `,"headerWrites":"single"`: 0}[baseExtra], e.M.SetPairsCalls, e.host == nil; ok && n != want {
		t.Fatalf("proxy_set_header_map_pairs called %d times, want %d", n, want)
	}
	for k, want := range map[string]string{"x-session-kind": "anonymous", "x-session-generation": "1",
		"x-session-context-status": "new", "x-session-site": "DE", "x-session-currency": "EUR",
		"x-session-locale": "de-DE", "x-session-location": "DE", "x-session-version": "0"} {
		if got := s.Header(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	seg := s.Header("x-session-segment")
	if len(seg) != 16 {
		t.Errorf("x-session-segment = %q, want 16 hex characters", seg)
	}
	resp := s.Respond()
	cookies := SetCookies(resp)
	if len(cookies) != 1 {
		t.Fatalf("Set-Cookie = %q, want one", cookies)
	}
	for _, attr := range []string{"; Path=/", "; HttpOnly", "; Secure", "; SameSite=Lax", "; Max-Age=86400"} {
		if !strings.Contains(cookies[0], attr) {
			t.Errorf("Set-Cookie %q lacks %q", cookies[0], attr)
		}
	}
	if strings.Contains(cookies[0], "Domain=") {
		t.Errorf("Set-Cookie %q has a Domain", cookies[0])
	}
	tok := CookieToken(cookies[0])
	c := Claims(t, tok, e.Now())
	if c.Kind != wire.KindAnonymous || c.Generation != 1 || c.ID.String() != s.Header("x-session-id") {
		t.Fatalf("claims %+v do not match forwarded id %s", c, s.Header("x-session-id"))
	}
	if c.IdleDeadline != e.Now().Unix()+3600 || c.HardDeadline != e.Now().Unix()+86400 {
		t.Fatalf("deadlines %d %d, want now+1h and now+24h", c.IdleDeadline, c.HardDeadline)
	}
	s.Finish()

	// The same cookie again: same session, no new cookie, no HMAC.
	var before filter.Counters
	if cg, ok := e.G.(Counting); ok {
		before = cg.Counters()
	}
	s2 := e.Request("GET", "/cart", nil, "cookie", "__Host-sid="+tok)
	if s2.Header("x-session-id") != c.ID.String() {
		t.Fatalf("repeat request got session %q, want %s", s2.Header("x-session-id"), c.ID)
	}
	if got := SetCookies(s2.Respond()); len(got) != 0 {
		t.Fatalf("repeat request set cookies %q", got)
	}
	if cg, ok := e.G.(Counting); ok {
		after := cg.Counters()
		if after.Verified != before.Verified || after.CacheHits != before.CacheHits+1 {
			t.Fatalf("repeat request: verified %d→%d, cache hits %d→%d; want no HMAC and one hit",
				before.Verified, after.Verified, before.CacheHits, after.CacheHits)
		}
	}
	s2.Finish()
}

func testStripAndCookies(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, "")
	e := f.e
	id, cookie := f.session(wire.KindAnonymous, 1, wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("CHF")})
	// The session cookie in the second cookie header, spoofed headers in
	// every case.
	s := e.Request("GET", "/", nil,
		"X-Session-Id", "spoofed", "x-session-customer", "cust-1", "X-SESSION-CONTEXT-STATUS", "ok",
		"cookie", "theme=dark; lang=de", "cookie", "a=b; "+cookie+"; z=1", "x-session-kind", "customer")
	if s.Action != uint32(abi.ActionPause) {
		t.Fatalf("cache miss did not pause (action %d)", s.Action)
	}
	for _, p := range s.Headers() {
		if strings.HasPrefix(p.Key, "x-session-") {
			t.Fatalf("spoofed header %s: %s reached the upstream before the filter's own", p.Key, p.Value)
		}
	}
	e.Serve()
	if !s.Continued() {
		t.Fatal("request not resumed after the fetch")
	}
	if got := abi.All(s.Headers(), "x-session-id"); len(got) != 1 || got[0] != id.String() {
		t.Fatalf("x-session-id = %q, want [%s]", got, id)
	}
	if got := s.Header("x-session-customer"); got != "" {
		t.Fatalf("spoofed x-session-customer survived: %q", got)
	}
	if got := s.Header("x-session-currency"); got != "CHF" {
		t.Fatalf("x-session-currency = %q, want the session's CHF over the site default", got)
	}
	if got := s.Header("x-session-kind"); got != "anonymous" {
		t.Fatalf("x-session-kind = %q", got)
	}
}

func testBadTokens(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, "")
	e := f.e
	now := e.Now().Unix()
	id, _ := wire.NewID()
	otherKR, _ := wire.NewKeyring(2, map[uint8][]byte{2: []byte("another secret of 32 bytes......")})
	good := wire.Claims{Kind: wire.KindAnonymous, ID: id, Generation: 1, IssuedAt: now, IdleDeadline: now + 600, HardDeadline: now + 3600}
	tampered := []byte(Token(good))
	tampered[10] ^= 1
	hard := good
	hard.IssuedAt, hard.HardDeadline = now-7200, now-1
	cases := []struct{ name, cookie string }{
		{"garbage", "__Host-sid=%%%garbage"},
		{"empty", "__Host-sid="},
		{"huge", "__Host-sid=" + strings.Repeat("A", 64<<10)},
		{"tampered", "__Host-sid=" + string(tampered)},
		{"unknown key", "__Host-sid=" + string(otherKR.AppendToken(nil, &good))},
		{"hard expired", "__Host-sid=" + Token(hard)},
		{"other cookie name", "sid=" + Token(good)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := e.Request("GET", "/", nil, "cookie", c.cookie)
			if !s.Forwarded() || s.Header("x-session-context-status") != "new" {
				t.Fatalf("bad cookie: forwarded %v status %q, want a new session", s.Forwarded(), s.Header("x-session-context-status"))
			}
			if s.Header("x-session-id") == id.String() {
				t.Fatal("the bad token's session was accepted")
			}
			if len(SetCookies(s.Respond())) != 1 {
				t.Fatal("no Set-Cookie for the new session")
			}
			s.Finish()
		})
	}
	if n := len(e.Pending()); n != 0 {
		t.Fatalf("bad tokens caused %d origin calls", n)
	}
}

func testIdleAndRolling(t *testing.T, ng NewGuest) {
	t.Run("rolling", func(t *testing.T) {
		f := newFixture(t, ng, "")
		e := f.e
		s := e.Request("GET", "/", nil)
		tok := CookieToken(SetCookies(s.Respond())[0])
		s.Finish()
		e.Advance(20 * time.Minute) // 40 of 60 minutes left: no re-issue
		s = e.Request("GET", "/", nil, "cookie", "__Host-sid="+tok)
		if got := SetCookies(s.Respond()); len(got) != 0 {
			t.Fatalf("re-issued with more than half the idle window left: %q", got)
		}
		s.Finish()
		e.Advance(15 * time.Minute) // 25 minutes left: re-issue
		s = e.Request("GET", "/", nil, "cookie", "__Host-sid="+tok)
		got := SetCookies(s.Respond())
		if len(got) != 1 {
			t.Fatalf("no re-issue with less than half the idle window left")
		}
		old, renewed := Claims(t, tok, e.Now()), Claims(t, CookieToken(got[0]), e.Now())
		if renewed.ID != old.ID || renewed.Generation != old.Generation || renewed.IdleDeadline != e.Now().Unix()+3600 || renewed.HardDeadline != old.HardDeadline {
			t.Fatalf("re-issued claims %+v from %+v", renewed, old)
		}
		s.Finish()
	})
	t.Run("anonymous idle ends", func(t *testing.T) {
		f := newFixture(t, ng, "")
		e := f.e
		s := e.Request("GET", "/", nil)
		tok := CookieToken(SetCookies(s.Respond())[0])
		id := s.Header("x-session-id")
		s.Finish()
		e.Advance(61 * time.Minute)
		s = e.Request("GET", "/", nil, "cookie", "__Host-sid="+tok)
		if s.Header("x-session-id") == id || s.Header("x-session-context-status") != "new" {
			t.Fatalf("idle-expired anonymous session kept (id %s)", s.Header("x-session-id"))
		}
		if len(SetCookies(s.Respond())) != 1 {
			t.Fatal("no cookie for the new session")
		}
	})
}

func testFetch(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, `,"forwardNamespaces":["custom","public"]`)
	e := f.e
	id, cookie := f.session(wire.KindAnonymous, 1,
		wire.Op{Code: wire.OpSetField, Field: wire.FieldCartID, Value: wire.Text("cart-1")},
		wire.Op{Code: wire.OpSetField, Field: wire.FieldTrackingAllowed, Value: wire.Bool(true)},
		wire.Op{Code: wire.OpSetAttr, NS: wire.NamespacePrivacy, Key: "email", Value: wire.Text("a@b.c")},
		wire.Op{Code: wire.OpSetAttr, NS: wire.NamespacePublic, Key: "theme", Value: wire.Text("dark")})
	s1 := e.Request("GET", "/a", nil, "cookie", cookie)
	s2 := e.Request("GET", "/b", nil, "cookie", cookie)
	calls := e.Pending()
	if len(calls) != 1 {
		t.Fatalf("two misses of one session made %d calls, want 1", len(calls))
	}
	c := calls[0]
	if c.Upstream != "origin" || c.Header(":path") != "/v1/sessions/"+id.String() || c.Header(":method") != "GET" ||
		c.Header("authorization") != "Bearer edge-key" || c.Header("accept") != "application/cbor" || c.Header(":authority") != "origin" {
		t.Fatalf("fetch call %+v", c)
	}
	if c.Context != e.Root {
		t.Fatalf("HTTP call made on context %d, want the root %d", c.Context, e.Root)
	}
	e.Serve()
	for _, s := range []*Stream{s1, s2} {
		if !s.Continued() {
			t.Fatal("a waiting stream was not resumed")
		}
		if s.Header("x-session-context-status") != "ok" || s.Header("x-session-version") != "1" ||
			s.Header("x-session-cart") != "cart-1" || s.Header("x-session-tracking") != "true" {
			t.Fatalf("forwarded %v", s.Headers())
		}
		fs := ForwardedSession(t, s)
		if fs.ID != id || len(fs.Attrs[wire.NamespacePrivacy]) != 0 || len(fs.Attrs[wire.NamespacePublic]) != 1 {
			t.Fatalf("forwarded context %+v: want id, public, no privacy", fs)
		}
		if fs.Fields[wire.FieldSiteCode].Text != "DE" {
			t.Fatalf("forwarded context lacks the site default: %+v", fs.Fields)
		}
	}
	s3 := e.Request("GET", "/c", nil, "cookie", cookie)
	if !s3.Forwarded() || len(e.Pending()) != 0 {
		t.Fatal("warm request called the origin")
	}
	if s3.Header("x-session-segment") != s1.Header("x-session-segment") {
		t.Fatal("segment hash differs for the same segment fields")
	}
}

func testFetchFailures(t *testing.T, ng NewGuest) {
	cases := []struct {
		name       string
		extra      string
		status     int
		body       []byte
		wantStatus string // forwarded x-session-context-status; "" = local reply
		wantLocal  uint32
		newSession bool
	}{
		{"down open", "", 0, nil, "degraded", 0, false},
		{"5xx open", "", 503, nil, "degraded", 0, false},
		{"broken cbor open", "", 200, []byte{0xbf, 0xff, 0x00, 0x13}, "degraded", 0, false},
		{"wrong session open", "", 200, wire.AppendSession(nil, &wire.Session{ID: wire.ID{1}, Kind: wire.KindAnonymous}), "degraded", 0, false},
		{"down closed", `,"failMode":"closed"`, 0, nil, "", 503, false},
		{"unknown", "", 404, nil, "new", 0, false},
		{"ended", "", 410, nil, "new", 0, true},
		{"stale generation", "", 409, []byte(`{"error":{"code":"stale_generation","message":"x","currentGeneration":3}}`), "new", 0, true},
		{"cas conflict", "", 409, []byte(`{"error":{"code":"conflict","message":"x"}}`), "degraded", 0, false},
		{"token refused", "", 401, []byte(`{"error":{"code":"invalid_token","message":"x"}}`), "new", 0, true},
		{"token expired", "", 401, []byte(`{"error":{"code":"token_expired","message":"x"}}`), "new", 0, true},
		{"edge key refused", "", 401, []byte(`{"error":{"code":"unauthorized","message":"x"}}`), "degraded", 0, false},
		{"edge key lacks scope", "", 403, []byte(`{"error":{"code":"forbidden","message":"x"}}`), "degraded", 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, ng, c.extra)
			e := f.e
			id, cookie := f.session(wire.KindAnonymous, 1)
			s := e.Request("GET", "/", nil, "cookie", cookie)
			p := e.Pending()
			if len(p) != 1 {
				t.Fatalf("%d calls", len(p))
			}
			e.Answer(p[0], c.status, c.body)
			if c.wantLocal != 0 {
				if s.Local() == nil || s.Local().Status != c.wantLocal {
					t.Fatalf("local response %+v, want %d", s.Local(), c.wantLocal)
				}
				return
			}
			if !s.Continued() || s.Header("x-session-context-status") != c.wantStatus {
				t.Fatalf("continued %v status %q, want %q", s.Continued(), s.Header("x-session-context-status"), c.wantStatus)
			}
			if got := s.Header("x-session-id") != id.String(); got != c.newSession {
				t.Fatalf("new session = %v, want %v", got, c.newSession)
			}
			if c.wantStatus == "degraded" && (s.Header("x-session-kind") != "anonymous" || s.Header("x-session-site") != "DE") {
				t.Fatalf("degraded request lacks kind or site defaults: %v", s.Headers())
			}
		})
	}
	t.Run("reply after stream deleted", func(t *testing.T) {
		f := newFixture(t, ng, "")
		e := f.e
		_, cookie := f.session(wire.KindAnonymous, 1)
		s := e.Request("GET", "/", nil, "cookie", cookie)
		s.Finish()
		e.Serve()
		if s.Continued() || s.Local() != nil {
			t.Fatal("a deleted stream was resumed or answered")
		}
		// The fetched session is cached all the same.
		s2 := e.Request("GET", "/", nil, "cookie", cookie)
		if !s2.Forwarded() || s2.Header("x-session-context-status") != "ok" {
			t.Fatal("session fetched for a deleted stream not cached")
		}
	})
	t.Run("body arrives while fetching", func(t *testing.T) {
		// Envoy continues a stream whose body callback says continue, even
		// when the headers callback paused: the body must wait too, or the
		// request leaves without its session headers.
		f := newFixture(t, ng, "")
		e := f.e
		id, cookie := f.session(wire.KindAnonymous, 1)
		s := e.Request("POST", "/cart", []byte(`{"sku":1}`), "cookie", cookie)
		if s.Action != 1 || s.BodyAction != 1 {
			t.Fatalf("headers action %d, body action %d: want both paused while the session is fetched", s.Action, s.BodyAction)
		}
		if s.Continued() {
			t.Fatal("stream continued before the session arrived")
		}
		e.Answer(e.Pending()[0], 404, nil)
		if !s.Continued() || s.Header("x-session-id") != id.String() {
			t.Fatalf("after the fetch: continued %v, id %q", s.Continued(), s.Header("x-session-id"))
		}
	})
	t.Run("unknown call token", func(t *testing.T) {
		f := newFixture(t, ng, "")
		f.e.Answer(&abi.MockCall{Token: 999}, 200, []byte("junk"))
		s := f.e.Request("GET", "/", nil)
		if !s.Forwarded() {
			t.Fatal("VM broken after a reply to an unknown call")
		}
	})
}

func testResponse(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, "")
	e := f.e
	id, cookie := f.session(wire.KindAnonymous, 1)
	s := e.Request("GET", "/login", nil, "cookie", cookie)
	e.Serve()
	// The app logged the shopper in through the origin and passes the new
	// token on.
	if _, err := f.o.Write(id, wire.Op{Code: wire.OpLogin, CustomerID: "c-1", Generation: 2}); err != nil {
		t.Fatal(err)
	}
	now := e.Now().Unix()
	newTok := Token(wire.Claims{Kind: wire.KindCustomer, ID: id, Generation: 2, IssuedAt: now, IdleDeadline: now + 1800, HardDeadline: now + 6*3600})
	resp := s.Respond("x-session-token", newTok, "set-cookie", "app=1", "x-session-debug", "secret", "content-type", "text/html")
	for _, p := range resp {
		if strings.HasPrefix(p.Key, "x-session-") {
			t.Fatalf("response header %s reached the client", p.Key)
		}
	}
	cookies := SetCookies(resp)
	if len(cookies) != 2 || cookies[0] != "app=1" || CookieToken(cookies[1]) != newTok {
		t.Fatalf("Set-Cookie = %q: want the app's and the new token", cookies)
	}
	s.Finish()
	// The cached context was dropped: the next request fetches the
	// logged-in state; the old token is dead.
	s2 := e.Request("GET", "/", nil, "cookie", "__Host-sid="+newTok)
	if len(e.Pending()) != 1 {
		t.Fatal("cached context not refreshed after a new token")
	}
	e.Serve()
	if s2.Header("x-session-customer") != "c-1" || s2.Header("x-session-kind") != "customer" {
		t.Fatalf("after login: %v", s2.Headers())
	}
	s3 := e.Request("GET", "/", nil, "cookie", cookie)
	if s3.Header("x-session-id") == id.String() {
		t.Fatal("a token of an older generation was accepted")
	}
	// A forged token from the upstream is ignored.
	s4 := e.Request("GET", "/", nil, "cookie", "__Host-sid="+newTok)
	resp = s4.Respond("x-session-token", "forged")
	if len(SetCookies(resp)) != 0 || abi.Get(resp, "x-session-token") != "" {
		t.Fatalf("forged upstream token handed out: %v", resp)
	}
}

func testTokenHeader(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, `,"tokenHeader":{"request":"sessionedge-token","response":"sessionedge-token"}`)
	e := f.e
	s := e.Request("GET", "/", nil, "sessionedge-token", "")
	resp := s.Respond()
	if len(SetCookies(resp)) != 0 {
		t.Fatal("a header client got a cookie")
	}
	tok := abi.Get(resp, "sessionedge-token")
	c := Claims(t, tok, e.Now())
	s.Finish()
	s = e.Request("GET", "/", nil, "sessionedge-token", tok)
	if s.Header("x-session-id") != c.ID.String() {
		t.Fatal("token from the request header not used")
	}
	if abi.Get(s.Respond(), "sessionedge-token") != "" {
		t.Fatal("token re-sent without a re-issue")
	}
}

func testSelfService(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, "")
	e := f.e
	id, cookie := f.session(wire.KindAnonymous, 1,
		wire.Op{Code: wire.OpSetAttr, NS: wire.NamespacePublic, Key: "theme", Value: wire.Text("dark")},
		wire.Op{Code: wire.OpSetAttr, NS: wire.NamespacePrivacy, Key: "email", Value: wire.Text("a@b.c")})

	s := e.Request("GET", "/.session/context", nil, "cookie", cookie)
	e.Serve()
	l := s.Local()
	if l == nil || l.Status != 200 {
		t.Fatalf("GET context: %+v", l)
	}
	body := string(l.Body)
	if !strings.Contains(body, `"public":{"theme":"dark"}`) || !strings.Contains(body, `"siteCode":"DE"`) || strings.Contains(body, "email") {
		t.Fatalf("GET context body %s", body)
	}

	cases := []struct {
		name, method, path, cookie, body string
		status                           uint32
		origin                           string // expected origin call, "" none
		contains                         string
	}{
		{"patch public", "PATCH", "/.session/context", cookie, `{"public":{"size":"M","theme":null}}`, 200,
			"PATCH /v1/sessions/" + id.String() + "/context", `"public":{"size":"M"}`},
		{"patch privacy refused", "PATCH", "/.session/context", cookie, `{"privacy":{"x":1}}`, 400, "", `"field":"privacy"`},
		{"patch field refused", "PATCH", "/.session/context", cookie, `{"currency":"USD"}`, 400, "", `"field":"currency"`},
		{"patch bad key", "PATCH", "/.session/context", cookie, `{"public":{"a b":1}}`, 400, "", `invalid_input`},
		{"patch bad json", "PATCH", "/.session/context", cookie, `{"public":`, 400, "", `invalid_input`},
		{"patch without session", "PATCH", "/.session/context", "", `{"public":{"a":1}}`, 401, "", `unauthorized`},
		{"patch without body", "PATCH", "/.session/context", cookie, "", 400, "", `invalid_input`},
		{"delete public", "DELETE", "/.session/context/public/size", cookie, "", 200,
			"DELETE /v1/sessions/" + id.String() + "/attributes/public/size", `"public":{}`},
		{"delete bad key", "DELETE", "/.session/context/public/a%2Fb", cookie, "", 400, "", `invalid_input`},
		{"unknown endpoint", "GET", "/.session/other", cookie, "", 404, "", `not_found`},
		{"bad method", "POST", "/.session/context", cookie, "", 405, "", `method_not_allowed`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := len(f.o.Requests)
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			kv := []string{}
			if c.cookie != "" {
				kv = append(kv, "cookie", c.cookie)
			}
			s := e.Request(c.method, c.path, body, kv...)
			if len(e.Pending()) > 0 && e.Pending()[0].Header(":method") == "PATCH" && string(e.Pending()[0].Body) != c.body {
				t.Fatalf("origin got body %q, want %q", e.Pending()[0].Body, c.body)
			}
			e.Serve()
			l := s.Local()
			if l == nil || l.Status != c.status {
				t.Fatalf("local response %+v, want %d", l, c.status)
			}
			if !strings.Contains(string(l.Body), c.contains) {
				t.Fatalf("body %s lacks %s", l.Body, c.contains)
			}
			reqs := f.o.Requests[n:]
			if c.origin == "" && len(reqs) != 0 || c.origin != "" && (len(reqs) != 1 || reqs[0] != c.origin) {
				t.Fatalf("origin calls %v, want %q", reqs, c.origin)
			}
		})
	}
}

// testSelfServiceTrailers: a request whose end of stream comes with
// trailers (HTTP/2, gRPC-web) instead of with its last body chunk. A
// self-service PATCH is answered by the filter all the same, and neither
// it nor any other request the filter holds reaches the app.
func testSelfServiceTrailers(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, "")
	e := f.e
	id, cookie := f.session(wire.KindAnonymous, 1)
	ctx := "PATCH /v1/sessions/" + id.String() + "/context"
	held := func(t *testing.T, s *Stream, status uint32, contains string) {
		t.Helper()
		if s.Continued() || s.Forwarded() {
			t.Fatalf("the request reached the app: %v", s.Headers())
		}
		l := s.Local()
		if l == nil || l.Status != status || !strings.Contains(string(l.Body), contains) {
			t.Fatalf("local answer %+v, want %d with %s", l, status, contains)
		}
	}
	t.Run("patch with a body", func(t *testing.T) {
		n := len(f.o.Requests)
		s := e.OpenRequest("PATCH", "/.session/context", []byte(`{"public":{"size":"L"}}`), "cookie", cookie, "sec-fetch-site", "same-origin")
		if s.Continued() || s.Local() != nil || len(e.Pending()) != 0 {
			t.Fatalf("the PATCH did not wait for the end of its body: local %+v, calls %+v", s.Local(), e.Pending())
		}
		s.RequestTrailers("x-checksum", "1", "x_session_customer", "victim")
		e.Serve()
		held(t, s, 200, `"public":{"size":"L"}`)
		if reqs := f.o.Requests[n:]; len(reqs) != 1 || reqs[0] != ctx {
			t.Fatalf("origin calls %v, want %s", reqs, ctx)
		}
		if v, _ := f.o.Sessions[id].Attr(wire.NamespacePublic, "size"); v.Text != "L" {
			t.Fatalf("the write did not reach the origin: %+v", f.o.Sessions[id].Attrs)
		}
		if _, err := Keyring.VerifyHint([]byte(hintCookie(s.Local().Headers)), id, 1); err != nil {
			t.Fatalf("no consistency hint: %v", err)
		}
	})
	t.Run("patch without a body", func(t *testing.T) {
		n := len(f.o.Requests)
		s := e.OpenRequest("PATCH", "/.session/context", nil, "cookie", cookie)
		s.RequestTrailers("x-checksum", "1")
		e.Serve()
		held(t, s, 400, "invalid_input")
		if len(f.o.Requests) != n {
			t.Fatalf("origin calls %v", f.o.Requests[n:])
		}
	})
	t.Run("patch refused", func(t *testing.T) {
		s := e.OpenRequest("PATCH", "/.session/context", []byte(`{"privacy":{"email":"a@b.c"}}`), "cookie", cookie)
		s.RequestTrailers("x-checksum", "1")
		e.Serve()
		held(t, s, 400, `"field":"privacy"`)
	})
	t.Run("delete during the write", func(t *testing.T) {
		s := e.OpenRequest("DELETE", "/.session/context/public/size", nil, "cookie", cookie)
		if len(e.Pending()) != 1 {
			t.Fatalf("calls %+v", e.Pending())
		}
		s.RequestTrailers("x-checksum", "1")
		e.Serve()
		held(t, s, 200, `"public":{}`)
	})
}

// syncConfig ticks the feed every 100ms.
const syncConfig = `,"sync":{"interval":"100ms"}`

func testSync(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, syncConfig)
	e := f.e
	id, cookie := f.session(wire.KindAnonymous, 1, wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("EUR")})
	e.Tick()
	e.Serve() // joins the feed at its head
	s := e.Request("GET", "/", nil, "cookie", cookie)
	e.Serve()
	if s.Header("x-session-version") != "1" {
		t.Fatalf("version %q", s.Header("x-session-version"))
	}
	step := func() {
		e.Advance(100 * time.Millisecond)
		e.Tick()
		e.Serve()
		e.Tick() // a second tick is harmless: nothing new to poll yet
		e.Serve()
	}
	get := func() *Stream {
		s := e.Request("GET", "/", nil, "cookie", cookie)
		e.Serve()
		return s
	}
	// A change at the origin reaches the cache through the feed.
	f.o.Write(id, wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("GBP")})
	polls := f.o.Polls
	step()
	if f.o.Polls != polls+1 {
		t.Fatalf("polls %d→%d, want one per interval", polls, f.o.Polls)
	}
	calls := len(f.o.Requests)
	s = get()
	if s.Header("x-session-currency") != "GBP" || s.Header("x-session-version") != "2" || len(f.o.Requests) != calls {
		t.Fatalf("delta not applied from the feed: %v", s.Headers())
	}
	// A delta that does not follow the cached version drops the entry.
	f.o.Log = append(f.o.Log, wire.Delta{ID: id, BaseVersion: 7, Version: 8, At: 1, Ops: []wire.Op{{Code: wire.OpTouch}}})
	step()
	calls = len(f.o.Requests)
	s = get()
	if len(f.o.Requests) != calls+1 || s.Header("x-session-version") != strconv.FormatUint(f.o.Sessions[id].Version, 10) {
		t.Fatal("entry not dropped after a version mismatch")
	}
	// Revocation: the session ends at the origin; the token is dead.
	f.o.Write(id, wire.Op{Code: wire.OpEnd, Reason: wire.EndRevoked})
	step()
	s = get()
	if s.Header("x-session-id") == id.String() {
		t.Fatal("revoked session still accepted")
	}
	// Reset drops everything.
	id2, cookie2 := f.session(wire.KindAnonymous, 1)
	step()
	s = e.Request("GET", "/", nil, "cookie", cookie2)
	e.Serve()
	if s.Header("x-session-id") != id2.String() {
		t.Fatal("second session not served")
	}
	f.o.ResetNext = true
	step()
	calls = len(f.o.Requests)
	s = e.Request("GET", "/", nil, "cookie", cookie2)
	e.Serve()
	if len(f.o.Requests) != calls+1 {
		t.Fatal("cache not dropped on reset")
	}
	// Broken CBOR from the feed is logged and changes nothing.
	e.Advance(100 * time.Millisecond)
	e.Tick()
	for _, c := range e.Pending() {
		if c.Header(":path") != "" && strings.HasPrefix(c.Header(":path"), "/v1/sync?") {
			e.Answer(c, 200, []byte{0xa1, 0x01, 0x7f})
		}
	}
	if !e.Logged("bad batch") {
		t.Fatalf("broken batch not logged: %v", e.Logs())
	}
	e.Serve()
}

func testSyncManyVMs(t *testing.T, ng NewGuest) {
	o := NewOrigin(Start)
	o.APIKey = "edge-key"
	var vms []*Env
	for i := 0; i < 3; i++ {
		e := NewEnv(t, ng, o)
		if i > 0 {
			e.ShareData(vms[0]) // one shared-data store, as the VMs of one proxy have
		}
		e.MustConfigure(Config(syncConfig))
		vms = append(vms, e)
	}
	id, _ := wire.NewID()
	o.Write(id, wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("EUR")})
	now := vms[0].Now().Unix()
	cookie := "__Host-sid=" + Token(wire.Claims{Kind: wire.KindAnonymous, ID: id, Generation: 1, IssuedAt: now, IdleDeadline: now + 1800, HardDeadline: now + 3600})
	round := func() {
		for _, e := range vms {
			e.SetNow(o.Now)
			e.Tick()
			e.Serve()
		}
		o.Now = o.Now.Add(100 * time.Millisecond)
	}
	round()
	for _, e := range vms {
		s := e.Request("GET", "/", nil, "cookie", cookie)
		e.Serve()
		if s.Header("x-session-currency") != "EUR" {
			t.Fatalf("initial fetch: %v", s.Headers())
		}
	}
	o.Write(id, wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("JPY")})
	polls := o.Polls
	for i := 0; i < 10; i++ {
		round()
	}
	if got := o.Polls - polls; got < 5 || got > 11 {
		t.Fatalf("3 VMs polled %d times in 10 intervals, want about 10", got)
	}
	for i, e := range vms {
		fetches := len(o.Requests)
		s := e.Request("GET", "/", nil, "cookie", cookie)
		e.Serve()
		if s.Header("x-session-currency") != "JPY" || len(o.Requests) != fetches {
			t.Fatalf("VM %d did not apply the published delta: %v", i, s.Headers())
		}
	}
}

// testTouches: a minted session costs the origin nothing until its token
// comes back; then its activity is reported, once per interval.
func testTouches(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, syncConfig)
	e := f.e
	e.Tick()
	e.Serve() // the VM follows the feed (starting to, it drops what it cached)
	var toks, ids []string
	for i := 0; i < 4; i++ {
		s := e.Request("GET", "/", nil)
		toks = append(toks, CookieToken(SetCookies(s.Respond())[0]))
		ids = append(ids, s.Header("x-session-id"))
		s.Finish()
	}
	e.Advance(200 * time.Millisecond)
	e.Tick()
	for _, c := range e.Pending() {
		if c.Header(":path") == "/v1/sync/touch" {
			t.Fatal("one-shot sessions were reported to the origin")
		}
	}
	e.Serve()
	// Two clients come back.
	for _, tok := range toks[:2] {
		s := e.Request("GET", "/", nil, "cookie", "__Host-sid="+tok)
		if !s.Forwarded() || s.Header("x-session-context-status") != "new" {
			t.Fatalf("returning token: %v", s.Headers())
		}
		s.Finish()
	}
	seen := e.Now()
	e.Advance(200 * time.Millisecond)
	e.Tick()
	var touch *abi.MockCall
	for _, c := range e.Pending() {
		if c.Header(":path") == "/v1/sync/touch" {
			touch = c
		}
	}
	if touch == nil || touch.Header("content-type") != "application/cbor" || touch.Header(":method") != "POST" {
		t.Fatalf("no touch report: %+v", e.Pending())
	}
	ts, err := wire.DecodeTouches(touch.Body, nil)
	if err != nil || len(ts) != 2 {
		t.Fatalf("touches %v, %v; want the 2 returning sessions", ts, err)
	}
	if ts[0].ID.String() != ids[0] || ts[0].Kind != wire.KindAnonymous || ts[0].Generation != 1 || ts[0].LastSeen != seen.UnixMilli() {
		t.Fatalf("touch %+v", ts[0])
	}
	e.Serve()
	// The origin knows the returning sessions, and only those.
	for i, id := range ids {
		pid, _ := wire.ParseID(id)
		if known := f.o.Sessions[pid] != nil; known != (i < 2) {
			t.Fatalf("session %d known to the origin: %v", i, known)
		}
	}
}

func splitCookie(h string) []string {
	parts := strings.Split(h, ";")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func cutPrefix(s, prefix string) (string, bool) { return strings.CutPrefix(s, prefix) }

// testSyncSolo runs the feed on a host without shared data: each VM polls
// for itself and still applies deltas.
func testSyncSolo(t *testing.T, ng NewGuest) {
	f := newFixtureWith(t, ng, syncConfig, (*Env).DisableSharedData)
	e := f.e
	id, cookie := f.session(wire.KindAnonymous, 1, wire.Op{Code: wire.OpSetField, Field: wire.FieldLocale, Value: wire.Text("de-DE")})
	e.Tick()
	e.Serve()
	if !e.Logged("shared data unavailable") {
		t.Fatalf("no log about the missing shared data: %v", e.Logs())
	}
	s := e.Request("GET", "/", nil, "cookie", cookie)
	e.Serve()
	if s.Header("x-session-locale") != "de-DE" {
		t.Fatalf("fetch: %v", s.Headers())
	}
	f.o.Write(id, wire.Op{Code: wire.OpSetField, Field: wire.FieldLocale, Value: wire.Text("it-CH")})
	polls := f.o.Polls
	for i := 0; i < 4; i++ { // one interval in quarter ticks
		e.Advance(25 * time.Millisecond)
		e.Tick()
		e.Serve()
	}
	if f.o.Polls != polls+1 {
		t.Fatalf("polls %d→%d in one interval, want one", polls, f.o.Polls)
	}
	calls := len(f.o.Requests)
	s = e.Request("GET", "/", nil, "cookie", cookie)
	if s.Header("x-session-locale") != "it-CH" || len(e.Pending()) != 0 || len(f.o.Requests) != calls {
		t.Fatalf("delta not applied without shared data: %v", s.Headers())
	}
}

// testSyncStart: a VM that starts following the feed starts at its head,
// so what it cached before may lack the deltas up to it. Like a VM that
// joins a ring others publish, the VM that publishes its first batch (or
// polls for itself, without shared data) drops that.
func testSyncStart(t *testing.T, ng NewGuest) {
	for _, solo := range []bool{false, true} {
		setup := func(*Env) {}
		if solo {
			setup = (*Env).DisableSharedData
		}
		f := newFixtureWith(t, ng, syncConfig, setup)
		e := f.e
		id, cookie := f.session(wire.KindAnonymous, 1, wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("EUR")})
		e.Request("GET", "/", nil, "cookie", cookie).Finish()
		e.Serve() // cached before the VM's first tick
		f.o.Write(id, wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("GBP")})
		e.Tick()
		e.Serve() // the first poll: from the head, past the write
		s := e.Request("GET", "/", nil, "cookie", cookie)
		e.Serve()
		if s.Header("x-session-currency") != "GBP" {
			t.Fatalf("solo %v: the VM serves what it cached before it followed the feed (currency %q): the write before the feed's head is lost",
				solo, s.Header("x-session-currency"))
		}
	}
}

// syncPair makes two VMs of one proxy (shared data) with the sync feed on
// an origin that answers only when told, with a 60 s call timeout.
func syncPair(t *testing.T, ng NewGuest) (*Origin, []*Env) {
	o := NewOrigin(Start)
	o.APIKey = "edge-key"
	cfg := Config(baseExtra + syncConfig + `,"origin":{"cluster":"origin","apiKey":"edge-key","timeout":"60s"}`)
	vms := []*Env{NewEnv(t, ng, o), NewEnv(t, ng, o)}
	vms[1].ShareData(vms[0])
	for _, e := range vms {
		e.MustConfigure(cfg)
	}
	return o, vms
}

// testSyncGapDuringFetch: a VM that misses published batches drops its
// cache; an answer to a fetch in flight at that moment may predate what it
// missed, so it serves the request that waited for it and is not kept.
func testSyncGapDuringFetch(t *testing.T, ng NewGuest) {
	o, vms := syncPair(t, ng)
	leader, vm := vms[0], vms[1]
	step := func(ticks ...*Env) {
		o.Now = o.Now.Add(100 * time.Millisecond)
		for _, e := range vms {
			e.SetNow(o.Now)
		}
		for _, e := range ticks {
			e.Tick()
			if e == leader {
				e.Serve()
			}
		}
	}
	step(leader, vm) // the leader publishes, VM 1 joins
	f := &fixture{t: t, o: o, e: vm}
	id, cookie := f.session(wire.KindAnonymous, 1, wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("EUR")})
	s := vm.Request("GET", "/", nil, "cookie", cookie)
	p := vm.Pending()
	if len(p) != 1 {
		t.Fatalf("calls %+v, want the fetch", p)
	}
	status, body, hs := o.Reply(p[0]) // the origin answers now, the answer arrives late
	o.Write(id, wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("GBP")})
	for i := 0; i < 20; i++ { // more batches than the ring holds, VM 1 not ticking
		step(leader)
	}
	step(vm)
	vm.Answer(p[0], status, body, hs...)
	if s.Header("x-session-currency") != "EUR" {
		t.Fatalf("the waiting request: %v", s.Headers())
	}
	s = vm.Request("GET", "/", nil, "cookie", cookie)
	vm.Serve()
	if s.Header("x-session-currency") != "GBP" {
		t.Fatalf("an answer older than the batches the VM missed was kept: currency %q", s.Header("x-session-currency"))
	}
	if !vm.Logged("missed published batches") || vm.Metric("sessionedge_feed_resyncs_total") != 1 {
		t.Fatalf("the gap was not logged and counted: %d, %v", vm.Metric("sessionedge_feed_resyncs_total"), vm.Logs())
	}
}

// testSyncSlowPoll: the lease holder keeps its lease while its poll is in
// flight, however long the origin takes, so no other VM polls from the
// same head meanwhile (two publishers of one sequence).
func testSyncSlowPoll(t *testing.T, ng NewGuest) {
	o, vms := syncPair(t, ng)
	leader, vm := vms[0], vms[1]
	step := func() {
		o.Now = o.Now.Add(100 * time.Millisecond)
		for _, e := range vms {
			e.SetNow(o.Now)
			e.Tick()
		}
	}
	step()
	leader.Serve()
	vm.Serve()
	step() // the leader polls; the origin takes ten intervals to answer
	if len(leader.Pending()) != 1 {
		t.Fatalf("leader calls %+v", leader.Pending())
	}
	for i := 0; i < 10; i++ {
		step()
		if p := vm.Pending(); len(p) != 0 {
			t.Fatalf("interval %d of the slow poll: the other VM took the lease and polls too (%s)", i, p[0].Header(":path"))
		}
	}
	leader.Serve()
	step()
	leader.Serve()
	if len(vm.Pending()) != 0 {
		t.Fatal("the other VM polls")
	}
}
