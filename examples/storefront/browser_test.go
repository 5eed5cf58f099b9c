package main

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sessionedge/sessionedge/examples/internal/e2e"
	"github.com/sessionedge/sessionedge/internal/testenv"
	"github.com/sessionedge/sessionedge/sdk/sdktest"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// The browser tests drive a real Chromium (Debian's chromium package) through
// the storefront and check what the browser itself stored. Screenshots go to
// $BROWSER_ARTIFACTS (default: the test's temporary directory).

// TestBrowserStorefront walks the shop through the real edge and origin,
// with the edge signing what it forwards and the app verifying it.
func TestBrowserStorefront(t *testing.T) {
	chrome := findChromium(t)
	stack := e2e.Start(t, stackOptions(nil))
	walkBrowser(t, chrome, localhost(stack.EdgeURL), "edge")
}

// TestBrowserStorefrontWithFakes walks the same path through sdktest's fake
// edge, which sets the same cookie: it checks the app's UI and the cookie
// rules of the browser without the edge and origin processes.
func TestBrowserStorefrontWithFakes(t *testing.T) {
	chrome := findChromium(t)
	origin := sdktest.NewFakeOrigin(sdktest.FakeOriginConfig{})
	defer origin.Close()
	keys := sdktest.NewAssertionKeys()
	h, err := newApp(config{OriginURL: origin.URL, AssertionKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(h)
	defer app.Close()
	edge := fakeEdge(origin, app.URL, keys)
	defer edge.Close()
	walkBrowser(t, chrome, localhost(edge.URL), "fake")
}

// localhost rewrites http://127.0.0.1:port to http://localhost:port, the
// address the demo prints: browsers treat localhost as a secure context,
// which lets them keep a Secure __Host- cookie over plain HTTP.
func localhost(u string) string { return strings.Replace(u, "127.0.0.1", "localhost", 1) }

func findChromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(t, "chromium", "no chromium on PATH (install: apt-get install chromium)")
	return ""
}

func artifacts(t *testing.T, prefix string) string {
	dir := os.Getenv("BROWSER_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func walkBrowser(t *testing.T, chrome, base, prefix string) {
	dir := artifacts(t, prefix)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		// Containers often have a tiny /dev/shm, where Chromium's renderer crashes.
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	// The first Run starts the browser, which lives as long as this
	// context: it gets no timeout; every step below gets its own.
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting %s: %v", chrome, err)
	}
	step := func(d time.Duration) (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, d) }

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := step(30 * time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		sctx, cancel := step(30 * time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(dir, prefix+"-"+name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", path)
	}
	// textOf reads an element's text, "" when it is not on the page.
	textOf := func(sel string) string {
		sctx, cancel := step(2 * time.Second)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel), chromedp.AtLeast(0)))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(s)
	}
	// loaded reports whether the page marked by submit was replaced by a
	// fully loaded new one.
	loaded := func() bool {
		sctx, cancel := step(2 * time.Second)
		defer cancel()
		ok, err := chromedp.Run(sctx, chromedp.Evaluate[bool](`window.__beforeSubmit === undefined && document.readyState === "complete"`))
		return err == nil && ok
	}
	// submit clicks a form's button and waits until the answer (after the
	// redirect) has loaded, so the next step does not race the navigation.
	submit := func(what, button string, before ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		steps := append(before, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`window.__beforeSubmit = true`)(ctx, tg)
			return err
		}), chromedp.Click(chromedp.CSS(button)))
		do(what, steps...)
		deadline := time.Now().Add(15 * time.Second)
		for !loaded() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the page did not load after the click", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// shows checks that the loaded page shows want in sel, without
	// reloading: the page after a write must show it at once (the edge
	// read the app's x-session-written and refreshed its copy).
	shows := func(sel, want string) {
		t.Helper()
		if got := textOf(sel); !strings.Contains(got, want) {
			t.Fatalf("%s shows %q, want %q; page:\n%s", sel, got, want, textOf("body"))
		}
	}
	cookie := func() *network.Cookie {
		t.Helper()
		sctx, cancel := step(10 * time.Second)
		defer cancel()
		cookies, err := chromedp.Run(sctx, func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
			res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{base}})
			return res.Cookies, err
		})
		if err != nil {
			t.Fatalf("reading cookies: %v", err)
		}
		for _, c := range cookies {
			if c.Name == "__Host-sid" {
				return c
			}
		}
		t.Fatalf("the browser stored no __Host-sid cookie (cookies: %+v)", cookies)
		return nil
	}

	// 1. An anonymous visitor: the edge minted a session and the browser kept
	// the cookie with every attribute the design asks for.
	do("open the shop", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#session-id")))
	id := textOf("#session-id")
	if _, err := wire.ParseID(id); err != nil {
		t.Fatalf("page shows session id %q; page:\n%s", id, textOf("body"))
	}
	if k := textOf("#session-kind"); k != "anonymous" {
		t.Fatalf("kind %q", k)
	}
	c := cookie()
	if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteLax || c.Path != "/" || strings.HasPrefix(c.Domain, ".") {
		t.Fatalf("cookie attributes: HttpOnly=%v Secure=%v SameSite=%q Path=%q Domain=%q", c.HTTPOnly, c.Secure, c.SameSite, c.Path, c.Domain)
	}
	firstToken := c.Value
	sctx, cancelEval := step(10 * time.Second)
	jsCookie, err := chromedp.Run(sctx, chromedp.Evaluate[string]("document.cookie"))
	cancelEval()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(jsCookie, "__Host-sid") {
		t.Fatalf("HttpOnly cookie visible to scripts: %q", jsCookie)
	}
	shot("1-anonymous")

	// 2. Add to cart and switch currency.
	submit("add a mug", "#add-mug")
	shows("#cart", "× 1")
	if textOf("#session-id") != id {
		t.Fatal("adding to the cart changed the session id")
	}
	submit("switch to USD", "#set-currency", chromedp.SetValue(chromedp.CSS("#currency-select"), "USD"))
	shows("#currency", "USD")
	shows("#product-mug", "$14.03")
	shot("2-cart")

	// 3. Log in: same id, new generation, a new cookie.
	submit("log in", "#login", chromedp.SetValue(chromedp.CSS("#customer-select"), "bob"))
	shows("#who", "bob")
	if got := textOf("#session-id"); got != id {
		t.Fatalf("login changed the session id %s → %s", id, got)
	}
	if c := cookie(); c.Value == firstToken || !c.HTTPOnly || !c.Secure {
		t.Fatalf("login did not replace the cookie properly: %+v", c)
	}
	shows("#currency", "GBP") // bob's profile currency
	// The page's script lists the customer's devices (from the edge):
	// this browser, marked, and nothing else to log out.
	waitText := func(sel, want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(textOf(sel), want) {
			if time.Now().After(deadline) {
				t.Fatalf("%s shows %q, want %q; page:\n%s", sel, textOf(sel), want, textOf("body"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitText("#devices", "This device")
	shot("3-logged-in")
	submit("log out other devices", "#logout-others")
	shows("#flash", "Logged out 0 other devices")
	shows("#who", "bob")

	// 4. Reload: still logged in, cart still there.
	do("reload", chromedp.Navigate(base+"/"), chromedp.WaitReady(chromedp.CSS("body")))
	shows("#who", "bob")
	shows("#cart", "× 1")
	shows("#session-generation", "2")

	// 5. Privacy attribute, then log out: privacy gone, cart kept.
	submit("save email", "#set-email", chromedp.SetValue(chromedp.CSS("#email"), "bob@example.com"))
	shows("#privacy-email", "bob@example.com")
	submit("log out", "#logout")
	shows("#who", "Browsing anonymously")
	shows("#cart", "× 1")
	if got := textOf("#session-id"); got != id {
		t.Fatalf("logout changed the session id %s → %s", id, got)
	}
	if strings.Contains(textOf("body"), "bob@example.com") {
		t.Fatal("the privacy attribute survived logout")
	}
	shot("4-logged-out")
}
