package server

import (
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// tokenClaims verifies a token the origin issued, ignoring its deadlines.
func tokenClaims(t *testing.T, tok string) wire.Claims {
	t.Helper()
	kr, _ := wire.NewKeyring(1, map[uint8][]byte{1: testTokenSecret})
	var c wire.Claims
	if err := kr.VerifyToken([]byte(tok), 0, &c); err != nil {
		t.Fatalf("token: %v", err)
	}
	return c
}

// TestHardDeadlineIsAbsolute logs a session in and out and refreshes it in
// a loop for longer than the customer hard timeout: it ends at its first
// hard deadline, and every token carried that deadline.
func TestHardDeadlineIsAbsolute(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clk, cfg := clockConfig(t, start)
	o := startOrigin(t, cfg)
	id := o.create(nil)
	path := "/v1/sessions/" + id
	hard := start.Add(7*time.Minute + 6*time.Hour).UnixMilli() // the first login + customer hard (before anonymous 24h)
	for step := 0; ; step++ {
		clk.add(7 * time.Minute)
		o.srv.Sweep()
		now := clk.now().UnixMilli()
		s, status := o.getCBOR(id)
		if now >= hard {
			if status != 410 {
				t.Fatalf("at %v past the hard deadline: %d %+v", clk.now().Sub(start), status, s)
			}
			break
		}
		if status != 200 {
			t.Fatalf("at %v: %d", clk.now().Sub(start), status)
		}
		var r resp
		switch step % 3 {
		case 0:
			r = o.do("POST", path+"/login", keyAll, map[string]any{"customerId": "c"})
		case 1:
			r = o.do("POST", path+"/refresh", keyAll, nil)
		case 2:
			r = o.do("POST", path+"/logout", keyAll, nil)
		}
		if r.status != 200 {
			t.Fatalf("step %d: %d %s", step, r.status, r.body)
		}
		if s, _ = o.getCBOR(id); step > 0 && s.HardDeadline != hard {
			t.Fatalf("step %d moved the hard deadline to %v", step, time.UnixMilli(s.HardDeadline).Sub(start))
		}
		if s.IdleDeadline > s.HardDeadline {
			t.Fatalf("idle deadline past the hard deadline: %+v", s)
		}
		if c := tokenClaims(t, r.json(t)["token"].(string)); c.HardDeadline != s.HardDeadline/1000 {
			t.Fatalf("step %d: token hard deadline %d, session %d", step, c.HardDeadline, s.HardDeadline/1000)
		}
	}
	// A shopper who browsed longer than the customer hard timeout still
	// logs in to a live session; one near the end of the anonymous hard
	// timeout gets what is left of it.
	for _, browsed := range []time.Duration{7 * time.Hour, 23 * time.Hour} {
		born := clk.now()
		id := o.create(nil)
		created, _ := o.getCBOR(id)
		clk.add(browsed)
		r := o.do("POST", "/v1/sessions/"+id+"/login", keyAll, map[string]any{"customerId": "c"})
		if r.status != 200 {
			t.Fatalf("login after %v: %d %s", browsed, r.status, r.body)
		}
		s, _ := o.getCBOR(id)
		want := min(clk.now().Add(6*time.Hour).UnixMilli(), created.HardDeadline)
		if s.HardDeadline != want || s.HardDeadline <= clk.now().UnixMilli() {
			t.Fatalf("login after %v: hard deadline %v after the start, want %v", browsed,
				time.UnixMilli(s.HardDeadline).Sub(born), time.UnixMilli(want).Sub(born))
		}
	}
	// The sweeper's soft logout keeps the hard deadline too.
	id = o.create(nil)
	o.do("POST", "/v1/sessions/"+id+"/login", keyAll, map[string]any{"customerId": "c"})
	before, _ := o.getCBOR(id)
	clk.add(31 * time.Minute)
	o.srv.Sweep()
	after, _ := o.getCBOR(id)
	if after.Kind != wire.KindAnonymous || after.HardDeadline != before.HardDeadline || after.IdleDeadline > after.HardDeadline {
		t.Fatalf("soft logout: %+v, before %+v", after, before)
	}
}

// TestSharedTokenLifetime: tokens of shared sessions expire, unless
// configured "none".
func TestSharedTokenLifetime(t *testing.T) {
	for _, tc := range []struct {
		lifetime Duration
		want     time.Duration // 0: no hard deadline
	}{{0, 24 * time.Hour}, {Duration(time.Hour), time.Hour}, {None, 0}} {
		t.Run(tc.lifetime.String(), func(t *testing.T) {
			cfg := baseConfig(t)
			cfg.Timeouts.Shared.TokenLifetime = tc.lifetime
			o := startOrigin(t, cfg)
			id := o.do("PUT", "/v1/shared/s", keyAll, nil).json(t)["id"].(string)
			before := time.Now().Unix()
			r := o.do("POST", "/v1/sessions/"+id+"/refresh", keyAll, nil)
			c := tokenClaims(t, r.json(t)["token"].(string))
			switch {
			case tc.want == 0 && c.HardDeadline != 0:
				t.Fatalf("hard deadline %d, want none", c.HardDeadline)
			case tc.want != 0 && (c.HardDeadline < before+int64(tc.want.Seconds()) || c.HardDeadline > time.Now().Unix()+int64(tc.want.Seconds())):
				t.Fatalf("hard deadline in %ds, want %v", c.HardDeadline-before, tc.want)
			}
		})
	}
}

// TestPurgedTombstoneStaysDead: an edge-minted session ends, its tombstone
// lives until the hard deadline, and once it is purged the old token can
// bring the id back neither by a touch nor by a self-service write.
func TestPurgedTombstoneStaysDead(t *testing.T) {
	clk, cfg := clockConfig(t, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	o := startOrigin(t, cfg)
	id, _ := wire.NewID()
	now := clk.now()
	claims := wire.Claims{Kind: wire.KindAnonymous, ID: id, Generation: 1, IssuedAt: now.Unix(),
		IdleDeadline: now.Add(time.Hour).Unix(), HardDeadline: now.Add(2 * time.Hour).Unix()}
	tok := tokenFor(t, claims)
	touch := func() {
		ms := clk.now().UnixMilli()
		body := wire.AppendTouches(nil, []wire.Touch{{ID: id, Kind: wire.KindAnonymous, Generation: 1, LastSeen: ms,
			IdleDeadline: claims.IdleDeadline * 1000, HardDeadline: claims.HardDeadline * 1000}})
		if r := o.do("POST", "/v1/sync/touch", keyEdge, body, "Content-Type", "application/cbor"); r.status != 204 {
			t.Fatalf("touch: %d", r.status)
		}
	}
	touch()
	if _, status := o.getCBOR(id.String()); status != 200 {
		t.Fatalf("edge-minted session not created: %d", status)
	}
	o.do("DELETE", "/v1/sessions/"+id.String(), keyAll, nil)
	clk.add(90 * time.Minute) // ended, before the hard deadline: the tombstone stays
	o.srv.Sweep()
	touch()
	if _, status := o.getCBOR(id.String()); status != 410 {
		t.Fatalf("tombstone before the hard deadline: %d", status)
	}
	clk.add(31 * time.Minute) // past the hard deadline: purged
	o.srv.Sweep()
	if _, status := o.getCBOR(id.String()); status != 404 {
		t.Fatalf("tombstone after the hard deadline: %d", status)
	}
	touch()
	if _, status := o.getCBOR(id.String()); status != 404 {
		t.Fatalf("a touch of the old token brought the id back: %d", status)
	}
	if r := o.do("PATCH", "/v1/sessions/"+id.String()+"/context", keyEdge, `{"public":{"a":1}}`, "X-Session-Token", tok); r.status != 401 {
		t.Fatalf("self-service write with the old token: %d %s", r.status, r.body)
	}
	if r := o.do("PATCH", "/v1/sessions/"+id.String()+"/context?upsert=true", keyAll, `{"public":{"a":1}}`, "X-Session-Token", tok); r.status != 401 {
		t.Fatalf("app upsert with the old token: %d %s", r.status, r.body)
	}
	if _, status := o.getCBOR(id.String()); status != 404 {
		t.Fatalf("the id came back: %d", status)
	}
	if o.touchRejections("ended") != 1 || o.touchRejections("hard_deadline") != 1 {
		t.Fatalf("rejections: ended %v, hard_deadline %v", o.touchRejections("ended"), o.touchRejections("hard_deadline"))
	}
}
