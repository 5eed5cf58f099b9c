// Package exampleapp is the start-up the example apps share, none of it
// specific to sessionedge beyond reading the secrets: the -addr and -origin
// flags, the origin API key and the edge's assertion keys from the
// environment, and an HTTP server that stops gracefully on SIGINT or
// SIGTERM. What each example shows of the SDK is in its own package.
package exampleapp

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
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Config is where an example app listens and what it needs to reach the
// origin and to trust the edge.
type Config struct {
	Addr          string              // listen address
	OriginURL     string              // origin API base URL
	APIKey        string              // origin API key
	AssertionKeys *wire.AssertionKeys // the keys the edge signs its assertions with
}

// Flags defines -addr (default addr) and -origin (default the demo's
// origin, http://127.0.0.1:8081) on the command line, or, where c holds
// them already, with those as defaults.
func (c *Config) Flags(addr string) {
	if c.Addr == "" {
		c.Addr = addr
	}
	if c.OriginURL == "" {
		c.OriginURL = "http://127.0.0.1:8081"
	}
	flag.StringVar(&c.Addr, "addr", c.Addr, "address to listen on")
	flag.StringVar(&c.OriginURL, "origin", c.OriginURL, "origin API base URL")
}

// LoadSecrets reads the origin API key (sdk.EnvAPIKey) and the edge's
// assertion keys (sdk.EnvAssertionKeys) from the environment, or from the
// files their _FILE variables name: secrets never come from flags. Without
// assertion keys it fails, since the app could not tell the edge's
// requests from forged ones.
func (c *Config) LoadSecrets() error {
	key, err := sdk.SecretFromEnv(sdk.EnvAPIKey)
	if err != nil {
		return err
	}
	c.APIKey = string(key)
	if c.AssertionKeys, err = sdk.AssertionKeysFromEnv(); err != nil {
		return err
	}
	if c.AssertionKeys == nil {
		return fmt.Errorf("no assertion keys: set %s or %s_FILE to the keys the edge signs with, so the app can tell the edge's requests from forged ones",
			sdk.EnvAssertionKeys, sdk.EnvAssertionKeys)
	}
	return nil
}

// Main runs run with a context that ends at SIGINT or SIGTERM; if run
// fails, it logs the error after name and exits with status 1.
func Main(name string, run func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		log.Fatalf("%s: %v", name, err)
	}
}

// Serve serves h on addr until ctx ends, then shuts the server down
// gracefully (5s at most). It logs "name: listening on <address>".
func Serve(ctx context.Context, name, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("%s: listening on %s", name, ln.Addr())
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
