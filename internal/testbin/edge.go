package testbin

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// EdgeConfig configures an edge proxy started by StartEdge.
type EdgeConfig struct {
	// Upstream is the address ("127.0.0.1:port") of the app behind the
	// edge. Required.
	Upstream string
	// Origin is the origin the filter calls as cluster "origin"; its token
	// keys become the filter's keyring. Required unless Plugin holds every
	// field the filter needs.
	Origin *Origin
	// EdgeKey is the origin API key of the filter (scopes edge:sync and
	// edge:selfservice).
	EdgeKey string
	// Plugin holds more top-level fields of the plugin configuration, on
	// top of PluginConfig's ("sync", "cache", "failMode", "assertion", ...).
	Plugin map[string]any
	// VMs is the number of filter VMs. Default 2.
	VMs int
	// Clusters are more HTTP-call clusters, name → "host:port".
	Clusters map[string]string
	// Args are more flags of the edge (never secrets).
	Args []string
}

// Edge is a running edge proxy with the filter.
type Edge struct {
	*Process
	URL      string // the proxy, e.g. "http://127.0.0.1:41234"
	AdminURL string // /metrics, /healthz, /readyz
	// PluginConfig is the plugin configuration it runs with.
	PluginConfig map[string]any
}

// PluginConfig returns the filter's plugin configuration for an origin:
// its keyring, site defaults (DE, EUR, de-DE), the origin cluster with the
// edge's API key, a short sync interval (200ms), and extra's fields on top.
func PluginConfig(origin OriginConfig, edgeKey string, extra map[string]any) map[string]any {
	keys := map[string]string{}
	for id, k := range origin.Keys {
		keys[strconv.Itoa(int(id))] = base64.StdEncoding.EncodeToString(k)
	}
	pc := map[string]any{
		"keys":      keys,
		"activeKey": origin.ActiveKey,
		"sites":     map[string]any{"*": map[string]string{"siteCode": "DE", "currency": "EUR", "targetLocation": "DE", "locale": "de-DE"}},
		"origin":    map[string]any{"cluster": "origin", "apiKey": edgeKey},
		"sync":      map[string]any{"interval": "200ms"},
	}
	for k, v := range extra {
		pc[k] = v
	}
	return pc
}

// StartEdge builds the edge proxy (./edge/cmd/edge) and the filter
// (./wasm), and starts the proxy in front of cfg.Upstream with cluster
// "origin" pointing at cfg.Origin, its listener and admin listener on free
// loopback ports. The plugin configuration, which holds the token keys, is
// a file (0600). Under Main the edges of a test binary share one wazero
// compilation cache, so only the first compiles the filter. It returns
// once /readyz answers.
func StartEdge(t testing.TB, cfg EdgeConfig) *Edge {
	t.Helper()
	bin := Build(t, "./edge/cmd/edge")
	wasm := BuildWasm(t, "./wasm")
	var pc map[string]any
	if cfg.Origin != nil {
		pc = PluginConfig(cfg.Origin.Cfg, cfg.EdgeKey, cfg.Plugin)
	} else {
		pc = map[string]any{}
		for k, v := range cfg.Plugin {
			pc[k] = v
		}
	}
	dir := t.TempDir()
	b, _ := json.MarshalIndent(pc, "", "  ")
	pcPath := filepath.Join(dir, "plugin.json")
	if err := os.WriteFile(pcPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	vms := cfg.VMs
	if vms <= 0 {
		vms = 2
	}
	var clusters []string
	if cfg.Origin != nil {
		clusters = append(clusters, "origin="+strings.TrimPrefix(cfg.Origin.URL, "http://"))
	}
	for name, addr := range cfg.Clusters {
		clusters = append(clusters, name+"="+addr)
	}
	listen, admin := FreeAddr(t), FreeAddr(t)
	args := []string{"-listen", listen, "-admin", admin, "-upstream", cfg.Upstream,
		"-wasm", wasm, "-plugin-config-file", pcPath, "-vms", strconv.Itoa(vms),
		"-compilation-cache", CompilationCache(t)}
	if len(clusters) > 0 {
		args = append(args, "-clusters", strings.Join(clusters, ","))
	}
	args = append(args, cfg.Args...)
	p := Start(t, Cmd{Name: "edge", Path: bin, Dir: dir, Args: args, Ready: "http://" + admin + "/readyz"})
	return &Edge{Process: p, URL: "http://" + listen, AdminURL: "http://" + admin, PluginConfig: pc}
}

// CompilationCache returns the wazero compilation cache directory (the
// edge's -compilation-cache) the edges of the test binary share under
// Main, else a temporary one.
func CompilationCache(t testing.TB) string {
	binMu.Lock()
	defer binMu.Unlock()
	if binDir == "" {
		return filepath.Join(t.TempDir(), "wazero")
	}
	return filepath.Join(binDir, "wazero")
}
