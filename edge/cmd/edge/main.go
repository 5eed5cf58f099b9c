// Command edge is the sessionedge edge proxy: it runs the proxy-wasm filter
// on every request and forwards to an upstream. It turns a JSON config file,
// EDGE_* environment variables and flags (in increasing precedence) into a
// proxy.Config and calls proxy.Run. docs/edge.md has the configuration
// reference.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/sessionedge/sessionedge/edge/proxy"
)

func main() {
	err := run(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "edge:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	cfg, err := loadConfig(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return proxy.Run(ctx, cfg)
}

const reference = "Configuration reference: docs/edge.md, section \"Configuration\"."

// Errors of a configuration that cannot start an edge, naming every way to
// give what is missing.
var (
	errNoUpstream     = errors.New(`no upstream: set -upstream, env EDGE_UPSTREAM or config key "upstream"`)
	errNoPluginConfig = errors.New(`no plugin configuration: set -plugin-config-file, env EDGE_PLUGIN_CONFIG_FILE or config key "pluginConfigFile" (a file), ` +
		`env EDGE_PLUGIN_CONFIG (the JSON itself) or config key "pluginConfig"; it holds the token keys, so no flag takes it inline`)
)

// loadConfig merges the config file, the environment and the flags, in
// increasing precedence. -h prints the usage to stderr and returns
// flag.ErrHelp.
func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (proxy.Config, error) {
	var cfg proxy.Config
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: edge [flags]\n\nThe sessionedge edge proxy. Settings come from a JSON file (-config), then EDGE_* environment\nvariables, then flags.\n%s\n\nFlags:\n", reference)
		fs.PrintDefaults()
	}
	configFile := fs.String("config", getenv("EDGE_CONFIG"), "JSON config file (env EDGE_CONFIG)")
	listen := fs.String("listen", "", "listen address (env EDGE_LISTEN, default :8080)")
	upstream := fs.String("upstream", "", "upstream host:port (env EDGE_UPSTREAM)")
	clusters := fs.String("clusters", "", "HTTP-call clusters, name=host:port,... (env EDGE_CLUSTERS)")
	wasm := fs.String("wasm", "", "filter module (env EDGE_WASM, default build/sessionedge.wasm)")
	pluginConfigFile := fs.String("plugin-config-file", "", "plugin configuration file (env EDGE_PLUGIN_CONFIG_FILE; or the JSON itself in env EDGE_PLUGIN_CONFIG)")
	vms := fs.Int("vms", 0, "number of filter VMs (env EDGE_VMS, default GOMAXPROCS)")
	admin := fs.String("admin", "", "admin address for /metrics /healthz /readyz, - to disable (env EDGE_ADMIN, default 127.0.0.1:9901)")
	noFilter := fs.Bool("no-filter", false, "forward without the filter (env EDGE_NO_FILTER=1)")
	failOpen := fs.Bool("fail-open", false, "forward unfiltered when the filter fails (env EDGE_FAIL_OPEN=1)")
	logFormat := fs.String("log-format", "", "text or json (env EDGE_LOG_FORMAT)")
	logLevel := fs.String("log-level", "", "debug, info, warn, error (env EDGE_LOG_LEVEL)")
	cacheDir := fs.String("compilation-cache", "", "wasm compilation cache directory (env EDGE_COMPILATION_CACHE)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (%s)", fs.Arg(0), reference)
	}
	if *configFile != "" {
		c, err := proxy.LoadConfigFile(*configFile)
		if err != nil {
			return cfg, err
		}
		cfg = c
	}
	str := func(dst *string, env, flagVal string) {
		if v := getenv(env); v != "" {
			*dst = v
		}
		if flagVal != "" {
			*dst = flagVal
		}
	}
	str(&cfg.Listen, "EDGE_LISTEN", *listen)
	str(&cfg.Upstream, "EDGE_UPSTREAM", *upstream)
	str(&cfg.Wasm, "EDGE_WASM", *wasm)
	str(&cfg.PluginConfigFile, "EDGE_PLUGIN_CONFIG_FILE", *pluginConfigFile)
	str(&cfg.Admin, "EDGE_ADMIN", *admin)
	str(&cfg.LogFormat, "EDGE_LOG_FORMAT", *logFormat)
	str(&cfg.LogLevel, "EDGE_LOG_LEVEL", *logLevel)
	str(&cfg.CompilationCacheDir, "EDGE_COMPILATION_CACHE", *cacheDir)
	if pc := getenv("EDGE_PLUGIN_CONFIG"); pc != "" {
		if !json.Valid([]byte(pc)) {
			return cfg, errors.New("EDGE_PLUGIN_CONFIG is not valid JSON")
		}
		cfg.PluginConfig = json.RawMessage(pc)
	}
	var cl string
	str(&cl, "EDGE_CLUSTERS", *clusters)
	if cl != "" {
		if cfg.Clusters == nil {
			cfg.Clusters = map[string]string{}
		}
		for _, kv := range strings.Split(cl, ",") {
			name, addr, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || name == "" || addr == "" {
				return cfg, fmt.Errorf("cluster %q: want name=host:port", kv)
			}
			cfg.Clusters[name] = addr
		}
	}
	if v := getenv("EDGE_VMS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return cfg, fmt.Errorf("EDGE_VMS: %w", err)
		}
		cfg.VMs = n
	}
	if *vms > 0 {
		cfg.VMs = *vms
	}
	cfg.NoFilter = cfg.NoFilter || *noFilter || getenv("EDGE_NO_FILTER") == "1"
	cfg.FailOpen = cfg.FailOpen || *failOpen || getenv("EDGE_FAIL_OPEN") == "1"
	if cfg.Upstream == "" {
		return cfg, errNoUpstream
	}
	if !cfg.NoFilter && len(cfg.PluginConfig) == 0 && cfg.PluginConfigFile == "" {
		return cfg, errNoPluginConfig
	}
	return cfg, nil
}
