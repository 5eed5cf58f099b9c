package sdktest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/sessionedge/sessionedge/sdk/sdktest"
	"github.com/sessionedge/sessionedge/sdk/sessionhttp"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Example tests an app behind a fake edge and a fake origin: the app sees
// signed session headers as behind the real edge, and its writes go to the
// fake origin, which the test can inspect.
func Example() {
	origin := sdktest.NewFakeOrigin(sdktest.FakeOriginConfig{})
	defer origin.Close()

	keys := sdktest.NewAssertionKeys() // the key the edge signs with and the app verifies with
	app := httptest.NewServer(sessionhttp.Middleware(sessionhttp.Config{AssertionKeys: keys})(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			s := sessionhttp.FromRequest(r)
			fmt.Fprintf(w, "%s session, %s, currency %s", s.Kind, s.Status, s.Text(wire.FieldCurrency))
		})))
	defer app.Close()

	edge := sdktest.NewFakeEdge(sdktest.FakeEdgeConfig{Origin: origin, Upstream: app.URL, AssertionKeys: keys,
		Defaults: map[wire.Field]string{wire.FieldCurrency: "EUR"}})
	defer edge.Close()

	// The first request has no cookie: the edge mints a session.
	resp, err := http.Get(edge.URL)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))
	fmt.Println(strings.HasPrefix(resp.Header.Get("Set-Cookie"), "__Host-sid="))
	// Output:
	// anonymous session, new, currency EUR
	// true
}
