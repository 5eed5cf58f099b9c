package sdk

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

const testID = "AAECAwQFBgcICQoLDA0ODw"

func newTestClient(t *testing.T, h http.Handler) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, APIKey: "k1", RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewRejectsBadBaseURL(t *testing.T) {
	for _, u := range []string{"", "localhost:8081", "ftp://x", "http://"} {
		if _, err := New(Config{BaseURL: u}); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		header     map[string]string
		want       error
		field      string
		version    uint64
		generation uint32
		retry      time.Duration
	}{
		{name: "invalid input names the field", status: 400, body: `{"error":{"code":"invalid_input","message":"bad key","field":"custom.a b"}}`, want: ErrInvalidInput, field: "custom.a b"},
		{name: "unauthorized", status: 401, body: `{"error":{"code":"unauthorized","message":"no key"}}`, want: ErrUnauthorized},
		{name: "forbidden", status: 403, body: `{"error":{"code":"forbidden","message":"scope"}}`, want: ErrForbidden},
		{name: "not found", status: 404, body: `{"error":{"code":"not_found"}}`, want: ErrNotFound},
		{name: "conflict", status: 409, body: `{"error":{"code":"conflict"}}`, want: ErrConflict},
		{name: "gone", status: 410, body: `{"error":{"code":"gone"}}`, want: ErrGone},
		{name: "precondition failed from body", status: 412, body: `{"error":{"code":"precondition_failed","currentVersion":7}}`, want: ErrPreconditionFailed, version: 7},
		{name: "precondition failed from ETag", status: 412, body: `{"error":{"code":"precondition_failed"}}`, header: map[string]string{"ETag": `"9"`}, want: ErrPreconditionFailed, version: 9},
		{name: "too large", status: 413, body: `{"error":{"code":"too_large","field":"session"}}`, want: ErrTooLarge, field: "session"},
		{name: "unavailable with Retry-After", status: 503, body: `{"error":{"code":"unavailable"}}`, header: map[string]string{"Retry-After": "0"}, want: ErrUnavailable},
		{name: "status without body", status: 404, body: ``, want: ErrNotFound},
		{name: "plain text body", status: 410, body: "ended\n", want: ErrGone},
		{name: "session limit is not a lost compare-and-set", status: 409, body: `{"error":{"code":"session_limit"}}`, want: ErrSessionLimit},
		{name: "not logged in", status: 409, body: `{"error":{"code":"not_logged_in"}}`, want: ErrNotLoggedIn},
		{name: "token required", status: 401, body: `{"error":{"code":"token_required","field":"X-Session-Token"}}`, want: ErrTokenRequired, field: "X-Session-Token"},
		{name: "invalid token is not a bad API key", status: 401, body: `{"error":{"code":"invalid_token"}}`, want: ErrInvalidToken},
		{name: "token expired", status: 401, body: `{"error":{"code":"token_expired"}}`, want: ErrTokenExpired},
		{name: "token mismatch", status: 403, body: `{"error":{"code":"token_mismatch"}}`, want: ErrTokenMismatch},
		{name: "stale generation", status: 409, body: `{"error":{"code":"stale_generation","currentGeneration":4}}`, want: ErrStaleGeneration, generation: 4},
		{name: "an unknown code matches no sentinel", status: 409, body: `{"error":{"code":"something_new"}}`},
		{name: "an unknown code of an unavailable origin", status: 503, body: `{"error":{"code":"overloaded"}}`, want: ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			c.maxRetries = 0
			_, err := c.Get(context.Background(), testID)
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err %T is not *Error", err)
			}
			if e.Status != tt.status || e.Field != tt.field || e.CurrentVersion != tt.version || e.CurrentGeneration != tt.generation || e.RetryAfter != tt.retry {
				t.Errorf("got %+v", e)
			}
			for _, other := range []error{ErrInvalidInput, ErrUnauthorized, ErrNotFound, ErrConflict, ErrGone, ErrUnavailable, ErrSessionLimit, ErrStaleGeneration} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("err also matches %v", other)
				}
			}
		})
	}
}

func TestInvalidIDFailsWithoutRequest(t *testing.T) {
	var calls atomic.Int32
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	_, err := c.Get(context.Background(), "not-an-id")
	var e *Error
	if !errors.Is(err, ErrInvalidInput) || !errors.As(err, &e) || e.Field != "id" {
		t.Fatalf("err = %v", err)
	}
	if calls.Load() != 0 {
		t.Fatalf("%d requests sent", calls.Load())
	}
}

func TestRetriesOnlyIdempotentCalls(t *testing.T) {
	tests := []struct {
		name  string
		call  func(c *Client) error
		calls int32
		ok    bool
	}{
		{"GET retried until success", func(c *Client) error { _, err := c.Get(context.Background(), testID); return err }, 3, true},
		{"PUT retried until success", func(c *Client) error {
			_, err := c.Replace(context.Background(), testID, &Context{})
			return err
		}, 3, true},
		{"DELETE retried until success", func(c *Client) error { return c.End(context.Background(), testID) }, 3, true},
		{"PATCH not retried", func(c *Client) error {
			_, err := c.Patch(context.Background(), testID, new(Patch).SetField(wire.FieldCurrency, wire.Text("USD")))
			return err
		}, 1, false},
		{"POST not retried", func(c *Client) error { _, err := c.Logout(context.Background(), testID); return err }, 1, false},
		{"refresh not retried", func(c *Client) error { _, err := c.Refresh(context.Background(), testID); return err }, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) < 3 {
					w.WriteHeader(503)
					io.WriteString(w, `{"error":{"code":"unavailable"}}`)
					return
				}
				io.WriteString(w, `{"id":"`+testID+`","kind":"anonymous","generation":1,"version":1}`)
			}))
			err := tt.call(c)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
			if calls.Load() != tt.calls {
				t.Fatalf("%d attempts, want %d", calls.Load(), tt.calls)
			}
		})
	}
}

func TestRetriesStopWithContext(t *testing.T) {
	var calls atomic.Int32
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(503)
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Get(ctx, testID)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Fatalf("took %v: the retry wait ignored the context", d)
	}
	if calls.Load() != 1 {
		t.Fatalf("%d attempts", calls.Load())
	}
}

func TestRequests(t *testing.T) {
	tests := []struct {
		name       string
		call       func(c *Client) error
		method     string
		uri        string
		body       string
		ifMatch    string
		token      string
		respond    string
		respStatus int
	}{
		{
			name: "patch with upsert and if-match",
			call: func(c *Client) error {
				p := new(Patch).SetField(wire.FieldCartID, wire.Text("c-1")).DeleteField(wire.FieldLocale).
					Set(wire.NamespaceCustom, "n", wire.Int(3)).Set(wire.NamespaceCustom, "n", wire.Int(4)).
					Delete(wire.NamespacePublic, "x").Clear(wire.NamespacePrivacy)
				_, err := c.Patch(context.Background(), testID, p, Upsert(), IfMatch(7))
				return err
			},
			method: "PATCH", uri: "/v1/sessions/" + testID + "/context?upsert=true", ifMatch: `"7"`,
			body: `{"locale":null,"cartId":"c-1","custom":{"n":4},"privacy":null,"public":{"x":null}}`,
		},
		{
			name: "replace",
			call: func(c *Client) error {
				ctxt := &Context{}
				ctxt.Fields[wire.FieldCurrency] = wire.Text("EUR")
				ctxt.Attrs[wire.NamespaceCustom] = wire.Attrs{}.With("price", wire.Decimal(1999, -2)).With("at", wire.Time(1700000000123))
				_, err := c.Replace(context.Background(), testID, ctxt)
				return err
			},
			method: "PUT", uri: "/v1/sessions/" + testID + "/context",
			body: `{"currency":"EUR","custom":{"at":{"$time":"2023-11-14T22:13:20.123Z"},"price":{"$decimal":"19.99"}}}`,
		},
		{
			name: "set attribute",
			call: func(c *Client) error {
				_, err := c.SetAttribute(context.Background(), testID, wire.NamespacePrivacy, "email", wire.Text("a@b.c"))
				return err
			},
			method: "POST", uri: "/v1/sessions/" + testID + "/attributes",
			body: `{"namespace":"privacy","key":"email","value":"a@b.c"}`,
		},
		{
			name: "delete attribute",
			call: func(c *Client) error {
				_, err := c.DeleteAttribute(context.Background(), testID, wire.NamespaceCustom, "a.b")
				return err
			},
			method: "DELETE", uri: "/v1/sessions/" + testID + "/attributes/custom/a.b",
		},
		{
			name: "get with items",
			call: func(c *Client) error {
				_, err := c.Get(context.Background(), testID, "custom.a", "public.b")
				return err
			},
			method: "GET", uri: "/v1/sessions/" + testID + "?items=custom.a%2Cpublic.b",
		},
		{
			name: "create",
			call: func(c *Client) error {
				ctxt := &Context{}
				ctxt.Fields[wire.FieldTrackingAllowed] = wire.Bool(false)
				cr, err := c.Create(context.Background(), "", ctxt)
				if err == nil && (cr.Token != "tok" || cr.Session.ID != testID) {
					t.Errorf("created %+v", cr)
				}
				return err
			},
			method: "POST", uri: "/v1/sessions", body: `{"kind":"anonymous","context":{"trackingAllowed":false}}`,
			respond: `{"id":"` + testID + `","token":"tok","session":{"id":"` + testID + `","kind":"anonymous","generation":1,"version":1}}`, respStatus: 201,
		},
		{
			name: "create a customer session",
			call: func(c *Client) error {
				_, err := c.Create(context.Background(), "cust-1", nil)
				return err
			},
			method: "POST", uri: "/v1/sessions", body: `{"kind":"customer","customerId":"cust-1"}`,
			respond: `{"id":"` + testID + `","token":"tok","session":{"id":"` + testID + `","kind":"anonymous","generation":1,"version":1}}`, respStatus: 201,
		},
		{
			name: "login with profile",
			call: func(c *Client) error {
				prof := &Context{}
				prof.Fields[wire.FieldCurrency] = wire.Text("USD")
				_, err := c.Login(context.Background(), testID, "cust-1", prof, Upsert())
				return err
			},
			method: "POST", uri: "/v1/sessions/" + testID + "/login?upsert=true", body: `{"customerId":"cust-1","profile":{"currency":"USD"}}`,
			respond: `{"token":"tok","session":{"id":"` + testID + `","kind":"customer","generation":2,"version":3}}`,
		},
		{
			name: "shared",
			call: func(c *Client) error {
				_, err := c.PutShared(context.Background(), "store settings/eu", nil)
				return err
			},
			method: "PUT", uri: "/v1/shared/store%20settings%2Feu", body: `{}`,
		},
		{
			name: "create with a lifetime",
			call: func(c *Client) error {
				_, err := c.Create(context.Background(), "", nil, WithLifetime(Lifetime{Idle: 5 * time.Minute, Hard: 168 * time.Hour}))
				return err
			},
			method: "POST", uri: "/v1/sessions", body: `{"kind":"anonymous","lifetime":{"idle":"5m0s","hard":"168h0m0s"}}`,
			respond: `{"id":"` + testID + `","token":"tok","session":{"id":"` + testID + `","kind":"anonymous","generation":1,"version":1,"idleTimeout":"5m0s","hardTimeout":"168h0m0s"}}`, respStatus: 201,
		},
		{
			name: "login with a lifetime and the session's token",
			call: func(c *Client) error {
				_, err := c.Login(context.Background(), testID, "cust-1", nil, WithLifetime(Lifetime{Hard: 2 * time.Hour}), WithToken("tok-1"))
				return err
			},
			method: "POST", uri: "/v1/sessions/" + testID + "/login", body: `{"customerId":"cust-1","lifetime":{"hard":"2h0m0s"}}`, token: "tok-1",
			respond: `{"token":"tok","session":{"id":"` + testID + `","kind":"customer","generation":2,"version":3}}`,
		},
		{
			name: "upsert with a lifetime in the query",
			call: func(c *Client) error {
				_, err := c.Patch(context.Background(), testID, new(Patch).SetField(wire.FieldCartID, wire.Text("c")), Upsert(),
					WithLifetime(Lifetime{Idle: 2 * time.Second, Hard: 36 * time.Hour}))
				return err
			},
			method: "PATCH", uri: "/v1/sessions/" + testID + "/context?hardTimeout=36h0m0s&idleTimeout=2s&upsert=true", body: `{"cartId":"c"}`,
		},
		{
			name: "set attribute with an idle lifetime only",
			call: func(c *Client) error {
				_, err := c.SetAttribute(context.Background(), testID, wire.NamespaceCustom, "k", wire.Int(1), Upsert(), WithLifetime(Lifetime{Idle: 90 * time.Second}))
				return err
			},
			method: "POST", uri: "/v1/sessions/" + testID + "/attributes?idleTimeout=1m30s&upsert=true", body: `{"namespace":"custom","key":"k","value":1}`,
		},
		{
			name: "shared with a lifetime",
			call: func(c *Client) error {
				ctxt := &Context{}
				ctxt.Attrs[wire.NamespaceCustom] = wire.Attrs{}.With("a", wire.Int(1))
				_, err := c.PutShared(context.Background(), "s", ctxt, WithLifetime(Lifetime{Idle: 720 * time.Hour}))
				return err
			},
			method: "PUT", uri: "/v1/shared/s", body: `{"custom":{"a":1},"lifetime":{"idle":"720h0m0s"}}`,
		},
		{
			name: "shared with a lifetime and no context",
			call: func(c *Client) error {
				_, err := c.PutShared(context.Background(), "s", nil, WithLifetime(Lifetime{Hard: time.Hour}))
				return err
			},
			method: "PUT", uri: "/v1/shared/s", body: `{"lifetime":{"hard":"1h0m0s"}}`,
		},
		{
			name: "logout with the session's token",
			call: func(c *Client) error {
				_, err := c.Logout(context.Background(), testID, WithToken("tok-2"))
				return err
			},
			method: "POST", uri: "/v1/sessions/" + testID + "/logout", body: `{}`, token: "tok-2",
			respond: `{"token":"tok","session":{"id":"` + testID + `","kind":"anonymous","generation":3,"version":4}}`,
		},
		{
			name:   "flush",
			call:   func(c *Client) error { _, err := c.Flush(context.Background(), testID); return err },
			method: "POST", uri: "/v1/sessions/" + testID + "/flush", body: `{}`,
		},
		{
			name: "peers",
			call: func(c *Client) error {
				ps, err := c.Peers(context.Background(), testID)
				if err == nil && (len(ps) != 2 || !ps[0].Current || ps[1].Current || ps[1].Handle != "0123456789abcdef" ||
					ps[1].Kind != wire.KindCustomer || ps[1].Device.UserAgent != "Firefox" || ps[1].FirstDevice.Addr != "192.0.2.0/24" ||
					!ps[1].LastSeen.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) || ps[0].Created.IsZero()) {
					t.Errorf("peers %+v", ps)
				}
				return err
			},
			method: "GET", uri: "/v1/sessions/" + testID + "/peers",
			respond: `{"sessions":[{"handle":"fedcba9876543210","current":true,"kind":"customer","created":"2026-01-02T03:00:00.000Z"},` +
				`{"handle":"0123456789abcdef","current":false,"kind":"customer","created":"2026-01-01T03:00:00.000Z","lastSeen":"2026-01-02T03:04:05.000Z",` +
				`"modified":"2026-01-02T03:04:05.000Z","firstDevice":{"userAgent":"Firefox","addr":"192.0.2.0/24","site":"DE"},"device":{"userAgent":"Firefox","addr":"","site":"DE"}}]}`,
		},
		{
			name: "end peers",
			call: func(c *Client) error {
				n, err := c.EndPeers(context.Background(), testID, WithToken("tok-3"))
				if err == nil && n != 2 {
					t.Errorf("revoked %d", n)
				}
				return err
			},
			method: "DELETE", uri: "/v1/sessions/" + testID + "/peers", token: "tok-3", respond: `{"revoked":2}`,
		},
		{
			name:   "revoke customer",
			call:   func(c *Client) error { return c.RevokeCustomer(context.Background(), "c 1") },
			method: "DELETE", uri: "/v1/customers/c%201/sessions", respStatus: 204, respond: "-",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if r.Method != tt.method || r.RequestURI != tt.uri {
					t.Errorf("request %s %s, want %s %s", r.Method, r.RequestURI, tt.method, tt.uri)
				}
				if string(body) != tt.body {
					t.Errorf("body %s\nwant %s", body, tt.body)
				}
				if got := r.Header.Get("If-Match"); got != tt.ifMatch {
					t.Errorf("If-Match %q, want %q", got, tt.ifMatch)
				}
				if got := r.Header.Get("X-Session-Token"); got != tt.token {
					t.Errorf("X-Session-Token %q, want %q", got, tt.token)
				}
				if got := r.Header.Get("Authorization"); got != "Bearer k1" {
					t.Errorf("Authorization %q", got)
				}
				if tt.body != "" && r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
				}
				if tt.respStatus != 0 {
					w.WriteHeader(tt.respStatus)
				}
				switch tt.respond {
				case "":
					io.WriteString(w, `{"id":"`+testID+`","kind":"anonymous","generation":1,"version":2}`)
				case "-":
				default:
					io.WriteString(w, tt.respond)
				}
			}))
			if err := tt.call(c); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestOptionsACallDoesNotTake: an option a call cannot honour fails the
// call before anything is sent, naming it.
func TestOptionsACallDoesNotTake(t *testing.T) {
	var calls atomic.Int32
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"Create with IfMatch": func() error { _, err := c.Create(ctx, "", nil, IfMatch(1)); return err },
		"Create with Upsert":  func() error { _, err := c.Create(ctx, "", nil, Upsert()); return err },
		"DeleteAttribute with lifetime": func() error {
			_, err := c.DeleteAttribute(ctx, testID, wire.NamespaceCustom, "k", WithLifetime(Lifetime{Idle: time.Minute}))
			return err
		},
		"Logout with Upsert":     func() error { _, err := c.Logout(ctx, testID, Upsert()); return err },
		"End with IfMatch":       func() error { return c.End(ctx, testID, IfMatch(3)) },
		"Peers with a lifetime":  func() error { _, err := c.Peers(ctx, testID, WithLifetime(Lifetime{Hard: time.Hour})); return err },
		"PutShared with a token": func() error { _, err := c.PutShared(ctx, "s", nil, WithToken("t")); return err },
		"a negative lifetime":    func() error { _, err := c.Create(ctx, "", nil, WithLifetime(Lifetime{Idle: -time.Second})); return err },
	} {
		var e *Error
		if err := call(); !errors.Is(err, ErrInvalidInput) || !errors.As(err, &e) || e.Field == "" {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if calls.Load() != 0 {
		t.Fatalf("%d requests sent", calls.Load())
	}
}

func TestSessionDecoding(t *testing.T) {
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"`+testID+`","kind":"customer","generation":2,"version":5,
			"created":"2026-01-02T03:04:05.006Z","lastSeen":"2026-01-02T03:04:06Z","modified":"2026-01-02T03:04:05.500Z","idleDeadline":"2026-01-02T03:34:06Z",
			"idleTimeout":"5m0s","hardTimeout":"168h0m0s","firstDevice":{"userAgent":"curl/8.0","addr":"192.0.2.0/24","site":"DE"},
			"device":{"userAgent":"Firefox","addr":"","site":"CH"},
			"context":{"currency":"USD","customerId":"c-1","trackingAllowed":true,"future":"ignored",
			"custom":{"n":1,"f":1.5,"tags":["a",{"k":false}],"price":{"$decimal":"-0.05"}},"privacy":{"email":"x@y.z"}}}`)
	}))
	s, err := c.Get(context.Background(), testID)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != testID || s.Kind != wire.KindCustomer || s.Generation != 2 || s.Version != 5 || s.CustomerID() != "c-1" {
		t.Fatalf("session %+v", s)
	}
	if !s.Created.Equal(time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)) || !s.HardDeadline.IsZero() || s.IdleDeadline.IsZero() ||
		!s.Modified.Equal(time.Date(2026, 1, 2, 3, 4, 5, 500e6, time.UTC)) {
		t.Errorf("times %v %v %v %v", s.Created, s.Modified, s.IdleDeadline, s.HardDeadline)
	}
	if s.IdleTimeout != 5*time.Minute || s.HardTimeout != 168*time.Hour {
		t.Errorf("lifetime %v %v", s.IdleTimeout, s.HardTimeout)
	}
	if s.FirstDevice != (wire.Device{UserAgent: "curl/8.0", Addr: "192.0.2.0/24", Site: "DE"}) || s.Device != (wire.Device{UserAgent: "Firefox", Site: "CH"}) {
		t.Errorf("devices %+v %+v", s.FirstDevice, s.Device)
	}
	if s.Text(wire.FieldCurrency) != "USD" || !s.Fields[wire.FieldTrackingAllowed].BoolValue() {
		t.Errorf("fields %+v", s.Fields)
	}
	want := wire.Attrs{}.With("n", wire.Int(1)).With("f", wire.Float(1.5)).
		With("tags", wire.List(wire.Text("a"), wire.Map(wire.Attr{Key: "k", Value: wire.Bool(false)}))).
		With("price", wire.Decimal(-5, -2))
	if !s.Attrs[wire.NamespaceCustom].Equal(want) {
		t.Errorf("custom %+v", s.Attrs[wire.NamespaceCustom])
	}
	if v, ok := s.Attr(wire.NamespacePrivacy, "email"); !ok || v.Text != "x@y.z" {
		t.Errorf("privacy %+v", s.Attrs[wire.NamespacePrivacy])
	}
}

func TestValueJSONRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		v    wire.Value
		json string
	}{
		{"text", wire.Text(`a "quoted" é`), `"a \"quoted\" é"`},
		{"int", wire.Int(-42), `-42`},
		{"whole float keeps a point", wire.Float(2), `2.0`},
		{"float with exponent", wire.Float(1e-9), `1e-09`},
		{"float", wire.Float(0.25), `0.25`},
		{"big float", wire.Float(1e300), `1e+300`},
		{"bool", wire.Bool(true), `true`},
		{"time", wire.Time(1700000000000), `{"$time":"2023-11-14T22:13:20.000Z"}`},
		{"decimal", wire.Decimal(1999, -2), `{"$decimal":"19.99"}`},
		{"small decimal", wire.Decimal(5, -3), `{"$decimal":"0.005"}`},
		{"negative decimal", wire.Decimal(-1999, -2), `{"$decimal":"-19.99"}`},
		{"list", wire.List(wire.Int(1), wire.Text("x")), `[1,"x"]`},
		{"map", wire.Map(wire.Attr{Key: "b", Value: wire.Int(2)}, wire.Attr{Key: "a", Value: wire.List()}), `{"a":[],"b":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendValueJSON(nil, tt.v)
			if err != nil || string(got) != tt.json {
				t.Fatalf("JSON %s (%v), want %s", got, err, tt.json)
			}
			raw := []byte(`{"custom":{"v":` + string(got) + `}}`)
			c, err := parseContextJSON(raw)
			if err != nil {
				t.Fatal(err)
			}
			back, _ := c.Attr(wire.NamespaceCustom, "v")
			if !back.Equal(tt.v) {
				t.Fatalf("round trip %+v, want %+v", back, tt.v)
			}
		})
	}
}

func TestValueJSONRejectsNaN(t *testing.T) {
	var zero float64
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("request sent") }))
	_, err := c.Patch(context.Background(), testID, new(Patch).Set(wire.NamespaceCustom, "x", wire.Float(zero/zero)))
	if !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("err = %v", err)
	}
}

func TestConnectionReuse(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"`+testID+`","kind":"anonymous","generation":1,"version":1}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := c.Get(context.Background(), testID); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 20 sequential calls, want 1", n)
	}
}

func TestErrorMessage(t *testing.T) {
	e := &Error{Status: 400, Code: "invalid_input", Message: "key too long", Field: "custom.k", Method: "PATCH", Path: "/v1/x"}
	if got := e.Error(); !strings.Contains(got, "custom.k") || !strings.Contains(got, "400") {
		t.Fatalf("message %q", got)
	}
}
