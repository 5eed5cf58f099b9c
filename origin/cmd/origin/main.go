// Command origin runs the sessionedge origin service: it reads the JSON
// configuration file (docs/operations.md is its reference), opens the store
// it names, and serves the API and the admin listener until SIGINT or
// SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sessionedge/sessionedge/origin/server"
)

const usage = `Usage: origin [-config file] [-listen addr] [-admin addr] [-data dir] [-webhook-url url] [-debug]

Runs the sessionedge origin. Everything is configured in the JSON file given
by -config (or ORIGIN_CONFIG); the flags below override its fields. Secrets
(token keys, API keys, the webhook secret) come from the file or from the
environment (ORIGIN_WEBHOOK_SECRET, ORIGIN_REDIS_PASSWORD), never from flags.

The configuration reference is docs/operations.md.

Flags:
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("origin", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", os.Getenv("ORIGIN_CONFIG"), "JSON configuration file (env ORIGIN_CONFIG)")
	listen := fs.String("listen", os.Getenv("ORIGIN_LISTEN"), "API address, default "+server.DefaultListen+" (env ORIGIN_LISTEN)")
	admin := fs.String("admin", os.Getenv("ORIGIN_ADMIN"), "admin address for /metrics /healthz /readyz, default "+server.DefaultAdmin+", - for none (env ORIGIN_ADMIN)")
	dataDir := fs.String("data", os.Getenv("ORIGIN_DATA"), "embedded store directory, default ./data (env ORIGIN_DATA)")
	webhookURL := fs.String("webhook-url", os.Getenv("ORIGIN_WEBHOOK_URL"), "webhook URL (env ORIGIN_WEBHOOK_URL)")
	debug := fs.Bool("debug", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "origin: unexpected argument %q (see -h)\n", fs.Arg(0))
		return 2
	}
	restrictFileModes()

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	var fc fileConfig
	if *configPath != "" {
		if err := server.LoadConfigFile(*configPath, &fc); err != nil {
			fmt.Fprintln(os.Stderr, "origin:", err)
			return 2
		}
	}
	// Flags override the file, and the environment supplies secrets.
	for _, o := range []struct {
		dst *string
		v   string
	}{
		{&fc.Listen, *listen}, {&fc.Admin, *admin}, {&fc.DataDir, *dataDir}, {&fc.Webhook.URL, *webhookURL},
		{&fc.Webhook.Secret, os.Getenv("ORIGIN_WEBHOOK_SECRET")}, {&fc.Redis.Password, os.Getenv("ORIGIN_REDIS_PASSWORD")},
	} {
		if o.v != "" {
			*o.dst = o.v
		}
	}
	fc.Logger = logger
	st, err := openStore(fc.storeConfig, &fc.Config, logger)
	if err != nil {
		logger.Error("origin cannot open its store", "err", err)
		return 1
	}
	defer func() {
		if err := st.Close(); err != nil {
			logger.Error("closing the store failed", "err", err)
		}
	}()
	fc.Store = st
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := server.Run(ctx, fc.Config); err != nil {
		logger.Error("origin failed", "err", err)
		return 1
	}
	return 0
}
