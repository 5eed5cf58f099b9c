package e2e

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Options says what Start runs.
type Options struct {
	// App is the package of the example app behind the edge, relative to
	// the module root ("./examples/storefront"). Required.
	App string
	// AppArgs are more arguments for the app (never secrets).
	AppArgs []string
	// WebhookPath, when set, makes the origin deliver its webhooks to this
	// path of the app, signed with a random secret the app reads from
	// SESSIONEDGE_WEBHOOK_SECRET_FILE.
	WebhookPath string
	// WebhookURL, when set, makes the origin deliver its webhooks there,
	// signed with Stack.WebhookSecret.
	WebhookURL string
	// Origin configures the origin; keys, API keys and webhooks are filled in.
	Origin testbin.OriginConfig
	// Plugin holds extra top-level fields of the filter's plugin
	// configuration (e.g. "sessions" timeouts).
	Plugin map[string]any
}

// Stack is a running origin, edge proxy with the filter, and app, and the
// secrets they share.
type Stack struct {
	EdgeURL, OriginURL, AppURL string
	Origin                     *testbin.Origin
	Edge, App                  *testbin.Process

	// AppKey (scopes sessions:read, sessions:write) and EdgeKey (edge:sync,
	// edge:selfservice) are random API keys of the origin.
	AppKey, EdgeKey string
	// AssertionSecret is the key (id 1) the edge signs its assertions with;
	// AssertionKeys verify them.
	AssertionSecret []byte
	AssertionKeys   *wire.AssertionKeys
	// WebhookSecret signs the origin's webhooks (with Options.WebhookPath).
	WebhookSecret []byte

	dir    string   // configuration and secret files, 0700
	appBin string   // the app's binary
	appEnv []string // the app's environment: where its secrets are
}

// Start builds and starts the origin, the edge proxy with the filter and
// the app, each on a free loopback port, and stops them when the test ends.
// Secrets reach the processes through files (0600, in a 0700 directory)
// named by their configuration or environment, never through arguments.
func Start(t testing.TB, opt Options) *Stack {
	t.Helper()
	st := &Stack{
		AppKey:          testbin.RandomKey("app"),
		EdgeKey:         testbin.RandomKey("edge"),
		AssertionSecret: testbin.RandomSecret(),
		dir:             t.TempDir(),
		appBin:          testbin.Build(t, opt.App),
	}
	if err := os.Chmod(st.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var err error
	if st.AssertionKeys, err = wire.NewAssertionKeys(1, map[uint8][]byte{1: st.AssertionSecret}); err != nil {
		t.Fatal(err)
	}
	appAddr := testbin.FreeAddr(t)
	st.AppURL = "http://" + appAddr

	ocfg := opt.Origin
	ocfg.APIKeys = append(ocfg.APIKeys,
		testbin.APIKey{Name: "app", Key: st.AppKey, Scopes: []string{"sessions:read", "sessions:write"}},
		testbin.APIKey{Name: "edge", Key: st.EdgeKey, Scopes: []string{"edge:sync", "edge:selfservice"}})
	if opt.WebhookPath != "" || opt.WebhookURL != "" {
		st.WebhookSecret = []byte(testbin.RandomKey("whsec"))
		ocfg.WebhookURL, ocfg.WebhookSecret = opt.WebhookURL, st.WebhookSecret
		if opt.WebhookPath != "" {
			ocfg.WebhookURL = st.AppURL + opt.WebhookPath
		}
		st.appEnv = append(st.appEnv, sdk.EnvWebhookSecret+"_FILE="+st.secretFile(t, "webhook-secret", st.WebhookSecret))
	}
	st.Origin = testbin.StartOrigin(t, ocfg)
	st.OriginURL = st.Origin.URL

	st.appEnv = append(st.appEnv,
		sdk.EnvAPIKey+"_FILE="+st.secretFile(t, "app-key", []byte(st.AppKey)),
		sdk.EnvAssertionKeys+"_FILE="+st.secretFile(t, "assertion.json", st.assertionJSON()))
	st.App = st.StartApp(t, "app", appAddr, opt.AppArgs...)

	plugin := map[string]any{"assertion": json.RawMessage(st.assertionJSON())}
	for k, v := range opt.Plugin {
		plugin[k] = v
	}
	st.EdgeURL, st.Edge = StartEdge(t, appAddr, st.Origin, st.EdgeKey, plugin)
	return st
}

// StartApp starts another instance of the stack's app on addr (a free
// loopback address when empty), with the app's secrets, not behind the
// edge, and returns it once /healthz answers.
func (st *Stack) StartApp(t testing.TB, name, addr string, args ...string) *testbin.Process {
	t.Helper()
	if addr == "" {
		addr = testbin.FreeAddr(t)
	}
	args = append([]string{"-addr", addr, "-origin", st.OriginURL}, args...)
	return testbin.Start(t, testbin.Cmd{Name: name, Path: st.appBin, Args: args, Env: st.appEnv, Ready: "http://" + addr + "/healthz"})
}

// assertionJSON is the assertion keys as the filter's "assertion"
// configuration and sdk.ParseAssertionKeys read them.
func (st *Stack) assertionJSON() []byte {
	b, _ := json.Marshal(map[string]any{
		"keys":      map[string]string{"1": base64.StdEncoding.EncodeToString(st.AssertionSecret)},
		"activeKey": 1,
	})
	return b
}

// secretFile writes a secret into the stack's directory, mode 0600, and
// returns its path.
func (st *Stack) secretFile(t testing.TB, name string, secret []byte) string {
	t.Helper()
	path := filepath.Join(st.dir, name)
	if err := os.WriteFile(path, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Secrets returns every secret of the stack, by name, in every text form a
// program could print it in (as is, base64 with and without padding, URL
// base64, hex): the API keys, the token keys, the shared secret, the
// assertion key and the webhook secret.
func (st *Stack) Secrets() map[string]string {
	out := map[string]string{}
	add := func(name string, b []byte) {
		if len(b) == 0 {
			return
		}
		out[name] = string(b)
		out[name+" (base64)"] = base64.RawStdEncoding.EncodeToString(b)
		out[name+" (base64url)"] = base64.RawURLEncoding.EncodeToString(b)
		out[name+" (hex)"] = hex.EncodeToString(b)
	}
	add("app API key", []byte(st.AppKey))
	add("edge API key", []byte(st.EdgeKey))
	add("assertion secret", st.AssertionSecret)
	add("webhook secret", st.WebhookSecret)
	add("shared secret", st.Origin.Cfg.SharedSecret)
	for id, k := range st.Origin.Cfg.Keys {
		add("token key "+strconv.Itoa(int(id)), k)
	}
	return out
}

// Processes returns the stack's processes by name, for reading their logs.
func (st *Stack) Processes() map[string]*testbin.Process {
	return map[string]*testbin.Process{"origin": st.Origin.Process, "edge": st.Edge, "app": st.App}
}

// PluginConfig returns the filter's plugin configuration for an origin
// (testbin.PluginConfig): its keyring, site defaults (DE, EUR, de-DE), the
// origin cluster with the edge's API key, a short sync interval, and
// extra's fields on top.
func PluginConfig(origin testbin.OriginConfig, edgeKey string, extra map[string]any) map[string]any {
	return testbin.PluginConfig(origin, edgeKey, extra)
}

// StartEdge starts the edge proxy (two filter VMs) in front of the
// upstream address, with cluster "origin" pointing at the origin, the
// origin's token keys and the edge's API key (testbin.StartEdge; the plugin
// configuration, which holds those secrets, is a file, 0600). It returns
// the edge's URL.
func StartEdge(t testing.TB, upstream string, origin *testbin.Origin, edgeKey string, extra map[string]any) (string, *testbin.Process) {
	t.Helper()
	e := testbin.StartEdge(t, testbin.EdgeConfig{Upstream: upstream, Origin: origin, EdgeKey: edgeKey, Plugin: extra, VMs: 2})
	return e.URL, e.Process
}

// Client returns an SDK client for the stack's origin with the app's key.
func (st *Stack) Client(t testing.TB) *sdk.Client {
	t.Helper()
	c, err := sdk.New(sdk.Config{BaseURL: st.OriginURL, APIKey: st.AppKey})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// MustRefuseForged sends requests with forged x-session-* headers (a
// customer session, in the usual and the underscore spelling, with and
// without a made-up assertion) straight to the app, past the edge, and fails
// the test unless every one is refused with 403.
func (st *Stack) MustRefuseForged(t testing.TB, method, path string) {
	t.Helper()
	id, _ := wire.NewID()
	fake := make([]byte, wire.AssertionLen)
	for i := range fake {
		fake[i] = 'A'
	}
	for i, h := range []map[string]string{
		{"x-session-id": id.String(), "x-session-kind": "customer", "x-session-customer": "alice", "x-session-context-status": "ok"},
		{"x_session_id": id.String(), "x_session_kind": "customer", "x_session_customer": "alice"},
		{"x-session-id": id.String(), "x-session-kind": "customer", "x-session-assertion": string(fake)},
	} {
		req, err := http.NewRequest(method, st.AppURL+path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		for k, v := range h {
			req.Header[k] = []string{v}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("forged request %d (%v) to %s %s: status %d, want 403", i, h, method, path, resp.StatusCode)
		}
	}
}
