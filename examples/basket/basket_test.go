package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/examples/internal/e2e"
	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/sdktest"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// fillBasket has a shopper put two lines into the basket through the edge
// and returns the shopper's session id. Every page shows the lines added
// so far at once.
func fillBasket(t *testing.T, shopper *e2e.Browser) string {
	var b basket
	if p := shopper.PostJSON(t, "/basket/items", map[string]any{"sku": "espresso-beans", "qty": 2}); p.Status != http.StatusOK {
		t.Fatalf("add: %d %s", p.Status, p.Body)
	}
	shopper.GetJSON(t, "/basket", http.StatusOK, &b)
	if b.Items["espresso-beans"] != 2 {
		t.Fatalf("basket right after the first add: %+v", b)
	}
	if p := shopper.PostJSON(t, "/basket/items", map[string]any{"sku": "grinder", "qty": 1}); p.Status != http.StatusOK {
		t.Fatalf("add: %d %s", p.Status, p.Body)
	}
	shopper.GetJSON(t, "/basket", http.StatusOK, &b)
	if b.Items["espresso-beans"] != 2 || b.Items["grinder"] != 1 {
		t.Fatalf("basket %+v", b)
	}
	return b.Session
}

// TestBasketWebhookReceiver plays the origin's webhook by hand: the
// receiver keeps the final basket once, and refuses unsigned events.
func TestBasketWebhookReceiver(t *testing.T) {
	secret := []byte("hook-secret")
	dbPath := filepath.Join(t.TempDir(), "db.json")
	f := e2e.StartFakes(t, sdktest.FakeOriginConfig{}, sdktest.FakeEdgeConfig{}, func(originURL string, keys *wire.AssertionKeys) (http.Handler, error) {
		return newShop(originURL, "", secret, keys, dbPath, sdk.Lifetime{Idle: 30 * time.Second})
	})
	id := fillBasket(t, e2e.NewBrowser(f.Edge.URL))
	// The basket's session has its own idle lifetime.
	s := f.Origin.Session(id)
	if s.IdleTimeout != 30*time.Second.Milliseconds() || s.IdleDeadline > time.Now().Add(31*time.Second).UnixMilli() {
		t.Fatalf("the basket's session has lifetime %d ms, idle deadline %d", s.IdleTimeout, s.IdleDeadline)
	}

	// The event the origin sends when the idle timeout ends the session.
	body := []byte(`{"type":"session.ended","eventId":"ev-1","at":"2026-01-02T03:04:05.000Z","reason":"idle-expired","session":`)
	body = append(wire.AppendSessionJSON(body, s, wire.AllNamespaces), '}')
	post := func(sig string) int {
		req, _ := http.NewRequest("POST", f.AppURL+"/webhooks/sessions", bytes.NewReader(body))
		req.Header.Set(sdk.HeaderWebhookSignature, sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("t=1,v1=00"); got != http.StatusUnauthorized {
		t.Fatalf("unsigned webhook: %d", got)
	}
	for range 2 { // at-least-once: a repeat must not duplicate
		if got := post(wire.SignWebhook(secret, time.Now(), body)); got != http.StatusNoContent {
			t.Fatalf("webhook: %d", got)
		}
	}
	var kept []abandoned
	e2e.Call(t, "GET", f.AppURL+"/abandoned", nil, http.StatusOK, &kept)
	if len(kept) != 1 || kept[0].SessionID != id || kept[0].Items["grinder"] != 1 || kept[0].Reason != "idle-expired" {
		t.Fatalf("kept %+v", kept)
	}
	// The receiver logged the event once.
	var events []event
	e2e.Call(t, "GET", f.AppURL+"/events?session="+id, nil, http.StatusOK, &events)
	if len(events) != 1 || events[0].Type != sdk.EventSessionEnded || events[0].ID != "ev-1" || events[0].Items["grinder"] != 1 {
		t.Fatalf("events %+v", events)
	}
	// The database survives a restart of the app.
	db, err := openStore(dbPath)
	if err != nil || len(db.all()) != 1 {
		t.Fatalf("reopened store: %v %+v", err, db.all())
	}
}

// startStack runs the basket app behind the real edge, with the real
// origin delivering its webhooks to the app; the app's args set a basket's
// lifetime (-idle, -hard). The origin's own timeouts are its defaults: only
// the basket's sessions get the short lifetime.
func startStack(t *testing.T, args ...string) *e2e.Stack {
	return e2e.Start(t, e2e.Options{
		App:         "./examples/basket",
		AppArgs:     append([]string{"-db", filepath.Join(t.TempDir(), "db.json")}, args...),
		WebhookPath: "/webhooks/sessions",
	})
}

// waitEvents polls the receiver's event log of session id until it holds
// an event of type last, and returns it.
func waitEvents(t *testing.T, stack *e2e.Stack, id, last string) []event {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var events []event
		e2e.Call(t, "GET", stack.AppURL+"/events?session="+id, nil, http.StatusOK, &events)
		for _, e := range events {
			if e.Type == last {
				return events
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event of %s within 60s; events %+v", last, id, events)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBasketEndToEnd fills a basket through the real edge, lets the real
// origin expire the idle session (its own 2 s lifetime, not the origin's
// timeout of anonymous sessions) and deliver it to the app's webhook
// receiver.
func TestBasketEndToEnd(t *testing.T) {
	stack := startStack(t, "-idle", "2s")
	shopper := e2e.NewBrowser(stack.EdgeURL)
	id := fillBasket(t, shopper)
	s, err := stack.Client(t).Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if s.IdleTimeout != 2*time.Second || s.HardTimeout != 0 {
		t.Fatalf("the basket's session has lifetime %v, %v; want its own 2s idle", s.IdleTimeout, s.HardTimeout)
	}
	other, err := stack.Client(t).Create(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if other.Session.IdleTimeout != 0 || other.Session.IdleDeadline.Before(time.Now().Add(time.Minute)) {
		t.Fatalf("another anonymous session got %v, idle deadline %v: the origin's timeout was lowered", other.Session.IdleTimeout, other.Session.IdleDeadline)
	}

	// The back office asks for the basket now: it arrives in a
	// session.flushed webhook, and the session goes on.
	e2e.Call(t, "POST", stack.AppURL+"/baskets/"+id+"/flush", nil, http.StatusAccepted, nil)
	events := waitEvents(t, stack, id, sdk.EventSessionFlushed)
	if e := events[len(events)-1]; e.Type != sdk.EventSessionFlushed || e.Items["espresso-beans"] != 2 || e.Items["grinder"] != 1 {
		t.Fatalf("flushed %+v", events)
	}

	// Walk away: after the idle timeout the session ends and its final
	// basket arrives in the app's database.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var kept []abandoned
		e2e.Call(t, "GET", stack.AppURL+"/abandoned", nil, http.StatusOK, &kept)
		if len(kept) == 1 {
			if kept[0].SessionID != id || kept[0].Items["espresso-beans"] != 2 || kept[0].Items["grinder"] != 1 {
				t.Fatalf("kept %+v", kept)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no abandoned basket arrived within 60s of walking away")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The ended session's token is dead once the change feed has told the
	// edge: the shopper comes back to a new, empty basket.
	deadline = time.Now().Add(30 * time.Second)
	for {
		var b basket
		shopper.GetJSON(t, "/basket", http.StatusOK, &b)
		if b.Session != id {
			if len(b.Items) != 0 {
				t.Fatalf("a new session with a basket: %+v", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the edge still forwards the ended session 30s later")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBasketEventOrder follows one session through its life, through the
// real edge and origin: the webhook receiver logs each event the origin
// delivers (once per event id), in the order of what happened. The basket's
// lifetime is 5 s idle and 20 s in all, so the session ends soon after the
// logout: idle, or at the latest at its hard deadline (the logout gives it
// the anonymous timeouts again, but never a later hard deadline).
func TestBasketEventOrder(t *testing.T) {
	stack := startStack(t, "-idle", "5s", "-hard", "20s")
	shopper := e2e.NewBrowser(stack.EdgeURL)
	add := func(sku string, qty int) string {
		t.Helper()
		var b basket
		p := shopper.PostJSON(t, "/basket/items", map[string]any{"sku": sku, "qty": qty})
		if p.Status != http.StatusOK || json.Unmarshal([]byte(p.Body), &b) != nil {
			t.Fatalf("add %s: %d %s", sku, p.Status, p.Body)
		}
		return b.Session
	}
	id := add("espresso-beans", 1) // creates the session: started
	add("espresso-beans", 2)       // changed
	if p := shopper.PostJSON(t, "/login", map[string]any{"customer": "ann"}); p.Status != http.StatusOK {
		t.Fatalf("login: %d %s", p.Status, p.Body)
	}
	if got := add("grinder", 1); got != id { // changed
		t.Fatalf("the login changed the session %s → %s", id, got)
	}
	if p := shopper.PostJSON(t, "/logout", nil); p.Status != http.StatusOK {
		t.Fatalf("logout: %d %s", p.Status, p.Body)
	}
	// Then the shopper walks away: the session idles out (ended).
	events := waitEvents(t, stack, id, sdk.EventSessionEnded)
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	want := []string{sdk.EventSessionStarted, sdk.EventSessionChanged, sdk.EventSessionLogin, sdk.EventSessionChanged,
		sdk.EventSessionLogout, sdk.EventSessionEnded}
	if !slices.Equal(types, want) {
		t.Fatalf("events %v, want %v", types, want)
	}
	end := events[len(events)-1]
	if (end.Reason != sdk.ReasonIdleExpired && end.Reason != sdk.ReasonHardExpired) || end.Items["grinder"] != 1 || end.Items["espresso-beans"] != 2 {
		t.Fatalf("ended %+v", end)
	}
	// The receiver logged each of them.
	out := stack.App.Output()
	for _, line := range []string{"session started", "basket changed", "logged in", "logged out", "session ended (" + end.Reason + ")"} {
		if !strings.Contains(out, id+": "+line) {
			t.Errorf("the receiver's log lacks %q:\n%s", line, out)
		}
	}
}

// TestBasketRefusesForgedHeaders: the shopper's routes answer only requests
// the edge signed; the webhook needs the origin's signature.
func TestBasketRefusesForgedHeaders(t *testing.T) {
	stack := e2e.Start(t, e2e.Options{App: "./examples/basket", AppArgs: []string{"-db", filepath.Join(t.TempDir(), "db.json")},
		WebhookPath: "/webhooks/sessions"})
	stack.MustRefuseForged(t, "GET", "/basket")
	stack.MustRefuseForged(t, "POST", "/basket/items")
	stack.MustRefuseForged(t, "POST", "/login")
	e2e.Call(t, "POST", stack.AppURL+"/webhooks/sessions", map[string]any{"type": "session.ended"}, http.StatusUnauthorized, nil)
}
