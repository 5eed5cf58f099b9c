// Command edge is the sessionedge edge proxy: it runs the proxy-wasm filter
// on every request and forwards to an upstream. It turns a JSON config file,
// EDGE_* environment variables and flags (in increasing precedence) into a
// proxy.Config and calls proxy.Run.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/sessionedge/sessionedge/edge/proxy"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "edge:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	configFile := fs.String("config", os.Getenv("EDGE_CONFIG"), "JSON config file (env EDGE_CONFIG)")
	listen := fs.String("listen", "", "listen address (env EDGE_LISTEN, default :8080)")
	upstream := fs.String("upstream", "", "upstream host:port (env EDGE_UPSTREAM)")
	clusters := fs.String("clusters", "", "HTTP-call clusters, name=host:port,... (env EDGE_CLUSTERS)")
	wasm := fs.String("wasm", "", "filter module (env EDGE_WASM, default build/sessionedge.wasm)")
	pluginConfig := fs.String("plugin-config", "", "plugin configuration, inline JSON (env EDGE_PLUGIN_CONFIG)")
	pluginConfigFile := fs.String("plugin-config-file", "", "plugin configuration file (env EDGE_PLUGIN_CONFIG_FILE)")
	vms := fs.Int("vms", 0, "number of filter VMs (env EDGE_VMS, default GOMAXPROCS)")
	admin := fs.String("admin", "", "admin address for /metrics /healthz /readyz, - to disable (env EDGE_ADMIN, default 127.0.0.1:9901)")
	noFilter := fs.Bool("no-filter", false, "forward without the filter (env EDGE_NO_FILTER=1)")
	failOpen := fs.Bool("fail-open", false, "forward unfiltered when the filter fails (env EDGE_FAIL_OPEN=1)")
	logFormat := fs.String("log-format", "", "text or json (env EDGE_LOG_FORMAT)")
	logLevel := fs.String("log-level", "", "debug, info, warn, error (env EDGE_LOG_LEVEL)")
	cacheDir := fs.String("compilation-cache", "", "wasm compilation cache directory (env EDGE_COMPILATION_CACHE)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	var cfg proxy.Config
	if *configFile != "" {
		c, err := proxy.LoadConfigFile(*configFile)
		if err != nil {
			return err
		}
		cfg = c
	}
	str := func(dst *string, env, flagVal string) {
		if v := os.Getenv(env); v != "" {
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
	var pc string
	str(&pc, "EDGE_PLUGIN_CONFIG", *pluginConfig)
	if pc != "" {
		if !json.Valid([]byte(pc)) {
			return fmt.Errorf("plugin configuration is not valid JSON")
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
				return fmt.Errorf("cluster %q: want name=host:port", kv)
			}
			cfg.Clusters[name] = addr
		}
	}
	if v := os.Getenv("EDGE_VMS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("EDGE_VMS: %w", err)
		}
		cfg.VMs = n
	}
	if *vms > 0 {
		cfg.VMs = *vms
	}
	cfg.NoFilter = cfg.NoFilter || *noFilter || os.Getenv("EDGE_NO_FILTER") == "1"
	cfg.FailOpen = cfg.FailOpen || *failOpen || os.Getenv("EDGE_FAIL_OPEN") == "1"

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return proxy.Run(ctx, cfg)
}
