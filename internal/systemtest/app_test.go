package systemtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// app is the upstream behind the edge: it answers every request with the
// session the edge forwarded (echo, as JSON), writes through the origin API
// on /cart, /login and /logout the way an app with the SDK does (reporting
// a write with x-session-written, handing a new token back in
// x-session-token), and checks the view of every request that says which
// token it carried (headers test-sid and test-gen): no view of another
// session or generation than the token's, none older than a write the app
// was acknowledged, every assertion valid.
type app struct {
	s      *system
	addr   string
	client *http.Client

	mu         sync.Mutex
	acked      map[wire.ID]uint64 // newest version the app was acknowledged, per session
	violations []string

	requests, checked, bad, degraded atomic.Int64
}

func startApp(t testing.TB, s *system) *app {
	a := &app{s: s, acked: map[wire.ID]uint64{},
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}}
	ln := testbin.Listen(t)
	a.addr = ln.Addr().String()
	srv := &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.requests.Add(1)
	io.Copy(io.Discard, r.Body)
	h := r.Header
	e := echo{ID: h.Get("x-session-id"), Kind: h.Get("x-session-kind"), Status: h.Get("x-session-context-status"),
		Customer: h.Get("x-session-customer")}
	g, _ := strconv.ParseUint(h.Get("x-session-generation"), 10, 32)
	e.Gen = uint32(g)
	e.Version, _ = strconv.ParseUint(h.Get("x-session-version"), 10, 64)
	if e.Status == "degraded" {
		a.degraded.Add(1)
	}
	if sent := h.Get("test-gen"); sent != "" {
		a.check(r, e, sent)
	}
	id, _ := wire.ParseID(e.ID)
	var out map[string]any
	switch r.URL.Path {
	case "/cart":
		out = a.call("PATCH", "/v1/sessions/"+e.ID+"/context?upsert=true", `{"cartId":"cart-`+strconv.FormatInt(time.Now().UnixNano(), 36)+`"}`)
	case "/login":
		out = a.call("POST", "/v1/sessions/"+e.ID+"/login", `{"customerId":"`+r.URL.Query().Get("customer")+`"}`)
	case "/logout":
		out = a.call("POST", "/v1/sessions/"+e.ID+"/logout", "")
	}
	if out != nil {
		sess := out
		if tok, ok := out["token"].(string); ok {
			w.Header().Set("x-session-token", tok)
			sess, _ = out["session"].(map[string]any)
		}
		v, _ := sess["version"].(float64)
		a.mu.Lock()
		a.acked[id] = max(a.acked[id], uint64(v))
		a.mu.Unlock()
		if _, ok := out["token"]; !ok {
			w.Header().Set("x-session-written", strconv.FormatUint(uint64(v), 10))
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(e)
}

// call makes an app write through the origin API.
func (a *app) call(method, path, body string) map[string]any {
	req, _ := http.NewRequest(method, a.s.origin.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+a.s.appKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.violation("app → origin %s %s: %v", method, path, err)
		return nil
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		a.violation("app → origin %s %s: status %d, %v", method, path, resp.StatusCode, out)
		return nil
	}
	return out
}

func (a *app) violation(format string, args ...any) {
	a.bad.Add(1)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.violations) < 20 {
		a.violations = append(a.violations, fmt.Sprintf(format, args...))
	}
}

// check compares the view the edge forwarded with the token the client
// says it sent (test-sid, test-gen; generation 0: no token) and with the
// writes the app was acknowledged.
func (a *app) check(r *http.Request, e echo, sentGen string) {
	a.checked.Add(1)
	h := r.Header
	ctx := h.Get("x-session-context")
	raw, err := base64.RawURLEncoding.DecodeString(ctx)
	var view wire.Session
	if err != nil || wire.DecodeSession(raw, &view) != nil {
		a.violation("%s: no readable x-session-context (status %q)", r.URL.Path, e.Status)
		return
	}
	var as wire.Assertion
	if err := a.s.assertion.VerifyAssertion([]byte(h.Get("x-session-assertion")), []byte(r.Host), []byte(r.URL.RequestURI()),
		[]byte(ctx), time.Now(), time.Minute, &as); err != nil {
		a.violation("%s: assertion: %v", r.URL.Path, err)
		return
	}
	gen, _ := strconv.ParseUint(sentGen, 10, 32)
	a.mu.Lock()
	acked := a.acked[view.ID]
	a.mu.Unlock()
	switch {
	case e.Status != "ok" && e.Status != "new":
		a.violation("%s: status %q", r.URL.Path, e.Status)
	case view.ID.String() != e.ID || as.ID != view.ID:
		a.violation("%s: view or assertion of another session than x-session-id", r.URL.Path)
	case gen != 0 && view.ID.String() != h.Get("test-sid"):
		a.violation("%s: the client's token (session %s, generation %d) was served another session %s", r.URL.Path, h.Get("test-sid"), gen, view.ID)
	case gen != 0 && view.Generation != uint32(gen):
		a.violation("%s: token generation %d, view generation %d", r.URL.Path, gen, view.Generation)
	case view.Generation != e.Gen || as.Generation != view.Generation:
		a.violation("%s: x-session-generation %d, view %d, assertion %d", r.URL.Path, e.Gen, view.Generation, as.Generation)
	case view.Version < acked:
		a.violation("%s: view version %d predates the acknowledged write %d", r.URL.Path, view.Version, acked)
	}
}

func (a *app) violationList() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.violations, "\n")
}
