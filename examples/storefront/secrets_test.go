package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/examples/internal/e2e"
	"github.com/sessionedge/sessionedge/sdk"
)

// TestNoSecretsInLogs runs the whole stack (origin with webhooks, edge,
// storefront) through a shopper's visit with login and logout, and through
// the failures that tend to get logged (a tampered cookie, an oversized
// request head, a wrong API key, forged headers straight to the app), then
// looks for every secret the run used in the output of every process: the
// API keys, the token keys, the shared secret, the assertion key, the
// webhook secret, and every cookie value the edge handed out (session
// tokens and consistency hints). None may appear.
func TestNoSecretsInLogs(t *testing.T) {
	var mu sync.Mutex
	var events []string
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, r.Header.Get(sdk.HeaderWebhookSignature))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hooks.Close()
	opt := stackOptions(nil)
	opt.WebhookURL = hooks.URL
	stack := e2e.Start(t, opt)

	b := e2e.NewBrowser(stack.EdgeURL)
	mustPage(t, b.Get(t, "/"), "Browsing anonymously")
	mustPage(t, b.Post(t, "/cart", url.Values{"sku": {"mug"}}), "× 1")
	if p := b.Send(t, "PATCH", "/.session/context", map[string]any{"currency": "CHF"}); p.Status != http.StatusOK {
		t.Fatalf("PATCH /.session/context: %d %s", p.Status, p.Body)
	}
	mustPage(t, b.Post(t, "/login", url.Values{"customer": {"bob"}}), `id="customer">bob`)
	if p := b.Get(t, "/.session/sessions"); p.Status != http.StatusOK {
		t.Fatalf("GET /.session/sessions: %d %s", p.Status, p.Body)
	}
	mustPage(t, b.Post(t, "/privacy", url.Values{"email": {"bob@example.com"}}), "bob@example.com")
	mustPage(t, b.Post(t, "/logout", nil), "Browsing anonymously")

	// Failures: a tampered cookie (the edge mints a new session), a
	// request head too large for the edge, a wrong API key at the origin,
	// forged headers past the edge.
	tampered := e2e.NewBrowser(stack.EdgeURL)
	tok := b.Cookie("__Host-sid")
	tampered.SetCookie("__Host-sid", tok[:len(tok)-2]+"AA")
	tampered.Get(t, "/")
	huge, _ := http.NewRequest("GET", stack.EdgeURL+"/", nil)
	huge.AddCookie(&http.Cookie{Name: "__Host-sid", Value: tok})
	huge.Header.Set("X-Padding", strings.Repeat("p", 128<<10))
	if resp, err := http.DefaultClient.Do(huge); err == nil { // the edge may also just close the connection
		resp.Body.Close()
	}
	wrong := "app-" + strings.Repeat("w", 40)
	req, _ := http.NewRequest("GET", stack.OriginURL+"/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA", nil)
	req.Header.Set("Authorization", "Bearer "+wrong)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a wrong API key got %d", resp.StatusCode)
		}
	}
	stack.MustRefuseForged(t, "GET", "/api/session")

	// The webhooks carry the secret's signature: wait for one, so the
	// signing path ran.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(events)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no webhook within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	secrets := stack.Secrets()
	secrets["wrong API key"] = wrong
	for _, tb := range []*e2e.Browser{b, tampered} {
		for _, sc := range tb.SetCookies {
			if c, err := http.ParseSetCookie(sc); err == nil && c.Value != "" {
				secrets["cookie "+c.Name+" "+c.Value[:8]+"..."] = c.Value
			}
		}
	}
	if len(b.SetCookies) < 3 {
		t.Fatalf("expected cookies for the new session, the login and the logout; saw %q", b.SetCookies)
	}
	for name, p := range stack.Processes() {
		p.Stop() // flush everything the process would still print
		out := p.Output()
		for what, secret := range secrets {
			if len(secret) < 12 {
				continue // too short to tell from chance
			}
			if i := strings.Index(out, secret); i >= 0 {
				lo, hi := max(0, strings.LastIndex(out[:i], "\n")+1), i+len(secret)
				if j := strings.IndexByte(out[hi:], '\n'); j >= 0 {
					hi += j
				}
				t.Errorf("%s's log shows the %s: %s", name, what, strings.ReplaceAll(out[lo:hi], secret, "<"+what+">"))
			}
		}
	}
}
