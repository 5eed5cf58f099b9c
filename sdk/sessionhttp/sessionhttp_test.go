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
	"github.com/sessionedge/sessionedge/sdk/internal/middlewaretest"
	"github.com/sessionedge/sessionedge/sdk/sdktest"
	"github.com/sessionedge/sessionedge/sdk/sessionhttp"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func TestMiddleware(t *testing.T) {
	keys := sdktest.NewAssertionKeys()
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := sessionhttp.FromRequest(r)
		if v == nil {
			io.WriteString(w, "no session")
			return
		}
		if r.URL.Path == "/login" {
			sessionhttp.SetToken(w, "new-token")
		}
		fmt.Fprintf(w, "%s %s %s %s", v.ID, v.Kind, v.CustomerID(), v.Text(wire.FieldCurrency))
	})
	type testCase struct {
		middlewaretest.Case
		reject func(w http.ResponseWriter, r *http.Request, err error)
	}
	var tests []testCase
	for _, c := range middlewaretest.Cases(keys) {
		tests = append(tests, testCase{Case: c})
	}
	tests = append(tests, testCase{Case: middlewaretest.Case{Name: "custom reject", Path: "/", WantStatus: 302},
		reject: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, sdk.ErrNoSession) {
				http.Redirect(w, r, "https://shop.example/", http.StatusFound)
			}
		}})
	for _, tt := range tests {
		t.Run(tt.Name, func(t *testing.T) {
			cfg := sessionhttp.Config{Optional: tt.Optional, Insecure: tt.Insecure, Reject: tt.reject}
			if !cfg.Insecure {
				cfg.AssertionKeys = keys
			}
			srv := httptest.NewServer(sessionhttp.Middleware(cfg)(app))
			defer srv.Close()
			req, _ := http.NewRequest("GET", srv.URL+tt.Path, nil)
			if tt.Prepare != nil {
				tt.Prepare(req)
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.WantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.WantStatus)
			}
			if tt.WantBody != "" && strings.TrimRight(string(body), "\n") != tt.WantBody {
				t.Errorf("body %q, want %q", body, tt.WantBody)
			}
			if got := resp.Header.Get(sdk.HeaderToken); got != tt.WantToken {
				t.Errorf("token header %q, want %q", got, tt.WantToken)
			}
		})
	}
}

func TestMiddlewareNeedsKeys(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Middleware without AssertionKeys or Insecure did not panic")
		}
	}()
	sessionhttp.Middleware(sessionhttp.Config{})
}

// TestWritten checks that the version a write reached goes out in
// x-session-written on every way a handler can send its response header.
func TestWritten(t *testing.T) {
	keys := sdktest.NewAssertionKeys()
	record := func(r *http.Request, v uint64) { sdk.WriteRecorderFrom(r.Context()).Record(v) }
	tests := []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request)
		want    string
	}{
		{"no write", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") }, ""},
		{"write, then body", func(w http.ResponseWriter, r *http.Request) { record(r, 5); io.WriteString(w, "x") }, "5"},
		{"write, then WriteHeader", func(w http.ResponseWriter, r *http.Request) { record(r, 5); w.WriteHeader(201) }, "5"},
		{"write, then nothing", func(w http.ResponseWriter, r *http.Request) { record(r, 5) }, "5"},
		{"the highest of several writes", func(w http.ResponseWriter, r *http.Request) { record(r, 5); record(r, 9); record(r, 7) }, "9"},
		{"redirect after a write", func(w http.ResponseWriter, r *http.Request) {
			record(r, 3)
			http.Redirect(w, r, "/", http.StatusSeeOther)
		}, "3"},
		{"Written by hand", func(w http.ResponseWriter, r *http.Request) { sessionhttp.Written(w, 42) }, "42"},
		{"Written below a recorded write", func(w http.ResponseWriter, r *http.Request) { record(r, 50); sessionhttp.Written(w, 42) }, "50"},
		{"Written through another wrapper", func(w http.ResponseWriter, r *http.Request) {
			sessionhttp.Written(wrapper{w}, 8)
		}, "8"},
		{"write after the header was sent is too late", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "x")
			record(r, 5)
		}, ""},
		{"Flush sends the header", func(w http.ResponseWriter, r *http.Request) {
			record(r, 4)
			w.(http.Flusher).Flush()
			record(r, 6)
		}, "4"},
		{"ResponseController.Flush unwraps", func(w http.ResponseWriter, r *http.Request) {
			record(r, 4)
			if err := http.NewResponseController(w).Flush(); err != nil {
				panic(err)
			}
		}, "4"},
		{"ReadFrom", func(w http.ResponseWriter, r *http.Request) {
			record(r, 11)
			if _, err := w.(io.ReaderFrom).ReadFrom(strings.NewReader("body")); err != nil {
				panic(err)
			}
		}, "11"},
		{"103 Early Hints first", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			record(r, 12)
			io.WriteString(w, "x")
		}, "12"},
		{"a real client write", nil, "set below"},
	}
	client := middlewaretest.Client(t)
	var reached uint64
	tests[len(tests)-1].handler = func(w http.ResponseWriter, r *http.Request) {
		s, err := client.Patch(r.Context(), sessionhttp.FromRequest(r).ID, new(sdk.Patch).SetField(wire.FieldCartID, wire.Text("c-1")), sdk.Upsert())
		if err != nil {
			panic(err)
		}
		reached = s.Version
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(sessionhttp.Middleware(sessionhttp.Config{AssertionKeys: keys})(http.HandlerFunc(tt.handler)))
			defer srv.Close()
			req, _ := http.NewRequest("GET", srv.URL+"/", nil)
			sdktest.Forward(req, keys, middlewaretest.Session(wire.KindAnonymous), wire.AssertOK)
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			want := tt.want
			if want == "set below" {
				want = fmt.Sprint(reached)
			}
			if got := resp.Header.Get(sdk.HeaderWritten); got != want {
				t.Fatalf("%s: %q, want %q", sdk.HeaderWritten, got, want)
			}
		})
	}
}

// wrapper is another middleware's ResponseWriter that supports Unwrap.
type wrapper struct{ http.ResponseWriter }

func (w wrapper) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestWrittenWithoutMiddleware(t *testing.T) {
	rec := httptest.NewRecorder()
	sessionhttp.Written(rec, 9)
	sessionhttp.Written(rec, 4)
	if got := rec.Header().Get(sdk.HeaderWritten); got != "9" {
		t.Fatalf("%q, want 9", got)
	}
}

func TestHijack(t *testing.T) {
	keys := sdktest.NewAssertionKeys()
	h := sessionhttp.Middleware(sessionhttp.Config{AssertionKeys: keys})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
		buf.Flush()
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	sdktest.Forward(req, keys, middlewaretest.Session(wire.KindAnonymous), wire.AssertOK)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hijacked" {
		t.Fatalf("body %q", body)
	}
}

// Example shows an app behind the edge that greets the visitor in the
// session's currency, and hands the edge a new token after login.
func Example() {
	keys := sdktest.NewAssertionKeys() // in production: sdk.AssertionKeysFromEnv()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s := sessionhttp.FromRequest(r)
		fmt.Fprintf(w, "session %s (%s), prices in %s", s.ID, s.Kind, s.Text(wire.FieldCurrency))
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// A real app calls sdk.Client.Login with r.Context() and passes
		// the token it returns.
		sessionhttp.SetToken(w, "token-from-origin")
		w.WriteHeader(http.StatusNoContent)
	})
	handler := sessionhttp.Middleware(sessionhttp.Config{AssertionKeys: keys})(mux)

	// The edge would sign these headers; sdktest.Forward plays it.
	req := httptest.NewRequest("GET", "/", nil)
	sdktest.Forward(req, keys, middlewaretest.Session(wire.KindAnonymous), wire.AssertOK)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Body.String())

	req = httptest.NewRequest("POST", "/login", nil)
	sdktest.Forward(req, keys, middlewaretest.Session(wire.KindAnonymous), wire.AssertOK)
	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Header().Get(sdk.HeaderToken))

	// A request that did not come through the edge has no assertion: forged
	// headers are refused.
	req = httptest.NewRequest("GET", "/", nil)
	req.Header.Set(sdk.HeaderID, middlewaretest.ID)
	req.Header.Set(sdk.HeaderKind, "customer")
	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// session AAECAwQFBgcICQoLDA0ODw (anonymous), prices in EUR
	// token-from-origin
	// 403
}
