// Package middlewaretest holds what the tests of the SDK's two middlewares
// (sessionhttp for net/http, sessionfasthttp for fasthttp) share: the
// session the edge forwards, and the requests either middleware must pass
// to the app or refuse.
package middlewaretest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/sdktest"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// ID is the id of Session's sessions.
const ID = "AAECAwQFBgcICQoLDA0ODw"

// Session returns a session of kind with id ID at generation 2, version 7,
// currency EUR, and customer alice if kind is customer.
func Session(kind wire.Kind) *wire.Session {
	id, _ := wire.ParseID(ID)
	s := &wire.Session{ID: id, Kind: kind, Generation: 2, Version: 7}
	s.Fields[wire.FieldCurrency] = wire.Text("EUR")
	if kind == wire.KindCustomer {
		s.Fields[wire.FieldCustomerID] = wire.Text("alice")
	}
	return s
}

// Case is a request through the middleware to an app that answers "<id>
// <kind> <customer> <currency>" of the request's session, or "no session",
// and hands the token "new-token" back on /login.
type Case struct {
	Name               string
	Optional, Insecure bool // the middleware's Config
	Path               string
	Prepare            func(*http.Request) // sets the request's headers
	WantStatus         int
	WantBody           string // "" to not check it
	WantToken          string // the sdk.HeaderToken of the answer
}

// Cases are the requests both middlewares, given keys as
// Config.AssertionKeys (unless Insecure), must answer alike.
func Cases(keys *wire.AssertionKeys) []Case {
	signed := func(s *wire.Session) func(*http.Request) {
		return func(r *http.Request) { sdktest.Forward(r, keys, s, wire.AssertOK) }
	}
	forged := func(r *http.Request) {
		r.Header.Set("X-Session-Id", ID)
		r.Header.Set("X-Session-Kind", "customer")
		r.Header.Set("X-Session-Customer", "alice")
	}
	otherEdge := func(r *http.Request) {
		sdktest.Forward(r, sdktest.NewAssertionKeys(), Session(wire.KindCustomer), wire.AssertOK)
	}
	return []Case{
		{Name: "signed by the edge", Path: "/", Prepare: signed(Session(wire.KindCustomer)),
			WantStatus: 200, WantBody: ID + " customer alice EUR"},
		{Name: "signed, with a query", Path: "/p?a=1&b=%20", Prepare: signed(Session(wire.KindCustomer)),
			WantStatus: 200, WantBody: ID + " customer alice EUR"},
		{Name: "token handed back", Path: "/login", Prepare: signed(Session(wire.KindAnonymous)),
			WantStatus: 200, WantBody: ID + " anonymous  EUR", WantToken: "new-token"},
		{Name: "forged headers, no assertion", Path: "/", Prepare: forged, WantStatus: 403},
		{Name: "no session", Path: "/", WantStatus: 403},
		{Name: "forged headers beside a real assertion", Path: "/", Prepare: func(r *http.Request) {
			sdktest.Forward(r, keys, Session(wire.KindAnonymous), wire.AssertOK)
			other := Session(wire.KindCustomer)
			other.Fields[wire.FieldCustomerID] = wire.Text("mallory")
			o := httptest.NewRequest("GET", r.URL.String(), nil)
			o.Host = r.URL.Host
			sdktest.Forward(o, keys, other, wire.AssertOK)
			r.Header.Set("X-Session-Context", o.Header.Get("X-Session-Context"))
		}, WantStatus: 403},
		{Name: "assertion for another path", Path: "/admin", Prepare: func(r *http.Request) {
			r.URL.Path = "/"
			sdktest.Forward(r, keys, Session(wire.KindCustomer), wire.AssertOK)
			r.URL.Path = "/admin"
		}, WantStatus: 403},
		{Name: "assertion of another edge", Path: "/", Prepare: otherEdge, WantStatus: 403},
		{Name: "optional: no assertion passes without a session, forged headers ignored", Path: "/", Optional: true,
			Prepare: forged, WantStatus: 200, WantBody: "no session"},
		{Name: "optional: a bad assertion is still refused", Path: "/", Optional: true, Prepare: otherEdge, WantStatus: 403},
		{Name: "insecure trusts the headers", Path: "/", Insecure: true, Prepare: forged,
			WantStatus: 200, WantBody: ID + " customer alice "},
	}
}

// Client returns an SDK client of a new fake origin, closed when the test
// ends.
func Client(t testing.TB) *sdk.Client {
	t.Helper()
	origin := sdktest.NewFakeOrigin(sdktest.FakeOriginConfig{})
	t.Cleanup(origin.Close)
	client, err := sdk.New(sdk.Config{BaseURL: origin.URL})
	if err != nil {
		t.Fatal(err)
	}
	return client
}
