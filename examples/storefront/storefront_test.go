package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/examples/internal/e2e"
	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/sdktest"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// TestStorefrontWithFakes walks the shop through sdktest's fake edge and
// fake origin: the app code is the real one, the session plumbing is played.
func TestStorefrontWithFakes(t *testing.T) {
	origin := sdktest.NewFakeOrigin(sdktest.FakeOriginConfig{APIKeys: map[string][]string{"app": {"sessions:read", "sessions:write"}}})
	defer origin.Close()
	h, err := newApp(config{OriginURL: origin.URL, APIKey: "app"})
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(h)
	defer app.Close()
	edge := sdktest.NewFakeEdge(sdktest.FakeEdgeConfig{Origin: origin, Upstream: app.URL,
		Defaults: map[wire.Field]string{wire.FieldSiteCode: "DE", wire.FieldCurrency: "EUR", wire.FieldLocale: "de-DE"}})
	defer edge.Close()
	client, err := sdk.New(sdk.Config{BaseURL: origin.URL, APIKey: "app"})
	if err != nil {
		t.Fatal(err)
	}
	walkStorefront(t, edge.URL, client, edge.Sync)
}

// TestStorefrontEndToEnd walks the shop through the real edge proxy running
// the filter, with the real origin.
func TestStorefrontEndToEnd(t *testing.T) {
	stack := e2e.Start(t, e2e.Options{App: "./examples/storefront"})
	walkStorefront(t, stack.EdgeURL, stack.Client(t), func() {})
}

// TestStorefrontThroughEdge walks the shop through the real edge proxy and
// filter, with sdktest's fake origin behind them.
func TestStorefrontThroughEdge(t *testing.T) {
	stack := e2e.Start(t, e2e.Options{App: "./examples/storefront", FakeOrigin: true})
	walkStorefront(t, stack.EdgeURL, stack.Client(t), func() {})
}

func TestStorefrontRejectsDirectRequests(t *testing.T) {
	h, err := newApp(config{OriginURL: "http://127.0.0.1:1", EdgeSecret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(h)
	defer app.Close()
	for _, tt := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"no session headers", nil, http.StatusForbidden},
		{"forged session without the edge's secret", map[string]string{"x-session-id": "AAECAwQFBgcICQoLDA0ODw"}, http.StatusForbidden},
		{"health check needs no session", nil, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := "/"
			if tt.want == http.StatusOK {
				path = "/healthz"
			}
			req, _ := http.NewRequest("GET", app.URL+path, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
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
	p := b.Get(t, "/api/session")
	if p.Status != http.StatusOK {
		t.Fatalf("GET /api/session: %d %s", p.Status, p.Body)
	}
	var st state
	if err := json.Unmarshal([]byte(p.Body), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// eventually polls cond for up to 10s; refresh runs before each try (the
// fake edge's Sync; nothing for the real edge, whose feed catches up alone).
func eventually(t *testing.T, what string, refresh func(), cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		refresh()
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
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
// against what the origin holds.
func walkStorefront(t *testing.T, base string, client *sdk.Client, refresh func()) {
	ctx := context.Background()
	b := e2e.NewBrowser(base)

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
	if h := b.Get(t, "/api/headers"); !strings.Contains(h.Body, "x-session-id: "+id) || !strings.Contains(h.Body, "x-session-segment: ") {
		t.Fatalf("forwarded headers:\n%s", h.Body)
	}
	if again := apiState(t, b); again.ID != id {
		t.Fatalf("second request has session %s, first %s: the cookie did not stick", again.ID, id)
	}

	// Add to cart, twice: the cart id is set and the line counts up.
	mustPage(t, b.Post(t, "/cart", url.Values{"sku": {"mug"}}), "Added Edge-proof mug", "× 1")
	p = b.Post(t, "/cart", url.Values{"sku": {"mug"}})
	mustPage(t, p, "× 2", "€25.98")
	s, err := client.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	cartID := s.Text(wire.FieldCartID)
	if q, _ := s.Attr(wire.NamespaceCustom, "cart.mug"); !strings.HasPrefix(cartID, "cart-") || q.Int != 2 {
		t.Fatalf("origin has cart %q, mug %+v", cartID, q)
	}

	// Switch currency: prices are shown in it.
	mustPage(t, b.Post(t, "/currency", url.Values{"currency": {"GBP"}}), `id="currency">GBP`, "£22.08")

	// Log in: same id and context, new generation, new cookie, profile defaults.
	p = b.Post(t, "/login", url.Values{"customer": {"alice"}})
	mustPage(t, p, `id="customer">alice`, `id="session-kind">customer`)
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
	eventually(t, "the edge forwards the logged-in session", refresh, func() bool {
		st := apiState(t, b)
		return st.ID == id && st.Kind == "customer" && st.Customer == "alice" && st.Currency == "USD"
	})

	// The cookie from before the login is dead once the edge knows the new
	// generation: replaying it gets a fresh anonymous session.
	thief := e2e.NewBrowser(base)
	thief.SetCookie("__Host-sid", token)
	eventually(t, "the pre-login token is refused", refresh, func() bool {
		st := apiState(t, thief)
		return st.ID != id && st.Kind == "anonymous"
	})

	// A client that forges session headers gets its own session, not the
	// one it names: the edge strips client-sent x-session-* headers.
	forger := e2e.NewBrowser(base)
	forger.Header.Set("x-session-id", id)
	forger.Header.Set("x-session-kind", "customer")
	forger.Header.Set("x-session-customer", "alice")
	if st := apiState(t, forger); st.ID == id || st.Kind != "anonymous" || st.Customer != "" {
		t.Fatalf("forged headers reached the app: %+v", st)
	}

	// A privacy attribute, then log out: privacy gone, cart kept.
	mustPage(t, b.Post(t, "/privacy", url.Values{"email": {"alice@example.com"}}), `id="privacy-email">alice@example.com`)
	loginToken := b.Cookie("__Host-sid")
	p = b.Post(t, "/logout", nil)
	mustPage(t, p, "Browsing anonymously", "× 2")
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
	eventually(t, "the edge forwards the logged-out session", refresh, func() bool {
		st := apiState(t, b)
		return st.ID == id && st.Kind == "anonymous" && st.Customer == "" && st.Email == "" && st.Cart["mug"] == 2
	})

	// The tokens the app handed back in x-session-token became cookies;
	// no x-session-* header ever reached the browser.
	if len(b.Leaked) > 0 {
		t.Fatalf("x-session-* response headers reached the browser: %q", b.Leaked)
	}
}
