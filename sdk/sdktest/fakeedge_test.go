package sdktest_test

import (
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

// TestFakeEdge checks that the fake edge behaves as the real one where an
// app can tell: stripped client headers (any spelling), signed and
// percent-encoded forwarded headers, read-your-writes, stripped response
// headers.
func TestFakeEdge(t *testing.T) {
	origin := sdktest.NewFakeOrigin(sdktest.FakeOriginConfig{})
	defer origin.Close()
	client, err := sdk.New(sdk.Config{BaseURL: origin.URL})
	if err != nil {
		t.Fatal(err)
	}
	var seen http.Header
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		v := sessionhttp.FromRequest(r)
		w.Header().Set("X-Session-Debug", "leak")
		io.WriteString(w, v.ID+" "+v.Status+" "+v.Text(wire.FieldCartID))
	})
	mux.HandleFunc("POST /cart", func(w http.ResponseWriter, r *http.Request) {
		v := sessionhttp.FromRequest(r)
		if _, err := client.Patch(r.Context(), v.ID, new(sdk.Patch).SetField(wire.FieldCartID, wire.Text("cart müller")), sdk.Upsert()); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	keys := sdktest.NewAssertionKeys()
	app := httptest.NewServer(sessionhttp.Middleware(sessionhttp.Config{AssertionKeys: keys})(mux))
	defer app.Close()
	edge := sdktest.NewFakeEdge(sdktest.FakeEdgeConfig{Origin: origin, Upstream: app.URL, AssertionKeys: keys})
	defer edge.Close()

	jar := map[string]string{}
	get := func(method, path string, h map[string]string) (int, string, http.Header) {
		req, _ := http.NewRequest(method, edge.URL+path, nil)
		for k, v := range h {
			req.Header[k] = []string{v}
		}
		for k, v := range jar {
			req.AddCookie(&http.Cookie{Name: k, Value: v})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range resp.Cookies() {
			jar[c.Name] = c.Value
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b), resp.Header
	}
	_, body, h := get("GET", "/", map[string]string{"X_Session_Customer": "mallory", "x_session_kind": "customer", "X-SESSION-ID": "AAAAAAAAAAAAAAAAAAAAAA"})
	id := strings.Fields(body)[0]
	if id == "AAAAAAAAAAAAAAAAAAAAAA" || !strings.Contains(body, " new") {
		t.Fatalf("first page %q", body)
	}
	for name := range seen {
		if n := strings.ToLower(strings.ReplaceAll(name, "_", "-")); strings.HasPrefix(n, "x-session-") && strings.Contains(seen.Get(name), "mallory") {
			t.Fatalf("forged %s reached the app", name)
		}
	}
	for name := range h {
		if strings.HasPrefix(strings.ToLower(name), "x-session-") {
			t.Fatalf("%s reached the client", name)
		}
	}
	// The write shows on the redirected page: no Sync, no waiting.
	status, body, _ := get("POST", "/cart", nil)
	if status != 200 || body != id+" ok cart müller" {
		t.Fatalf("after the write: %d %q", status, body)
	}
	if got := seen.Get("X-Session-Cart"); got != "cart%20m%C3%BCller" {
		t.Fatalf("x-session-cart %q", got)
	}
}

// TestFakeEdgeCompact: in compact mode only the context, its status and the
// assertion travel, and the middleware builds the same view from them.
func TestFakeEdgeCompact(t *testing.T) {
	origin := sdktest.NewFakeOrigin(sdktest.FakeOriginConfig{})
	defer origin.Close()
	var seen http.Header
	var view *sdk.View
	keys := sdktest.NewAssertionKeys()
	app := httptest.NewServer(sessionhttp.Middleware(sessionhttp.Config{AssertionKeys: keys})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, view = r.Header.Clone(), sessionhttp.FromRequest(r)
	})))
	defer app.Close()
	edge := sdktest.NewFakeEdge(sdktest.FakeEdgeConfig{Origin: origin, Upstream: app.URL, AssertionKeys: keys, Compact: true,
		Defaults: map[wire.Field]string{wire.FieldCurrency: "CHF", wire.FieldSiteCode: "CH"}})
	defer edge.Close()
	resp, err := http.Get(edge.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var names []string
	for name := range seen {
		if strings.HasPrefix(strings.ToLower(name), "x-session-") {
			names = append(names, strings.ToLower(name))
		}
	}
	if len(names) != 3 || seen.Get("X-Session-Assertion") == "" || seen.Get("X-Session-Context") == "" || seen.Get("X-Session-Context-Status") == "" {
		t.Fatalf("compact mode forwarded %v", names)
	}
	s := &wire.Session{}
	s.Fields[wire.FieldCurrency], s.Fields[wire.FieldSiteCode] = wire.Text("CHF"), wire.Text("CH")
	if view == nil || view.Text(wire.FieldCurrency) != "CHF" || view.Status != sdk.StatusNew || view.Segment != string(wire.AppendSegment(nil, s)) {
		t.Fatalf("view %+v", view)
	}
}
