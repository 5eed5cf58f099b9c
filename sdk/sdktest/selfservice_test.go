package sdktest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/sdktest"
	"github.com/sessionedge/sessionedge/sdk/sessionhttp"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// shopper is a client that keeps the edge's cookies.
type shopper struct {
	t    *testing.T
	base string
	ua   string
	jar  map[string]string
}

func (s *shopper) do(method, path, body string, h map[string]string) (int, string) {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, s.base+path, rd)
	req.Header.Set("User-Agent", s.ua)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	for k, v := range s.jar {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, c := range resp.Cookies() {
		s.jar[c.Name] = c.Value
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestFakeEdgeSelfService: the shopper's own endpoints of the fake edge
// behave as the filter's: the public view, shopper-settable fields within
// what the site allows, cross-site refusals, the device list and "log out my
// other devices".
func TestFakeEdgeSelfService(t *testing.T) {
	origin := sdktest.NewFakeOrigin(sdktest.FakeOriginConfig{})
	defer origin.Close()
	client, err := sdk.New(sdk.Config{BaseURL: origin.URL})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		v := sessionhttp.FromRequest(r)
		io.WriteString(w, v.ID+" "+v.Kind.String()+" "+v.Text(wire.FieldCurrency))
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		in, err := client.Login(r.Context(), sessionhttp.FromRequest(r).ID, "ann", nil, sdk.Upsert())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		sessionhttp.SetToken(w, in.Token)
	})
	keys := sdktest.NewAssertionKeys()
	app := httptest.NewServer(sessionhttp.Middleware(sessionhttp.Config{AssertionKeys: keys})(mux))
	defer app.Close()
	edge := sdktest.NewFakeEdge(sdktest.FakeEdgeConfig{Origin: origin, Upstream: app.URL, AssertionKeys: keys,
		Defaults: map[wire.Field]string{wire.FieldSiteCode: "DE", wire.FieldCurrency: "EUR"},
		Allowed:  map[wire.Field][]string{wire.FieldCurrency: {"EUR", "CHF"}}})
	defer edge.Close()

	// A session the edge minted and the origin does not know yet lists
	// itself alone.
	n := &shopper{t: t, base: edge.URL, ua: "tablet", jar: map[string]string{}}
	n.do("GET", "/", "", nil)
	if status, body := n.do("GET", "/.session/sessions", "", nil); status != 200 || !strings.Contains(body, `"current":true`) || strings.Count(body, "handle") != 1 {
		t.Fatalf("a new session's list: %d %s", status, body)
	}

	a := &shopper{t: t, base: edge.URL, ua: "phone", jar: map[string]string{}}
	if status, _ := a.do("PATCH", "/.session/context", `{"currency":"CHF"}`, nil); status != http.StatusUnauthorized {
		t.Fatalf("a write without a session: %d", status)
	}
	_, page := a.do("GET", "/", "", nil)
	id := strings.Fields(page)[0]
	if status, body := a.do("GET", "/.session/context", "", nil); status != 200 || body != `{"siteCode":"DE","currency":"EUR","public":{}}` && body != `{"siteCode":"DE","currency":"EUR"}` {
		t.Fatalf("GET context: %d %s", status, body)
	}

	// The shopper sets the currency; the app sees it on the next page.
	if status, body := a.do("PATCH", "/.session/context", `{"currency":"CHF","public":{"theme":"dark"}}`, nil); status != 200 ||
		!strings.Contains(body, `"currency":"CHF"`) || !strings.Contains(body, `"theme":"dark"`) {
		t.Fatalf("PATCH context: %d %s", status, body)
	}
	if _, page := a.do("GET", "/", "", nil); page != id+" anonymous CHF" {
		t.Fatalf("the page after the write: %q", page)
	}
	if s := origin.Session(id); s == nil || s.Field(wire.FieldCurrency).Text != "CHF" || s.Field(wire.FieldSiteCode).Text != "DE" {
		t.Fatalf("the origin's copy %+v: the write and the site defaults", s)
	}
	for _, tt := range []struct {
		body, field string
		h           map[string]string
		want        int
	}{
		{`{"currency":"JPY"}`, "currency", nil, 400},
		{`{"customerId":"mallory"}`, "customerId", nil, 400},
		{`{"locale":"fr-FR"}`, "locale", nil, 400},
		{`{"trackingAllowed":"yes"}`, "trackingAllowed", nil, 400},
		{`{"currency":"EUR"}`, "", map[string]string{"Origin": "https://evil.example"}, 403},
		{`{"currency":"EUR"}`, "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
	} {
		status, body := a.do("PATCH", "/.session/context", tt.body, tt.h)
		var e struct {
			Error struct{ Field string } `json:"error"`
		}
		json.Unmarshal([]byte(body), &e)
		if status != tt.want || e.Error.Field != tt.field {
			t.Errorf("PATCH %s %v: %d %s, want %d naming %q", tt.body, tt.h, status, body, tt.want, tt.field)
		}
	}
	if status, _ := a.do("DELETE", "/.session/context/public/theme", "", nil); status != 200 {
		t.Fatalf("DELETE public/theme: %d", status)
	}

	// Two devices of one customer: each lists both, and one logs out the
	// other.
	b := &shopper{t: t, base: edge.URL, ua: "laptop", jar: map[string]string{}}
	for _, s := range []*shopper{a, b} {
		s.do("GET", "/", "", nil)
		if status, body := s.do("POST", "/login", "", nil); status != 200 {
			t.Fatalf("login: %d %s", status, body)
		}
		s.do("GET", "/", "", nil) // the edge reports the device
	}
	status, body := a.do("GET", "/.session/sessions", "", nil)
	peers, err := sdk.ParsePeers([]byte(body))
	if status != 200 || err != nil || len(peers) != 2 {
		t.Fatalf("GET sessions: %d %s %v", status, body, err)
	}
	if !peers[0].Current || peers[0].Device.UserAgent != "phone" || peers[1].Current || peers[1].Device.UserAgent != "laptop" ||
		peers[1].Device.Addr != "127.0.0.0/24" || peers[1].Device.Site != "DE" || strings.Contains(body, id) {
		t.Fatalf("peers %+v", peers)
	}
	if status, _ := a.do("DELETE", "/.session/sessions/others", "", map[string]string{"Origin": "https://evil.example"}); status != 403 {
		t.Fatalf("a cross-site logout of the other devices: %d", status)
	}
	if status, body := a.do("DELETE", "/.session/sessions/others", "", nil); status != 200 || !strings.Contains(body, `"revoked":1`) {
		t.Fatalf("DELETE sessions/others: %d %s", status, body)
	}
	// The other device is out: its next request gets a new anonymous
	// session.
	if _, page := b.do("GET", "/", "", nil); !strings.Contains(page, " anonymous ") {
		t.Fatalf("the logged-out device: %q", page)
	}
	if _, page := a.do("GET", "/", "", nil); page != id+" customer CHF" {
		t.Fatalf("the device that stayed: %q", page)
	}
	if status, _ := a.do("GET", "/.session/nothing", "", nil); status != 404 {
		t.Fatalf("unknown endpoint: %d", status)
	}
	if status, _ := a.do("POST", "/.session/context", "{}", nil); status != 405 {
		t.Fatalf("POST context: %d", status)
	}
}
