package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/examples/internal/e2e"
	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/sdktest"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// currencyCodes are the currencies of the app's table.
func currencyCodes() []string {
	var out []string
	for _, c := range currencies {
		out = append(out, c.Code)
	}
	return out
}

// stackOptions runs the storefront behind the real edge with the site
// configuration it needs: the defaults of a new session and the currencies
// the shopper may switch to through the edge (the app's table), the devices
// the edge records, the campaign parameters it captures (tracking data,
// which the consent cookie se_dnt turns off); plugin adds more of the
// filter's configuration.
func stackOptions(plugin map[string]any) e2e.Options {
	pc := map[string]any{
		"sites": map[string]any{"*": map[string]any{"siteCode": "DE", "currency": "EUR", "targetLocation": "DE", "locale": "de-DE",
			"currencies": currencyCodes()}},
		"selfService": map[string]any{"fields": []string{"currency"}},
		"device":      map[string]any{"addrPrefix": map[string]any{"v4": 24, "v6": 48}},
		"capture": map[string]any{"query": []string{"utm_source", "utm_campaign"}, "tracking": []string{"utm_source", "utm_campaign"},
			"maxValueLen": 64, "maxCount": 4},
		"consent": map[string]any{"cookie": "se_dnt"},
	}
	for k, v := range plugin {
		pc[k] = v
	}
	return e2e.Options{App: "./examples/storefront", Plugin: pc}
}

// startWithFakes serves the app behind sdktest's fake edge, with the same
// site configuration, and sdktest's fake origin (API key "app"): the app
// code is the real one, the session plumbing is played. They stop when the
// test ends.
func startWithFakes(t *testing.T) (*sdktest.FakeOrigin, *sdktest.FakeEdge) {
	t.Helper()
	f := e2e.StartFakes(t, sdktest.FakeOriginConfig{APIKeys: map[string][]string{"app": {"sessions:read", "sessions:write"}}},
		sdktest.FakeEdgeConfig{
			Defaults:          map[wire.Field]string{wire.FieldSiteCode: "DE", wire.FieldCurrency: "EUR", wire.FieldTargetLocation: "DE", wire.FieldLocale: "de-DE"},
			SelfServiceFields: []wire.Field{wire.FieldCurrency},
			Allowed:           map[wire.Field][]string{wire.FieldCurrency: currencyCodes()}},
		func(originURL string, keys *wire.AssertionKeys) (http.Handler, error) {
			return newApp(config{OriginURL: originURL, APIKey: "app", AssertionKeys: keys})
		})
	return f.Origin, f.Edge
}

// TestStorefrontWithFakes walks the shop through sdktest's fake edge and
// fake origin.
func TestStorefrontWithFakes(t *testing.T) {
	origin, edge := startWithFakes(t)
	client, err := sdk.New(sdk.Config{BaseURL: origin.URL, APIKey: "app"})
	if err != nil {
		t.Fatal(err)
	}
	walkStorefront(t, edge.URL, client)
}

// TestStorefrontEndToEnd walks the shop through the real edge proxy running
// the filter, with the real origin.
func TestStorefrontEndToEnd(t *testing.T) {
	stack := e2e.Start(t, stackOptions(nil))
	walkStorefront(t, stack.EdgeURL, stack.Client(t))
}

// TestStorefrontEndToEndCompact is the same walk with the filter in compact
// forward mode: the edge sends only the context, its status and the
// assertion, and the app's view comes from those alone.
func TestStorefrontEndToEndCompact(t *testing.T) {
	stack := e2e.Start(t, stackOptions(map[string]any{"forward": map[string]any{"mode": "compact"}}))
	walkStorefront(t, stack.EdgeURL, stack.Client(t))
	h := e2e.NewBrowser(stack.EdgeURL).Get(t, "/api/headers").Body
	if strings.Contains(h, "x-session-id:") || strings.Contains(h, "x-session-currency:") {
		t.Fatalf("compact mode forwarded per-field headers:\n%s", h)
	}
}

// TestStorefrontCampaignAndConsent: the edge captures the campaign
// parameters of the landing page's URL into the session, and the page that
// lands shows them at once, unless the shopper's consent cookie turns
// tracking off.
func TestStorefrontCampaignAndConsent(t *testing.T) {
	stack := e2e.Start(t, stackOptions(nil))
	b := e2e.NewBrowser(stack.EdgeURL)
	mustPage(t, b.Get(t, "/?utm_source=newsletter&utm_campaign=spring-sale"), `id="session-campaign">spring-sale`)

	private := e2e.NewBrowser(stack.EdgeURL)
	private.SetCookie("se_dnt", "1")
	p := private.Get(t, "/?utm_source=newsletter&utm_campaign=spring-sale")
	mustPage(t, p, `id="session-tracking">off`)
	if strings.Contains(p.Body, "spring-sale") {
		t.Fatal("the edge captured tracking data despite the consent cookie")
	}
}

// TestStorefrontCampaignStays: the campaign captured on the landing page
// (the request that minted the session) stays in the session: the next
// page shows it, and the origin's copy gets it with the site defaults. The
// stack's edge runs two filter VMs and hands requests to them in turn, so
// the next request is served by another VM than the one that captured.
func TestStorefrontCampaignStays(t *testing.T) {
	stack := e2e.Start(t, stackOptions(nil))
	client := stack.Client(t)
	b := e2e.NewBrowser(stack.EdgeURL)
	mustPage(t, b.Get(t, "/?utm_campaign=spring-sale"), `id="session-campaign">spring-sale`)
	st := apiState(t, b) // the token came back: the edge reports the session with what it captured
	if st.Campaign != "spring-sale" {
		t.Errorf("the page after the landing page lost the campaign: %+v", st)
	}
	waitFor(t, "the origin's copy with the campaign and the site defaults", func() bool {
		s, err := client.Get(context.Background(), st.ID)
		if err != nil {
			return false
		}
		v, _ := s.Attr(wire.NamespacePublic, "utm_campaign")
		return v.Text == "spring-sale" && s.Text(wire.FieldCurrency) == "EUR" && s.Text(wire.FieldSiteCode) == "DE"
	})
}

// TestStorefrontRefusesForgedHeaders sends x-session-* headers straight to
// the app's port, past the edge: without the edge's signature they get 403,
// and an assertion the edge signed for one request does not carry over to
// another path.
func TestStorefrontRefusesForgedHeaders(t *testing.T) {
	stack := e2e.Start(t, stackOptions(nil))
	shopper := e2e.NewBrowser(stack.EdgeURL)
	st := apiState(t, shopper)
	forged := map[string]string{"x-session-id": st.ID, "x-session-kind": "customer", "x-session-customer": "alice",
		"x-session-context-status": "ok"}
	for _, tt := range []struct {
		name, method, path string
		header             map[string]string
		want               int
	}{
		{"no session headers", "GET", "/", nil, http.StatusForbidden},
		{"forged customer", "GET", "/api/session", forged, http.StatusForbidden},
		{"forged write into another session's cart", "POST", "/cart", forged, http.StatusForbidden},
		{"health check needs no session", "GET", "/healthz", nil, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := direct(t, tt.method, stack.AppURL+tt.path, "", tt.header); got != tt.want {
				t.Fatalf("status %d, want %d", got, tt.want)
			}
		})
	}
	t.Run("an assertion replayed on another path", func(t *testing.T) {
		// /api/headers shows what the edge forwarded, assertion included.
		seen := map[string]string{}
		for _, line := range strings.Split(shopper.Get(t, "/api/headers").Body, "\n") {
			if k, v, ok := strings.Cut(line, ": "); ok {
				seen[k] = v
			}
		}
		if seen[sdk.HeaderAssertion] == "" {
			t.Fatalf("the edge forwarded no assertion: %v", seen)
		}
		if got := direct(t, "POST", stack.AppURL+"/cart", strings.TrimPrefix(stack.EdgeURL, "http://"), seen); got != http.StatusForbidden {
			t.Fatalf("status %d, want 403", got)
		}
	})
}

// direct sends the form sku=mug to url straight to the app, past the edge,
// with header (and Host host, if not ""), and returns the answer's status.
func direct(t *testing.T, method, url, host string, header map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader("sku=mug"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestStorefrontRejectsDirectRequests is the same check without processes:
// the app's handler behind its middleware, called directly.
func TestStorefrontRejectsDirectRequests(t *testing.T) {
	keys := sdktest.NewAssertionKeys()
	h, err := newApp(config{OriginURL: "http://127.0.0.1:1", AssertionKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := wire.ParseID("AAECAwQFBgcICQoLDA0ODw")
	for _, tt := range []struct {
		name    string
		path    string
		prepare func(r *http.Request)
		want    int
	}{
		{"no session headers", "/", nil, http.StatusForbidden},
		{"forged session", "/api/headers", func(r *http.Request) {
			r.Header.Set("x-session-id", id.String())
			r.Header.Set("x-session-kind", "customer")
		}, http.StatusForbidden},
		{"signed by another edge", "/api/headers", func(r *http.Request) {
			sdktest.Forward(r, sdktest.NewAssertionKeys(), &wire.Session{ID: id, Kind: wire.KindCustomer, Generation: 2}, wire.AssertOK)
		}, http.StatusForbidden},
		{"signed by the edge", "/api/headers", func(r *http.Request) {
			sdktest.Forward(r, keys, &wire.Session{ID: id, Kind: wire.KindAnonymous, Generation: 1}, wire.AssertNew)
		}, http.StatusOK},
		{"health check needs no session", "/healthz", nil, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tt.path, nil)
			if tt.prepare != nil {
				tt.prepare(req)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, tt.want)
			}
		})
	}
	if _, err := newApp(config{OriginURL: "http://127.0.0.1:1"}); err == nil {
		t.Fatal("the app started without assertion keys")
	}
}

func TestPrice(t *testing.T) {
	for _, tt := range []struct {
		cents int64
		code  string
		want  string
	}{
		{1299, "EUR", "€12.99"},
		{1299, "USD", "$14.03"},
		{1299, "GBP", "£11.04"},
		{799, "CHF", "CHF 7.51"},
		{100, "XXX", "€1.00"},
	} {
		if got := price(tt.cents, tt.code); got != tt.want {
			t.Errorf("price(%d, %s) = %q, want %q", tt.cents, tt.code, got, tt.want)
		}
	}
}

func apiState(t *testing.T, b *e2e.Browser) state {
	t.Helper()
	var st state
	b.GetJSON(t, "/api/session", http.StatusOK, &st)
	return st
}

// waitFor polls cond until it holds, for what may take the edge's activity
// report or the change feed to arrive (sync intervals of a fraction of a
// second; the deadline allows for a loaded machine).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func mustPage(t *testing.T, p *e2e.Page, wants ...string) {
	t.Helper()
	if p.Status != http.StatusOK {
		t.Fatalf("%s: status %d: %s", p.URL, p.Status, p.Body)
	}
	for _, w := range wants {
		if !strings.Contains(p.Body, w) {
			t.Fatalf("%s: page lacks %q:\n%s", p.URL, w, p.Body)
		}
	}
}

// walkStorefront is the shopper's story of the README, checked at every step
// against what the origin holds. Every page after a write must show the
// write at once: no waiting for the change feed, no retries.
func walkStorefront(t *testing.T, base string, client *sdk.Client) {
	ctx := context.Background()
	b := e2e.NewBrowser(base)
	b.Header.Set("User-Agent", "alice-laptop")

	// An anonymous visitor arrives: the edge mints a session and a cookie.
	p := b.Get(t, "/")
	mustPage(t, p, "Browsing anonymously", `id="session-kind">anonymous`)
	token := b.Cookie("__Host-sid")
	if token == "" {
		t.Fatalf("no __Host-sid cookie; Set-Cookie seen: %q", b.SetCookies)
	}
	st := apiState(t, b)
	id := st.ID
	if _, err := wire.ParseID(id); err != nil || st.Kind != "anonymous" {
		t.Fatalf("session %+v", st)
	}
	if h := b.Get(t, "/api/headers"); !strings.Contains(h.Body, "x-session-assertion: ") || !strings.Contains(h.Body, "x-session-context: ") {
		t.Fatalf("forwarded headers:\n%s", h.Body)
	}
	if again := apiState(t, b); again.ID != id {
		t.Fatalf("second request has session %s, first %s: the cookie did not stick", again.ID, id)
	}

	// Add to cart three times: the redirected page shows each add at once,
	// and the cart keeps one id.
	p = b.Post(t, "/cart", url.Values{"sku": {"mug"}})
	if u, err := url.Parse(p.URL); err != nil || u.Path != "/" || u.Query().Has("v") {
		t.Fatalf("add to cart redirected to %q: the page must need no version", p.URL)
	}
	mustPage(t, p, "Added Edge-proof mug", "× 1", `id="cart-id">cart-`)
	cartID := apiState(t, b).CartID
	mustPage(t, b.Post(t, "/cart", url.Values{"sku": {"mug"}}), "× 2", "€25.98", cartID)
	mustPage(t, b.Post(t, "/cart", url.Values{"sku": {"tee"}}), "× 2", "× 1", "€50.97", cartID)
	if got := apiState(t, b).CartID; got != cartID || !strings.HasPrefix(cartID, "cart-") {
		t.Fatalf("three adds gave cart ids %q and %q", cartID, got)
	}
	s, err := client.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if q, _ := s.Attr(wire.NamespaceCustom, "cart.mug"); s.Text(wire.FieldCartID) != cartID || q.Int != 2 {
		t.Fatalf("origin has cart %q, mug %+v", s.Text(wire.FieldCartID), q)
	}
	// The app's first write created the session at the origin; the SDK
	// gave it the site defaults the edge applied, so the origin's copy (what
	// a back office or a webhook sees) has what the shopper sees.
	if s.Text(wire.FieldSiteCode) != "DE" || s.Text(wire.FieldCurrency) != "EUR" || s.Text(wire.FieldLocale) != "de-DE" {
		t.Fatalf("the origin's copy lacks the site defaults: %+v", s.Fields)
	}

	// Switch currency at the edge, as the page's script does: the shopper
	// sets it through the edge's self-service endpoint, without the app;
	// the page after shows prices in it, and the origin's copy has it.
	p = b.Send(t, "PATCH", "/.session/context", map[string]any{"currency": "GBP"})
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `"currency":"GBP"`) {
		t.Fatalf("PATCH /.session/context: %d %s", p.Status, p.Body)
	}
	mustPage(t, b.Get(t, "/"), `id="currency">GBP`, "£22.08")
	if s, err := client.Get(ctx, id, "currency"); err != nil || s.Text(wire.FieldCurrency) != "GBP" {
		t.Fatalf("the origin has %+v, %v", s, err)
	}
	// A currency the site does not sell is refused, naming the field; so
	// is a field the shopper may not set.
	for _, body := range []map[string]any{{"currency": "JPY"}, {"customerId": "mallory"}, {"cartId": "cart-000000000000"}} {
		p = b.Send(t, "PATCH", "/.session/context", body)
		var e struct {
			Error struct{ Field string } `json:"error"`
		}
		json.Unmarshal([]byte(p.Body), &e)
		if p.Status != http.StatusBadRequest || len(body) != 1 || body[e.Error.Field] == nil {
			t.Fatalf("PATCH %v: %d %s, want 400 naming the field", body, p.Status, p.Body)
		}
	}
	// A write from another site is refused.
	b.Header.Set("Origin", "https://evil.example")
	if p = b.Send(t, "PATCH", "/.session/context", map[string]any{"currency": "CHF"}); p.Status != http.StatusForbidden {
		t.Fatalf("a cross-site PATCH: %d %s", p.Status, p.Body)
	}
	b.Header.Del("Origin")
	mustPage(t, b.Get(t, "/"), `id="currency">GBP`)

	// Log in: same id and context, new generation, new cookie, profile
	// defaults, on the page the login redirects to.
	p = b.Post(t, "/login", url.Values{"customer": {"alice"}})
	mustPage(t, p, `id="customer">alice`, `id="session-kind">customer`, `id="session-generation">2`, `id="currency">USD`, cartID)
	if b.Cookie("__Host-sid") == token {
		t.Fatal("login did not replace the cookie")
	}
	s, err = client.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if s.Kind != wire.KindCustomer || s.Generation != 2 || s.CustomerID() != "alice" || s.Text(wire.FieldCartID) != cartID {
		t.Fatalf("after login the origin has %+v", s)
	}
	if s.Text(wire.FieldCurrency) != "USD" || s.Text(wire.FieldLocale) != "en-US" {
		t.Fatalf("profile defaults not applied: %+v", s.Fields)
	}
	if st := apiState(t, b); st.ID != id || st.Kind != "customer" || st.Customer != "alice" || st.Currency != "USD" {
		t.Fatalf("after login the edge forwards %+v", st)
	}

	// The cookie from before the login is dead: replaying it gets a fresh
	// anonymous session.
	thief := e2e.NewBrowser(base)
	thief.SetCookie("__Host-sid", token)
	if st := apiState(t, thief); st.ID == id || st.Kind != "anonymous" {
		t.Fatalf("the pre-login token still works: %+v", st)
	}

	// A client that forges session headers gets its own session, not the
	// one it names: the edge strips client-sent x-session-* headers.
	forger := e2e.NewBrowser(base)
	forger.Header.Set("x-session-id", id)
	forger.Header.Set("x-session-kind", "customer")
	forger.Header.Set("x-session-customer", "alice")
	forger.Header.Set("x_session_customer", "alice")
	if st := apiState(t, forger); st.ID == id || st.Kind != "anonymous" || st.Customer != "" {
		t.Fatalf("forged headers reached the app: %+v", st)
	}

	// The same customer on a second device: each lists both sessions (the
	// current one marked, the other with the device the edge saw), and
	// alice logs the other device out.
	phone := e2e.NewBrowser(base)
	phone.Header.Set("User-Agent", "alice-phone")
	phoneID := apiState(t, phone).ID
	mustPage(t, phone.Post(t, "/login", url.Values{"customer": {"alice"}}), `id="customer">alice`)
	mustPage(t, b.Get(t, "/"), `id="devices"`, `id="logout-others"`)
	var peers []sdk.Peer
	waitFor(t, "both devices listed with the phone's user agent", func() bool {
		p := b.Get(t, "/.session/sessions")
		var err error
		if peers, err = sdk.ParsePeers([]byte(p.Body)); p.Status != http.StatusOK || err != nil {
			t.Fatalf("GET /.session/sessions: %d %s %v", p.Status, p.Body, err)
		}
		return len(peers) == 2 && !peers[0].Current == peers[1].Current &&
			(peers[0].Device.UserAgent == "alice-phone" || peers[1].Device.UserAgent == "alice-phone")
	})
	for _, pr := range peers {
		if len(pr.Handle) != 16 || strings.Contains(id+phoneID, pr.Handle) || pr.Kind != wire.KindCustomer ||
			pr.Current != (pr.Device.UserAgent != "alice-phone") {
			t.Fatalf("peer %+v", pr)
		}
	}
	b.Header.Set("Origin", "https://evil.example")
	if p = b.Send(t, "DELETE", "/.session/sessions/others", nil); p.Status != http.StatusForbidden {
		t.Fatalf("a cross-site logout of the other devices: %d %s", p.Status, p.Body)
	}
	b.Header.Del("Origin")
	var revoked struct{ Revoked int }
	if p = b.Send(t, "DELETE", "/.session/sessions/others", nil); p.Status != http.StatusOK || json.Unmarshal([]byte(p.Body), &revoked) != nil || revoked.Revoked != 1 {
		t.Fatalf("DELETE /.session/sessions/others: %d %s", p.Status, p.Body)
	}
	waitFor(t, "the phone logged out", func() bool {
		st := apiState(t, phone)
		return st.ID != phoneID && st.Kind == "anonymous" && st.Customer == ""
	})
	if _, err := client.Get(ctx, phoneID); !errors.Is(err, sdk.ErrGone) {
		t.Fatalf("the phone's session at the origin: %v", err)
	}
	if st := apiState(t, b); st.ID != id || st.Customer != "alice" {
		t.Fatalf("logging out the other devices logged this one out: %+v", st)
	}

	// A privacy attribute, then log out: privacy gone, cart kept.
	mustPage(t, b.Post(t, "/privacy", url.Values{"email": {"alice@example.com"}}), `id="privacy-email">alice@example.com`)
	loginToken := b.Cookie("__Host-sid")
	p = b.Post(t, "/logout", nil)
	mustPage(t, p, "Browsing anonymously", "× 2", `id="session-generation">3`, cartID)
	if strings.Contains(p.Body, "alice@example.com") {
		t.Fatal("the email survived logout")
	}
	if b.Cookie("__Host-sid") == loginToken {
		t.Fatal("logout did not replace the cookie")
	}
	s, err = client.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if s.Kind != wire.KindAnonymous || s.Generation != 3 || s.CustomerID() != "" || len(s.Attrs[wire.NamespacePrivacy]) != 0 {
		t.Fatalf("after logout the origin has %+v", s)
	}
	if q, _ := s.Attr(wire.NamespaceCustom, "cart.mug"); q.Int != 2 || s.Text(wire.FieldCartID) != cartID {
		t.Fatalf("logout lost the cart: %+v", s.Context)
	}
	if st := apiState(t, b); st.ID != id || st.Kind != "anonymous" || st.Customer != "" || st.Email != "" || st.Cart["mug"] != 2 {
		t.Fatalf("after logout the edge forwards %+v", st)
	}

	// The tokens the app handed back in x-session-token became cookies;
	// no x-session-* header ever reached the browser.
	if len(b.Leaked) > 0 {
		t.Fatalf("x-session-* response headers reached the browser: %q", b.Leaked)
	}
}
