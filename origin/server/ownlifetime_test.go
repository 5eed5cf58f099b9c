package server

import (
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// TestSessionLifetime: a session's own lifetime, asked for at create,
// shared creation, login and upsert, bounded by the kind's maxima, sets
// its deadlines, shows in its metadata and its token, and drives touches,
// refresh and the sweeper.
func TestSessionLifetime(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clk, cfg := clockConfig(t, start)
	cfg.Timeouts.Customer.MaxHard = Duration(200 * time.Hour)
	o := startOrigin(t, cfg)
	now := start.UnixMilli()
	minute := time.Minute.Milliseconds()

	// Create: idle 5m, hard 2h (anonymous: idle 60m, hard 24h; maxima 4h, 96h).
	r := o.do("POST", "/v1/sessions", keyAll, `{"lifetime":{"idle":"5m","hard":7200},"context":{"currency":"EUR"}}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	body := r.json(t)
	id := body["id"].(string)
	sj := body["session"].(map[string]any)
	if sj["idleTimeout"] != "5m0s" || sj["hardTimeout"] != "2h0m0s" {
		t.Fatalf("metadata: %s", r.body)
	}
	s, _ := o.getCBOR(id)
	if s.IdleTimeout != 5*minute || s.HardTimeout != 120*minute || s.IdleDeadline != now+5*minute || s.HardDeadline != now+120*minute {
		t.Fatalf("created: %+v", s)
	}
	if c := tokenClaims(t, body["token"].(string)); c.IdleDeadline != (now+5*minute)/1000 || c.HardDeadline != (now+120*minute)/1000 {
		t.Fatalf("token deadlines: %+v", c)
	}

	// A touch moves the idle deadline by the session's own idle timeout.
	wid, _ := wire.ParseID(id)
	clk.add(3 * time.Minute)
	now = clk.now().UnixMilli()
	touch := wire.AppendTouches(nil, []wire.Touch{{ID: wid, Kind: wire.KindAnonymous, Generation: 1, LastSeen: now}})
	if r := o.do("POST", "/v1/sync/touch", keyEdge, touch, "Content-Type", "application/cbor"); r.status != 204 {
		t.Fatalf("touch: %d", r.status)
	}
	if s, _ = o.getCBOR(id); s.IdleDeadline != now+5*minute {
		t.Fatalf("touched: idle %d, want %d", s.IdleDeadline, now+5*minute)
	}
	// So does refresh.
	clk.add(time.Minute)
	now = clk.now().UnixMilli()
	if r := o.do("POST", "/v1/sessions/"+id+"/refresh", keyAll, nil); r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	if s, _ = o.getCBOR(id); s.IdleDeadline != now+5*minute {
		t.Fatalf("refreshed: idle %d, want %d", s.IdleDeadline, now+5*minute)
	}
	// The sweeper ends it 5 minutes after its last activity.
	clk.add(5*time.Minute + time.Second)
	o.srv.Sweep()
	if _, status := o.getCBOR(id); status != 410 {
		t.Fatalf("past its own idle timeout: %d", status)
	}

	// Login with a lifetime: hard = min(current, now + its hard), idle its own.
	id = o.create(nil)
	clk.add(time.Hour)
	now = clk.now().UnixMilli()
	r = o.do("POST", "/v1/sessions/"+id+"/login", keyAll, `{"customerId":"c","lifetime":{"idle":"10m","hard":"1h"}}`)
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	s, _ = o.getCBOR(id)
	if s.IdleTimeout != 10*minute || s.HardTimeout != 60*minute || s.IdleDeadline != now+10*minute || s.HardDeadline != now+60*minute {
		t.Fatalf("logged in with a lifetime: %+v", s)
	}
	// The soft logout at its idle deadline keeps the session's own lifetime:
	// the next idle deadline is 10 minutes after the last activity.
	clk.add(10*time.Minute + time.Second)
	o.srv.Sweep()
	s, _ = o.getCBOR(id)
	if s.Kind != wire.KindAnonymous || s.IdleTimeout != 10*minute || s.HardTimeout != 60*minute || s.IdleDeadline != s.LastSeen+10*minute {
		t.Fatalf("soft logout: %+v", s)
	}
	// Logout and a login without a lifetime keep it too; a login with one
	// replaces it.
	id = o.create(nil)
	o.do("POST", "/v1/sessions/"+id+"/login", keyAll, `{"customerId":"c","lifetime":{"idle":"10m"}}`)
	now = clk.now().UnixMilli()
	o.do("POST", "/v1/sessions/"+id+"/logout", keyAll, nil)
	if s, _ = o.getCBOR(id); s.IdleTimeout != 10*minute || s.IdleDeadline != now+10*minute {
		t.Fatalf("logout: %+v", s)
	}
	o.do("POST", "/v1/sessions/"+id+"/login", keyAll, `{"customerId":"c"}`)
	if s, _ = o.getCBOR(id); s.IdleTimeout != 10*minute || s.IdleDeadline != now+10*minute {
		t.Fatalf("login without a lifetime: %+v", s)
	}
	o.do("POST", "/v1/sessions/"+id+"/login", keyAll, `{"customerId":"c","lifetime":{"idle":"20m"}}`)
	if s, _ = o.getCBOR(id); s.IdleTimeout != 20*minute || s.IdleDeadline != now+20*minute {
		t.Fatalf("login with another lifetime: %+v", s)
	}
	// Create logged in: the lifetime is the customer's.
	r = o.do("POST", "/v1/sessions", keyAll, `{"kind":"customer","customerId":"c","lifetime":{"hard":"100h"}}`)
	if r.status != 201 {
		t.Fatalf("create customer: %d %s", r.status, r.body)
	}
	if s, _ = o.getCBOR(r.json(t)["id"].(string)); s.HardTimeout != 100*60*minute || s.HardDeadline != now+24*60*minute {
		t.Fatalf("customer created with a lifetime (hard capped by the anonymous start): %+v", s)
	}

	// Upsert with ?idleTimeout: applied when it creates the session only.
	up, _ := wire.NewID()
	r = o.do("PATCH", "/v1/sessions/"+up.String()+"/context?upsert=true&idleTimeout=2s&hardTimeout=1h", keyAll, `{"custom":{"a":1}}`)
	if r.status != 200 {
		t.Fatalf("upsert: %d %s", r.status, r.body)
	}
	if s, _ = o.getCBOR(up.String()); s.IdleTimeout != 2000 || s.IdleDeadline != now+2000 || s.HardDeadline != now+60*minute {
		t.Fatalf("upserted: %+v", s)
	}
	o.do("PATCH", "/v1/sessions/"+up.String()+"/context?upsert=true&idleTimeout=3s", keyAll, `{"custom":{"a":2}}`)
	if s, _ = o.getCBOR(up.String()); s.IdleTimeout != 2000 {
		t.Fatalf("an upsert of a stored session changed its lifetime: %+v", s)
	}

	// Edge keys cannot give one.
	edgeID, _ := wire.NewID()
	sec := clk.now().Unix()
	edgeTok := tokenFor(t, wire.Claims{Kind: wire.KindAnonymous, ID: edgeID, Generation: 1, IssuedAt: sec, IdleDeadline: sec + 600, HardDeadline: sec + 3600})
	wantError(t, o.do("PATCH", "/v1/sessions/"+edgeID.String()+"/context?idleTimeout=2h", keyEdge, `{"public":{"a":1}}`, "X-Session-Token", edgeTok), 403, "forbidden")

	// Shared sessions.
	r = o.do("PUT", "/v1/shared/cart-1", keyAll, `{"lifetime":{"idle":"1h"},"custom":{"x":1}}`)
	if r.status != 201 {
		t.Fatalf("shared: %d %s", r.status, r.body)
	}
	if m := r.json(t); m["idleTimeout"] != "1h0m0s" || m["context"].(map[string]any)["custom"].(map[string]any)["x"] != 1.0 {
		t.Fatalf("shared: %s", r.body)
	}

	// The maxima, and the field that is wrong.
	for _, tc := range []struct{ method, path, body, field string }{
		{"POST", "/v1/sessions", `{"lifetime":{"idle":"5h"}}`, "lifetime.idle"},
		{"POST", "/v1/sessions", `{"lifetime":{"hard":"97h"}}`, "lifetime.hard"},
		{"POST", "/v1/sessions", `{"lifetime":{"idle":"none"}}`, "lifetime.idle"},
		{"POST", "/v1/sessions", `{"lifetime":{"idle":"500ms"}}`, "lifetime.idle"},
		{"POST", "/v1/sessions", `{"lifetime":{"idle":-5}}`, "lifetime.idle"},
		{"POST", "/v1/sessions", `{"lifetime":{"idel":"5m"}}`, "lifetime.idel"},
		{"POST", "/v1/sessions", `{"lifetime":"5m"}`, "lifetime"},
		{"POST", "/v1/sessions/" + id + "/login", `{"customerId":"c","lifetime":{"idle":"3h"}}`, "lifetime.idle"},
		{"POST", "/v1/sessions/" + id + "/login", `{"customerId":"c","lifetime":{"hard":"201h"}}`, "lifetime.hard"},
		{"PATCH", "/v1/sessions/" + id + "/context?upsert=true&idleTimeout=5h", `{}`, "idleTimeout"},
		{"PATCH", "/v1/sessions/" + id + "/context?upsert=true&hardTimeout=soon", `{}`, "hardTimeout"},
	} {
		e := wantError(t, o.do(tc.method, tc.path, keyAll, tc.body), 400, "invalid_input")
		if e["field"] != tc.field {
			t.Errorf("%s %s: field %v, want %s", tc.method, tc.body, e["field"], tc.field)
		}
	}
	// Shared sessions have no timeouts, so "none" is theirs.
	if r := o.do("PUT", "/v1/shared/cart-2", keyAll, `{"lifetime":{"idle":"none","hard":"none"}}`); r.status != 201 {
		t.Fatalf("shared with none: %d %s", r.status, r.body)
	}
}

// TestTombstoneTTLCoversMaxima: tokens of a session with its own lifetime
// can live as long as the maxima allow, so tombstones stay that long.
func TestTombstoneTTLCoversMaxima(t *testing.T) {
	var cfg Config
	if got := cfg.TombstoneTTL(); got != 96*time.Hour {
		t.Fatalf("default TombstoneTTL %v, want 96h (4 × the anonymous hard timeout)", got)
	}
	cfg.Timeouts.Customer.MaxHard = Duration(30 * 24 * time.Hour)
	if got := cfg.TombstoneTTL(); got != 30*24*time.Hour {
		t.Fatalf("TombstoneTTL %v, want the customer maxHard", got)
	}
}
