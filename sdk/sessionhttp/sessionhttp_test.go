package sessionhttp_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/sessionhttp"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

const testID = "AAECAwQFBgcICQoLDA0ODw"

func TestMiddleware(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := sessionhttp.FromRequest(r)
		if v == nil {
			io.WriteString(w, "no session")
			return
		}
		if r.URL.Path == "/login" {
			sessionhttp.SetToken(w, "new-token")
		}
		fmt.Fprintf(w, "%s %s %s", v.ID, v.Kind, v.Text(wire.FieldCurrency))
	})
	tests := []struct {
		name       string
		cfg        sessionhttp.Config
		path       string
		headers    map[string]string
		wantStatus int
		wantBody   string
		wantToken  string
	}{
		{name: "session", path: "/", headers: map[string]string{"X-Session-Id": testID, "X-Session-Kind": "anonymous", "X-Session-Currency": "EUR"},
			wantStatus: 200, wantBody: testID + " anonymous EUR"},
		{name: "token handed back", path: "/login", headers: map[string]string{"X-Session-Id": testID, "X-Session-Kind": "customer"},
			wantStatus: 200, wantBody: testID + " customer ", wantToken: "new-token"},
		{name: "no session rejected", path: "/", wantStatus: 403},
		{name: "malformed rejected", path: "/", headers: map[string]string{"X-Session-Id": "nope"}, wantStatus: 400},
		{name: "optional passes without session", cfg: sessionhttp.Config{Check: sdk.EdgeCheck{Optional: true}}, path: "/", wantStatus: 200, wantBody: "no session"},
		{name: "secret required", cfg: sessionhttp.Config{Check: sdk.EdgeCheck{Header: "X-Edge-Secret", Secret: "s"}}, path: "/",
			headers: map[string]string{"X-Session-Id": testID}, wantStatus: 403},
		{name: "secret given", cfg: sessionhttp.Config{Check: sdk.EdgeCheck{Header: "X-Edge-Secret", Secret: "s"}}, path: "/",
			headers: map[string]string{"X-Session-Id": testID, "X-Edge-Secret": "s"}, wantStatus: 200, wantBody: testID + " anonymous "},
		{name: "custom reject", cfg: sessionhttp.Config{Reject: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, sdk.ErrNoSession) {
				http.Redirect(w, r, "https://shop.example/", http.StatusFound)
			}
		}}, path: "/", wantStatus: 302},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(sessionhttp.Middleware(tt.cfg)(app))
			defer srv.Close()
			req, _ := http.NewRequest("GET", srv.URL+tt.path, nil)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.wantStatus)
			}
			if tt.wantBody != "" && strings.TrimRight(string(body), "\n") != tt.wantBody {
				t.Errorf("body %q, want %q", body, tt.wantBody)
			}
			if got := resp.Header.Get(sdk.HeaderToken); got != tt.wantToken {
				t.Errorf("token header %q, want %q", got, tt.wantToken)
			}
		})
	}
}

// Example shows an app behind the edge that greets the visitor in the
// session's currency, and hands the edge a new token after login.
func Example() {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s := sessionhttp.FromRequest(r)
		fmt.Fprintf(w, "session %s (%s), prices in %s", s.ID, s.Kind, s.Text(wire.FieldCurrency))
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// A real app calls sdk.Client.Login and passes the token it returns.
		sessionhttp.SetToken(w, "token-from-origin")
		w.WriteHeader(http.StatusNoContent)
	})
	handler := sessionhttp.Middleware(sessionhttp.Config{})(mux)

	// The edge would add these headers; here we add them by hand.
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set(sdk.HeaderID, "AAECAwQFBgcICQoLDA0ODw")
	req.Header.Set(sdk.HeaderKind, "anonymous")
	req.Header.Set(sdk.HeaderCurrency, "EUR")
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Body.String())

	req = httptest.NewRequest("POST", "/login", nil)
	req.Header.Set(sdk.HeaderID, "AAECAwQFBgcICQoLDA0ODw")
	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Header().Get(sdk.HeaderToken))

	// A request that did not come through the edge has no session headers.
	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	fmt.Println(rec.Code)
	// Output:
	// session AAECAwQFBgcICQoLDA0ODw (anonymous), prices in EUR
	// token-from-origin
	// 403
}
