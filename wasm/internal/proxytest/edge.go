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
)

// Scenarios of what crosses the edge: stripping, encoding, the assertion,
// compact forwarding, cross-site writes, caching, lifetimes, mint paths.

// AssertionSecret is the assertion key of the test configurations (id 4).
var AssertionSecret = []byte("assertion secret of at least 32 bytes")

// AssertionKeys verifies the assertions of the test configurations.
var AssertionKeys, _ = wire.NewAssertionKeys(4, map[uint8][]byte{4: AssertionSecret})

// AssertionConfig is the configuration member that turns the assertion on.
var AssertionConfig = `,"assertion":{"keys":{"4":"` + base64.StdEncoding.EncodeToString(AssertionSecret) + `"}}`

// visible reports whether every byte of v is visible ASCII (0x21–0x7e).
func visible(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// CheckForwarded fails unless every x-session-* header s forwards is
// visible ASCII.
func CheckForwarded(t testing.TB, s *Stream) {
	t.Helper()
	for _, p := range s.Headers() {
		if strings.HasPrefix(p.Key, "x-session-") && !visible(p.Value) {
			t.Fatalf("%s carries a byte outside visible ASCII: %q", p.Key, p.Value)
		}
	}
}

func testStripping(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, `,"tokenHeader":{"request":"sessionedge-token"}`)
	e := f.e
	id, cookie := f.session(wire.KindAnonymous, 1)
	tok := strings.TrimPrefix(cookie, "__Host-sid=")
	hint := string(Keyring.AppendHint(nil, id, 1, 1))
	// An open request: the client sends trailers after the headers (a gRPC
	// call over HTTP/2), once the request reached the upstream.
	s := e.OpenRequest("GET", "/", nil,
		"x_session_customer", "victim-42", "X_Session_Kind", "customer", "x-session_id", "spoofed",
		"X-SESSION-CONTEXT", "e30", "x_Session-Written", "9", "sessionedge-token", tok,
		"sessionedge-token-hint", hint, "SessionEdge_Token", "x", "accept", "text/html")
	e.Serve()
	if s.Header("x-session-id") != id.String() {
		t.Fatalf("token header not used: %v", s.Headers())
	}
	for _, p := range s.Headers() {
		k := strings.ReplaceAll(p.Key, "_", "-")
		switch {
		case strings.HasPrefix(k, "x-session-") && p.Key != k:
			t.Fatalf("an underscore variant reached the upstream: %s", p.Key)
		case k == "x-session-customer" || k == "x-session-written" || p.Value == "spoofed" || p.Value == "victim-42":
			t.Fatalf("a spoofed header reached the upstream: %s: %s", p.Key, p.Value)
		case k == "sessionedge-token" || k == "sessionedge-token-hint":
			t.Fatalf("the token or hint header reached the upstream: %s", p.Key)
		}
	}
	if s.Header("accept") != "text/html" {
		t.Fatal("an ordinary header was removed")
	}
	tr := s.RequestTrailers("x_session_customer", "victim", "X-Session-Id", "1", "sessionedge_token", tok, "grpc-status", "0")
	if len(tr) != 1 || tr[0].Key != "grpc-status" {
		t.Fatalf("request trailers after the filter: %v", tr)
	}
	resp := s.Respond("X_Session_Debug", "1", "x-session-written", "1", "x_session_token", "junk", "content-type", "text/html")
	for _, p := range resp {
		if strings.HasPrefix(strings.ReplaceAll(p.Key, "_", "-"), "x-session-") {
			t.Fatalf("response header %s reached the client", p.Key)
		}
	}
	// Response trailers only where the host delivers them: the edge's
	// Lifecycle has none (docs/edge.md), so there the app's trailers never
	// reach the filter, nor the client.
	if e.SupportsResponseTrailers() {
		if tr := s.ResponseTrailers("x_session_debug", "1", "trace", "ok"); len(tr) != 1 || tr[0].Key != "trace" {
			t.Fatalf("response trailers after the filter: %v", tr)
		}
	}
	// Trailers that arrive while the headers wait for the origin (headers,
	// then trailers, no body) do not bring the stripped headers back, nor
	// let the request go before it has its session.
	other, cookie := f.session(wire.KindAnonymous, 1)
	s = e.OpenRequest("GET", "/", nil, "cookie", cookie, "x_session_customer", "victim-42")
	if s.Action != uint32(abi.ActionPause) || s.Continued() {
		t.Fatalf("a cache miss did not hold the request: action %d", s.Action)
	}
	s.RequestTrailers("x_session_customer", "victim", "grpc-status", "0")
	if s.Continued() {
		t.Fatalf("the trailers let the request go without its session: %v", s.Headers())
	}
	e.Serve()
	if !s.Continued() || s.Header("x_session_customer") != "" || s.Header("x-session-customer") != "" {
		t.Fatalf("after trailers during the fetch: %v", s.Headers())
	}
	if s.Header("x-session-id") != other.String() {
		t.Fatalf("forwarded without its session after trailers during the fetch: %v", s.Headers())
	}
	if tr := s.Trailers(); len(tr) != 1 || tr[0].Key != "grpc-status" {
		t.Fatalf("request trailers after the fetch: %v", tr)
	}
}

func testEncoding(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, "")
	e := f.e
	id, _ := wire.NewID()
	if _, err := f.o.Write(id,
		wire.Op{Code: wire.OpSetField, Field: wire.FieldCartID, Value: wire.Text("cart 1\r\nx-evil: 1")},
		wire.Op{Code: wire.OpSetField, Field: wire.FieldLocale, Value: wire.Text("de-DE\x00")},
		wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("€%")},
		wire.Op{Code: wire.OpLogin, CustomerID: "müller\r\n\x7f", Generation: 2}); err != nil {
		t.Fatal(err)
	}
	s := e.Request("GET", "/", nil, "cookie", cookieOf(claimsAt(wire.KindCustomer, id, 2, e.Now(), time.Hour, 2*time.Hour)))
	e.Serve()
	CheckForwarded(t, s)
	for k, want := range map[string]string{"x-session-customer": "m%C3%BCller%0D%0A%7F", "x-session-cart": "cart%201%0D%0Ax-evil:%201",
		"x-session-locale": "de-DE%00", "x-session-currency": "%E2%82%AC%25"} {
		if got := s.Header(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func testCrossSite(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, `,"selfServiceOrigins":["https://admin.example.com"]`)
	e := f.e
	_, cookie := f.session(wire.KindAnonymous, 1)
	cases := []struct {
		name   string
		kv     []string
		status uint32
	}{
		{"no headers", nil, 200},
		{"same-origin", []string{"sec-fetch-site", "same-origin"}, 200},
		{"same-site", []string{"sec-fetch-site", "same-site"}, 200},
		{"none", []string{"sec-fetch-site", "none"}, 200},
		{"cross-site", []string{"sec-fetch-site", "cross-site"}, 403},
		{"unknown fetch site", []string{"sec-fetch-site", "sideways"}, 403},
		{"own origin", []string{"origin", "https://shop.example.com"}, 200},
		{"own origin, default port", []string{"origin", "https://Shop.Example.com:443"}, 200},
		{"other scheme", []string{"origin", "http://shop.example.com"}, 403},
		{"other origin", []string{"origin", "https://evil.example"}, 403},
		{"null origin", []string{"origin", "null"}, 403},
		{"allowed origin", []string{"origin", "https://admin.example.com", "sec-fetch-site", "same-site"}, 200},
		{"own origin but cross-site", []string{"origin", "https://shop.example.com", "sec-fetch-site", "cross-site"}, 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, m := range []struct {
				method, path string
				body         []byte
			}{{"PATCH", "/.session/context", []byte(`{"public":{"a":1}}`)}, {"DELETE", "/.session/context/public/a", nil}} {
				n := len(f.o.Requests)
				s := e.Request(m.method, m.path, m.body, append([]string{"cookie", cookie}, c.kv...)...)
				e.Serve()
				if l := s.Local(); l == nil || l.Status != c.status {
					t.Fatalf("%s: %+v, want %d", m.method, l, c.status)
				}
				if c.status == 403 && len(f.o.Requests) != n {
					t.Fatalf("%s: a cross-site write reached the origin", m.method)
				}
			}
		})
	}
	// Reading is not a write: a cross-site GET context is answered.
	s := e.Request("GET", "/.session/context", nil, "cookie", cookie, "sec-fetch-site", "cross-site", "origin", "https://evil.example")
	e.Serve()
	if l := s.Local(); l == nil || l.Status != 200 {
		t.Fatalf("cross-site GET: %+v", l)
	}
}

func testCacheControl(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, "")
	e := f.e
	cases := []struct{ app, want string }{
		{"", "private"},
		{"public, max-age=600, s-maxage=3600", "private, max-age=600"},
		{"no-store", "private, no-store"},
		{"private, max-age=5", "private, max-age=5"},
	}
	for _, c := range cases {
		s := e.Request("GET", "/", nil)
		var resp []abi.Pair
		if c.app == "" {
			resp = s.Respond()
		} else {
			resp = s.Respond("cache-control", c.app)
		}
		if len(SetCookies(resp)) != 1 {
			t.Fatal("no cookie for a new session")
		}
		if got := abi.All(resp, "cache-control"); len(got) != 1 || got[0] != c.want {
			t.Errorf("app %q: Cache-Control %q, want %q", c.app, got, c.want)
		}
		tok := CookieToken(SetCookies(resp)[0])
		s.Finish()
		// No cookie set: the app's Cache-Control stays as it is.
		s = e.Request("GET", "/", nil, "cookie", "__Host-sid="+tok)
		resp = s.Respond("cache-control", "public, max-age=60")
		if got := abi.All(resp, "cache-control"); len(got) != 1 || got[0] != "public, max-age=60" {
			t.Errorf("without a cookie the app's Cache-Control changed: %q", got)
		}
		s.Finish()
	}
}

func testAssertion(t *testing.T, ng NewGuest) {
	verify := func(t *testing.T, s *Stream, path string) *wire.Assertion {
		t.Helper()
		var a wire.Assertion
		var ctx []byte
		if v, ok := header(s, "x-session-context"); ok {
			ctx = []byte(v)
		}
		text := s.Header("x-session-assertion")
		if err := AssertionKeys.VerifyAssertion([]byte(text), []byte("shop.example.com"), []byte(path), ctx, s.env.Now(), 30*time.Second, &a); err != nil {
			t.Fatalf("assertion %q does not verify: %v", text, err)
		}
		return &a
	}
	t.Run("fields", func(t *testing.T) {
		f := newFixture(t, ng, AssertionConfig)
		e := f.e
		id, cookie := f.session(wire.KindAnonymous, 1, wire.Op{Code: wire.OpSetField, Field: wire.FieldCartID, Value: wire.Text("c")})
		s := e.Request("GET", "/p?q=1", nil, "cookie", cookie, "x-session-assertion", "forged")
		e.Serve()
		a := verify(t, s, "/p?q=1")
		if a.ID != id || a.Generation != 1 || a.Version != 1 || a.Status != wire.AssertOK || a.Kind != wire.KindAnonymous || a.IssuedAt != e.Now().UnixMilli() {
			t.Fatalf("assertion %+v", a)
		}
		if len(abi.All(s.Headers(), "x-session-assertion")) != 1 || s.Header("x-session-cart") != "c" {
			t.Fatal("fields mode lost a field or kept the forged assertion")
		}
		// Bound to the path: another path does not verify.
		var b wire.Assertion
		if AssertionKeys.VerifyAssertion([]byte(s.Header("x-session-assertion")), []byte("shop.example.com"), []byte("/p"), []byte(s.Header("x-session-context")), e.Now(), time.Minute, &b) == nil {
			t.Fatal("the assertion verifies for another path")
		}
		s = e.Request("GET", "/", nil)
		if a := verify(t, s, "/"); a.Status != wire.AssertNew || a.Version != 0 || a.Generation != 1 {
			t.Fatalf("minted: %+v", a)
		}
		_, other := f.session(wire.KindAnonymous, 1)
		s = e.Request("GET", "/", nil, "cookie", other)
		e.Answer(e.Pending()[0], 0, nil)
		if a := verify(t, s, "/"); a.Status != wire.AssertDegraded || a.Version != 0 || a.ContextDigest != ([16]byte{}) {
			t.Fatalf("degraded: %+v", a)
		}
	})
	t.Run("compact", func(t *testing.T) {
		f := newFixture(t, ng, AssertionConfig+`,"forward":{"mode":"compact"}`)
		e := f.e
		id, cookie := f.session(wire.KindAnonymous, 1, wire.Op{Code: wire.OpSetField, Field: wire.FieldCartID, Value: wire.Text("c")})
		s := e.Request("GET", "/", nil, "cookie", cookie)
		e.Serve()
		var names []string
		for _, p := range s.Headers() {
			if strings.HasPrefix(p.Key, "x-session-") {
				names = append(names, p.Key)
			}
		}
		if strings.Join(names, ",") != "x-session-context,x-session-context-status,x-session-assertion" {
			t.Fatalf("compact mode forwards %v", names)
		}
		if a := verify(t, s, "/"); a.ID != id || a.Version != 1 || ForwardedSession(t, s).Fields[wire.FieldCartID].Text != "c" {
			t.Fatalf("compact: %+v", a)
		}
		// Degraded: a view built from the token.
		_, other := f.session(wire.KindAnonymous, 1)
		s = e.Request("GET", "/", nil, "cookie", other)
		e.Answer(e.Pending()[0], 503, nil)
		fs := ForwardedSession(t, s)
		a := verify(t, s, "/")
		if s.Header("x-session-context-status") != "degraded" || a.Status != wire.AssertDegraded || fs.ID != a.ID ||
			fs.Kind != wire.KindAnonymous || fs.Generation != 1 || fs.Fields[wire.FieldSiteCode].Text != "DE" {
			t.Fatalf("compact degraded: %+v %+v", fs, a)
		}
	})
}

// header returns the first value of key and whether it was forwarded.
func header(s *Stream, key string) (string, bool) {
	for _, p := range s.Headers() {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

func testLifetimes(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, "")
	e := f.e
	id, _ := f.session(wire.KindAnonymous, 1)
	// A token issued with its own 10-minute idle window (the kind's is 60).
	c := claimsAt(wire.KindAnonymous, id, 1, e.Now(), 10*time.Minute, 20*time.Minute)
	cookie := cookieOf(c)
	e.Request("GET", "/", nil, "cookie", cookie)
	e.Serve()
	e.Advance(4 * time.Minute) // 6 of 10 minutes left: no re-issue
	if got := SetCookies(e.Request("GET", "/", nil, "cookie", cookie).Respond()); len(got) != 0 {
		t.Fatalf("re-issued with more than half the token's window left: %q", got)
	}
	e.Advance(2 * time.Minute) // 4 left: re-issue with the token's window
	got := SetCookies(e.Request("GET", "/", nil, "cookie", cookie).Respond())
	if len(got) != 1 {
		t.Fatal("no re-issue with less than half the token's window left")
	}
	r := Claims(t, CookieToken(got[0]), e.Now())
	if r.IdleDeadline != e.Now().Unix()+600 || r.HardDeadline != c.HardDeadline {
		t.Fatalf("re-issued %+v from %+v: want the 10-minute window and the same hard deadline", r, c)
	}
	if want := "; Max-Age=" + strconv.FormatInt(c.HardDeadline-e.Now().Unix(), 10); !strings.Contains(got[0], want) {
		t.Fatalf("Set-Cookie %q: want %s (the hard deadline)", got[0], want)
	}
	// Near the hard deadline the idle window cannot grow: no more cookies.
	cookie = "__Host-sid=" + CookieToken(got[0])
	e.Advance(8 * time.Minute) // idle deadline capped at the hard one, 6 minutes away
	got = SetCookies(e.Request("GET", "/", nil, "cookie", cookie).Respond())
	if len(got) != 1 || Claims(t, CookieToken(got[0]), e.Now()).IdleDeadline != c.HardDeadline {
		t.Fatalf("re-issue near the hard deadline: %q", got)
	}
	cookie = "__Host-sid=" + CookieToken(got[0])
	e.Advance(4 * time.Minute)
	if got := SetCookies(e.Request("GET", "/", nil, "cookie", cookie).Respond()); len(got) != 0 {
		t.Fatalf("re-issued a token that cannot live longer: %q", got)
	}
}

func itoa(n int64) string { return strings.TrimSpace(strings.Repeat(" ", 0)) + formatInt(n) }

func formatInt(n int64) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

func testSkipMint(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, `,"mint":{"skipPaths":["/static/","/healthz"]}`)
	e := f.e
	s := e.Request("GET", "/static/app.js", nil, "x-session-id", "spoofed")
	if !s.Forwarded() {
		t.Fatal("a skip path was not forwarded")
	}
	for _, p := range s.Headers() {
		if strings.HasPrefix(p.Key, "x-session-") {
			t.Fatalf("a skip path forwarded %s", p.Key)
		}
	}
	if resp := s.Respond(); len(SetCookies(resp)) != 0 || abi.Get(resp, "cache-control") != "" {
		t.Fatalf("a skip path set a cookie: %v", resp)
	}
	// A valid token is still honoured there.
	id, cookie := f.session(wire.KindAnonymous, 1)
	s = e.Request("GET", "/healthz", nil, "cookie", cookie)
	e.Serve()
	if s.Header("x-session-id") != id.String() {
		t.Fatalf("a token on a skip path: %v", s.Headers())
	}
	s = e.Request("GET", "/products", nil)
	if s.Header("x-session-id") == "" {
		t.Fatal("other paths stopped minting")
	}
}

// testNoSecretsInLogs runs flows that log (bad upstream tokens, refused
// hints, failed calls, the breaker) and checks that no token, hint or API
// key appears in any log line.
func testNoSecretsInLogs(t *testing.T, ng NewGuest) {
	f := newFixture(t, ng, `,"origin":{"cluster":"origin","apiKey":"edge-key","breaker":{"failures":2}},"tokenHeader":{"request":"sessionedge-token"}`)
	e := f.e
	id, cookie := f.session(wire.KindAnonymous, 1)
	tok := strings.TrimPrefix(cookie, "__Host-sid=")
	hint := string(Keyring.AppendHint(nil, id, 1, 7))
	secrets := []string{tok, hint, "edge-key", base64.StdEncoding.EncodeToString(Secret)}
	s := e.Request("GET", "/", nil, "cookie", cookie+"; __Host-sidv="+hint)
	e.Serve()
	s.Respond("x-session-token", tok[:len(tok)-2]+"AA", "x-session-written", "x"+hint)
	s = e.Request("GET", "/", nil)
	secrets = append(secrets, CookieToken(SetCookies(s.Respond())[0]))
	for i := 0; i < 3; i++ {
		_, c := f.session(wire.KindAnonymous, 1)
		secrets = append(secrets, strings.TrimPrefix(c, "__Host-sid="))
		e.Request("GET", "/", nil, "sessionedge-token", strings.TrimPrefix(c, "__Host-sid="))
		for _, p := range e.Pending() {
			e.Answer(p, 0, nil)
		}
	}
	if len(e.Logs()) < 3 {
		t.Fatalf("the flows logged too little to prove anything: %v", e.Logs())
	}
	for _, l := range e.Logs() {
		for _, sec := range secrets {
			if strings.Contains(l.Msg, sec) || len(sec) > 20 && strings.Contains(l.Msg, sec[:20]) {
				t.Fatalf("log line %q holds a secret", l.Msg)
			}
		}
	}
}
