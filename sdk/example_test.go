package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// fakeOrigin stands in for the origin so the examples run anywhere: it knows
// one session at version 3 and answers 412 to writes that expect another.
func fakeOrigin() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/v1/sessions/AAECAwQFBgcICQoLDA0ODw/context" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"code":"not_found","message":"no such session"}}`)
			return
		}
		if m := r.Header.Get("If-Match"); m != "" && m != `"3"` {
			w.Header().Set("ETag", `"3"`)
			w.WriteHeader(http.StatusPreconditionFailed)
			io.WriteString(w, `{"error":{"code":"precondition_failed","message":"version is 3","currentVersion":3}}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		ctxt := strings.TrimSuffix(strings.TrimPrefix(string(body), "{"), "}")
		io.WriteString(w, `{"id":"AAECAwQFBgcICQoLDA0ODw","kind":"anonymous","generation":1,"version":4,"context":{"currency":"EUR",`+ctxt+`}}`)
	}))
}

func ExampleClient_Patch() {
	origin := fakeOrigin()
	defer origin.Close()
	c, err := sdk.New(sdk.Config{BaseURL: origin.URL, APIKey: "app-key"})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	// Put a cart into the session, creating the session at the origin if
	// the edge minted it and has not reported it yet.
	p := new(sdk.Patch).SetField(wire.FieldCartID, wire.Text("cart-42"))
	s, err := c.Patch(ctx, "AAECAwQFBgcICQoLDA0ODw", p, sdk.Upsert())
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Version, s.Text(wire.FieldCartID), s.Text(wire.FieldCurrency))

	// A write that expects an old version fails and tells the current one.
	_, err = c.Patch(ctx, "AAECAwQFBgcICQoLDA0ODw", p, sdk.IfMatch(2))
	var apiErr *sdk.Error
	if errors.Is(err, sdk.ErrPreconditionFailed) && errors.As(err, &apiErr) {
		fmt.Println("precondition failed; current version", apiErr.CurrentVersion)
	}
	// Output:
	// 4 cart-42 EUR
	// precondition failed; current version 3
}

func ExampleClient_Get_notFound() {
	origin := fakeOrigin()
	defer origin.Close()
	c, _ := sdk.New(sdk.Config{BaseURL: origin.URL, APIKey: "app-key"})

	_, err := c.Get(context.Background(), "AAECAwQFBgcICQoLDA0ODw")
	switch {
	case errors.Is(err, sdk.ErrNotFound):
		fmt.Println("unknown session: the edge treats it as new")
	case errors.Is(err, sdk.ErrGone):
		fmt.Println("session ended")
	}
	// Output:
	// unknown session: the edge treats it as new
}

func ExampleParseView() {
	// The headers as the edge forwards them (x-session-context omitted).
	h := http.Header{}
	h.Set(sdk.HeaderID, "AAECAwQFBgcICQoLDA0ODw")
	h.Set(sdk.HeaderKind, "customer")
	h.Set(sdk.HeaderCustomer, "c-1001")
	h.Set(sdk.HeaderCurrency, "USD")
	h.Set(sdk.HeaderContextStatus, sdk.StatusOK)

	v, err := sdk.ParseView(h.Get)
	if err != nil {
		panic(err)
	}
	fmt.Println(v.LoggedIn(), v.CustomerID(), v.Text(wire.FieldCurrency))
	// Output:
	// true c-1001 USD
}
