package caddy

import (
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sessionedge/sessionedge/internal/browsertest"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// TestCaddyBrowser walks the storefront in a real Chromium (Debian's
// chromium package) through Caddy and its proxy_wasm handler, and checks
// what the browser itself stored: the session cookie with every attribute,
// kept over plain HTTP on localhost (a secure context), replaced at login
// and logout. Screenshots go to $BROWSER_ARTIFACTS (default: the test's
// temporary directory).
func TestCaddyBrowser(t *testing.T) {
	chrome := browsertest.Find(t)
	st := startStack(t, stackOptions{})
	b := browsertest.Start(t, chrome, browsertest.Localhost(st.URL), "caddy")

	b.Do("open the shop", chromedp.Navigate(b.URL("/")), chromedp.WaitVisible(chromedp.CSS("#session-id")))
	id := b.Text("#session-id")
	if _, err := wire.ParseID(id); err != nil || b.Text("#session-kind") != "anonymous" {
		t.Fatalf("page shows session %q, kind %q; page:\n%s", id, b.Text("#session-kind"), b.Text("body"))
	}
	c := b.Cookie("__Host-sid")
	if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteLax || c.Path != "/" || strings.HasPrefix(c.Domain, ".") {
		t.Fatalf("cookie attributes: HttpOnly=%v Secure=%v SameSite=%q Path=%q Domain=%q", c.HTTPOnly, c.Secure, c.SameSite, c.Path, c.Domain)
	}
	first := c.Value
	b.Shot("1-anonymous")

	b.Submit("add a mug", "#add-mug")
	b.Shows("#cart", "× 1")
	b.Shows("#session-id", id)

	b.Submit("log in", "#login", chromedp.SetValue(chromedp.CSS("#customer-select"), "bob"))
	b.Shows("#who", "bob")
	b.Shows("#session-id", id)
	b.Shows("#session-generation", "2")
	b.Shows("#cart", "× 1")
	loggedIn := b.Cookie("__Host-sid").Value
	if loggedIn == first {
		t.Fatal("login did not replace the cookie")
	}
	b.Shot("2-logged-in")

	b.Open("reload", "/")
	b.Shows("#who", "bob")

	b.Submit("log out", "#logout")
	b.Shows("#who", "Browsing anonymously")
	b.Shows("#cart", "× 1")
	b.Shows("#session-id", id)
	if b.Cookie("__Host-sid").Value == loggedIn {
		t.Fatal("logout did not replace the cookie")
	}
	b.Shot("3-logged-out")
}
