package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

func TestErrors(t *testing.T) {
	o := startOrigin(t, baseConfig(t))
	id := o.create(map[string]any{"currency": "EUR"})
	ended := o.create(nil)
	if r := o.do("DELETE", "/v1/sessions/"+ended, keyAll, nil); r.status != 200 {
		t.Fatalf("end: %d %s", r.status, r.body)
	}
	unknown := wire.ID{1, 2, 3}.String()
	tests := []struct {
		name, method, path, key string
		body                    any
		hdr                     []string
		status                  int
		code, field             string
	}{
		{"malformed JSON", "PATCH", "/v1/sessions/" + id + "/context", keyAll, `{"custom":`, nil, 400, "invalid_input", ""},
		{"unknown context name", "PATCH", "/v1/sessions/" + id + "/context", keyAll, `{"colour":"red"}`, nil, 400, "invalid_input", "colour"},
		{"field of wrong type", "PATCH", "/v1/sessions/" + id + "/context", keyAll, `{"currency":5}`, nil, 400, "invalid_input", "currency"},
		{"bad attribute key", "PATCH", "/v1/sessions/" + id + "/context", keyAll, `{"custom":{"a b":1}}`, nil, 400, "invalid_input", "custom.a b"},
		{"text too long", "PATCH", "/v1/sessions/" + id + "/context", keyAll, `{"custom":{"t":"` + strings.Repeat("x", 2001) + `"}}`, nil, 400, "invalid_input", "custom.t"},
		{"too deep", "PATCH", "/v1/sessions/" + id + "/context", keyAll, `{"custom":{"d":[[[[[1]]]]]}}`, nil, 400, "invalid_input", "custom.d[0][0][0][0]"},
		{"malformed CBOR touches", "POST", "/v1/sync/touch", keyEdge, []byte{0xff, 0x00}, []string{"Content-Type", "application/cbor"}, 400, "invalid_input", ""},
		{"bad If-Match", "PUT", "/v1/sessions/" + id + "/context", keyAll, `{}`, []string{"If-Match", "abc"}, 400, "invalid_input", "If-Match"},
		{"no key", "GET", "/v1/sessions/" + id, "", nil, nil, 401, "unauthorized", ""},
		{"unknown key", "GET", "/v1/sessions/" + id, "nope", nil, nil, 401, "unauthorized", ""},
		{"read key writes", "PATCH", "/v1/sessions/" + id + "/context", keyRead, `{}`, nil, 403, "forbidden", ""},
		{"read key syncs", "GET", "/v1/sync", keyRead, nil, nil, 403, "forbidden", ""},
		{"read key lists customer", "GET", "/v1/customers/c/sessions", keyRead, nil, nil, 403, "forbidden", ""},
		{"unknown session", "GET", "/v1/sessions/" + unknown, keyAll, nil, nil, 404, "not_found", ""},
		{"malformed id", "GET", "/v1/sessions/xyz", keyAll, nil, nil, 404, "not_found", ""},
		{"patch unknown without upsert", "PATCH", "/v1/sessions/" + unknown + "/context", keyAll, `{}`, nil, 404, "not_found", ""},
		{"unknown route", "GET", "/v2/nothing", keyAll, nil, nil, 404, "not_found", ""},
		{"unknown shared", "GET", "/v1/shared/none-such", keyAll, nil, nil, 404, "not_found", ""},
		{"wrong method", "PATCH", "/v1/sessions/" + id, keyAll, nil, nil, 405, "method_not_allowed", ""},
		{"ended session", "GET", "/v1/sessions/" + ended, keyAll, nil, nil, 410, "gone", ""},
		{"ended session upsert", "PATCH", "/v1/sessions/" + ended + "/context?upsert=true", keyAll, `{}`, nil, 410, "gone", ""},
		{"stale If-Match", "PUT", "/v1/sessions/" + id + "/context", keyAll, `{}`, []string{"If-Match", `"99"`}, 412, "precondition_failed", ""},
		{"body too large", "PATCH", "/v1/sessions/" + id + "/context", keyAll, `{"custom":{"t":"` + strings.Repeat("x", 20<<10) + `"}}`, nil, 413, "too_large", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := o.do(tc.method, tc.path, tc.key, tc.body, tc.hdr...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			e, ok := r.json(t)["error"].(map[string]any)
			if !ok {
				t.Fatalf("no error object: %s", r.body)
			}
			if e["code"] != tc.code {
				t.Fatalf("code %v, want %s", e["code"], tc.code)
			}
			if tc.field != "" && e["field"] != tc.field {
				t.Fatalf("field %v, want %s", e["field"], tc.field)
			}
			if tc.status == 412 && (r.header.Get("ETag") != `"1"` || e["currentVersion"] != 1.0) {
				t.Fatalf("412 without current version: %v %s", r.header, r.body)
			}
		})
	}
	// A rejected request changed nothing.
	s, _ := o.getCBOR(id)
	if s.Version != 1 {
		t.Fatalf("rejected requests wrote: version %d", s.Version)
	}
}

func TestSessionLifecycle(t *testing.T) {
	o := startOrigin(t, baseConfig(t))
	kr, _ := wire.NewKeyring(1, map[uint8][]byte{1: testTokenSecret})
	r := o.do("POST", "/v1/sessions", keyAll, map[string]any{"context": map[string]any{"currency": "EUR", "custom": map[string]any{"color": "red"}}})
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	cr := r.json(t)
	id := cr["id"].(string)
	var c wire.Claims
	if err := kr.VerifyToken([]byte(cr["token"].(string)), time.Now().Unix(), &c); err != nil || c.ID.String() != id || c.Generation != 1 {
		t.Fatalf("create token: %v %+v", err, c)
	}
	steps := []struct {
		name, method, path string
		body               any
		hdr                []string
		check              func(t *testing.T, r resp, s *wire.Session)
	}{
		{"get JSON", "GET", "", nil, nil, func(t *testing.T, r resp, s *wire.Session) {
			m := r.json(t)
			if m["context"].(map[string]any)["currency"] != "EUR" || r.header.Get("ETag") != `"1"` {
				t.Fatalf("%s", r.body)
			}
		}},
		{"items", "GET", "?items=custom.color,locale", nil, nil, func(t *testing.T, r resp, _ *wire.Session) {
			ctx := r.json(t)["context"].(map[string]any)
			if _, ok := ctx["currency"]; ok || ctx["custom"].(map[string]any)["color"] != "red" {
				t.Fatalf("items selection: %s", r.body)
			}
		}},
		{"patch", "PATCH", "/context", `{"custom":{"size":42,"color":null},"public":{"p":{"$decimal":"19.99"}}}`, nil, func(t *testing.T, _ resp, s *wire.Session) {
			if _, ok := s.Attr(wire.NamespaceCustom, "color"); ok {
				t.Fatal("color not deleted")
			}
			if v, _ := s.Attr(wire.NamespacePublic, "p"); !v.Equal(wire.Decimal(1999, -2)) || s.Version != 2 {
				t.Fatalf("after patch: %+v", s)
			}
		}},
		{"put with If-Match", "PUT", "/context", `{"locale":"de-DE","privacy":{"email":"a@b.c"}}`, []string{"If-Match", `"2"`}, func(t *testing.T, _ resp, s *wire.Session) {
			if len(s.Attrs[wire.NamespacePublic]) != 0 || s.Field(wire.FieldLocale).Text != "de-DE" || s.Version != 3 {
				t.Fatalf("after put: %+v", s)
			}
		}},
		{"add attribute", "POST", "/attributes", `{"namespace":"custom","key":"k","value":{"$time":"2024-01-02T03:04:05Z"}}`, nil, func(t *testing.T, _ resp, s *wire.Session) {
			if v, _ := s.Attr(wire.NamespaceCustom, "k"); v.Type != wire.TypeTime {
				t.Fatalf("attribute: %+v", v)
			}
		}},
		{"delete attribute", "DELETE", "/attributes/custom/k", nil, nil, func(t *testing.T, _ resp, s *wire.Session) {
			if _, ok := s.Attr(wire.NamespaceCustom, "k"); ok {
				t.Fatal("not deleted")
			}
		}},
		{"login", "POST", "/login", `{"customerId":"c-42","profile":{"currency":"CHF"}}`, nil, func(t *testing.T, r resp, s *wire.Session) {
			var c wire.Claims
			if err := kr.VerifyToken([]byte(r.json(t)["token"].(string)), time.Now().Unix(), &c); err != nil || c.Generation != 2 || c.Kind != wire.KindCustomer {
				t.Fatalf("login token: %v %+v", err, c)
			}
			if s.Kind != wire.KindCustomer || s.CustomerID() != "c-42" || s.Field(wire.FieldCurrency).Text != "CHF" || s.ID.String() != id {
				t.Fatalf("after login: %+v", s)
			}
		}},
		{"logout", "POST", "/logout", nil, nil, func(t *testing.T, r resp, s *wire.Session) {
			if s.Kind != wire.KindAnonymous || s.Generation != 3 || len(s.Attrs[wire.NamespacePrivacy]) != 0 || s.CustomerID() != "" {
				t.Fatalf("after logout: %+v", s)
			}
			if _, ok := r.json(t)["token"]; !ok {
				t.Fatal("logout without token")
			}
		}},
		{"refresh", "POST", "/refresh", nil, nil, func(t *testing.T, _ resp, s *wire.Session) {
			if s.IdleDeadline <= s.Created {
				t.Fatalf("refresh: %+v", s)
			}
		}},
		{"clear data", "DELETE", "/data", nil, nil, func(t *testing.T, _ resp, s *wire.Session) {
			if s.NumAttrs() != 0 || s.Ended != 0 || !s.Field(wire.FieldLocale).IsZero() {
				t.Fatalf("after clear: %+v", s)
			}
		}},
		{"end", "DELETE", "", nil, nil, func(t *testing.T, r resp, _ *wire.Session) {
			if r.json(t)["ended"] != "abandoned" {
				t.Fatalf("end: %s", r.body)
			}
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := o.do(st.method, "/v1/sessions/"+id+st.path, keyAll, st.body, st.hdr...)
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			var s *wire.Session
			if st.name != "end" {
				s, _ = o.getCBOR(id)
			}
			st.check(t, r, s)
		})
	}
	if _, status := o.getCBOR(id); status != 410 {
		t.Fatalf("after end: %d, want 410", status)
	}
}

func TestUpsertAndShared(t *testing.T) {
	o := startOrigin(t, baseConfig(t))
	nid, _ := wire.NewID()
	r := o.do("PATCH", "/v1/sessions/"+nid.String()+"/context?upsert=true", keyAll, `{"public":{"a":1}}`, "Accept", "application/cbor")
	var s wire.Session
	if r.status != 200 || wire.DecodeSession(r.body, &s) != nil || s.Version != 1 || s.Kind != wire.KindAnonymous || s.Generation != 1 {
		t.Fatalf("upsert: %d %+v", r.status, s)
	}
	r = o.do("PUT", "/v1/shared/store-settings", keyAll, `{"currency":"USD"}`)
	if r.status != 201 || r.json(t)["kind"] != "shared" {
		t.Fatalf("shared create: %d %s", r.status, r.body)
	}
	sid := r.json(t)["id"].(string)
	if r = o.do("PUT", "/v1/shared/store-settings", keyAll, nil); r.status != 200 || r.json(t)["id"] != sid {
		t.Fatalf("shared find: %d %s", r.status, r.body)
	}
	if want := wire.SharedID(bytes.Repeat([]byte{9}, 32), "store-settings").String(); sid != want {
		t.Fatalf("shared id %s, want %s", sid, want)
	}
	if r = o.do("GET", "/v1/shared/store-settings", keyRead, nil); r.status != 200 {
		t.Fatalf("shared get: %d", r.status)
	}
}

func TestCustomerRevoke(t *testing.T) {
	o := startOrigin(t, baseConfig(t))
	head := o.sync("", 0).Cursor
	var ids []string
	for i := 0; i < 3; i++ {
		id := o.create(nil)
		cid := "c/1"
		if i == 2 {
			cid = "c-2"
		}
		if r := o.do("POST", "/v1/sessions/"+id+"/login", keyAll, map[string]any{"customerId": cid}); r.status != 200 {
			t.Fatalf("login: %d %s", r.status, r.body)
		}
		ids = append(ids, id)
	}
	r := o.do("GET", "/v1/customers/c%2F1/sessions", keyAdmin, nil)
	if r.status != 200 || len(r.json(t)["sessions"].([]any)) != 2 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	r = o.do("DELETE", "/v1/customers/c%2F1/sessions", keyAdmin, nil)
	if r.status != 200 || r.json(t)["revoked"] != 2.0 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	for i, id := range ids {
		_, status := o.getCBOR(id)
		if want := map[bool]int{true: 200, false: 410}[i == 2]; status != want {
			t.Fatalf("session %d: %d, want %d", i, status, want)
		}
	}
	revoked := 0
	for _, d := range o.sync(head, 0).Deltas {
		for _, op := range d.Ops {
			if op.Code == wire.OpEnd && op.Reason == wire.EndRevoked {
				revoked++
			}
		}
	}
	if revoked != 2 {
		t.Fatalf("feed carries %d revocations, want 2", revoked)
	}
}

func TestSyncFeed(t *testing.T) {
	o := startOrigin(t, baseConfig(t))
	bt := o.sync("", 0)
	if len(bt.Deltas) != 0 || bt.Reset {
		t.Fatalf("start-from-now batch: %+v", bt)
	}
	head := bt.Cursor
	t.Run("long poll wakes on commit", func(t *testing.T) {
		got := make(chan wire.Batch, 1)
		start := time.Now()
		go func() { got <- o.sync(head, 10000) }()
		// The poller found nothing and waits in the store: the write below
		// must wake it, it cannot pass through the immediate answer.
		o.waitParked(1)
		id := o.create(map[string]any{"currency": "EUR"})
		b := <-got
		if len(b.Deltas) != 1 || b.Deltas[0].ID.String() != id || b.Deltas[0].Ops[0].Code != wire.OpStart {
			t.Fatalf("long poll: %+v", b)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("long poll did not wake on commit")
		}
		head = b.Cursor
	})
	t.Run("long poll times out empty", func(t *testing.T) {
		b := o.sync(head, 100)
		if len(b.Deltas) != 0 || b.Cursor != head || b.Reset {
			t.Fatalf("%+v", b)
		}
	})
	t.Run("future or foreign cursor resets", func(t *testing.T) {
		for _, c := range []string{"999999", "x", "r-not-ours"} {
			if b := o.sync(c, 0); !b.Reset || b.Cursor != head {
				t.Fatalf("cursor %q: %+v", c, b)
			}
		}
	})
	t.Run("delta per write in order", func(t *testing.T) {
		id := o.create(nil)
		for i := 0; i < 5; i++ {
			o.do("PATCH", "/v1/sessions/"+id+"/context", keyAll, map[string]any{"custom": map[string]any{"n": i}})
		}
		b := o.sync(head, 0)
		if len(b.Deltas) != 6 {
			t.Fatalf("%d deltas, want 6", len(b.Deltas))
		}
		for i, d := range b.Deltas {
			if d.Version != uint64(i+1) {
				t.Fatalf("delta %d has version %d", i, d.Version)
			}
		}
		one := wire.AppendDelta(nil, &b.Deltas[3])
		if len(one) > 64 {
			t.Fatalf("one-attribute delta is %d bytes", len(one))
		}
	})
}

// TestTouch checks the touch rules: a report of the session's generation
// and kind moves last seen and the idle deadline (computed by the origin,
// capped at the hard deadline, which never moves); anything else is ignored
// and counted; an unknown id is created only as an edge mints it.
func TestTouch(t *testing.T) {
	clk, cfg := clockConfig(t, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	o := startOrigin(t, cfg)
	known := o.create(nil)
	kid, _ := wire.ParseID(known)
	cust := o.create(nil)
	cid, _ := wire.ParseID(cust)
	o.do("POST", "/v1/sessions/"+cust+"/login", keyAll, map[string]any{"customerId": "c1"})
	ended := o.create(nil)
	eid, _ := wire.ParseID(ended)
	o.do("DELETE", "/v1/sessions/"+ended, keyAll, nil)
	k0, _ := o.getCBOR(known)
	c0, _ := o.getCBOR(cust)
	clk.add(10 * time.Minute)
	now := clk.now().UnixMilli()
	ids := make([]wire.ID, 6)
	for i := range ids {
		ids[i], _ = wire.NewID()
	}
	hour := time.Hour.Milliseconds()
	touches := []wire.Touch{
		// Known session, its generation and kind: applied; the reported idle
		// and hard deadlines are ignored, last seen is clamped to now.
		{ID: kid, Kind: wire.KindAnonymous, Generation: 1, LastSeen: now + 5000, IdleDeadline: now + 100*hour, HardDeadline: now + 100*hour},
		// A stale token's touch: generation 1 of a session now at 2.
		{ID: cid, Kind: wire.KindAnonymous, Generation: 1, LastSeen: now, IdleDeadline: now + hour},
		// Right generation, wrong kind.
		{ID: cid, Kind: wire.KindAnonymous, Generation: 2, LastSeen: now},
		// A higher generation of kind anonymous: once the edge's soft
		// logout, now only ignored.
		{ID: cid, Kind: wire.KindAnonymous, Generation: 3, LastSeen: now},
		// A tombstone.
		{ID: eid, Kind: wire.KindAnonymous, Generation: 1, LastSeen: now, HardDeadline: now + hour},
		// Unknown ids: an edge-minted session is created ...
		{ID: ids[0], Kind: wire.KindAnonymous, Generation: 1, LastSeen: now, IdleDeadline: now + 60000, HardDeadline: now + 2*hour},
		// ... but not a customer, a higher generation, an expired or
		// missing or too distant hard deadline.
		{ID: ids[1], Kind: wire.KindCustomer, Generation: 1, LastSeen: now, HardDeadline: now + hour},
		{ID: ids[2], Kind: wire.KindAnonymous, Generation: 2, LastSeen: now, HardDeadline: now + hour},
		{ID: ids[3], Kind: wire.KindAnonymous, Generation: 1, LastSeen: now, HardDeadline: now},
		{ID: ids[4], Kind: wire.KindAnonymous, Generation: 1, LastSeen: now},
		{ID: ids[5], Kind: wire.KindAnonymous, Generation: 1, LastSeen: now, HardDeadline: now + 25*hour},
	}
	r := o.do("POST", "/v1/sync/touch", keyEdge, wire.AppendTouches(nil, touches), "Content-Type", "application/cbor")
	if r.status != 204 {
		t.Fatalf("touch: %d %s", r.status, r.body)
	}
	k, _ := o.getCBOR(known)
	if k.Version != 1 || k.LastSeen != now || k.IdleDeadline != now+hour || k.HardDeadline != k0.HardDeadline {
		t.Fatalf("touched session: %+v", k)
	}
	if c, _ := o.getCBOR(cust); !c.Equal(c0) {
		t.Fatalf("ignored touches changed the customer session:\n%+v\n%+v", c, c0)
	}
	if _, status := o.getCBOR(ended); status != 410 {
		t.Fatalf("tombstone touched back: %d", status)
	}
	s, status := o.getCBOR(ids[0].String())
	if status != 200 || s.IdleDeadline != now+hour || s.HardDeadline != now+2*hour || s.Version != 1 || s.Generation != 1 {
		t.Fatalf("edge-minted session: %d %+v", status, s)
	}
	for _, id := range ids[1:] {
		if _, status := o.getCBOR(id.String()); status != 404 {
			t.Fatalf("touch %s created a session: %d", id, status)
		}
	}
	want := map[string]float64{"stale_generation": 2, "kind_mismatch": 1, "ended": 1, "not_anonymous": 1, "not_generation_1": 1, "hard_deadline": 3}
	for reason, n := range want {
		if got := o.touchRejections(reason); got != n {
			t.Errorf("touches rejected for %s: %v, want %v", reason, got, n)
		}
	}
}

// TestStaleTouchesDoNotKeepAlive: touches of an old generation's token
// cannot keep a session from idling out.
func TestStaleTouchesDoNotKeepAlive(t *testing.T) {
	clk, cfg := clockConfig(t, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	o := startOrigin(t, cfg)
	id := o.create(nil)
	wid, _ := wire.ParseID(id)
	o.do("POST", "/v1/sessions/"+id+"/login", keyAll, map[string]any{"customerId": "c1"}) // generation 2, idle 30m
	for i := 0; i < 4; i++ {                                                              // 40 minutes of stale touches every 10
		clk.add(10 * time.Minute)
		now := clk.now().UnixMilli()
		body := wire.AppendTouches(nil, []wire.Touch{{ID: wid, Kind: wire.KindAnonymous, Generation: 1, LastSeen: now, IdleDeadline: now + time.Hour.Milliseconds()}})
		if r := o.do("POST", "/v1/sync/touch", keyEdge, body, "Content-Type", "application/cbor"); r.status != 204 {
			t.Fatalf("touch: %d", r.status)
		}
		o.srv.Sweep()
	}
	s, _ := o.getCBOR(id)
	if s.Kind != wire.KindAnonymous || s.Generation != 3 {
		t.Fatalf("the customer session stayed logged in on stale touches: %+v", s)
	}
}

func TestExpiry(t *testing.T) {
	clk, cfg := clockConfig(t, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	hook := startHookReceiver(t)
	cfg.Webhook = Webhook{URL: hook.url, Secret: "s3cret"}
	o := startOrigin(t, cfg)
	anon := o.create(map[string]any{"custom": map[string]any{"keep": "me"}})
	cust := o.create(map[string]any{"custom": map[string]any{"cart": "x"}})
	o.do("POST", "/v1/sessions/"+cust+"/login", keyAll, map[string]any{"customerId": "c9", "profile": map[string]any{"privacy": map[string]any{"email": "e"}}})
	shared := o.do("PUT", "/v1/shared/cfg", keyAll, nil).json(t)["id"].(string)

	clk.add(31 * time.Minute) // past customer idle (30m), before anonymous idle (60m)
	if n, err := o.srv.Sweep(); err != nil || n != 1 {
		t.Fatalf("sweep at 31m: %d %v", n, err)
	}
	c, _ := o.getCBOR(cust)
	if c.Kind != wire.KindAnonymous || c.Generation != 3 || len(c.Attrs[wire.NamespacePrivacy]) != 0 || c.Attrs[wire.NamespaceCustom] == nil {
		t.Fatalf("soft logout: %+v", c)
	}
	clk.add(30 * time.Minute) // past anonymous idle for anon
	o.srv.Sweep()
	if _, status := o.getCBOR(anon); status != 410 {
		t.Fatalf("idle anonymous: %d, want 410", status)
	}
	clk.add(25 * time.Hour) // past every hard deadline
	o.srv.Sweep()
	if _, status := o.getCBOR(cust); status != 410 && status != 404 {
		t.Fatalf("hard-expired: %d", status)
	}
	if _, status := o.getCBOR(shared); status != 200 {
		t.Fatalf("shared session expired: %d", status)
	}
	clk.add(25 * time.Hour)
	o.srv.Sweep()
	if _, status := o.getCBOR(anon); status != 404 {
		t.Fatalf("tombstone not purged: %d", status)
	}
	waitFor(t, 10*time.Second, "end webhooks", func() bool {
		hook.mu.Lock()
		defer hook.mu.Unlock()
		ends := 0
		for _, e := range hook.events {
			if e["type"] == "session.ended" {
				ends++
			}
		}
		return ends == 2
	})
	hook.mu.Lock()
	defer hook.mu.Unlock()
	for _, e := range hook.events {
		if e["type"] == "session.ended" && e["id"] == anon {
			ctx := e["session"].(map[string]any)["context"].(map[string]any)
			if ctx["custom"].(map[string]any)["keep"] != "me" || e["reason"] != "idle-expired" {
				t.Fatalf("end event without final context: %v", e)
			}
		}
	}
}

func TestWebhooks(t *testing.T) {
	hook := startHookReceiver(t)
	hook.fail.Store(2)
	cfg := baseConfig(t)
	cfg.Webhook = Webhook{URL: hook.url, Secret: "s3cret", MaxBackoff: Duration(200 * time.Millisecond)}
	o := startOrigin(t, cfg)
	id := o.create(map[string]any{"custom": map[string]any{"a": 1}})
	o.do("DELETE", "/v1/sessions/"+id, keyAll, nil)
	waitFor(t, 15*time.Second, "webhooks after retries", func() bool {
		hook.mu.Lock()
		defer hook.mu.Unlock()
		return len(hook.events) == 2
	})
	hook.mu.Lock()
	defer hook.mu.Unlock()
	types := map[any]bool{}
	for i, e := range hook.events {
		types[e["type"]] = true
		sig := hook.sigs[i]
		if err := wire.VerifyWebhook([]byte("s3cret"), sig, hook.bodies[i], time.Now(), time.Minute); err != nil {
			t.Fatalf("bad signature %q: %v", sig, err)
		}
	}
	if !types["session.started"] || !types["session.ended"] {
		t.Fatalf("event types: %v", types)
	}
}

// TestOpenAPICoversRoutes keeps openapi.json true to the route table:
// every route is in it with the scopes that open it, a required body where
// the route takes one, and X-Session-Token on session routes; it lists
// nothing else.
func TestOpenAPICoversRoutes(t *testing.T) {
	o := startOrigin(t, baseConfig(t))
	r := o.do("GET", "/openapi.json", "", nil)
	type op struct {
		Security []map[string][]string `json:"security"`
		Body     *struct {
			Required bool `json:"required"`
		} `json:"requestBody"`
		Parameters []map[string]any `json:"parameters"`
	}
	var doc struct {
		OpenAPI string                   `json:"openapi"`
		Paths   map[string]map[string]op `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi.json: %v %q", err, doc.OpenAPI)
	}
	listed := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			listed[strings.ToUpper(m)+" "+p] = true
		}
	}
	for _, rt := range o.srv.routes {
		t.Run(rt.method+" "+rt.pattern, func(t *testing.T) {
			delete(listed, rt.method+" "+rt.pattern)
			op, ok := doc.Paths[rt.pattern][strings.ToLower(rt.method)]
			if !ok {
				t.Fatalf("route missing from openapi.json")
			}
			var want, got []string
			for _, g := range rt.grants {
				for name, sc := range scopeNames {
					if sc == g {
						want = append(want, name)
					}
				}
			}
			for _, sec := range op.Security {
				got = append(got, sec["apiKey"]...)
			}
			if strings.Join(want, " ") != strings.Join(got, " ") {
				t.Errorf("security %v, the route table %v", got, want)
			}
			if rt.body != (op.Body != nil && op.Body.Required) {
				t.Errorf("requestBody.required is not %v", rt.body)
			}
			if strings.HasPrefix(rt.pattern, "/v1/sessions/") {
				found := false
				for _, p := range op.Parameters {
					found = found || p["$ref"] == "#/components/parameters/sessionToken"
				}
				if !found {
					t.Errorf("no X-Session-Token parameter")
				}
			}
		})
	}
	for extra := range listed {
		t.Errorf("openapi.json lists %s, which the API listener does not serve", extra)
	}
}

// TestOperations: metrics and health are on the admin listener only; the
// API listener serves /openapi.json and nothing else without a key.
func TestOperations(t *testing.T) {
	o := startOrigin(t, baseConfig(t))
	o.create(nil)
	tests := []struct{ path, want string }{
		{"/healthz", `"ok"`},
		{"/readyz", `"ready"`},
		{"/metrics", "sessionedge_http_requests_total{code=\"201\",route=\"create\"} 1"},
		{"/metrics", "sessionedge_sessions_live 1"},
		{"/metrics", "sessionedge_sync_parked 0"},
		{"/metrics", "sessionedge_store_cache_hit_ratio "},
		{"/metrics", "sessionedge_touches_rejected_total{reason=\"stale_generation\"} 0"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			r := o.get(o.admin + tc.path)
			if r.status != 200 || !strings.Contains(string(r.body), tc.want) {
				t.Fatalf("%d, want %q in:\n%.2000s", r.status, tc.want, r.body)
			}
			if r := o.do("GET", tc.path, "", nil); r.status != 404 {
				t.Fatalf("the API listener answers %s with %d", tc.path, r.status)
			}
		})
	}
	if r := o.get(o.admin + "/v1/sessions"); r.status != 404 {
		t.Fatalf("the admin listener serves the API: %d", r.status)
	}
	if r := o.do("GET", "/openapi.json", "", nil); r.status != 200 {
		t.Fatalf("openapi.json: %d", r.status)
	}
}
