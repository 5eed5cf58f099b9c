package caddy

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// TestCaddyStorefront runs the storefront behind a real Caddy process whose
// proxy_wasm handler runs the sessionedge filter, with the real origin: the
// shopper's story, each step checked against what the origin holds, and,
// last, the origin going down.
// mustStripForged sends forged session headers, named as given, through
// Caddy and fails unless the app got none of them: a fresh anonymous
// session, no forged value among the headers it got.
func mustStripForged(t *testing.T, st *stack, id, idName, kindName, customerName string) {
	t.Helper()
	f := newBrowser(st.URL)
	f.Header[idName] = []string{id}
	f.Header[kindName] = []string{"customer"}
	f.Header[customerName] = []string{"mallory"}
	if s := f.session(t); s.ID == id || s.Kind != "anonymous" || s.Customer != "" || s.Source != "new" {
		t.Fatalf("forged %s, %s, %s reached the app: %+v", idName, kindName, customerName, s)
	}
	if h := f.Get(t, "/api/headers").Body; strings.Contains(h, "mallory") || strings.Contains(h, id) {
		t.Fatalf("forged %s, %s, %s: the app got\n%s", idName, kindName, customerName, h)
	}
}

// TestCaddyStripsUnderscoreHeaders: Caddy drops request headers with
// underscores unless told to keep them; told to keep x_session_*, it hands
// them on, and the filter strips them (CGI-style apps read x_session_id
// as x-session-id).
func TestCaddyStripsUnderscoreHeaders(t *testing.T) {
	st := startStack(t, stackOptions{
		Global: "\tservers {\n\t\texpected_underscore_headers x_session_*\n\t}",
		Site:   "\thandle /caddy-sees {\n\t\trespond \"{http.request.header.x_session_customer}\"\n\t}",
	})
	id := newBrowser(st.URL).session(t).ID
	if p := newBrowser(st.URL).Get(t, "/caddy-sees", "x_session_customer", "mallory"); p.Body != "mallory" {
		t.Fatalf("Caddy dropped the underscore header itself (%q): the test proves nothing", p.Body)
	}
	mustStripForged(t, st, id, "X_Session_Id", "x_session_kind", "X_SESSION_CUSTOMER")
}

func TestCaddyStorefront(t *testing.T) {
	st := startStack(t, stackOptions{})
	ctx := context.Background()
	app := st.client(t, st.AppKey)
	b := newBrowser(st.URL)

	// Mint: the first request gets a new anonymous session and its cookie,
	// without the origin.
	first := b.session(t)
	if _, err := wire.ParseID(first.ID); err != nil || first.Kind != "anonymous" || first.Source != "new" || first.Generation != 1 {
		t.Fatalf("first request: %+v", first)
	}
	c := b.HTTPCookie("__Host-sid")
	if c == nil || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
		t.Fatalf("session cookie %+v", c)
	}
	token := c.Value

	// Verify, and no re-issue: the cookie is enough, and a fresh token is
	// not set again.
	if again := b.session(t); again.ID != first.ID || again.Kind != "anonymous" {
		t.Fatalf("second request: %+v, first %+v", again, first)
	}
	if b.Reissued("__Host-sid") {
		t.Fatal("a fresh token was re-issued")
	}
	if h := b.Get(t, "/api/headers").Body; !strings.Contains(h, "x-session-assertion: ") || !strings.Contains(h, "x-session-id: "+first.ID) {
		t.Fatalf("forwarded headers:\n%s", h)
	}

	t.Run("forged headers are stripped", func(t *testing.T) {
		mustStripForged(t, st, first.ID, "X-Session-Id", "X-Session-Kind", "X-Session-Customer")
	})

	t.Run("self-service", func(t *testing.T) {
		p := b.Get(t, "/.session/context")
		if p.Status != http.StatusOK || !strings.Contains(p.Header.Get("Content-Type"), "json") {
			t.Fatalf("GET context: %d %s", p.Status, p.Body)
		}
		p = b.Do(t, http.MethodPatch, "/.session/context", "application/merge-patch+json", []byte(`{"public":{"theme":"dark"}}`), "Origin", st.URL)
		if p.Status != http.StatusOK || !strings.Contains(p.Body, `"theme":"dark"`) {
			t.Fatalf("PATCH context: %d %s", p.Status, p.Body)
		}
		if p := b.Get(t, "/.session/context"); !strings.Contains(p.Body, `"theme":"dark"`) {
			t.Fatalf("GET after PATCH: %s", p.Body)
		}
		s, err := app.Get(ctx, first.ID)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := s.Attr(wire.NamespacePublic, "theme"); !ok || v.Text != "dark" {
			t.Fatalf("the origin has public %+v", s.Attrs[wire.NamespacePublic])
		}
		p = b.Do(t, http.MethodPatch, "/.session/context", "application/merge-patch+json", []byte(`{"public":{"x":1}}`), "Origin", "https://evil.example")
		if p.Status != http.StatusForbidden {
			t.Fatalf("cross-site PATCH: %d %s", p.Status, p.Body)
		}
		if p := b.Do(t, http.MethodDelete, "/.session/context/public/theme", "", nil); p.Status != http.StatusOK || strings.Contains(p.Body, "theme") {
			t.Fatalf("DELETE: %d %s", p.Status, p.Body)
		}
	})

	t.Run("login rotates the token", func(t *testing.T) {
		p := b.Post(t, "/login", url.Values{"customer": {"alice"}})
		if p.Status != http.StatusOK {
			t.Fatalf("login: %d %s", p.Status, p.Body)
		}
		s := b.session(t)
		if s.ID != first.ID || s.Kind != "customer" || s.Customer != "alice" || s.Generation != 2 || s.Currency != "USD" {
			t.Fatalf("after login: %+v", s)
		}
		if b.HTTPCookie("__Host-sid").Value == token {
			t.Fatal("login did not replace the cookie")
		}
		thief := newBrowser(st.URL)
		thief.SetCookie("__Host-sid", token)
		if s := thief.session(t); s.ID == first.ID || s.Kind != "anonymous" {
			t.Fatalf("the token from before the login still works: %+v", s)
		}
	})

	t.Run("a revocation reaches the edge through the feed", func(t *testing.T) {
		// The session is in the filter's cache: only the feed can end it.
		if s := b.session(t); s.Kind != "customer" || s.Source != "ok" {
			t.Fatalf("before the revocation: %+v", s)
		}
		if err := st.client(t, st.AdminKey).RevokeCustomer(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			s := b.session(t)
			if s.ID != first.ID && s.Kind == "anonymous" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("10s after the revocation the edge still forwards %+v", s)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		resp, err := http.Get(st.AdminURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`caddy_proxy_wasm_requests_total{plugin="sessionedge"}`, `caddy_proxy_wasm_vms_healthy{plugin="sessionedge"} 2`,
			`caddy_proxy_wasm_cluster_calls_in_flight{cluster="origin",plugin="sessionedge"}`, `caddy_proxy_wasm_filter_failures_total{plugin="sessionedge"} 0`,
			`wasm_sessionedge_`} {
			if !strings.Contains(string(metrics), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	t.Run("a reload keeps the running filter", func(t *testing.T) {
		before := b.session(t)
		started := strings.Count(st.Caddy.Output(), "proxy_wasm: filter started")
		if started == 0 {
			t.Fatal("Caddy's log does not say the filter started")
		}
		reload := exec.Command(st.caddyBin, "reload", "--config", st.caddyfilePath, "--adapter", "caddyfile", "--address", strings.TrimPrefix(st.AdminURL, "http://"), "--force")
		reload.Env = st.env
		if out, err := reload.CombinedOutput(); err != nil {
			t.Fatalf("caddy reload: %v\n%s", err, out)
		}
		if s := b.session(t); s.ID != before.ID || b.Reissued("__Host-sid") {
			t.Fatalf("after the reload: %+v, before %+v", s, before)
		}
		if !strings.Contains(st.Caddy.Output(), "load complete") {
			t.Fatal("Caddy's log does not show the reload")
		}
		if n := strings.Count(st.Caddy.Output(), "proxy_wasm: filter started"); n != started {
			t.Fatalf("the reload started the filter again (%d starts, %d before)", n, started)
		}
	})

	if len(b.Leaked) > 0 {
		t.Fatalf("x-session-* response headers reached the client: %q", b.Leaked)
	}

	t.Run("origin down: fail open", func(t *testing.T) {
		// A session the edge has never seen, made at the origin while it ran.
		issued, err := app.Create(ctx, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		cached := newBrowser(st.URL)
		cachedID := cached.session(t).ID
		st.Origin.Stop()

		newcomer := newBrowser(st.URL)
		if s := newcomer.session(t); s.Kind != "anonymous" || s.Source != "new" {
			t.Fatalf("a new visitor with the origin down: %+v", s)
		}
		if s := cached.session(t); s.ID != cachedID {
			t.Fatalf("a cached session with the origin down: %+v, want %s", s, cachedID)
		}
		unknown := newBrowser(st.URL)
		unknown.SetCookie("__Host-sid", issued.Token)
		h := unknown.Get(t, "/api/headers")
		if h.Status != http.StatusOK || !strings.Contains(h.Body, "x-session-context-status: degraded") || !strings.Contains(h.Body, "x-session-id: "+issued.Session.ID) {
			t.Fatalf("a session the edge must fetch, origin down: %d\n%s", h.Status, h.Body)
		}
	})
}
