package caddy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sessionedge/sessionedge/internal/testenv"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// TestCaddyBrowser walks the storefront in a real Chromium (Debian's
// chromium package) through Caddy and its proxy_wasm handler, and checks
// what the browser itself stored: the session cookie with every attribute,
// kept over plain HTTP on localhost (a secure context), replaced at login
// and logout. Screenshots go to $BROWSER_ARTIFACTS (default: the test's
// temporary directory).
func TestCaddyBrowser(t *testing.T) {
	var chrome string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			chrome = p
			break
		}
	}
	if chrome == "" {
		testenv.Missing(t, "chromium", "no chromium on PATH (install: apt-get install chromium)")
	}
	st := startStack(t, stackOptions{})
	base := strings.Replace(st.URL, "127.0.0.1", "localhost", 1)
	shots := os.Getenv("BROWSER_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	)
	defer cancelAlloc()
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
	textOf := func(sel string) string {
		sctx, cancel := step(2 * time.Second)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel), chromedp.AtLeast(0)))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(s)
	}
	shows := func(sel, want string) {
		t.Helper()
		if got := textOf(sel); !strings.Contains(got, want) {
			t.Fatalf("%s shows %q, want %q; page:\n%s", sel, got, want, textOf("body"))
		}
	}
	// submit clicks a form's button and waits until the page after the
	// redirect has loaded.
	submit := func(what, button string, before ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		steps := append(before, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`window.__beforeSubmit = true`)(ctx, tg)
			return err
		}), chromedp.Click(chromedp.CSS(button)))
		do(what, steps...)
		deadline := time.Now().Add(15 * time.Second)
		for {
			sctx, cancel := step(2 * time.Second)
			ok, err := chromedp.Run(sctx, chromedp.Evaluate[bool](`window.__beforeSubmit === undefined && document.readyState === "complete"`))
			cancel()
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the page did not load after the click", what)
			}
			time.Sleep(50 * time.Millisecond)
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
	shot := func(name string) {
		t.Helper()
		sctx, cancel := step(30 * time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, "caddy-"+name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	do("open the shop", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#session-id")))
	id := textOf("#session-id")
	if _, err := wire.ParseID(id); err != nil || textOf("#session-kind") != "anonymous" {
		t.Fatalf("page shows session %q, kind %q; page:\n%s", id, textOf("#session-kind"), textOf("body"))
	}
	c := cookie()
	if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteLax || c.Path != "/" || strings.HasPrefix(c.Domain, ".") {
		t.Fatalf("cookie attributes: HttpOnly=%v Secure=%v SameSite=%q Path=%q Domain=%q", c.HTTPOnly, c.Secure, c.SameSite, c.Path, c.Domain)
	}
	first := c.Value
	shot("1-anonymous")

	submit("add a mug", "#add-mug")
	shows("#cart", "× 1")
	shows("#session-id", id)

	submit("log in", "#login", chromedp.SetValue(chromedp.CSS("#customer-select"), "bob"))
	shows("#who", "bob")
	shows("#session-id", id)
	shows("#session-generation", "2")
	shows("#cart", "× 1")
	loggedIn := cookie().Value
	if loggedIn == first {
		t.Fatal("login did not replace the cookie")
	}
	shot("2-logged-in")

	do("reload", chromedp.Navigate(base+"/"), chromedp.WaitReady(chromedp.CSS("body")))
	shows("#who", "bob")

	submit("log out", "#logout")
	shows("#who", "Browsing anonymously")
	shows("#cart", "× 1")
	shows("#session-id", id)
	if cookie().Value == loggedIn {
		t.Fatal("logout did not replace the cookie")
	}
	shot("3-logged-out")
}
