package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/examples/internal/e2e"
	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/sdktest"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

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

// fillBasket creates a basket with two lines and returns its id.
func fillBasket(t *testing.T, base string) string {
	var created struct{ ID string }
	do(t, "POST", base+"/baskets", nil, http.StatusCreated, &created)
	do(t, "POST", base+"/baskets/"+created.ID+"/items", map[string]any{"sku": "espresso-beans", "qty": 2}, http.StatusOK, nil)
	var got map[string]int64
	do(t, "POST", base+"/baskets/"+created.ID+"/items", map[string]any{"sku": "grinder", "qty": 1}, http.StatusOK, &got)
	if got["espresso-beans"] != 2 || got["grinder"] != 1 {
		t.Fatalf("basket %v", got)
	}
	return created.ID
}

// TestBasketWebhookReceiver plays the origin's webhook by hand: the
// receiver keeps the final basket once, and refuses unsigned events.
func TestBasketWebhookReceiver(t *testing.T) {
	origin := sdktest.NewFakeOrigin(sdktest.FakeOriginConfig{})
	defer origin.Close()
	secret := []byte("hook-secret")
	dbPath := filepath.Join(t.TempDir(), "db.json")
	h, err := newShop(origin.URL, "", secret, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(h)
	defer app.Close()
	id := fillBasket(t, app.URL)

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

// TestBasketEndToEnd lets the real origin expire an idle basket and deliver
// it to the app's webhook receiver.
func TestBasketEndToEnd(t *testing.T) {
	if !sdktest.HasPackage(t, "./origin/cmd/origin") {
		t.Skip("./origin/cmd/origin is not in this tree")
	}
	bin := sdktest.Build(t, "./examples/basket")
	addr := sdktest.FreeAddr(t)
	secret := "hook-secret"
	origin := sdktest.StartOrigin(t, sdktest.OriginConfig{
		APIKeys:       map[string][]string{e2e.AppKey: {"sessions:read", "sessions:write"}},
		WebhookURL:    "http://" + addr + "/webhooks/sessions",
		WebhookSecret: secret,
		AnonymousIdle: "2s",
	})
	sdktest.Start(t, sdktest.Cmd{Name: "basket", Path: bin, Ready: "http://" + addr + "/healthz", Args: []string{
		"-addr", addr, "-origin", origin.URL, "-api-key", e2e.AppKey, "-webhook-secret", secret, "-db", filepath.Join(t.TempDir(), "db.json")}})
	base := "http://" + addr
	id := fillBasket(t, base)

	// Walk away: after the idle timeout the session ends and its final
	// basket arrives in the app's database.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var kept []abandoned
		do(t, "GET", base+"/abandoned", nil, http.StatusOK, &kept)
		if len(kept) == 1 {
			if kept[0].SessionID != id || kept[0].Items["espresso-beans"] != 2 || kept[0].Items["grinder"] != 1 {
				t.Fatalf("kept %+v", kept)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no abandoned basket arrived within 30s of walking away")
		}
		time.Sleep(200 * time.Millisecond)
	}
	do(t, "GET", base+"/baskets/"+id, nil, http.StatusGone, nil)
}
