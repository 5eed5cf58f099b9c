package server

import (
	"context"
	"os"
	"path/filepath"
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
		{`"none"`, None, false},
		{`90`, Duration(90 * time.Second), false},
		{`"-5m"`, 0, true},
		{`"soon"`, 0, true},
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

func TestLoadConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "origin.json")
	os.WriteFile(path, []byte(`{"listen":"127.0.0.1:0","timeouts":{"customer":{"idle":"10m","hard":"none"}},
		"apiKeys":[{"name":"a","sha256":"`+"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"+`","scopes":["sessions:read"]}]}`), 0o600)
	var cfg Config
	if err := LoadConfigFile(path, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
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
	bad := []struct {
		name string
		cfg  Config
	}{
		{"unknown scope", Config{APIKeys: []APIKey{{Name: "x", Key: "k", Scopes: []string{"root"}}}}},
		{"short sha256", Config{APIKeys: []APIKey{{Name: "x", SHA256: "abcd"}}}},
		{"short token key", Config{TokenKeys: map[string]string{"1": "c2hvcnQ="}}},
		{"webhook without secret", Config{Webhook: Webhook{URL: "http://127.0.0.1:1/"}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.DataDir = t.TempDir()
			if s, err := New(tc.cfg); err == nil {
				s.Shutdown(context.Background())
				t.Fatal("New accepted a bad configuration")
			}
		})
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
	time.Sleep(100 * time.Millisecond)
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
