package server

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    Duration
		wantErr bool
	}{
		{`"30m"`, Duration(30 * time.Minute), false},
		{`"500ms"`, Duration(500 * time.Millisecond), false},
		{`"none"`, None, false},
		{`90`, Duration(90 * time.Second), false},
		{`1.5`, Duration(1500 * time.Millisecond), false},
		{`0`, 0, false},
		{`"0s"`, 0, false},
		{`"-5m"`, 0, true},
		{`-1`, 0, true},
		{`"soon"`, 0, true},
		{`true`, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var d Duration
			err := d.UnmarshalJSON([]byte(tc.in))
			if (err != nil) != tc.wantErr || (!tc.wantErr && d != tc.want) {
				t.Fatalf("UnmarshalJSON(%s) = %v, %v; want %v, error %v", tc.in, d, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestDecodeConfig checks that the configuration file is read strictly:
// unknown keys and bad values are refused with the field's path.
func TestDecodeConfig(t *testing.T) {
	good := `{"listen":"127.0.0.1:0","admin":"-","timeouts":{"customer":{"idle":"10m","hard":"none","maxIdle":"1h"},"shared":{"tokenLifetime":3600}},
		"customerSessions":{"max":3,"onLimit":"refuse"},"webhook":{"changedWindow":2},
		"limits":{"maxAttrs":10},"http":{"headerTimeout":"2s","maxConnsPerIP":8},
		"apiKeys":[{"name":"a","sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","scopes":["edge:sync"],"namespaces":["public"]}]}`
	var cfg Config
	if err := DecodeConfig([]byte(good), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Timeouts.Customer.Idle != Duration(10*time.Minute) || cfg.Timeouts.Customer.Hard != None ||
		cfg.Timeouts.Shared.TokenLifetime != Duration(time.Hour) || cfg.Limits.MaxAttrs != 10 || cfg.HTTP.MaxConnsPerIP != 8 ||
		cfg.Timeouts.Customer.MaxIdle != Duration(time.Hour) || cfg.CustomerSessions != (CustomerSessions{3, OnLimitRefuse}) ||
		cfg.Webhook.ChangedWindow != Duration(2*time.Second) {
		t.Fatalf("decoded %+v", cfg)
	}
	bad := []struct{ doc, want string }{
		{`{"tokenKeyz":{}}`, "config: tokenKeyz: unknown field"},
		{`{"Listen":":1"}`, "config: Listen: unknown field"},
		{`{"timeouts":{"customer":{"idel":"5m"}}}`, "config: timeouts.customer.idel: unknown field"},
		{`{"timeouts":{"anonymous":{"tokenLifetime":"5m"}}}`, "config: timeouts.anonymous.tokenLifetime: unknown field"},
		{`{"apiKeys":[{"name":"a"},{"nmae":"b"}]}`, "config: apiKeys[1].nmae: unknown field"},
		{`{"limits":{"maxAtrs":1}}`, "config: limits.maxAtrs: unknown field"},
		{`{"sweepInterval":"soon"}`, "config: sweepInterval:"},
		{`{"sweepInterval":"-1s"}`, "config: sweepInterval:"},
		{`{"webhook":{"timeout":-3}}`, "config: webhook.timeout:"},
		{`{"maxBodyBytes":"big"}`, "config: maxBodyBytes: must be an integer"},
		{`{"insecure":"yes"}`, "config: insecure: must be true or false"},
		{`{"tokenKeys":{"1":5}}`, "config: tokenKeys.1: must be a string"},
		{`{"store":{}}`, "config: store: unknown field"},
		{`{"customerSessions":{"maximum":1}}`, "config: customerSessions.maximum: unknown field"},
		{`{"webhook":{"changedWindow":"soon"}}`, "config: webhook.changedWindow:"},
		{`{"timeouts":{"shared":{"maxIdel":"1h"}}}`, "config: timeouts.shared.maxIdel: unknown field"},
		{`{"listen":`, "config: (document): not JSON"},
	}
	for _, tc := range bad {
		t.Run(tc.doc, func(t *testing.T) {
			var cfg Config
			err := DecodeConfig([]byte(tc.doc), &cfg)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to start with %q", err, tc.want)
			}
		})
	}
}

func TestLoadConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "origin.json")
	os.WriteFile(path, []byte(`{"listen":"127.0.0.1:0","timeouts":{"customer":{"idle":"10m","hard":"none"}},
		"apiKeys":[{"name":"a","sha256":"`+"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"+`","scopes":["sessions:read"]}]}`), 0o600)
	var cfg Config
	if err := LoadConfigFile(path, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Store = openPebble(t, t.TempDir())
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	if got := s.tm[2]; got.Idle != Duration(10*time.Minute) || got.Hard != None {
		t.Fatalf("customer timeouts %+v", got)
	}
	if got := s.tm[1]; got.Idle != Duration(time.Hour) || got.Hard != Duration(24*time.Hour) {
		t.Fatalf("anonymous defaults %+v", got)
	}
	if s.cfg.Listen != "127.0.0.1:0" || s.cfg.Admin != DefaultAdmin {
		t.Fatalf("addresses %q %q", s.cfg.Listen, s.cfg.Admin)
	}
	os.WriteFile(path, []byte(`{"tokenKeyz":{"1":"x"}}`), 0o600)
	if err := LoadConfigFile(path, &cfg); err == nil || !strings.Contains(err.Error(), "tokenKeyz: unknown field") {
		t.Fatalf("typo accepted: %v", err)
	}
}

func TestNewRefusesBadConfigurations(t *testing.T) {
	key := []APIKey{{Name: "k", Key: "k", Scopes: []string{"sessions:read"}}}
	bad := []struct {
		name, want string
		cfg        Config
	}{
		{"no API keys", "apiKeys", Config{}},
		{"unknown scope", "apiKeys[0].scopes", Config{APIKeys: []APIKey{{Name: "x", Key: "k", Scopes: []string{"root"}}}}},
		{"short sha256", "apiKeys[0].sha256", Config{APIKeys: []APIKey{{Name: "x", SHA256: "abcd"}}}},
		{"namespaces on an app key", "apiKeys[0].namespaces", Config{APIKeys: []APIKey{{Name: "x", Key: "k", Scopes: []string{"sessions:read"}, Namespaces: []string{"public"}}}}},
		{"unknown namespace", "apiKeys[0].namespaces", Config{APIKeys: []APIKey{{Name: "x", Key: "k", Scopes: []string{"edge:sync"}, Namespaces: []string{"secret"}}}}},
		{"short token key", "tokenKeys", Config{APIKeys: key, TokenKeys: map[string]string{"1": "c2hvcnQ="}}},
		{"webhook without secret", "webhook.secret", Config{APIKeys: key, Webhook: Webhook{URL: "http://127.0.0.1:1/"}}},
		{"no store", "no store", Config{APIKeys: key}},
		{"sweep never", "sweepInterval", Config{APIKeys: key, SweepInterval: None}},
		{"changed window never", "webhook.changedWindow", Config{APIKeys: key, Webhook: Webhook{ChangedWindow: None}}},
		{"negative session limit", "customerSessions.max", Config{APIKeys: key, CustomerSessions: CustomerSessions{Max: -1}}},
		{"unknown onLimit", "customerSessions.onLimit", Config{APIKeys: key, CustomerSessions: CustomerSessions{Max: 1, OnLimit: "oldest"}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name != "no store" {
				tc.cfg.Store = openPebble(t, t.TempDir())
			}
			s, err := New(tc.cfg)
			if err == nil {
				s.Shutdown(context.Background())
				t.Fatal("New accepted a bad configuration")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

// TestInsecureWarns: without API keys the origin starts only with
// insecure set, and then warns.
func TestInsecureWarns(t *testing.T) {
	var logs bytes.Buffer
	cfg := Config{Store: openPebble(t, t.TempDir()), Insecure: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Shutdown(context.Background())
	if !strings.Contains(logs.String(), "insecure") || !strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("no warning about the open API:\n%s", logs.String())
	}
}

// TestGracefulShutdown checks that Shutdown wakes parked long-polls, which
// answer normally, and that the server stops accepting.
func TestGracefulShutdown(t *testing.T) {
	s, err := New(baseConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	o := startOriginWith(t, s)
	head := o.sync("", 0).Cursor
	done := make(chan int, 1)
	go func() {
		r := o.do("GET", "/v1/sync?after="+head+"&wait=20000", keyEdge, nil)
		done <- r.status
	}()
	o.waitParked(1)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if status := <-done; status != 200 {
		t.Fatalf("in-flight long-poll answered %d", status)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("shutdown waited for the long-poll's full wait")
	}
}
