package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	pebblestore "github.com/sessionedge/sessionedge/origin/store/pebble"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

var hookSecret = []byte("hook-secret-0123456789")

// eventReceiver is a webhook endpoint that checks every delivery's
// signature and keeps what arrived, duplicates included. failFirst lists
// event types whose first delivery it takes in and then answers 500, as a
// receiver that crashed before acknowledging would, so the origin sends
// them again.
type eventReceiver struct {
	t         *testing.T
	url       string
	mu        sync.Mutex
	got       []map[string]any
	badSigs   int
	failFirst map[string]bool
}

func startEventReceiver(t *testing.T, failFirst ...string) *eventReceiver {
	h := &eventReceiver{t: t, failFirst: map[string]bool{}}
	for _, typ := range failFirst {
		h.failFirst[typ] = true
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err := wire.VerifyWebhook(hookSecret, r.Header.Get(wire.WebhookSignatureHeader), b, time.Now(), time.Hour); err != nil {
			h.badSigs++
			w.WriteHeader(401)
			return
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			w.WriteHeader(400)
			return
		}
		h.got = append(h.got, m)
		if typ, _ := m["type"].(string); h.failFirst[typ] {
			delete(h.failFirst, typ)
			w.WriteHeader(500)
			return
		}
		w.WriteHeader(204)
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/events"
	return h
}

// events returns the events of session id in the order they first
// arrived, each once (deduplicated by eventId), and how many arrived in
// all.
func (h *eventReceiver) events(id string) ([]map[string]any, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := map[string]bool{}
	var out []map[string]any
	n := 0
	for _, e := range h.got {
		if e["id"] != id {
			continue
		}
		n++
		eid, _ := e["eventId"].(string)
		if seen[eid] {
			continue
		}
		seen[eid] = true
		out = append(out, e)
	}
	return out, n
}

func eventTypes(es []map[string]any) string {
	var ts []string
	for _, e := range es {
		ts = append(ts, strings.TrimPrefix(e["type"].(string), "session."))
	}
	return strings.Join(ts, ",")
}

func (h *eventReceiver) waitTypes(id, want string) []map[string]any {
	h.t.Helper()
	var es []map[string]any
	waitFor(h.t, 20*time.Second, "events "+want, func() bool {
		es, _ = h.events(id)
		return eventTypes(es) == want
	})
	return es
}

func eventContext(e map[string]any) map[string]any {
	ctx, _ := e["session"].(map[string]any)["context"].(map[string]any)
	return ctx
}

func webhookConfig(cfg *Config, url string) {
	cfg.Webhook = Webhook{URL: url, Secret: string(hookSecret), MaxBackoff: Duration(100 * time.Millisecond), ChangedWindow: Duration(5 * time.Second)}
}

// TestEventOrder follows one session through its life and checks, through
// real, signed, at-least-once deliveries (the receiver drops duplicates by
// eventId), that it sees started, changed, login, changed, logout, ended in
// that order, that each change event coalesces the writes of its window
// and carries the state at its end, and that a redelivered event holds up
// the session's later ones.
func TestEventOrder(t *testing.T) {
	hook := startEventReceiver(t, "session.login")
	clk, cfg := clockConfig(t, time.Now())
	webhookConfig(&cfg, hook.url)
	o := startOrigin(t, cfg)

	id := o.create(map[string]any{"currency": "EUR"})
	path := "/v1/sessions/" + id
	for _, body := range []string{`{"custom":{"a":1}}`, `{"custom":{"b":2}}`, `{"public":{"c":3}}`} {
		if r := o.do("PATCH", path+"/context", keyAll, body); r.status != 200 {
			t.Fatalf("patch: %d %s", r.status, r.body)
		}
	}
	hook.waitTypes(id, "started")
	if n, _ := o.srv.Sweep(); n != 0 {
		t.Fatalf("a change event went out before its window ended (%d)", n)
	}
	clk.add(5 * time.Second)
	if n, _ := o.srv.Sweep(); n != 1 {
		t.Fatalf("Sweep at the window's end settled %d change events, want 1", n)
	}
	es := hook.waitTypes(id, "started,changed")
	if c := eventContext(es[1]); c["custom"].(map[string]any)["b"] != 2.0 || c["public"].(map[string]any)["c"] != 3.0 {
		t.Fatalf("the change event lacks the window's last state: %v", es[1])
	}

	if r := o.do("POST", path+"/login", keyAll, `{"customerId":"c-1"}`); r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	// The receiver takes the login in and fails; the retry waits for the
	// backoff on the origin's clock, and the session's later events wait
	// for it.
	waitFor(t, 20*time.Second, "the login's first delivery", func() bool {
		_, n := hook.events(id)
		return n == 3
	})
	o.do("PATCH", path+"/context", keyAll, `{"privacy":{"email":"a@b.c"}}`)
	o.do("PATCH", path+"/context", keyAll, `{"custom":{"a":10}}`)
	// The logout comes before the window ends: it settles the change event
	// first, with the state just before it.
	if r := o.do("POST", path+"/logout", keyAll, nil); r.status != 200 {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	if r := o.do("DELETE", path, keyAll, nil); r.status != 200 {
		t.Fatalf("end: %d %s", r.status, r.body)
	}
	clk.add(time.Minute)
	o.srv.Sweep()
	es = hook.waitTypes(id, "started,changed,login,changed,logout,ended")
	if c := eventContext(es[3]); c["privacy"].(map[string]any)["email"] != "a@b.c" || c["customerId"] != "c-1" || c["custom"].(map[string]any)["a"] != 10.0 {
		t.Fatalf("the change event before the logout: %v", es[3])
	}
	if es[4]["session"].(map[string]any)["kind"] != "anonymous" || es[5]["reason"] != "abandoned" {
		t.Fatalf("logout and end: %v %v", es[4], es[5])
	}
	// Every id is "<session id>.<version>.<event>", the versions rise.
	last := 0.0
	for _, e := range es {
		parts := strings.Split(e["eventId"].(string), ".")
		v := e["session"].(map[string]any)["version"].(float64)
		if len(parts) != 3 || parts[0] != id || parts[2] != strings.TrimPrefix(e["type"].(string), "session.") || v < last {
			t.Fatalf("event id %v of %v (version %v after %v)", e["eventId"], e["type"], v, last)
		}
		last = v
	}
	// Every delivery, duplicates included: nothing overtook the login's
	// retry.
	hook.mu.Lock()
	var all []map[string]any
	for _, e := range hook.got {
		if e["id"] == id {
			all = append(all, e)
		}
	}
	hook.mu.Unlock()
	if got := eventTypes(all); got != "started,changed,login,login,changed,logout,ended" {
		t.Fatalf("deliveries %s", got)
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if hook.badSigs != 0 {
		t.Fatalf("%d deliveries with a bad signature", hook.badSigs)
	}
}

// TestChangedEventSurvivesRestart: the change event a write owes is in the
// store with the write, so an origin that stops before the window ends
// sends it after its restart.
func TestChangedEventSurvivesRestart(t *testing.T) {
	hook := startEventReceiver(t)
	dir := t.TempDir()
	clk := newClock(time.Now())
	start := func() (*testOrigin, func()) {
		st, err := pebblestore.Open(pebblestore.Config{Dir: dir, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		cfg := baseConfig(t)
		cfg.Store.Close()
		cfg.Store = st
		cfg.Now = clk.now
		webhookConfig(&cfg, hook.url)
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		o := startOriginWith(t, s)
		var once sync.Once
		stop := func() {
			once.Do(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				s.Shutdown(ctx)
				st.Close()
			})
		}
		t.Cleanup(stop)
		return o, stop
	}
	o, stop := start()
	id := o.create(nil)
	o.do("PATCH", "/v1/sessions/"+id+"/context", keyAll, `{"custom":{"a":1}}`)
	hook.waitTypes(id, "started")
	stop()

	clk.add(10 * time.Second)
	o, _ = start()
	if n, err := o.srv.Sweep(); n != 1 || err != nil {
		t.Fatalf("Sweep after the restart: %d, %v", n, err)
	}
	es := hook.waitTypes(id, "started,changed")
	if eventContext(es[1])["custom"].(map[string]any)["a"] != 1.0 {
		t.Fatalf("change event: %v", es[1])
	}
}

// TestFlush: POST …/flush sends the session's state as session.flushed
// (after a pending session.changed) without changing the session.
func TestFlush(t *testing.T) {
	hook := startEventReceiver(t)
	cfg := baseConfig(t)
	webhookConfig(&cfg, hook.url)
	o := startOrigin(t, cfg)
	id := o.create(nil)
	path := "/v1/sessions/" + id
	o.do("PATCH", path+"/context", keyAll, `{"custom":{"a":1}}`)
	r := o.do("POST", path+"/flush", keyAll, nil)
	if r.status != 200 || r.header.Get("ETag") != `"2"` || r.json(t)["context"].(map[string]any)["custom"].(map[string]any)["a"] != 1.0 {
		t.Fatalf("flush: %d %s", r.status, r.body)
	}
	es := hook.waitTypes(id, "started,changed,flushed")
	if es[2]["eventId"] != id+".2.flushed" || eventContext(es[2])["custom"].(map[string]any)["a"] != 1.0 {
		t.Fatalf("flushed event: %v", es[2])
	}
	if s, _ := o.getCBOR(id); s.Version != 2 {
		t.Fatalf("flush wrote the session: %+v", s)
	}
	// The change event was settled by the flush: none at the window's end.
	if due, _ := o.srv.st.ChangesDue(context.Background(), wire.MaxTime, 10); len(due) != 0 {
		t.Fatalf("still pending: %+v", due)
	}
	o.do("POST", path+"/flush", keyAll, nil)
	o.do("DELETE", path, keyAll, nil)
	hook.waitTypes(id, "started,changed,flushed,ended") // the second flush repeats an event id
	wantError(t, o.do("POST", path+"/flush", keyAll, nil), 410, "gone")
	wantError(t, o.do("POST", "/v1/sessions/"+wire.ID{9}.String()+"/flush", keyAll, nil), 404, "not_found")
	wantError(t, o.do("POST", path+"/flush", keyRead, nil), 403, "forbidden")

	// Without a webhook, a flush answers the session and sends nothing.
	plain := startOrigin(t, baseConfig(t))
	pid := plain.create(nil)
	if r := plain.do("POST", "/v1/sessions/"+pid+"/flush", keyAll, nil); r.status != 200 {
		t.Fatalf("flush without a webhook: %d %s", r.status, r.body)
	}
}

// TestChangedCoalescing: one change event per session per window, and
// none for device records, touches or a flush of an unchanged session.
func TestChangedCoalescing(t *testing.T) {
	hook := startEventReceiver(t)
	clk, cfg := clockConfig(t, time.Now())
	webhookConfig(&cfg, hook.url)
	o := startOrigin(t, cfg)
	a, b := o.create(nil), o.create(nil)
	for i := 0; i < 5; i++ {
		o.do("PATCH", "/v1/sessions/"+a+"/context", keyAll, map[string]any{"custom": map[string]any{"n": i}})
		o.do("PATCH", "/v1/sessions/"+b+"/context", keyAll, map[string]any{"custom": map[string]any{"n": i}})
		clk.add(900 * time.Millisecond)
		o.srv.Sweep()
	}
	// 4.5 s: nothing yet; at 5 s each session's first window ends.
	clk.add(600 * time.Millisecond)
	if n, _ := o.srv.Sweep(); n != 2 {
		t.Fatalf("settled %d, want 2", n)
	}
	for _, id := range []string{a, b} {
		es := hook.waitTypes(id, "started,changed")
		if eventContext(es[1])["custom"].(map[string]any)["n"] != 4.0 {
			t.Fatalf("change event of %s: %v", id, es[1])
		}
	}
	// A device record and a touch owe no change event.
	wid, _ := wire.ParseID(a)
	now := clk.now().UnixMilli()
	o.touch(wire.Touch{ID: wid, Kind: wire.KindAnonymous, Generation: 1, LastSeen: now, Device: phone})
	clk.add(10 * time.Second)
	if n, _ := o.srv.Sweep(); n != 0 {
		t.Fatalf("a device record or touch owed %d change events", n)
	}
}

// TestEventsOfCreatedCustomer: a session created logged in gets started
// and login, with distinct ids.
func TestEventsOfCreatedCustomer(t *testing.T) {
	hook := startEventReceiver(t)
	cfg := baseConfig(t)
	webhookConfig(&cfg, hook.url)
	o := startOrigin(t, cfg)
	r := o.do("POST", "/v1/sessions", keyAll, `{"kind":"customer","customerId":"c"}`)
	id := r.json(t)["id"].(string)
	es := hook.waitTypes(id, "started,login")
	if es[0]["eventId"] != id+".1.started" || es[1]["eventId"] != id+".1.login" {
		t.Fatalf("ids %v %v", es[0]["eventId"], es[1]["eventId"])
	}
}

// TestWebhookRetryStateBounded checks that the webhook loop's retry state
// follows the outbox: events that keep failing here and then leave the
// outbox some other way (another node sharing the store delivers them)
// are forgotten, so a long-running origin with a failing receiver holds
// state only for what is still pending.
func TestWebhookRetryStateBounded(t *testing.T) {
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(500)
	}))
	t.Cleanup(refuse.Close)
	cfg := baseConfig(t)
	webhookConfig(&cfg, refuse.URL)
	o := startOrigin(t, cfg)

	const n, pending = 20, 3
	for range n {
		o.create(map[string]any{"currency": "EUR"})
	}
	waitFor(t, 20*time.Second, "retry state for every failing event", func() bool {
		return o.srv.retrying.Load() == n
	})
	// Another node takes each event once this one's lease on it lapsed, and
	// delivers it.
	ctx := context.Background()
	taken := 0
	waitFor(t, 20*time.Second, "the failing events taken from the outbox", func() bool {
		es, err := cfg.Store.OutboxClaim(ctx, 1000, 150*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if err := cfg.Store.OutboxDone(ctx, e.ID); err != nil {
				t.Fatal(err)
			}
			taken++
		}
		return taken == n
	})
	for range pending {
		o.create(map[string]any{"currency": "USD"})
	}
	waitFor(t, 20*time.Second, "retry state only for the pending events", func() bool {
		return o.srv.retrying.Load() == pending
	})
	// And it stays there while they keep failing.
	time.Sleep(time.Second)
	if got := o.srv.retrying.Load(); got != pending {
		t.Fatalf("retry state for %d events, want %d", got, pending)
	}
}
