package server

import (
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/origin/internal/redistest"
)

// TestRedisDown stops the Redis server under an origin that uses it: reads
// and writes answer 503 with Retry-After and the JSON error body, nothing is
// acknowledged, and the origin serves again by itself once Redis is back.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	cfg := baseConfig(t)
	cfg.Redis = RedisConfig{URLs: []string{"redis://" + srv.Addr}, Shards: 4, CacheTTL: Duration(50 * time.Millisecond)}
	cfg.CacheBytes = -1
	o := startOrigin(t, cfg)
	id := o.create(nil)
	srv.Stop()
	for _, r := range []resp{
		o.do("GET", "/v1/sessions/"+id, keyAll, nil),
		o.do("PATCH", "/v1/sessions/"+id+"/context", keyAll, map[string]any{"custom": map[string]any{"lost": 1}}),
	} {
		if r.status != 503 || r.header.Get("Retry-After") == "" {
			t.Fatalf("with Redis down: %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
		}
		if e, _ := r.json(t)["error"].(map[string]any); e["code"] != "unavailable" {
			t.Fatalf("error body %s", r.body)
		}
	}
	srv.Restart(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := o.do("GET", "/v1/sessions/"+id, keyAll, nil)
		if r.status == 200 {
			if ctx, _ := r.json(t)["context"].(map[string]any); ctx["custom"] != nil && len(ctx["custom"].(map[string]any)) != 0 {
				t.Fatalf("a write answered 503 was applied: %s", r.body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("origin did not recover after Redis came back: %d %s", r.status, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := o.do("PATCH", "/v1/sessions/"+id+"/context", keyAll, map[string]any{"custom": map[string]any{"kept": 1}}); r.status != 200 {
		t.Fatalf("write after recovery: %d %s", r.status, r.body)
	}
}
