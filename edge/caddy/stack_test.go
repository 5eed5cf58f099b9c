package caddy

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/internal/webclient"
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

// browser is webclient's browser over plain HTTP (cookies kept whatever
// their Secure attribute, redirects followed, every x-session-* response
// header recorded: the filter must strip them all), with the storefront's
// /api/session answer.
type browser struct{ *webclient.Browser }

func newBrowser(base string) browser { return browser{webclient.New(base)} }

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

func (b browser) session(t *testing.T) session {
	t.Helper()
	p := b.Get(t, "/api/session")
	if p.Status != http.StatusOK {
		t.Fatalf("/api/session: %d %s", p.Status, p.Body)
	}
	var s session
	if err := json.Unmarshal([]byte(p.Body), &s); err != nil {
		t.Fatalf("/api/session: %v: %s", err, p.Body)
	}
	return s
}
