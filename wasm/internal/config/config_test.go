package config

import (
	"os"
	"strings"
	"testing"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

const key = `{"keys":{"1":"c2Vzc2lvbmVkZ2UtZXhhbXBsZS1rZXktMzItYnl0ZXMhIQ=="}`

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(key + `}`))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"cookie", c.Cookie == Cookie{Name: "__Host-sid", Path: "/", HTTPOnly: true, Secure: true, SameSite: "Lax"}},
		{"active key", c.Keyring.Active() == 1},
		{"anonymous", c.Kinds[wire.KindAnonymous] == KindPolicy{Idle: Hour, Hard: 24 * Hour, OnIdle: IdleEnd}},
		{"customer", c.Kinds[wire.KindCustomer] == KindPolicy{Idle: 30 * Minute, Hard: 6 * Hour, OnIdle: IdleSoftLogout}},
		{"shared", c.Kinds[wire.KindShared] == KindPolicy{}},
		{"origin", c.Origin == Origin{Cluster: "origin", Authority: "origin", TimeoutMs: 2000, BreakerFailures: 5, BreakerCoolDown: 5 * Second}},
		{"sync", c.SyncInterval == Second && c.SyncLimit == 1000 && c.TouchBuffer == 100000},
		{"cache", c.CacheEntries == 10000 && c.CacheBytes == 32<<20 && c.TokenEntries == 10000 && c.MaxStale == Minute},
		{"fail open", !c.FailClosed},
		{"prefix", c.SelfServicePrefix == "/.session/"},
		{"forward custom and public", c.Forward == 1<<wire.NamespaceCustom|1<<wire.NamespacePublic},
		{"fields mode", !c.Compact},
		{"no assertion", c.Assertion == nil},
		{"mints everywhere", len(c.SkipMint) == 0},
		{"own origin only", len(c.SelfServiceOrigins) == 0},
		{"no token header", c.TokenRequest == "" && c.TokenResponse == "" && c.HintRequest == "" && c.HintResponse == ""},
		{"hint cookie", c.HintCookie == "__Host-sidv"},
		{"limits", c.Limits == wire.DefaultLimits},
		{"pairs writes", !c.SingleHeaderWrites},
		{"self-service fields", c.SelfServiceFields == 1<<wire.FieldSiteCode|1<<wire.FieldCurrency|1<<wire.FieldTargetLocation|1<<wire.FieldTrackingAllowed},
		{"no captures", len(c.Capture.Names) == 0 && !c.Capture.Query && !c.Capture.Cookies},
		{"address prefixes", c.Device == Device{AddrV4: 24, AddrV6: 48}},
		{"no consent cookie", c.ConsentCookie == ""},
	}
	for _, ch := range checks {
		t.Run(ch.name, func(t *testing.T) {
			if !ch.ok {
				t.Fatalf("default %s wrong: %+v", ch.name, c)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	c, err := Parse([]byte(key + `,"sessions":{"anonymous":{"idle":900,"hard":"none"}},"sites":{"Shop.Example.COM":{"currency":"EUR"}},` +
		`"tokenHeader":{"request":"SessionEdge-Token"},"forwardNamespaces":["public"],"failMode":"closed"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kinds[wire.KindAnonymous].Idle != 15*Minute || c.Kinds[wire.KindAnonymous].Hard != 0 {
		t.Fatalf("anonymous %+v", c.Kinds[wire.KindAnonymous])
	}
	if c.Site([]byte("shop.example.com:443")).Currency != "EUR" || c.Site([]byte("other")).Currency != "" {
		t.Fatal("site lookup ignores case or port")
	}
	if c.TokenRequest != "sessionedge-token" || c.TokenResponse != "sessionedge-token" {
		t.Fatalf("token headers %q %q", c.TokenRequest, c.TokenResponse)
	}
	if c.Forward != 1<<wire.NamespacePublic || !c.FailClosed {
		t.Fatalf("forward %b, fail closed %v", c.Forward, c.FailClosed)
	}
	if c.HintRequest != "sessionedge-token-hint" || c.HintResponse != "sessionedge-token-hint" {
		t.Fatalf("hint headers %q %q", c.HintRequest, c.HintResponse)
	}
}

func TestParseNewFields(t *testing.T) {
	secret := `"YXNzZXJ0aW9uLWtleS1vZi1hdC1sZWFzdC0zMi1ieXRlcyEh"`
	c, err := Parse([]byte(key + `,"origin":{"timeout":1.5,"breaker":{"failures":3,"coolDown":"2s"}},` +
		`"sync":{"interval":"500ms","touchBuffer":5000},"cache":{"maxStale":"30s"},` +
		`"mint":{"skipPaths":["/static/","/healthz"]},"selfServiceOrigins":["HTTPS://Admin.Example.com:443","http://a.b:8080"],` +
		`"forward":{"mode":"compact"},"assertion":{"keys":{"3":` + secret + `}},` +
		`"sessions":{"customer":{"idle":0,"hard":"none"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Origin.TimeoutMs != 1500 || c.Origin.BreakerFailures != 3 || c.Origin.BreakerCoolDown != 2*Second {
		t.Fatalf("origin %+v", c.Origin)
	}
	if c.SyncInterval != 500*Millisecond || c.TouchBuffer != 5000 || c.MaxStale != 30*Second {
		t.Fatalf("sync %v touch buffer %d max stale %v", c.SyncInterval, c.TouchBuffer, c.MaxStale)
	}
	if strings.Join(c.SkipMint, " ") != "/static/ /healthz" {
		t.Fatalf("skip paths %q", c.SkipMint)
	}
	if strings.Join(c.SelfServiceOrigins, " ") != "https://admin.example.com http://a.b:8080" {
		t.Fatalf("origins %q", c.SelfServiceOrigins)
	}
	if !c.Compact || c.Assertion == nil || c.Assertion.Active() != 3 {
		t.Fatalf("compact %v assertion %v", c.Compact, c.Assertion)
	}
	// Zero keeps the default, "none" removes the timeout.
	if c.Kinds[wire.KindCustomer].Idle != 30*Minute || c.Kinds[wire.KindCustomer].Hard != 0 {
		t.Fatalf("customer %+v", c.Kinds[wire.KindCustomer])
	}
	c, err = Parse([]byte(key + `,"cache":{"maxStale":"none"}}`))
	if err != nil || c.MaxStale != 0 {
		t.Fatalf("maxStale none: %v %v", c, err)
	}
	// A long sync interval raises the default bound on staleness.
	c, err = Parse([]byte(key + `,"sync":{"interval":"1m"}}`))
	if err != nil || c.MaxStale != 3*Minute {
		t.Fatalf("maxStale with a 1m interval: %v %v", c.MaxStale, err)
	}
}

func TestParseSeedFields(t *testing.T) {
	c, err := Parse([]byte(key + `,"selfService":{"fields":["currency","locale"]},` +
		`"sites":{"shop.example.de":{"currency":"EUR","currencies":["CHF","EUR"],"locales":["de-DE","de-CH"]}},` +
		`"capture":{"query":["utm_source","cc"],"cookies":["cc","ab"],"tracking":["utm_source"],"segment":["ab","cc"],"maxValueLen":50,"maxCount":4},` +
		`"device":{"addrPrefix":{"v6":56}},"consent":{"cookie":"se_dnt"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.SelfServiceFields != 1<<wire.FieldCurrency|1<<wire.FieldLocale {
		t.Fatalf("self-service fields %b", c.SelfServiceFields)
	}
	site := c.Site([]byte("shop.example.de"))
	for _, v := range []struct {
		f  wire.Field
		v  string
		ok bool
	}{{wire.FieldCurrency, "EUR", true}, {wire.FieldCurrency, "CHF", true}, {wire.FieldCurrency, "USD", false},
		{wire.FieldLocale, "de-CH", true}, {wire.FieldSiteCode, "DE", false}, {wire.FieldSiteCode, "", false}} {
		if site.Allows(v.f, v.v) != v.ok {
			t.Errorf("site allows %s %q: %v", v.f, v.v, !v.ok)
		}
	}
	cp := c.Capture
	if !cp.Query || !cp.Cookies || cp.MaxValueLen != 50 || cp.MaxCount != 4 || len(cp.Names) != 3 {
		t.Fatalf("capture %+v", cp)
	}
	want := []CaptureName{{Name: "utm_source", Query: true, Tracking: true}, {Name: "cc", Query: true, Cookie: true, Segment: true},
		{Name: "ab", Cookie: true, Segment: true}}
	for i, n := range want {
		if cp.Names[i] != n {
			t.Fatalf("capture name %d: %+v, want %+v", i, cp.Names[i], n)
		}
	}
	if len(cp.Segment) != 2 || cp.Names[cp.Segment[0]].Name != "ab" || cp.Names[cp.Segment[1]].Name != "cc" {
		t.Fatalf("segment names %v: want the configured order", cp.Segment)
	}
	if c.Device != (Device{AddrV4: 24, AddrV6: 56}) || c.ConsentCookie != "se_dnt" {
		t.Fatalf("device %+v, consent %q", c.Device, c.ConsentCookie)
	}
	c, err = Parse([]byte(key + `,"device":{"addrPrefix":"none"},"selfService":{"fields":[]},"capture":{"cookies":["x"]}}`))
	if err != nil || c.Device != (Device{}) || c.SelfServiceFields != 0 || c.Capture.MaxValueLen != 100 || c.Capture.MaxCount != 8 {
		t.Fatalf("none: %+v, %v", c, err)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ extra, field string }{
		{`"origin":{"timeoutMs":2000}`, "origin.timeoutMs"},
		{`"origin":{"timeout":"none"}`, "origin.timeout"},
		{`"origin":{"timeout":"2m"}`, "origin.timeout"},
		{`"origin":{"breaker":{"failures":0}}`, "origin.breaker.failures"},
		{`"origin":{"breaker":{"coolDown":"soon"}}`, "origin.breaker.coolDown"},
		{`"origin":{"breaker":{"tries":1}}`, "origin.breaker.tries"},
		{`"sync":{"interval":-1}`, "sync.interval"},
		{`"sync":{"touchBuffer":10}`, "sync.touchBuffer"},
		{`"cache":{"maxStale":"1s"}`, "cache.maxStale"},
		{`"mint":{"skipPaths":["static"]}`, "mint.skipPaths[0]"},
		{`"mint":{"skip":[]}`, "mint.skip"},
		{`"selfServiceOrigins":["admin.example.com"]`, "selfServiceOrigins[0]"},
		{`"selfServiceOrigins":["https://a.b/path"]`, "selfServiceOrigins[0]"},
		{`"forward":{"mode":"headers"}`, "forward.mode"},
		{`"assertion":{"keys":{}}`, "assertion.keys"},
		{`"assertion":{"keys":{"1":"c2hvcnQ="}}`, "assertion.keys.1"},
		{`"assertion":{"keys":{"1":"YXNzZXJ0aW9uLWtleS1vZi1hdC1sZWFzdC0zMi1ieXRlcyEh"},"activeKey":2}`, "assertion.activeKey"},
		{`"tokenHeader":{"request":"X_Session_Token"}`, "tokenHeader.request"},
		{`"sessions":{"anonymous":{"idle":"soon"}}`, "sessions.anonymous.idle"},
		{`"selfService":{"fields":["customerId"]}`, "selfService.fields[0]"},
		{`"selfService":{"fields":["currency","cartId"]}`, "selfService.fields[1]"},
		{`"selfService":{"writable":[]}`, "selfService.writable"},
		{`"sites":{"*":{"currencies":["EUR",""]}}`, "sites.*.currencies[1]"},
		{`"sites":{"*":{"currencies":"EUR"}}`, "sites.*.currencies"},
		{`"capture":{"query":["utm source"]}`, "capture.query[0]"},
		{`"capture":{"tracking":["utm_source"]}`, "capture.tracking[0]"},
		{`"capture":{"query":["a"],"segment":["a","b"]}`, "capture.segment[1]"},
		{`"capture":{"maxValueLen":0}`, "capture.maxValueLen"},
		{`"capture":{"maxCount":65}`, "capture.maxCount"},
		{`"capture":{"headers":["x"]}`, "capture.headers"},
		{`"device":{"addrPrefix":{"v4":33}}`, "device.addrPrefix.v4"},
		{`"device":{"addrPrefix":{"v6":-1}}`, "device.addrPrefix.v6"},
		{`"device":{"addrPrefix":"all"}`, "device.addrPrefix"},
		{`"device":{"userAgent":false}`, "device.userAgent"},
		{`"consent":{"cookie":"a b"}`, "consent.cookie"},
		{`"consent":{"cookie":"__Host-sid"}`, "consent.cookie"},
		{`"capture":{"cookies":["__Host-sidv"]}`, "capture.cookies"},
		{`"capture":{"cookies":["dnt"]},"consent":{"cookie":"dnt"}`, "capture.cookies"},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(key + "," + tc.extra + "}"))
		e, ok := err.(*Error)
		if !ok || e.Field != tc.field {
			t.Errorf("%s: error %v, want one naming %s", tc.extra, err, tc.field)
		}
	}
}

// TestDocExample parses the complete configuration of docs/filter.md, so the
// documentation cannot drift from the parser.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/filter.md")
	if err != nil {
		t.Skip("docs/filter.md not found:", err)
	}
	_, rest, ok := strings.Cut(string(doc), "```json\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no json block in docs/filter.md")
	}
	if _, err := Parse([]byte(block)); err != nil {
		t.Fatalf("the documented configuration does not parse: %v", err)
	}
}
