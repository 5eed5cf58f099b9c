package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/examples/internal/e2e"
	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/sdktest"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

func do(t *testing.T, method, url string, body any, want int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, resp.StatusCode, data, want)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatal(err)
		}
	}
}

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
	origin := sdktest.NewFakeOrigin(sdktest.FakeOriginConfig{})
	defer origin.Close()
	secret := []byte("hook-secret")
	keys := sdktest.NewAssertionKeys()
	dbPath := filepath.Join(t.TempDir(), "db.json")
	h, err := newShop(origin.URL, "", secret, keys, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(h)
	defer app.Close()
	edge := sdktest.NewFakeEdge(sdktest.FakeEdgeConfig{Origin: origin, Upstream: app.URL, AssertionKeys: keys})
	defer edge.Close()
	id := fillBasket(t, e2e.NewBrowser(edge.URL))

	// The event the origin sends when the idle timeout ends the session.
	s := origin.Session(id)
	body := []byte(`{"type":"session.ended","eventId":"ev-1","at":"2026-01-02T03:04:05.000Z","reason":"idle-expired","session":`)
	body = append(wire.AppendSessionJSON(body, s, wire.AllNamespaces), '}')
	post := func(sig string) int {
		req, _ := http.NewRequest("POST", app.URL+"/webhooks/sessions", bytes.NewReader(body))
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
	do(t, "GET", app.URL+"/abandoned", nil, http.StatusOK, &kept)
	if len(kept) != 1 || kept[0].SessionID != id || kept[0].Items["grinder"] != 1 || kept[0].Reason != "idle-expired" {
		t.Fatalf("kept %+v", kept)
	}
	// The database survives a restart of the app.
	db, err := openStore(dbPath)
	if err != nil || len(db.all()) != 1 {
		t.Fatalf("reopened store: %v %+v", err, db.all())
	}
}

// TestBasketEndToEnd fills a basket through the real edge, lets the real
// origin expire the idle session and deliver it to the app's webhook
// receiver.
func TestBasketEndToEnd(t *testing.T) {
	stack := e2e.Start(t, e2e.Options{
		App:         "./examples/basket",
		AppArgs:     []string{"-db", filepath.Join(t.TempDir(), "db.json")},
		WebhookPath: "/webhooks/sessions",
		Origin:      testbin.OriginConfig{AnonymousIdle: "2s"},
	})
	shopper := e2e.NewBrowser(stack.EdgeURL)
	id := fillBasket(t, shopper)

	// Walk away: after the idle timeout the session ends and its final
	// basket arrives in the app's database.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var kept []abandoned
		do(t, "GET", stack.AppURL+"/abandoned", nil, http.StatusOK, &kept)
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

// TestBasketRefusesForgedHeaders: the shopper's routes answer only requests
// the edge signed; the webhook needs the origin's signature.
func TestBasketRefusesForgedHeaders(t *testing.T) {
	stack := e2e.Start(t, e2e.Options{App: "./examples/basket", AppArgs: []string{"-db", filepath.Join(t.TempDir(), "db.json")},
		WebhookPath: "/webhooks/sessions"})
	stack.MustRefuseForged(t, "GET", "/basket")
	stack.MustRefuseForged(t, "POST", "/basket/items")
	do(t, "POST", stack.AppURL+"/webhooks/sessions", map[string]any{"type": "session.ended"}, http.StatusUnauthorized, nil)
}
