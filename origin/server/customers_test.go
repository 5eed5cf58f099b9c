package server

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// loginAs creates a session and logs it in as cid; it returns the id and
// the customer token.
func (o *testOrigin) loginAs(cid string) (string, string) {
	o.t.Helper()
	id := o.create(nil)
	r := o.do("POST", "/v1/sessions/"+id+"/login", keyAll, map[string]any{"customerId": cid})
	if r.status != 200 {
		o.t.Fatalf("login: %d %s", r.status, r.body)
	}
	return id, r.json(o.t)["token"].(string)
}

// TestCustomerSessionLimitEvicts: a login beyond customerSessions.max ends
// the customer's oldest other session, reason evicted, with an event.
func TestCustomerSessionLimitEvicts(t *testing.T) {
	hook := startEventReceiver(t)
	clk, cfg := clockConfig(t, time.Now())
	webhookConfig(&cfg, hook.url)
	cfg.CustomerSessions = CustomerSessions{Max: 2}
	o := startOrigin(t, cfg)
	var ids []string
	for i := 0; i < 2; i++ {
		id, _ := o.loginAs("c")
		ids = append(ids, id)
		clk.add(time.Second)
	}
	other, _ := o.loginAs("d") // another customer is not counted
	// Logging in again as c from one of its sessions takes no slot.
	if r := o.do("POST", "/v1/sessions/"+ids[1]+"/login", keyAll, `{"customerId":"c"}`); r.status != 200 {
		t.Fatalf("re-login: %d %s", r.status, r.body)
	}
	for _, id := range append(ids, other) {
		if _, status := o.getCBOR(id); status != 200 {
			t.Fatalf("%s: %d before the limit", id, status)
		}
	}
	third, _ := o.loginAs("c")
	if _, status := o.getCBOR(ids[0]); status != 410 {
		t.Fatalf("the oldest session: %d, want 410", status)
	}
	for _, id := range []string{ids[1], third, other} {
		if _, status := o.getCBOR(id); status != 200 {
			t.Fatalf("%s: %d", id, status)
		}
	}
	es := hook.waitTypes(ids[0], "started,login,ended")
	if es[2]["reason"] != "evicted" || eventContext(es[2])["customerId"] != "c" {
		t.Fatalf("eviction event: %v", es[2])
	}
	// A session created logged in counts too.
	r := o.do("POST", "/v1/sessions", keyAll, `{"kind":"customer","customerId":"c"}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if _, status := o.getCBOR(ids[1]); status != 410 {
		t.Fatalf("the oldest session after a create: %d", status)
	}
	if r := o.do("GET", "/v1/customers/c/sessions", keyAdmin, nil); strings.Count(string(r.body), `"customerId":"c"`) != 2 {
		t.Fatalf("customer c: %s", r.body)
	}
}

// TestCustomerSessionLimitRefuses: with onLimit refuse, a login beyond the
// limit is answered 409 session_limit and changes nothing.
func TestCustomerSessionLimitRefuses(t *testing.T) {
	cfg := baseConfig(t)
	cfg.CustomerSessions = CustomerSessions{Max: 1, OnLimit: OnLimitRefuse}
	o := startOrigin(t, cfg)
	first, _ := o.loginAs("c")
	id := o.create(nil)
	wantError(t, o.do("POST", "/v1/sessions/"+id+"/login", keyAll, `{"customerId":"c"}`), 409, "session_limit")
	wantError(t, o.do("POST", "/v1/sessions", keyAll, `{"kind":"customer","customerId":"c"}`), 409, "session_limit")
	if s, _ := o.getCBOR(id); s.Kind != wire.KindAnonymous || s.Version != 1 {
		t.Fatalf("a refused login wrote: %+v", s)
	}
	if r := o.do("POST", "/v1/sessions/"+first+"/login", keyAll, `{"customerId":"c"}`); r.status != 200 {
		t.Fatalf("re-login of the one session: %d %s", r.status, r.body)
	}
	o.do("POST", "/v1/sessions/"+first+"/logout", keyAll, nil)
	if r := o.do("POST", "/v1/sessions/"+id+"/login", keyAll, `{"customerId":"c"}`); r.status != 200 {
		t.Fatalf("login after the other logged out: %d %s", r.status, r.body)
	}
	for _, bad := range []CustomerSessions{{Max: -1}, {Max: 1, OnLimit: "evict"}} {
		cfg := baseConfig(t)
		cfg.CustomerSessions = bad
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "customerSessions.") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

// TestPeers: a session's owner lists the customer's sessions (the current
// one marked, devices shown, no id given away) and ends the others, with
// an app key or an edge key and the session's token.
func TestPeers(t *testing.T) {
	o := startOrigin(t, baseConfig(t))
	var ids []string
	var toks []string
	for i, dev := range []wire.Device{phone, laptop, {}} {
		id, tok := o.loginAs("c")
		ids, toks = append(ids, id), append(toks, tok)
		if !dev.IsZero() {
			wid, _ := wire.ParseID(id)
			o.touch(wire.Touch{ID: wid, Kind: wire.KindCustomer, Generation: 2, LastSeen: time.Now().UnixMilli() + int64(i), Device: dev})
		}
	}
	other, _ := o.loginAs("d")
	path := "/v1/sessions/" + ids[0] + "/peers"
	handle := func(id string) string {
		wid, _ := wire.ParseID(id)
		sum := sha256.Sum256(wid[:])
		return hex.EncodeToString(sum[:8])
	}
	check := func(r resp) {
		t.Helper()
		if r.status != 200 {
			t.Fatalf("peers: %d %s", r.status, r.body)
		}
		for _, id := range append(ids, other) {
			if strings.Contains(string(r.body), id) {
				t.Fatalf("the list gives an id away: %s", r.body)
			}
		}
		list := r.json(t)["sessions"].([]any)
		if len(list) != 3 {
			t.Fatalf("peers: %s", r.body)
		}
		cur := list[0].(map[string]any)
		if cur["current"] != true || cur["handle"] != handle(ids[0]) || cur["kind"] != "customer" ||
			cur["device"].(map[string]any)["userAgent"] != phone.UserAgent || cur["firstDevice"] == nil || cur["modified"] == nil || cur["created"] == nil || cur["lastSeen"] == nil {
			t.Fatalf("current: %v", cur)
		}
		seen := map[any]bool{}
		for _, p := range list[1:] {
			m := p.(map[string]any)
			if m["current"] != false || len(m["handle"].(string)) != 16 {
				t.Fatalf("peer: %v", m)
			}
			seen[m["handle"]] = true
		}
		if !seen[handle(ids[1])] || !seen[handle(ids[2])] || seen[handle(other)] {
			t.Fatalf("peers %v", list)
		}
	}
	check(o.do("GET", path, keyRead, nil))
	check(o.do("GET", path, keyEdge, nil, "X-Session-Token", toks[0]))
	wantError(t, o.do("GET", path, keyEdge, nil), 401, "token_required")
	wantError(t, o.do("GET", path, keyEdge, nil, "X-Session-Token", toks[1]), 403, "token_mismatch")

	// An anonymous session lists itself only, and has no others to end.
	anon := o.create(nil)
	r := o.do("GET", "/v1/sessions/"+anon+"/peers", keyRead, nil)
	if list := r.json(t)["sessions"].([]any); len(list) != 1 || list[0].(map[string]any)["current"] != true {
		t.Fatalf("anonymous: %s", r.body)
	}
	if r := o.do("DELETE", "/v1/sessions/"+anon+"/peers", keyWrite, nil); r.status != 200 || string(r.body) != `{"revoked":0}` {
		t.Fatalf("anonymous: %d %s", r.status, r.body)
	}

	// End the others, through the edge with the current token.
	wantError(t, o.do("DELETE", path, keyEdge, nil), 401, "token_required")
	r = o.do("DELETE", path, keyEdge, nil, "X-Session-Token", toks[0])
	if r.status != 200 || string(r.body) != `{"revoked":2}` {
		t.Fatalf("revoke peers: %d %s", r.status, r.body)
	}
	for _, id := range ids[1:] {
		if s, status := o.getCBOR(id); status != 410 {
			t.Fatalf("%s: %d %+v", id, status, s)
		}
	}
	for _, id := range []string{ids[0], other} {
		if _, status := o.getCBOR(id); status != 200 {
			t.Fatalf("%s: %d", id, status)
		}
	}
	// A token of an older generation is refused.
	o.do("POST", "/v1/sessions/"+ids[0]+"/logout", keyAll, nil)
	wantError(t, o.do("DELETE", path, keyEdge, nil, "X-Session-Token", toks[0]), 409, "stale_generation")

	// The admin listing shows the same metadata.
	id, _ := o.loginAs("e")
	wid, _ := wire.ParseID(id)
	o.touch(wire.Touch{ID: wid, Kind: wire.KindCustomer, Generation: 2, LastSeen: time.Now().UnixMilli(), Device: laptop})
	r = o.do("GET", "/v1/customers/e/sessions", keyAdmin, nil)
	if !strings.Contains(string(r.body), `"device":{"userAgent":"Mozilla/5.0 (X11; Linux)"`) || !strings.Contains(string(r.body), `"modified":`) {
		t.Fatalf("admin listing: %s", r.body)
	}
}

// concurrentLogins logs n sessions in as customer cid at once, half by
// login of an anonymous session and half by a create with customerId, on
// the nodes in turn, and returns the answers.
func concurrentLogins(t *testing.T, nodes []*testOrigin, cid string, n int) []resp {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = nodes[i%len(nodes)].create(nil)
	}
	out := make([]resp, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := nodes[i%len(nodes)]
			<-start
			if i%2 == 0 {
				out[i] = o.do("POST", "/v1/sessions/"+ids[i]+"/login", keyAll, `{"customerId":"`+cid+`"}`)
			} else {
				out[i] = o.do("POST", "/v1/sessions", keyAll, `{"kind":"customer","customerId":"`+cid+`"}`)
			}
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// checkLimitHeld checks that cid holds at most max live sessions, and in
// refuse mode that every login beyond the ones that stand was answered 409
// session_limit (and, with oneNode, that some stand: logins racing on
// several nodes may all be refused).
func checkLimitHeld(t *testing.T, o *testOrigin, cid string, max int, refuse, oneNode bool, answers []resp) {
	t.Helper()
	live, err := o.srv.liveCustomerSessions(cid, o.srv.nowMS(), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) > max {
		t.Fatalf("customer %s holds %d live sessions, limit %d", cid, len(live), max)
	}
	ok, refused := 0, 0
	for _, r := range answers {
		switch {
		case r.status == 200 || r.status == 201:
			ok++
		case refuse && r.status == 409 && strings.Contains(string(r.body), `"session_limit"`):
			refused++
		default:
			t.Fatalf("login answered %d %s", r.status, r.body)
		}
	}
	if refuse && ok != len(live) {
		t.Fatalf("%d logins succeeded, %d refused, but %d sessions are live", ok, refused, len(live))
	}
	if refuse && oneNode && ok == 0 {
		t.Fatal("every login was refused")
	}
}

// TestCustomerSessionLimitConcurrent logs one customer in on many sessions
// at once: the limit holds in both modes, and in refuse mode the logins
// refused are answered 409 session_limit.
func TestCustomerSessionLimitConcurrent(t *testing.T) {
	for _, mode := range []string{OnLimitRefuse, OnLimitEvictOldest} {
		t.Run(mode, func(t *testing.T) {
			cfg := baseConfig(t)
			cfg.CustomerSessions = CustomerSessions{Max: 2, OnLimit: mode}
			o := startOrigin(t, cfg)
			for round := range 5 {
				cid := "c" + itoa(round)
				checkLimitHeld(t, o, cid, 2, mode == OnLimitRefuse, true, concurrentLogins(t, []*testOrigin{o}, cid, 16))
			}
		})
	}
}
