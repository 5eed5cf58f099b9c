//go:build !wasip1

package main_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/edge/harness"
	"github.com/sessionedge/sessionedge/origin/server"
	"github.com/sessionedge/sessionedge/origin/store/pebble"
	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/proxytest"
)

// TestFeaturesAgainstOrigin runs the module in the edge host against the
// real origin (Pebble in a temporary directory) through what the filter
// adds to sessions: site defaults, captured values and the client's device
// reaching the origin with the first touch report; a self-service write
// that creates its session (X-Session-Init); shopper-settable fields; a
// captured value written to a stored session; the shopper's sessions and
// "log out my other devices".
func TestFeaturesAgainstOrigin(t *testing.T) {
	const edgeKey, appKey = "edge-key-features", "app-key-features"
	h, originURL := edgeWithOrigin(t, edgeKey, appKey, 1,
		`,"sites":{"shop.example.com":{"siteCode":"DE","currency":"EUR","targetLocation":"DE","locale":"de-DE","currencies":["EUR","CHF"]}},`+
			`"capture":{"query":["utm_source","cc"],"segment":["cc"]}`)
	app := func(method, path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, originURL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+appKey)
		req.Header.Set("Accept", "application/json")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("app → origin %s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
			t.Fatalf("app → origin %s %s: status %d, %v", method, path, resp.StatusCode, err)
		}
		return out
	}
	session := func(id wire.ID) map[string]any { return app("GET", "/v1/sessions/"+id.String(), "") }
	ctxOf := func(sess map[string]any) map[string]any { c, _ := sess["context"].(map[string]any); return c }
	publicOf := func(sess map[string]any) map[string]any { p, _ := ctxOf(sess)["public"].(map[string]any); return p }

	h.SetUpstream(func(*harness.UpstreamRequest) *harness.Response { return &harness.Response{Status: 200} })
	tick := func() {
		for i := 0; i < 2; i++ {
			h.Clock().Advance(100 * time.Millisecond)
			h.Tick()
			h.WaitCalls()
		}
	}
	tick() // the VM joins the feed
	const ua = "Mozilla/5.0 (features test)"
	do := func(method, path, cookie string, body []byte) *harness.Result {
		t.Helper()
		hs := harness.Headers{{"user-agent", ua}, {"sec-fetch-site", "same-origin"}}
		if cookie != "" {
			hs = append(hs, [2]string{"cookie", "__Host-sid=" + cookie})
		}
		r := h.Do(&harness.Request{Host: "shop.example.com", Method: method, Path: path, Headers: hs, Body: body})
		if r.Err != nil {
			t.Fatalf("%s %s: %v", method, path, r.Err)
		}
		h.WaitCalls()
		return r
	}

	// A minted session with a captured value: the origin hears of it with
	// its first touch report, with the site's defaults, the value and the
	// device.
	r := do("GET", "/?utm_source=news&cc=ch", "", nil)
	tok, _ := r.Cookie("__Host-sid")
	id, _ := wire.ParseID(r.UpstreamHeader("x-session-id"))
	do("GET", "/", tok, nil)
	tick()
	sess := session(id)
	if ctxOf(sess)["currency"] != "EUR" || ctxOf(sess)["locale"] != "de-DE" || publicOf(sess)["utm_source"] != "news" || publicOf(sess)["cc"] != "ch" {
		t.Fatalf("the origin's copy of a minted session: %v", sess)
	}
	if dev, _ := sess["device"].(map[string]any); dev["userAgent"] != ua || dev["addr"] != "192.0.2.0/24" || dev["site"] != "DE" {
		t.Fatalf("the origin's device record: %v", sess["device"])
	}

	// A shopper-settable field, then a captured value written to the
	// stored session.
	r = do("PATCH", "/.session/context", tok, []byte(`{"currency":"CHF"}`))
	if r.Response.Status != 200 || ctxOf(session(id))["currency"] != "CHF" {
		t.Fatalf("PATCH currency: %d %s", r.Response.Status, r.Response.Body)
	}
	if r = do("PATCH", "/.session/context", tok, []byte(`{"currency":"USD"}`)); r.Response.Status != 400 {
		t.Fatalf("PATCH a currency the site does not offer: %d %s", r.Response.Status, r.Response.Body)
	}
	do("GET", "/?cc=at", tok, nil)
	if p := publicOf(session(id)); p["cc"] != "at" {
		t.Fatalf("captured value not written to the stored session: %v", p)
	}

	// A self-service write creates the session with what the edge applied.
	r = do("GET", "/?cc=fr", "", nil)
	tok2, _ := r.Cookie("__Host-sid")
	id2, _ := wire.ParseID(r.UpstreamHeader("x-session-id"))
	if r = do("PATCH", "/.session/context", tok2, []byte(`{"public":{"theme":"dark"}}`)); r.Response.Status != 200 {
		t.Fatalf("creating PATCH: %d %s", r.Response.Status, r.Response.Body)
	}
	sess = session(id2)
	if ctxOf(sess)["currency"] != "EUR" || publicOf(sess)["cc"] != "fr" || publicOf(sess)["theme"] != "dark" {
		t.Fatalf("a session created by a self-service write: %v", sess)
	}
	if dev, _ := sess["firstDevice"].(map[string]any); dev["userAgent"] != ua {
		t.Fatalf("the created session's device: %v", sess["firstDevice"])
	}

	// Both sessions log in as one customer: the list and the revoke.
	login := func(id wire.ID) string {
		out := app("POST", "/v1/sessions/"+id.String()+"/login", `{"customerId":"carol"}`)
		tok, _ := out["token"].(string)
		return tok
	}
	tokA, tokB := login(id), login(id2)
	r = do("GET", "/.session/sessions", tokA, nil)
	var list struct {
		Sessions []struct {
			Current bool
			Handle  string
		}
	}
	if r.Response.Status != 200 || json.Unmarshal(r.Response.Body, &list) != nil || len(list.Sessions) != 2 || !list.Sessions[0].Current ||
		strings.Contains(string(r.Response.Body), id.String()) || strings.Contains(string(r.Response.Body), id2.String()) {
		t.Fatalf("GET sessions: %d %s", r.Response.Status, r.Response.Body)
	}
	if r = do("DELETE", "/.session/sessions/others", tokA, nil); r.Response.Status != 200 || string(r.Response.Body) != `{"revoked":1}` {
		t.Fatalf("DELETE sessions/others: %d %s", r.Response.Status, r.Response.Body)
	}
	req, _ := http.NewRequest("GET", originURL+"/v1/sessions/"+id2.String(), nil)
	req.Header.Set("Authorization", "Bearer "+appKey)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 410 {
		t.Fatalf("the other session after the revoke: %v, %v", resp, err)
	} else {
		resp.Body.Close()
	}
	tick()
	if r = do("GET", "/", tokB, nil); r.UpstreamHeader("x-session-id") == id2.String() {
		t.Fatal("a revoked session is still served")
	}
}

// edgeWithOrigin starts the real origin (startOrigin) and the module in a
// harness of vms VMs that reaches it as cluster "origin" and syncs every
// 100ms, with the plugin configuration fields extra (each led by a comma);
// it returns the harness and the origin's base URL for the app.
func edgeWithOrigin(t *testing.T, edgeKey, appKey string, vms int, extra string) (*harness.Harness, string) {
	t.Helper()
	ln := startOrigin(t, edgeKey, appKey)
	plugin := proxytest.Config(`,"origin":{"cluster":"origin","apiKey":"` + edgeKey + `"},"sync":{"interval":"100ms"}` + extra)
	h := harness.New(t, harness.Config{Wasm: buildModule(t), PluginConfig: plugin, VMs: vms, Start: time.Now(), RequestTimeout: 10 * time.Second})
	h.SetClusterAddr("origin", ln.Addr().String())
	return h, "http://" + ln.Addr().String()
}

// startOrigin serves the real origin (Pebble in a temporary directory) on a
// loopback listener until the test ends, with an edge key and an app key.
func startOrigin(t *testing.T, edgeKey, appKey string) net.Listener {
	t.Helper()
	st, err := pebble.Open(pebble.Config{Dir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := server.New(server.Config{
		Store: st,
		APIKeys: []server.APIKey{
			{Name: "edge", Key: edgeKey, Scopes: []string{"edge:sync", "edge:selfservice"}},
			{Name: "app", Key: appKey, Scopes: []string{"sessions:read", "sessions:write"}},
		},
		TokenKeys:     map[string]string{"1": base64.StdEncoding.EncodeToString(proxytest.Secret)},
		SharedSecret:  base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)),
		SweepInterval: wire.Duration(time.Hour),
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return ln
}
