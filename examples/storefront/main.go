// Command storefront is an example shop behind the sessionedge edge: an
// anonymous visitor browses, fills a cart, switches currency, logs in and out,
// and the app keeps all of it in the session context. See README.md.
//
// Secrets come from the environment or files, never from flags: the origin
// API key from SESSIONEDGE_API_KEY (or the file SESSIONEDGE_API_KEY_FILE
// names), the edge's assertion keys from SESSIONEDGE_ASSERTION_KEYS (or
// SESSIONEDGE_ASSERTION_KEYS_FILE).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/sessionedge/sessionedge/examples/internal/exampleapp"
	"github.com/sessionedge/sessionedge/sdk"
)

func main() {
	cfg := config{
		Addr:      envOr("APP_ADDR", "127.0.0.1:8082"),
		OriginURL: envOr("ORIGIN_URL", "http://127.0.0.1:8081"),
	}
	flag.StringVar(&cfg.Addr, "addr", cfg.Addr, "address to listen on (env APP_ADDR); keep it where only the edge reaches it")
	flag.StringVar(&cfg.OriginURL, "origin", cfg.OriginURL, "origin API base URL (env ORIGIN_URL)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `usage: storefront [-addr host:port] [-origin URL]

Secrets, from the environment (never flags):
  %[1]s or %[1]s_FILE             origin API key (scopes sessions:read, sessions:write)
  %[2]s or %[2]s_FILE   the edge's assertion keys: {"keys": {"1": "<base64>"}, "activeKey": 1}

`, sdk.EnvAPIKey, sdk.EnvAssertionKeys)
		flag.PrintDefaults()
	}
	flag.Parse()
	exampleapp.Main("storefront", func(ctx context.Context) error {
		if err := cfg.LoadSecrets(); err != nil {
			return err
		}
		h, err := newApp(cfg)
		if err != nil {
			return err
		}
		log.Printf("storefront: origin %s", cfg.OriginURL)
		return exampleapp.Serve(ctx, "storefront", cfg.Addr, h)
	})
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
