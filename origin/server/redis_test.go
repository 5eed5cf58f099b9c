package server

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionedge/sessionedge/origin/internal/redistest"
	redisstore "github.com/sessionedge/sessionedge/origin/store/redis"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// TestRedisDown stops the Redis server under an origin that uses it: reads
// and writes answer 503 with Retry-After and the JSON error body, nothing is
// acknowledged, and the origin serves again by itself once Redis is back.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	o := startOrigin(t, onRedis(t, srv, redisstore.Config{CacheBytes: -1, CacheTTL: 50 * time.Millisecond}))
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

// TestEventOrderOverRedis: the session events of TestEventOrder, with two
// origin nodes sharing one Redis: writes go through both, and either
// node's sweeper may send a change event.
func TestEventOrderOverRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	hook := startEventReceiver(t)
	clk := newClock(time.Now())
	var nodes []*testOrigin
	for i := 0; i < 2; i++ {
		cfg := onRedis(t, srv, redisstore.Config{Now: clk.now})
		webhookConfig(&cfg, hook.url)
		nodes = append(nodes, startOrigin(t, cfg))
	}
	a, b := nodes[0], nodes[1]
	id := a.create(nil)
	path := "/v1/sessions/" + id
	a.do("PATCH", path+"/context", keyAll, `{"custom":{"a":1}}`)
	b.do("PATCH", path+"/context", keyAll, `{"custom":{"b":2}}`)
	hook.waitTypes(id, "started")
	clk.add(6 * time.Second)
	na, _ := a.srv.Sweep()
	nb, _ := b.srv.Sweep()
	if na+nb != 1 {
		t.Fatalf("the nodes settled %d + %d change events, want 1 in all", na, nb)
	}
	es := hook.waitTypes(id, "started,changed")
	if c := eventContext(es[1])["custom"].(map[string]any); c["a"] != 1.0 || c["b"] != 2.0 {
		t.Fatalf("change event: %v", es[1])
	}
	b.do("POST", path+"/login", keyAll, `{"customerId":"c"}`)
	a.do("PATCH", path+"/context", keyAll, `{"custom":{"c":3}}`)
	b.do("POST", path+"/logout", keyAll, nil)
	a.do("DELETE", path, keyAll, nil)
	// Two nodes deliver concurrently: receivers order one session's events
	// by the version in their ids.
	waitFor(t, 20*time.Second, "six events", func() bool {
		es, _ = hook.events(id)
		return len(es) == 6
	})
	sort.SliceStable(es, func(i, j int) bool { return eventVersion(es[i]) < eventVersion(es[j]) })
	if got := eventTypes(es); got != "started,changed,login,changed,logout,ended" {
		t.Fatalf("events by version: %s", got)
	}
}

// eventVersion is the version in an event's id.
func eventVersion(e map[string]any) int {
	parts := strings.Split(e["eventId"].(string), ".")
	v, _ := strconv.Atoi(parts[1])
	return v
}

// TestRedisSweepDanglingIndex deletes the keys of more sessions than one
// sweep batch straight in Redis (as an out-of-band DEL or a maxmemory
// eviction would), leaving their expiry-index entries behind, ahead of
// live sessions due later: the sweeper drops the dangling entries and
// still ends the live sessions.
func TestRedisSweepDanglingIndex(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	clk := newClock(time.Now())
	cfg := onRedis(t, srv, redisstore.Config{CacheBytes: -1, Now: clk.now})
	o := startOrigin(t, cfg)

	var gone, live []string
	for range sweepBatch + 8 {
		gone = append(gone, o.create(nil))
	}
	clk.add(time.Second)
	for range 3 {
		live = append(live, o.create(nil))
	}
	raw, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	keys := func(pattern string) []string {
		ks, err := raw.Do(context.Background(), raw.B().Keys().Pattern(pattern).Build()).AsStrSlice()
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	for _, id := range gone {
		ks := keys("*:s:" + id)
		if len(ks) != 1 {
			t.Fatalf("session key of %s: %v", id, ks)
		}
		if err := raw.Do(context.Background(), raw.B().Del().Key(ks[0]).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}

	clk.add(2 * time.Hour)
	if _, err := o.srv.Sweep(); err != nil {
		t.Fatal(err)
	}
	for _, id := range live {
		wid, _ := wire.ParseID(id)
		sess, err := cfg.Store.Get(context.Background(), wid)
		if err != nil || sess.Ended != wire.EndIdleExpired {
			t.Fatalf("live session %s after its idle deadline: %+v, %v", id, sess, err)
		}
	}
	dueKeys := keys("*:due")
	for _, id := range gone {
		for _, k := range dueKeys {
			if err := raw.Do(context.Background(), raw.B().Zscore().Key(k).Member(id).Build()).Error(); !rueidis.IsRedisNil(err) {
				t.Fatalf("the expiry index still names deleted session %s (%s): %v", id, k, err)
			}
		}
	}
}

// TestCustomerSessionLimitTwoNodes: TestCustomerSessionLimitConcurrent with
// the logins spread over two origin nodes sharing one Redis, where the lock
// of a node does not reach: the re-check after the commit holds the limit.
func TestCustomerSessionLimitTwoNodes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	for _, mode := range []string{OnLimitRefuse, OnLimitEvictOldest} {
		t.Run(mode, func(t *testing.T) {
			var nodes []*testOrigin
			for range 2 {
				cfg := onRedis(t, srv, redisstore.Config{})
				cfg.CustomerSessions = CustomerSessions{Max: 2, OnLimit: mode}
				nodes = append(nodes, startOrigin(t, cfg))
			}
			for round := range 5 {
				cid := mode + itoa(round)
				checkLimitHeld(t, nodes[0], cid, 2, mode == OnLimitRefuse, false, concurrentLogins(t, nodes, cid, 16))
			}
		})
	}
}

// onRedis is the test configuration of an origin on a new Redis store (4
// shards, sc's other settings) on srv, closed when the test ends; the origin
// runs on the store's clock when sc sets one.
func onRedis(t *testing.T, srv *redistest.Server, sc redisstore.Config) Config {
	t.Helper()
	sc.URLs, sc.Shards = []string{"redis://" + srv.Addr}, 4
	st, err := redisstore.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := baseConfig(t)
	cfg.Store = st
	if sc.Now != nil {
		cfg.Now = sc.Now
	}
	return cfg
}
