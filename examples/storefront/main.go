// Command storefront is an example shop behind the sessionedge edge: an
// anonymous visitor browses, fills a cart, switches currency, logs in and out,
// and the app keeps all of it in the session context. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	cfg := config{
		Addr:      envOr("APP_ADDR", ":8082"),
		OriginURL: envOr("ORIGIN_URL", "http://127.0.0.1:8081"),
		APIKey:    os.Getenv("SESSIONEDGE_API_KEY"),
	}
	flag.StringVar(&cfg.Addr, "addr", cfg.Addr, "address to listen on (env APP_ADDR)")
	flag.StringVar(&cfg.OriginURL, "origin", cfg.OriginURL, "origin API base URL (env ORIGIN_URL)")
	flag.StringVar(&cfg.APIKey, "api-key", cfg.APIKey, "origin API key with sessions:read and sessions:write (env SESSIONEDGE_API_KEY)")
	flag.StringVar(&cfg.EdgeSecret, "edge-secret", os.Getenv("EDGE_SECRET"), "require this value in the x-edge-secret request header (env EDGE_SECRET; empty: no check)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		log.Fatal(err)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
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
