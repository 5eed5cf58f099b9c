package caddy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/sdk"
)

// stack is a real Caddy process (./edge/cmd/caddy) running the sessionedge
// filter with proxy_wasm in front of the storefront example, with the real
// origin behind the filter; every process on free loopback ports. Secrets
// reach the processes through files (0600, in a 0700 directory) and
// environment variables, never their arguments.
type stack struct {
	URL, AdminURL, AppURL string
	Origin                *testbin.Origin
	Caddy, App            *testbin.Process
	// AppKey has sessions:read and sessions:write, AdminKey sessions:admin.
	AppKey, EdgeKey, AdminKey string
	Caddyfile                 string

	caddyBin, caddyfilePath string
	env                     []string // Caddy's environment (added to the test's)
}

// stackOptions change the stack.
type stackOptions struct {
	// Global, Site and Handler are more lines for the global options, the
	// site block and the proxy_wasm block.
	Global, Site, Handler string
}

func startStack(t *testing.T, opt stackOptions) *stack {
	t.Helper()
	caddyBin := testbin.Build(t, "./edge/cmd/caddy")
	wasm := testbin.BuildWasm(t, "./wasm")
	appBin := testbin.Build(t, "./examples/storefront")
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	st := &stack{AppKey: testbin.RandomKey("app"), EdgeKey: testbin.RandomKey("edge"), AdminKey: testbin.RandomKey("admin")}
	st.Origin = testbin.StartOrigin(t, testbin.OriginConfig{APIKeys: []testbin.APIKey{
		{Name: "app", Key: st.AppKey, Scopes: []string{"sessions:read", "sessions:write"}},
		{Name: "edge", Key: st.EdgeKey, Scopes: []string{"edge:sync", "edge:selfservice"}},
		{Name: "admin", Key: st.AdminKey, Scopes: []string{"sessions:admin"}},
	}})

	secret := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	assertion, _ := json.Marshal(map[string]any{
		"keys": map[string]string{"1": base64.StdEncoding.EncodeToString(testbin.RandomSecret())}, "activeKey": 1,
	})
	appAddr := testbin.FreeAddr(t)
	st.AppURL = "http://" + appAddr
	st.App = testbin.Start(t, testbin.Cmd{Name: "storefront", Path: appBin,
		Args: []string{"-addr", appAddr, "-origin", st.Origin.URL},
		Env: []string{sdk.EnvAPIKey + "_FILE=" + secret("app-key", []byte(st.AppKey)),
			sdk.EnvAssertionKeys + "_FILE=" + secret("assertion.json", assertion)},
		Ready: st.AppURL + "/healthz"})

	keys := map[string]string{}
	for id, k := range st.Origin.Cfg.Keys {
		keys[strconv.Itoa(int(id))] = base64.StdEncoding.EncodeToString(k)
	}
	plugin, _ := json.MarshalIndent(map[string]any{
		"keys":      keys,
		"activeKey": st.Origin.Cfg.ActiveKey,
		"sites":     map[string]any{"*": map[string]string{"siteCode": "DE", "currency": "EUR", "targetLocation": "DE", "locale": "de-DE"}},
		"origin":    map[string]any{"cluster": "origin", "apiKey": st.EdgeKey},
		"sync":      map[string]any{"interval": "200ms"},
		"assertion": json.RawMessage(assertion),
	}, "", "  ")
	pluginFile := secret("plugin.json", plugin)

	addr, admin := testbin.FreeAddr(t), testbin.FreeAddr(t)
	st.URL, st.AdminURL = "http://"+addr, "http://"+admin
	_, port, _ := strings.Cut(addr, ":")
	// The plugin configuration's path comes from the environment, resolved
	// at provisioning ({env.*}), as docs/caddy.md recommends for secrets.
	st.Caddyfile = fmt.Sprintf(`{
	admin %s
	auto_https off
	persist_config off
%s
}

http://:%s {
	bind 127.0.0.1
%s
	proxy_wasm {
		wasm %s
		plugin_config_file {env.SESSIONEDGE_PLUGIN_CONFIG_FILE}
		cluster origin %s
		vms 2
%s
	}
	reverse_proxy %s
}
`, admin, opt.Global, port, opt.Site, wasm, strings.TrimPrefix(st.Origin.URL, "http://"), opt.Handler, appAddr)
	caddyfile := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(caddyfile, []byte(st.Caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	st.caddyBin, st.caddyfilePath = caddyBin, caddyfile
	env := []string{"SESSIONEDGE_PLUGIN_CONFIG_FILE=" + pluginFile, "XDG_CONFIG_HOME=" + dir, "XDG_DATA_HOME=" + dir}
	st.env = append(os.Environ(), env...)
	st.Caddy = testbin.Start(t, testbin.Cmd{Name: "caddy", Path: caddyBin, Dir: dir,
		Args: []string{"run", "--config", caddyfile, "--adapter", "caddyfile"},
		Env:  env,
		// The storefront's health check, through Caddy and the filter.
		Ready: st.URL + "/healthz"})
	return st
}

// client returns an SDK client of the stack's origin with key.
func (st *stack) client(t *testing.T, key string) *sdk.Client {
	t.Helper()
	c, err := sdk.New(sdk.Config{BaseURL: st.Origin.URL, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// browser plays a browser over plain HTTP: it keeps cookies by name
// (whatever their Secure attribute: browsers keep Secure cookies for
// localhost), follows redirects, and records every Set-Cookie and every
// x-session-* response header it got (the filter must strip them all).
type browser struct {
	base       string
	mu         sync.Mutex
	cookies    map[string]*http.Cookie
	setCookies []*http.Cookie // of the last response, redirects included
	leaked     []string
	header     http.Header
}

func newBrowser(base string) *browser {
	return &browser{base: base, cookies: map[string]*http.Cookie{}, header: http.Header{}}
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// page is an answer after redirects.
type page struct {
	Status int
	Header http.Header
	Body   string
}

func (b *browser) do(t *testing.T, method, path, contentType string, body []byte, extra ...string) *page {
	t.Helper()
	b.mu.Lock()
	b.setCookies = nil
	b.mu.Unlock()
	for range 10 {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequest(method, b.base+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		for k, vs := range b.header {
			req.Header[k] = vs
		}
		for i := 0; i+1 < len(extra); i += 2 {
			req.Header.Set(extra[i], extra[i+1])
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		b.mu.Lock()
		for _, c := range b.cookies {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
		b.mu.Unlock()
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		b.mu.Lock()
		for name, vs := range resp.Header {
			if strings.HasPrefix(strings.ToLower(name), "x-session-") {
				b.leaked = append(b.leaked, name+": "+strings.Join(vs, ", "))
			}
		}
		for _, c := range resp.Cookies() {
			b.setCookies = append(b.setCookies, c)
			if c.MaxAge < 0 {
				delete(b.cookies, c.Name)
			} else {
				b.cookies[c.Name] = c
			}
		}
		b.mu.Unlock()
		if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode/100 == 3 {
			u, err := url.Parse(loc)
			if err != nil {
				t.Fatal(err)
			}
			method, path, contentType, body = http.MethodGet, u.RequestURI(), "", nil
			continue
		}
		return &page{Status: resp.StatusCode, Header: resp.Header, Body: string(data)}
	}
	t.Fatalf("%s %s: too many redirects", method, path)
	return nil
}

func (b *browser) get(t *testing.T, path string, header ...string) *page {
	t.Helper()
	return b.do(t, http.MethodGet, path, "", nil, header...)
}

func (b *browser) post(t *testing.T, path string, form url.Values) *page {
	t.Helper()
	return b.do(t, http.MethodPost, path, "application/x-www-form-urlencoded", []byte(form.Encode()))
}

func (b *browser) cookie(name string) *http.Cookie {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cookies[name]
}

func (b *browser) setCookie(name, value string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cookies[name] = &http.Cookie{Name: name, Value: value}
}

// reissued reports whether the last request's responses set the cookie.
func (b *browser) reissued(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.setCookies {
		if c.Name == name {
			return true
		}
	}
	return false
}

// session is the storefront's /api/session answer: the session as the
// filter forwarded it.
type session struct {
	ID         string `json:"id"`
	Kind       string `json:"kind"`
	Customer   string `json:"customer"`
	Source     string `json:"source"`
	Generation uint32 `json:"generation"`
	Currency   string `json:"currency"`
}

func (b *browser) session(t *testing.T) session {
	t.Helper()
	p := b.get(t, "/api/session")
	if p.Status != http.StatusOK {
		t.Fatalf("/api/session: %d %s", p.Status, p.Body)
	}
	var s session
	if err := json.Unmarshal([]byte(p.Body), &s); err != nil {
		t.Fatalf("/api/session: %v: %s", err, p.Body)
	}
	return s
}
