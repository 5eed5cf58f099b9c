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
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

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
	if err := cfg.loadSecrets(); err != nil {
		log.Fatalf("storefront: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		log.Fatalf("storefront: %v", err)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// loadSecrets reads the API key and the assertion keys from the environment.
func (cfg *config) loadSecrets() error {
	key, err := sdk.SecretFromEnv(sdk.EnvAPIKey)
	if err != nil {
		return err
	}
	cfg.APIKey = string(key)
	if cfg.AssertionKeys, err = sdk.AssertionKeysFromEnv(); err != nil {
		return err
	}
	if cfg.AssertionKeys == nil {
		return fmt.Errorf("no assertion keys: set %s or %s_FILE to the keys the edge signs with, so the shop can tell the edge's requests from forged ones",
			sdk.EnvAssertionKeys, sdk.EnvAssertionKeys)
	}
	return nil
}

// run serves the storefront until ctx is done, then shuts down gracefully.
func run(ctx context.Context, cfg config) error {
	h, err := newApp(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("storefront: listening on %s, origin %s", ln.Addr(), cfg.OriginURL)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
