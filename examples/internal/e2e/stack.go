package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/sdktest"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// The API keys of a stack: the app's and the edge's.
const (
	AppKey  = "app-key"
	EdgeKey = "edge-key"
)

// Options says what Start runs.
type Options struct {
	// App is the package of the example app behind the edge, relative to
	// the module root ("./examples/storefront"); empty for none (the edge
	// then forwards to a stub that answers 204).
	App string
	// AppArgs are more arguments for the app.
	AppArgs []string
	// Origin configures the origin; keys and API keys are filled in.
	Origin sdktest.OriginConfig
	// Plugin holds extra top-level fields of the filter's plugin
	// configuration (e.g. "sessions" timeouts).
	Plugin map[string]any
	// FakeOrigin runs sdktest's in-memory origin instead of the real one,
	// so the edge and the filter can be tested where the origin is not
	// built.
	FakeOrigin bool
}

// Stack is a running origin, edge proxy with the filter, and app.
type Stack struct {
	EdgeURL, OriginURL, AppURL string
	Origin                     *sdktest.Origin     // the real origin, unless Options.FakeOrigin
	Fake                       *sdktest.FakeOrigin // the fake origin with Options.FakeOrigin
	Edge, App                  *sdktest.Process
}

// Start builds and starts the origin, the edge proxy with the filter and
// the app, each on a free loopback port, and stops them when the test ends.
// The test skips when the origin, the edge proxy or the filter is not in
// this tree yet.
func Start(t testing.TB, opt Options) *Stack {
	t.Helper()
	need := []string{"./edge/cmd/edge", "./wasm"}
	if !opt.FakeOrigin {
		need = append(need, "./origin/cmd/origin")
	}
	for _, pkg := range need {
		if !sdktest.HasPackage(t, pkg) {
			t.Skipf("%s is not in this tree yet: the end-to-end test needs the origin, the edge proxy and the filter", pkg)
		}
	}
	edgeBin := sdktest.Build(t, "./edge/cmd/edge")
	wasm := sdktest.BuildWasm(t, "./wasm")
	var appBin string
	if opt.App != "" {
		appBin = sdktest.Build(t, opt.App)
	}

	ocfg := opt.Origin
	if ocfg.APIKeys == nil {
		ocfg.APIKeys = map[string][]string{}
	}
	ocfg.APIKeys[AppKey] = []string{"sessions:read", "sessions:write"}
	ocfg.APIKeys[EdgeKey] = []string{"edge:sync", "sessions:read", "sessions:write"}
	st := &Stack{}
	if opt.FakeOrigin {
		secret := sdktest.RandomSecret()
		kr, err := wire.NewKeyring(1, map[uint8][]byte{1: secret})
		if err != nil {
			t.Fatal(err)
		}
		st.Fake = sdktest.NewFakeOrigin(sdktest.FakeOriginConfig{APIKeys: ocfg.APIKeys, Keyring: kr})
		t.Cleanup(st.Fake.Close)
		st.OriginURL = st.Fake.URL
		ocfg.Keys, ocfg.ActiveKey = map[uint8][]byte{1: secret}, 1
	} else {
		st.Origin = sdktest.StartOrigin(t, ocfg)
		st.OriginURL = st.Origin.URL
		ocfg = st.Origin.Cfg
	}

	appAddr := sdktest.FreeAddr(t)
	if appBin != "" {
		args := append([]string{"-addr", appAddr, "-origin", st.OriginURL, "-api-key", AppKey}, opt.AppArgs...)
		st.App = sdktest.Start(t, sdktest.Cmd{Name: "app", Path: appBin, Args: args, Ready: "http://" + appAddr + "/healthz"})
	}
	st.AppURL = "http://" + appAddr

	st.EdgeURL, st.Edge = StartEdge(t, wasm, edgeBin, appAddr, strings.TrimPrefix(st.OriginURL, "http://"), ocfg, opt.Plugin)
	return st
}

// PluginConfig returns the filter's plugin configuration for an origin:
// its keyring, site defaults (DE, EUR, de-DE), the origin cluster with the
// edge's API key, a short sync interval, and extra's fields on top.
func PluginConfig(origin sdktest.OriginConfig, extra map[string]any) map[string]any {
	keys := map[string]string{}
	for id, k := range origin.Keys {
		keys[strconv.Itoa(int(id))] = base64.StdEncoding.EncodeToString(k)
	}
	pc := map[string]any{
		"keys":      keys,
		"activeKey": origin.ActiveKey,
		"sites":     map[string]any{"*": map[string]string{"siteCode": "DE", "currency": "EUR", "targetLocation": "DE", "locale": "de-DE"}},
		"origin":    map[string]any{"cluster": "origin", "apiKey": EdgeKey},
		"sync":      map[string]any{"interval": "200ms"},
	}
	for k, v := range extra {
		pc[k] = v
	}
	return pc
}

// StartEdge starts the edge proxy running the filter wasm in front of the
// upstream address, with cluster "origin" pointing at originAddr and the
// origin's keys. It returns the edge's URL.
func StartEdge(t testing.TB, wasm, edgeBin, upstream, originAddr string, origin sdktest.OriginConfig, extra map[string]any) (string, *sdktest.Process) {
	t.Helper()
	dir := t.TempDir()
	b, _ := json.MarshalIndent(PluginConfig(origin, extra), "", "  ")
	pcPath := filepath.Join(dir, "plugin.json")
	if err := os.WriteFile(pcPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	listen, admin := sdktest.FreeAddr(t), sdktest.FreeAddr(t)
	p := sdktest.Start(t, sdktest.Cmd{Name: "edge", Path: edgeBin, Dir: dir, Args: []string{
		"-listen", listen, "-admin", admin, "-upstream", upstream, "-clusters", "origin=" + originAddr,
		"-wasm", wasm, "-plugin-config-file", pcPath, "-vms", "2",
	}, Ready: "http://" + admin + "/readyz"})
	return "http://" + listen, p
}

// Client returns an SDK client for the stack's origin with the app's key.
func (s *Stack) Client(t testing.TB) *sdk.Client {
	t.Helper()
	c, err := sdk.New(sdk.Config{BaseURL: s.OriginURL, APIKey: AppKey})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
