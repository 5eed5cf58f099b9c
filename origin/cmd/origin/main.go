// Command origin runs the sessionedge origin service: it turns flags, the
// environment and an optional JSON configuration file into a server.Config
// and calls server.Run.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sessionedge/sessionedge/origin/server"
)

func main() {
	var cfg server.Config
	configPath := flag.String("config", os.Getenv("ORIGIN_CONFIG"), "JSON configuration file (env ORIGIN_CONFIG)")
	listen := flag.String("listen", os.Getenv("ORIGIN_LISTEN"), "listen address, default :8081 (env ORIGIN_LISTEN)")
	dataDir := flag.String("data", os.Getenv("ORIGIN_DATA"), "data directory, default ./data (env ORIGIN_DATA)")
	webhookURL := flag.String("webhook-url", os.Getenv("ORIGIN_WEBHOOK_URL"), "webhook URL (env ORIGIN_WEBHOOK_URL)")
	webhookSecret := flag.String("webhook-secret", os.Getenv("ORIGIN_WEBHOOK_SECRET"), "webhook HMAC secret (env ORIGIN_WEBHOOK_SECRET)")
	debug := flag.Bool("debug", false, "debug logging")
	flag.Parse()

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if *configPath != "" {
		if err := server.LoadConfigFile(*configPath, &cfg); err != nil {
			fmt.Fprintln(os.Stderr, "origin:", err)
			os.Exit(2)
		}
	}
	// Flags and environment override the file.
	for _, o := range []struct {
		dst *string
		v   string
	}{{&cfg.Listen, *listen}, {&cfg.DataDir, *dataDir}, {&cfg.Webhook.URL, *webhookURL}, {&cfg.Webhook.Secret, *webhookSecret}} {
		if o.v != "" {
			*o.dst = o.v
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := server.Run(ctx, cfg); err != nil {
		cfg.Logger.Error("origin failed", "err", err)
		os.Exit(1)
	}
}
