package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// tokenFor mints a token the way an edge does, with the test keyring.
func tokenFor(t *testing.T, c wire.Claims) string {
	t.Helper()
	kr, err := wire.NewKeyring(1, map[uint8][]byte{1: testTokenSecret})
	if err != nil {
		t.Fatal(err)
	}
	return string(kr.AppendToken(nil, &c))
}

// errorOf returns the error object of a response.
func errorOf(t *testing.T, r resp) map[string]any {
	t.Helper()
	e, ok := r.json(t)["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object: %d %s", r.status, r.body)
	}
	return e
}

func wantError(t *testing.T, r resp, status int, code string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (%s): %s", r.status, status, code, r.body)
	}
	e := errorOf(t, r)
	if e["code"] != code {
		t.Fatalf("code %v, want %s: %s", e["code"], code, r.body)
	}
	return e
}

// loggedIn creates a session with custom, public and privacy data, logs it
// in, and returns its id and its two tokens (generation 1 and 2).
func loggedIn(t *testing.T, o *testOrigin) (id, tok1, tok2 string) {
	t.Helper()
	r := o.do("POST", "/v1/sessions", keyAll, map[string]any{"context": map[string]any{
		"custom": map[string]any{"c": 1}, "public": map[string]any{"p": 1}, "privacy": map[string]any{"email": "a@b.c"}}})
	m := r.json(t)
	id, tok1 = m["id"].(string), m["token"].(string)
	r = o.do("POST", "/v1/sessions/"+id+"/login", keyAll, map[string]any{"customerId": "c-1", "profile": map[string]any{"privacy": map[string]any{"email": "a@b.c"}}})
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	return id, tok1, r.json(t)["token"].(string)
}

func TestSessionTokenChecks(t *testing.T) {
	clk, cfg := clockConfig(t, time.Now())
	o := startOrigin(t, cfg)
	id, tok1, tok2 := loggedIn(t, o)
	other, _, _ := loggedIn(t, o)
	wid, _ := wire.ParseID(id)
	now := clk.now().Unix()
	path := "/v1/sessions/" + id

	wantError(t, o.do("GET", path, keyEdge, nil), 401, "token_required")
	wantError(t, o.do("GET", path, keyEdge, nil, "X-Session-Token", "garbage"), 401, "invalid_token")
	wantError(t, o.do("GET", path, keyEdge, nil, "X-Session-Token", tok2[:60]+strings.Repeat("A", len(tok2)-60)), 401, "invalid_token")
	kr2, _ := wire.NewKeyring(2, map[uint8][]byte{2: testTokenSecret}) // a key id the origin lacks
	otherKey := string(kr2.AppendToken(nil, &wire.Claims{Kind: wire.KindCustomer, ID: wid, Generation: 2, HardDeadline: now + 3600}))
	wantError(t, o.do("GET", path, keyEdge, nil, "X-Session-Token", otherKey), 401, "invalid_token")
	hardGone := tokenFor(t, wire.Claims{Kind: wire.KindCustomer, ID: wid, Generation: 2, HardDeadline: now - 1})
	wantError(t, o.do("GET", path, keyEdge, nil, "X-Session-Token", hardGone), 401, "token_expired")
	idleGone := tokenFor(t, wire.Claims{Kind: wire.KindCustomer, ID: wid, Generation: 2, IdleDeadline: now - 1, HardDeadline: now + 3600})
	wantError(t, o.do("GET", path, keyEdge, nil, "X-Session-Token", idleGone), 401, "token_expired")
	wantError(t, o.do("GET", "/v1/sessions/"+other, keyEdge, nil, "X-Session-Token", tok2), 403, "token_mismatch")
	e := wantError(t, o.do("GET", path, keyEdge, nil, "X-Session-Token", tok1), 409, "stale_generation")
	if e["currentGeneration"] != 2.0 {
		t.Fatalf("409 without the current generation: %v", e)
	}
	// An app key's token is checked the same way; without one it reads all.
	wantError(t, o.do("GET", path, keyRead, nil, "X-Session-Token", tok1), 409, "stale_generation")
	if r := o.do("GET", path, keyRead, nil); r.status != 200 || !strings.Contains(string(r.body), "a@b.c") {
		t.Fatalf("app read: %d %s", r.status, r.body)
	}

	// The edge's view: custom and public, no privacy, in JSON and CBOR.
	r := o.do("GET", path, keyEdge, nil, "X-Session-Token", tok2)
	if r.status != 200 || strings.Contains(string(r.body), "a@b.c") || !strings.Contains(string(r.body), `"public"`) {
		t.Fatalf("edge JSON view: %d %s", r.status, r.body)
	}
	r = o.do("GET", path, keyEdge, nil, "X-Session-Token", tok2, "Accept", "application/cbor")
	var s wire.Session
	if r.status != 200 || wire.DecodeSession(r.body, &s) != nil || len(s.Attrs[wire.NamespacePrivacy]) != 0 ||
		len(s.Attrs[wire.NamespaceCustom]) != 1 || len(s.Attrs[wire.NamespacePublic]) != 1 || s.CustomerID() != "c-1" {
		t.Fatalf("edge CBOR view: %d %+v", r.status, s)
	}
	r = o.do("GET", path, keyEdgePrivate, nil, "X-Session-Token", tok2)
	if r.status != 200 || !strings.Contains(string(r.body), "a@b.c") {
		t.Fatalf("an edge key configured for privacy: %d %s", r.status, r.body)
	}

	// Self-service writes: the public namespace only.
	patch := path + "/context"
	wantError(t, o.do("PATCH", patch, keyEdge, `{"public":{"x":1}}`), 401, "token_required")
	wantError(t, o.do("PATCH", patch, keyEdge, `{"public":{"x":1}}`, "X-Session-Token", tok1), 409, "stale_generation")
	if e := wantError(t, o.do("PATCH", patch, keyEdge, `{"custom":{"x":1}}`, "X-Session-Token", tok2), 403, "forbidden"); e["field"] != "custom" {
		t.Fatalf("field %v", e["field"])
	}
	// The self-service fields (by default siteCode, currency,
	// targetLocation, trackingAllowed), and never customerId.
	wantError(t, o.do("PATCH", patch, keyEdge, `{"public":{"x":1},"locale":"de-DE"}`, "X-Session-Token", tok2), 403, "forbidden")
	wantError(t, o.do("PATCH", patch, keyEdge, `{"customerId":"evil"}`, "X-Session-Token", tok2), 403, "forbidden")
	if r := o.do("PATCH", patch, keyEdge, `{"public":{"x":1}}`, "X-Session-Token", tok2); r.status != 200 || strings.Contains(string(r.body), "a@b.c") {
		t.Fatalf("self-service patch: %d %s", r.status, r.body)
	}
	wantError(t, o.do("DELETE", path+"/attributes/custom/c", keyEdge, nil, "X-Session-Token", tok2), 403, "forbidden")
	if r := o.do("DELETE", path+"/attributes/public/x", keyEdge, nil, "X-Session-Token", tok2); r.status != 200 {
		t.Fatalf("self-service delete: %d %s", r.status, r.body)
	}
	wantError(t, o.do("POST", path+"/login", keyEdge, `{"customerId":"evil"}`, "X-Session-Token", tok2), 403, "forbidden")
	wantError(t, o.do("PUT", patch, keyEdge, `{"public":{}}`, "X-Session-Token", tok2), 403, "forbidden")

	// Logout: only at the token's generation; an idle-expired token is
	// accepted (the edge's soft logout); the answer is filtered and, in
	// CBOR, carries the token in a header.
	wantError(t, o.do("POST", path+"/logout", keyEdge, nil, "X-Session-Token", tok1), 409, "stale_generation")
	wantError(t, o.do("POST", path+"/logout", keyEdge, nil, "X-Session-Token", hardGone), 401, "token_expired")
	before, _ := o.getCBOR(id)
	r = o.do("POST", path+"/logout", keyEdge, nil, "X-Session-Token", idleGone, "Accept", "application/cbor")
	if r.status != 200 || r.header.Get("X-Session-Token") == "" || wire.DecodeSession(r.body, &s) != nil {
		t.Fatalf("soft logout: %d %v %s", r.status, r.header, r.body)
	}
	after, _ := o.getCBOR(id)
	if after.Generation != 3 || after.Kind != wire.KindAnonymous || len(after.Attrs[wire.NamespacePrivacy]) != 0 ||
		after.HardDeadline != before.HardDeadline || after.CustomerID() != "" {
		t.Fatalf("after logout: %+v (before %+v)", after, before)
	}
	// Logging out the anonymous session again with its new token: refused.
	wantError(t, o.do("POST", path+"/logout", keyEdge, nil, "X-Session-Token", r.header.Get("X-Session-Token")), 409, "not_logged_in")
	// And the old customer token cannot log out the next login.
	o.do("POST", path+"/login", keyAll, map[string]any{"customerId": "c-2"})
	wantError(t, o.do("POST", path+"/logout", keyEdge, nil, "X-Session-Token", idleGone), 409, "stale_generation")

	// An ended session.
	o.do("DELETE", "/v1/sessions/"+other, keyAll, nil)
	oid, _ := wire.ParseID(other)
	otok := tokenFor(t, wire.Claims{Kind: wire.KindCustomer, ID: oid, Generation: 2, HardDeadline: now + 3600})
	wantError(t, o.do("GET", "/v1/sessions/"+other, keyEdge, nil, "X-Session-Token", otok), 410, "gone")
	wantError(t, o.do("PATCH", "/v1/sessions/"+other+"/context", keyEdge, `{"public":{"a":1}}`, "X-Session-Token", otok), 410, "gone")
}

// TestSelfServiceUpsert: an unknown id is created by a self-service write
// only from what an edge mints, with the token's hard deadline.
func TestSelfServiceUpsert(t *testing.T) {
	clk, cfg := clockConfig(t, time.Now())
	o := startOrigin(t, cfg)
	now := clk.now().Unix()
	fresh := func() (wire.ID, string) {
		id, _ := wire.NewID()
		return id, "/v1/sessions/" + id.String()
	}
	id, path := fresh()
	tok := tokenFor(t, wire.Claims{Kind: wire.KindAnonymous, ID: id, Generation: 1, IssuedAt: now, IdleDeadline: now + 3600, HardDeadline: now + 7200})
	wantError(t, o.do("GET", path, keyEdge, nil, "X-Session-Token", tok), 404, "not_found")
	wantError(t, o.do("POST", path+"/logout", keyEdge, nil, "X-Session-Token", tok), 404, "not_found")
	if r := o.do("PATCH", path+"/context", keyEdge, `{"public":{"a":1}}`, "X-Session-Token", tok); r.status != 200 {
		t.Fatalf("self-service upsert: %d %s", r.status, r.body)
	}
	s, _ := o.getCBOR(id.String())
	if s.Kind != wire.KindAnonymous || s.Generation != 1 || s.HardDeadline != (now+7200)*1000 || s.IdleDeadline != clk.now().UnixMilli()+time.Hour.Milliseconds() {
		t.Fatalf("upserted session: %+v", s)
	}
	for name, c := range map[string]wire.Claims{
		"customer":     {Kind: wire.KindCustomer, Generation: 1, HardDeadline: now + 3600},
		"generation 2": {Kind: wire.KindAnonymous, Generation: 2, HardDeadline: now + 3600},
		"far hard":     {Kind: wire.KindAnonymous, Generation: 1, HardDeadline: now + 48*3600},
		"no hard":      {Kind: wire.KindAnonymous, Generation: 1},
	} {
		id, path := fresh()
		c.ID = id
		if r := o.do("PATCH", path+"/context", keyEdge, `{"public":{"a":1}}`, "X-Session-Token", tokenFor(t, c)); r.status != 404 {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
		// An app key's ?upsert=true with that token is held to the same rule.
		if r := o.do("PATCH", path+"/context?upsert=true", keyAll, `{"public":{"a":1}}`, "X-Session-Token", tokenFor(t, c)); r.status != 404 {
			t.Fatalf("%s with an app key: %d %s", name, r.status, r.body)
		}
	}
}

// TestFeedFilter: an edge key's feed has no ops on namespaces it may not
// see; a delta left empty still comes, so versions stay contiguous.
func TestFeedFilter(t *testing.T) {
	o := startOrigin(t, baseConfig(t))
	head := o.sync("", 0).Cursor
	id := o.create(map[string]any{"privacy": map[string]any{"email": "a@b.c"}, "public": map[string]any{"p": 1}})
	o.do("PATCH", "/v1/sessions/"+id+"/context", keyAll, `{"privacy":{"phone":"1"}}`)
	o.do("PATCH", "/v1/sessions/"+id+"/context", keyAll, `{"privacy":null,"custom":{"c":1}}`)
	feed := func(key string) []wire.Delta {
		r := o.do("GET", "/v1/sync?after="+head, key, nil)
		var bt wire.Batch
		if r.status != 200 || wire.DecodeBatch(r.body, &bt) != nil {
			t.Fatalf("sync: %d", r.status)
		}
		return bt.Deltas
	}
	ds := feed(keyEdge)
	if len(ds) != 3 {
		t.Fatalf("%d deltas, want 3", len(ds))
	}
	for i, d := range ds {
		if d.Version != uint64(i+1) {
			t.Fatalf("delta %d has version %d", i, d.Version)
		}
		for _, op := range d.Ops {
			if (op.Code == wire.OpSetAttr || op.Code == wire.OpDeleteAttr || op.Code == wire.OpClearNamespace) && op.NS == wire.NamespacePrivacy {
				t.Fatalf("privacy op in the edge's feed: %+v", op)
			}
		}
	}
	if len(ds[1].Ops) != 0 || len(ds[2].Ops) != 1 {
		t.Fatalf("filtered deltas: %+v", ds)
	}
	if all := feed(keyEdgePrivate); len(all[1].Ops) != 1 || len(all[2].Ops) != 2 {
		t.Fatalf("a key configured for privacy: %+v", all)
	}
	// The store's deltas were not changed by filtering.
	if all := feed(keyEdgePrivate); len(all[1].Ops) != 1 {
		t.Fatalf("filtering changed the stored deltas: %+v", all)
	}
}

// staleStore serves Get from a copy older than the store's, as a read
// cache can after another node's write; GetAtLeast reads the store when the
// copy is too old.
type staleStore struct {
	store.Store
	stale *wire.Session
	fresh int
}

func (s *staleStore) Get(ctx context.Context, id wire.ID) (*wire.Session, error) {
	if s.stale != nil && s.stale.ID == id {
		return s.stale, nil
	}
	return s.Store.Get(ctx, id)
}

func (s *staleStore) GetAtLeast(ctx context.Context, id wire.ID, minVersion uint64) (*wire.Session, error) {
	if sess, err := s.Get(ctx, id); err != nil || sess.Version >= minVersion {
		return sess, err
	}
	s.fresh++
	return s.Store.Get(ctx, id)
}

// TestMinVersion: ?minVersion=N never answers from a cached copy older
// than N; a store that is older answers what it has.
func TestMinVersion(t *testing.T) {
	cfg := baseConfig(t)
	st := &staleStore{Store: cfg.Store}
	cfg.Store = st
	o := startOrigin(t, cfg)
	id := o.create(nil)
	old, _ := o.getCBOR(id)
	o.do("PATCH", "/v1/sessions/"+id+"/context", keyAll, `{"custom":{"a":1}}`)
	st.stale = old
	for _, accept := range []string{"application/json", "application/cbor"} {
		if r := o.do("GET", "/v1/sessions/"+id, keyAll, nil, "Accept", accept); r.header.Get("ETag") != `"1"` {
			t.Fatalf("without minVersion the cache answers: %s", r.header.Get("ETag"))
		}
		for _, mv := range []string{"2", "9"} {
			r := o.do("GET", "/v1/sessions/"+id+"?minVersion="+mv, keyAll, nil, "Accept", accept)
			if r.status != 200 || r.header.Get("ETag") != `"2"` {
				t.Fatalf("minVersion=%s (%s): %d %s", mv, accept, r.status, r.header.Get("ETag"))
			}
		}
		if r := o.do("GET", "/v1/sessions/"+id+"?minVersion=1", keyAll, nil, "Accept", accept); r.header.Get("ETag") != `"1"` {
			t.Fatalf("a cached copy at minVersion was not used: %s", r.header.Get("ETag"))
		}
	}
	if st.fresh != 4 {
		t.Fatalf("the store was read past its cache %d times, want 4", st.fresh)
	}
}
