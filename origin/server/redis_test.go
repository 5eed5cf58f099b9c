package server

import (
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/origin/internal/redistest"
	redisstore "github.com/sessionedge/sessionedge/origin/store/redis"
)

// TestRedisDown stops the Redis server under an origin that uses it: reads
// and writes answer 503 with Retry-After and the JSON error body, nothing is
// acknowledged, and the origin serves again by itself once Redis is back.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	st, err := redisstore.New(redisstore.Config{URLs: []string{"redis://" + srv.Addr}, Shards: 4, CacheBytes: -1, CacheTTL: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := baseConfig(t)
	cfg.Store = st
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
	var r resp
	waitFor(t, 15*time.Second, "the origin to serve again after Redis came back", func() bool {
		r = o.do("GET", "/v1/sessions/"+id, keyAll, nil)
		return r.status == 200
	})
	if ctx, _ := r.json(t)["context"].(map[string]any); ctx["custom"] != nil && len(ctx["custom"].(map[string]any)) != 0 {
		t.Fatalf("a write answered 503 was applied: %s", r.body)
	}
	if r := o.do("PATCH", "/v1/sessions/"+id+"/context", keyAll, map[string]any{"custom": map[string]any{"kept": 1}}); r.status != 200 {
		t.Fatalf("write after recovery: %d %s", r.status, r.body)
	}
}
