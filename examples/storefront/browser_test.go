package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sessionedge/sessionedge/examples/internal/e2e"
	"github.com/sessionedge/sessionedge/internal/browsertest"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// The browser tests drive a real Chromium (Debian's chromium package) through
// the storefront and check what the browser itself stored. Screenshots go to
// $BROWSER_ARTIFACTS (default: the test's temporary directory).

// TestBrowserStorefront walks the shop through the real edge and origin,
// with the edge signing what it forwards and the app verifying it.
func TestBrowserStorefront(t *testing.T) {
	chrome := browsertest.Find(t)
	stack := e2e.Start(t, stackOptions(nil))
	walkBrowser(t, chrome, browsertest.Localhost(stack.EdgeURL), "edge")
}

// TestBrowserStorefrontWithFakes walks the same path through sdktest's fake
// edge, which sets the same cookie: it checks the app's UI and the cookie
// rules of the browser without the edge and origin processes.
func TestBrowserStorefrontWithFakes(t *testing.T) {
	chrome := browsertest.Find(t)
	_, edge := startWithFakes(t)
	walkBrowser(t, chrome, browsertest.Localhost(edge.URL), "fake")
}

func walkBrowser(t *testing.T, chrome, base, prefix string) {
	b := browsertest.Start(t, chrome, base, prefix)

	// 1. An anonymous visitor: the edge minted a session and the browser kept
	// the cookie with every attribute the design asks for.
	b.Do("open the shop", chromedp.Navigate(b.URL("/")), chromedp.WaitVisible(chromedp.CSS("#session-id")))
	id := b.Text("#session-id")
	if _, err := wire.ParseID(id); err != nil {
		t.Fatalf("page shows session id %q; page:\n%s", id, b.Text("body"))
	}
	if k := b.Text("#session-kind"); k != "anonymous" {
		t.Fatalf("kind %q", k)
	}
	c := b.Cookie("__Host-sid")
	if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteLax || c.Path != "/" || strings.HasPrefix(c.Domain, ".") {
		t.Fatalf("cookie attributes: HttpOnly=%v Secure=%v SameSite=%q Path=%q Domain=%q", c.HTTPOnly, c.Secure, c.SameSite, c.Path, c.Domain)
	}
	firstToken := c.Value
	sctx, cancelEval := b.Step(10 * time.Second)
	jsCookie, err := chromedp.Run(sctx, chromedp.Evaluate[string]("document.cookie"))
	cancelEval()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(jsCookie, "__Host-sid") {
		t.Fatalf("HttpOnly cookie visible to scripts: %q", jsCookie)
	}
	b.Shot("1-anonymous")

	// 2. Add to cart and switch currency.
	b.Submit("add a mug", "#add-mug")
	b.Shows("#cart", "× 1")
	if b.Text("#session-id") != id {
		t.Fatal("adding to the cart changed the session id")
	}
	b.Submit("switch to USD", "#set-currency", chromedp.SetValue(chromedp.CSS("#currency-select"), "USD"))
	b.Shows("#currency", "USD")
	b.Shows("#product-mug", "$14.03")
	b.Shot("2-cart")

	// 3. Log in: same id, new generation, a new cookie.
	b.Submit("log in", "#login", chromedp.SetValue(chromedp.CSS("#customer-select"), "bob"))
	b.Shows("#who", "bob")
	if got := b.Text("#session-id"); got != id {
		t.Fatalf("login changed the session id %s → %s", id, got)
	}
	if c := b.Cookie("__Host-sid"); c.Value == firstToken || !c.HTTPOnly || !c.Secure {
		t.Fatalf("login did not replace the cookie properly: %+v", c)
	}
	b.Shows("#currency", "GBP") // bob's profile currency
	// The page's script lists the customer's devices (from the edge):
	// this browser, marked, and nothing else to log out.
	b.WaitText("#devices", "This device")
	b.Shot("3-logged-in")
	b.Submit("log out other devices", "#logout-others")
	b.Shows("#flash", "Logged out 0 other devices")
	b.Shows("#who", "bob")

	// 4. Reload: still logged in, cart still there.
	b.Open("reload", "/")
	b.Shows("#who", "bob")
	b.Shows("#cart", "× 1")
	b.Shows("#session-generation", "2")

	// 5. Privacy attribute, then log out: privacy gone, cart kept.
	b.Submit("save email", "#set-email", chromedp.SetValue(chromedp.CSS("#email"), "bob@example.com"))
	b.Shows("#privacy-email", "bob@example.com")
	b.Submit("log out", "#logout")
	b.Shows("#who", "Browsing anonymously")
	b.Shows("#cart", "× 1")
	if got := b.Text("#session-id"); got != id {
		t.Fatalf("logout changed the session id %s → %s", id, got)
	}
	if strings.Contains(b.Text("body"), "bob@example.com") {
		t.Fatal("the privacy attribute survived logout")
	}
	b.Shot("4-logged-out")
}
