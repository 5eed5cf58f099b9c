//go:build !wasip1

package main_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/edge/harness"
	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/proxytest"
)

// TestConsistencyManyVMs runs the module in the edge host with four VMs
// against the real origin (Pebble in a temporary directory) and a small app
// that writes through the origin API the way the SDK does: login, logout,
// an app write reported with x-session-written, a self-service write, each
// followed by requests spread over every VM without waiting for the feed.
// It asserts that no request forwards a view of another generation than the
// token it carried, or a view older than the app's acknowledged write.
func TestConsistencyManyVMs(t *testing.T) {
	const edgeKey, appKey = "edge-key-consistency", "app-key-consistency"
	h, originURL := edgeWithOrigin(t, edgeKey, appKey, 4, proxytest.AssertionConfig)
	for i := 0; i < 3; i++ { // every VM joins the feed before the first request
		h.Clock().Advance(100 * time.Millisecond)
		h.Tick()
	}

	app := &consistencyApp{t: t, origin: originURL, key: appKey, acked: map[wire.ID]uint64{}}
	h.SetUpstream(app.serve)
	c := &client{t: t, h: h, app: app}

	spread := func(step string) {
		for i := 0; i < 12; i++ { // three rounds over the four VMs
			c.get(step, "/page")
		}
	}
	c.get("mint", "/")
	spread("minted")
	c.get("app write", "/cart")
	spread("after the app write")
	c.get("public write", "/theme")
	c.selfDelete("self-service write", "theme")
	spread("after the self-service write")
	// login and logout: the client holds a token of the next generation.
	newGeneration := func(step string, kind wire.Kind, gen uint32) {
		c.get(step, "/"+step)
		if c.claims().Kind != kind || c.claims().Generation != gen {
			t.Fatalf("after %s the client holds %+v", step, c.claims())
		}
		spread("after " + step)
	}
	newGeneration("login", wire.KindCustomer, 2)
	c.get("app write as customer", "/cart")
	spread("after the customer's write")
	newGeneration("logout", wire.KindAnonymous, 3)

	// The tokens of generations 1 and 2 are dead on every VM.
	for _, old := range c.old {
		for i := 0; i < 4; i++ {
			r := h.Get("/page", "cookie", "__Host-sid="+old)
			if r.Upstream == nil || r.UpstreamHeader("x-session-id") == c.claims().ID.String() {
				t.Fatalf("an old token was served the session: %+v", r.Upstream)
			}
			r = h.Get("/.session/context", "cookie", "__Host-sid="+old)
			if r.Response.Status != 401 {
				t.Fatalf("an old token on /.session/context: status %d", r.Response.Status)
			}
		}
	}
	// Nothing secret in what the guest logged.
	secrets := append([]string{c.tok, c.hint, edgeKey, appKey}, c.old...)
	for _, l := range h.Logs() {
		for _, s := range secrets {
			if s != "" && strings.Contains(l, s) {
				t.Fatalf("guest log line %q holds a token, hint or key", l)
			}
		}
	}
	app.mu.Lock()
	defer app.mu.Unlock()
	if app.forwarded < 80 || app.violations != 0 {
		t.Fatalf("%d forwarded requests, %d stale or mismatched views", app.forwarded, app.violations)
	}
	t.Logf("%d requests over 4 VMs, 0 stale or mismatched views", app.forwarded)
}

// consistencyApp is the upstream: it writes through the origin API with an
// app key, reports writes with x-session-written, and checks every view the
// edge forwards against the token the client sent and the writes it made.
type consistencyApp struct {
	t      *testing.T
	origin string
	key    string

	mu         sync.Mutex
	acked      map[wire.ID]uint64 // the newest version the app was told of, per session
	forwarded  int
	violations int
	sent       wire.Claims // the token the client sent with the request in flight
	step       string
}

func (a *consistencyApp) call(method, path, body string) map[string]any {
	req, _ := http.NewRequest(method, a.origin+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+a.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Errorf("app → origin %s %s: %v", method, path, err)
		return nil
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		a.t.Errorf("app → origin %s %s: status %d, %v", method, path, resp.StatusCode, err)
		return nil
	}
	return out
}

func (a *consistencyApp) serve(req *harness.UpstreamRequest) *harness.Response {
	get := func(k string) string { v, _ := req.Headers.Get(k); return v }
	id, err := wire.ParseID(get("x-session-id"))
	if err != nil {
		a.t.Errorf("%s: no session forwarded", req.Path)
		return &harness.Response{Status: 500}
	}
	a.check(req, id)
	resp := &harness.Response{Status: 200}
	var out map[string]any
	switch req.Path {
	case "/cart":
		out = a.call("PATCH", "/v1/sessions/"+id.String()+"/context?upsert=true", `{"cartId":"cart-`+strconv.FormatInt(time.Now().UnixNano(), 36)+`"}`)
	case "/theme":
		out = a.call("PATCH", "/v1/sessions/"+id.String()+"/context", `{"public":{"theme":"dark"}}`)
	case "/login":
		out = a.call("POST", "/v1/sessions/"+id.String()+"/login", `{"customerId":"alice"}`)
	case "/logout":
		out = a.call("POST", "/v1/sessions/"+id.String()+"/logout", "")
	}
	if out == nil {
		return resp
	}
	sess := out
	if tok, ok := out["token"].(string); ok {
		resp.Headers = append(resp.Headers, [2]string{"x-session-token", tok})
		sess, _ = out["session"].(map[string]any)
	}
	v, _ := sess["version"].(float64)
	a.ack(id, uint64(v))
	if _, ok := out["token"]; !ok {
		// Login and logout are not reported: the new token alone must make
		// every VM fetch the new generation.
		resp.Headers = append(resp.Headers, [2]string{"x-session-written", strconv.FormatUint(uint64(v), 10)})
	}
	return resp
}

// ack notes that the app knows of version v of session id: the views the
// edge forwards from now on must be at least as new.
func (a *consistencyApp) ack(id wire.ID, v uint64) {
	a.mu.Lock()
	a.acked[id] = max(a.acked[id], v)
	a.mu.Unlock()
}

// check compares what the edge forwarded with the client's token and the
// app's acknowledged writes.
func (a *consistencyApp) check(req *harness.UpstreamRequest, id wire.ID) {
	get := func(k string) string { v, _ := req.Headers.Get(k); return v }
	a.mu.Lock()
	defer a.mu.Unlock()
	a.forwarded++
	fail := func(msg string) {
		a.violations++
		a.t.Errorf("%s, %s: %s (headers %v)", a.step, req.Path, msg, req.Headers)
	}
	raw, err := base64.RawURLEncoding.DecodeString(get("x-session-context"))
	var view wire.Session
	if err != nil || wire.DecodeSession(raw, &view) != nil {
		fail("no readable x-session-context")
		return
	}
	var as wire.Assertion
	if err := proxytest.AssertionKeys.VerifyAssertion([]byte(get("x-session-assertion")), []byte(req.Host), []byte(req.Path),
		[]byte(get("x-session-context")), time.Now(), time.Hour, &as); err != nil {
		fail("assertion: " + err.Error())
	}
	status := get("x-session-context-status")
	gen, _ := strconv.ParseUint(get("x-session-generation"), 10, 32)
	switch {
	case status != "ok" && status != "new":
		fail("status " + status)
	case view.ID != id || as.ID != id:
		fail("view or assertion of another session")
	case view.Generation != uint32(gen) || as.Generation != uint32(gen):
		fail("view generation " + strconv.Itoa(int(view.Generation)) + ", token generation " + strconv.Itoa(int(gen)))
	case a.sent.ID == id && a.sent.Generation != view.Generation:
		fail("the client sent generation " + strconv.Itoa(int(a.sent.Generation)) + ", the view is " + strconv.Itoa(int(view.Generation)))
	case view.Version < a.acked[id]:
		fail("view version " + strconv.FormatUint(view.Version, 10) + " predates the acknowledged write " + strconv.FormatUint(a.acked[id], 10))
	}
}

// client is a browser: it keeps the session and hint cookies it is given.
type client struct {
	t    *testing.T
	h    *harness.Harness
	app  *consistencyApp
	tok  string
	hint string
	old  []string // tokens replaced by a login or logout
}

func (c *client) claims() wire.Claims {
	var cl wire.Claims
	proxytest.Keyring.VerifyToken([]byte(c.tok), time.Now().Unix(), &cl)
	return cl
}

func (c *client) cookie() string {
	s := "__Host-sid=" + c.tok
	if c.hint != "" {
		s += "; __Host-sidv=" + c.hint
	}
	return s
}

func (c *client) do(step string, req *harness.Request) *harness.Result {
	c.app.mu.Lock()
	c.app.step, c.app.sent = step, wire.Claims{}
	if c.tok != "" {
		c.app.sent = c.claims()
	}
	c.app.mu.Unlock()
	if c.tok != "" {
		req.Headers = append(req.Headers, [2]string{"cookie", c.cookie()})
	}
	r := c.h.Do(req)
	if r.Err != nil {
		c.t.Fatalf("%s: %v", step, r.Err)
	}
	if tok, ok := r.Cookie("__Host-sid"); ok {
		var next wire.Claims
		proxytest.Keyring.VerifyToken([]byte(tok), time.Now().Unix(), &next)
		if c.tok != "" && next.Generation != c.claims().Generation {
			c.old = append(c.old, c.tok) // replaced by a login or logout
		}
		c.tok = tok
	}
	if hint, ok := r.Cookie("__Host-sidv"); ok {
		c.hint = hint
	}
	return r
}

func (c *client) get(step, path string) {
	r := c.do(step, &harness.Request{Host: "shop.example.com", Path: path})
	if r.Upstream == nil || r.Response.Status != 200 {
		c.t.Fatalf("%s: GET %s not forwarded: %+v", step, path, r.Response)
	}
}

func (c *client) selfDelete(step, key string) {
	r := c.do(step, &harness.Request{Host: "shop.example.com", Method: "DELETE", Path: "/.session/context/public/" + key,
		Headers: harness.Headers{{"sec-fetch-site", "same-origin"}}})
	if r.Response.Status != 200 {
		c.t.Fatalf("%s: status %d %s", step, r.Response.Status, r.Response.Body)
	}
	var v struct {
		Public map[string]any `json:"public"`
	}
	if json.Unmarshal(r.Response.Body, &v) != nil || v.Public[key] != nil {
		c.t.Fatalf("%s: answer %s", step, r.Response.Body)
	}
	// The write's version, as the hint carries it, is what later views must reach.
	if ver, ok := wire.PeekHintVersion([]byte(c.hint)); ok {
		c.app.ack(c.claims().ID, ver)
	} else {
		c.t.Fatalf("%s: no hint after a self-service write", step)
	}
}
