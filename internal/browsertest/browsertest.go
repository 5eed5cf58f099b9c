// Package browsertest drives a real Chromium (Debian's chromium package)
// for the browser tests of the storefront, behind the edge proxy or Caddy:
// headless, one step at a time with a timeout each, and with screenshots
// in $BROWSER_ARTIFACTS (default: the test's temporary directory).
package browsertest

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
)

// Browser is a headless Chromium for one test.
type Browser struct {
	t      testing.TB
	ctx    context.Context
	base   string // the site's URL, for its cookies
	dir    string // where screenshots go
	prefix string // of the screenshots' names
}

// Find returns the path of Chromium; without it the test skips (or fails
// where testenv requires chromium).
func Find(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(t, "chromium", "no chromium on PATH (install: apt-get install chromium)")
	return ""
}

// Localhost rewrites http://127.0.0.1:port to http://localhost:port, the
// address the demo prints: browsers treat localhost as a secure context,
// which lets them keep a Secure __Host- cookie over plain HTTP.
func Localhost(u string) string { return strings.Replace(u, "127.0.0.1", "localhost", 1) }

// Start starts the Chromium at path chrome, for the site at base; its
// screenshots are named prefix-<name>.png. It stops when the test ends.
func Start(t testing.TB, chrome, base, prefix string) *Browser {
	t.Helper()
	dir := os.Getenv("BROWSER_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
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
	)
	// The first Run starts the browser, which lives as long as this
	// context: it gets no timeout; every step gets its own.
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting %s: %v", chrome, err)
	}
	return &Browser{t: t, ctx: ctx, base: base, dir: dir, prefix: prefix}
}

// Step returns a context for one step of at most d.
func (b *Browser) Step(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, d)
}

// Do runs steps (30s at most), failing the test with what if they fail.
func (b *Browser) Do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	sctx, cancel := b.Step(30 * time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// Open loads the page at path of the site and waits until it is ready.
func (b *Browser) Open(what, path string) {
	b.t.Helper()
	b.Do(what, chromedp.Navigate(b.base+path), chromedp.WaitReady(chromedp.CSS("body")))
}

// Text reads an element's text, "" when it is not on the page.
func (b *Browser) Text(sel string) string {
	sctx, cancel := b.Step(2 * time.Second)
	defer cancel()
	s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel), chromedp.AtLeast(0)))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(s)
}

// Shows checks that the loaded page shows want in sel, without reloading:
// the page after a write must show it at once (the edge read the app's
// x-session-written and refreshed its copy).
func (b *Browser) Shows(sel, want string) {
	b.t.Helper()
	if got := b.Text(sel); !strings.Contains(got, want) {
		b.t.Fatalf("%s shows %q, want %q; page:\n%s", sel, got, want, b.Text("body"))
	}
}

// WaitText waits up to 15s until sel shows want (what the page's script
// fills in later).
func (b *Browser) WaitText(sel, want string) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(b.Text(sel), want) {
		if time.Now().After(deadline) {
			b.t.Fatalf("%s shows %q, want %q; page:\n%s", sel, b.Text(sel), want, b.Text("body"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// loaded reports whether the page marked by Submit was replaced by a fully
// loaded new one.
func (b *Browser) loaded() bool {
	sctx, cancel := b.Step(2 * time.Second)
	defer cancel()
	ok, err := chromedp.Run(sctx, chromedp.Evaluate[bool](`window.__beforeSubmit === undefined && document.readyState === "complete"`))
	return err == nil && ok
}

// Submit runs before (filling in the form), clicks a form's button and
// waits until the answer (after the redirect) has loaded, so the next step
// does not race the navigation.
func (b *Browser) Submit(what, button string, before ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	steps := append(before, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`window.__beforeSubmit = true`)(ctx, tg)
		return err
	}), chromedp.Click(chromedp.CSS(button)))
	b.Do(what, steps...)
	deadline := time.Now().Add(15 * time.Second)
	for !b.loaded() {
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: the page did not load after the click", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Cookie returns the cookie name the browser stored for the site, failing
// the test when there is none.
func (b *Browser) Cookie(name string) *network.Cookie {
	b.t.Helper()
	sctx, cancel := b.Step(10 * time.Second)
	defer cancel()
	cookies, err := chromedp.Run(sctx, func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base}})
		return res.Cookies, err
	})
	if err != nil {
		b.t.Fatalf("reading cookies: %v", err)
	}
	for _, c := range cookies {
		if c.Name == name {
			return c
		}
	}
	b.t.Fatalf("the browser stored no %s cookie (cookies: %+v)", name, cookies)
	return nil
}

// Shot saves a screenshot of the whole page as prefix-name.png.
func (b *Browser) Shot(name string) {
	b.t.Helper()
	sctx, cancel := b.Step(30 * time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.dir, b.prefix+"-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
}

// URL returns the address of path on the site.
func (b *Browser) URL(path string) string { return b.base + path }
