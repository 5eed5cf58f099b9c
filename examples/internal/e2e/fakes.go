package e2e

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sessionedge/sessionedge/sdk/sdktest"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Fakes is an app between sdktest's fake edge and fake origin: the
// in-process counterpart of Stack, for the quick tests of an example.
type Fakes struct {
	Origin *sdktest.FakeOrigin
	// Keys verify the assertions the fake edge signs.
	Keys   *wire.AssertionKeys
	AppURL string
	Edge   *sdktest.FakeEdge
}

// StartFakes starts a fake origin configured by origin, the app newApp
// builds for it (from the origin's URL and the assertion keys), and a fake
// edge configured by edge in front of the app; edge's Origin, Upstream and
// AssertionKeys are filled in. All stop when the test ends.
func StartFakes(t testing.TB, origin sdktest.FakeOriginConfig, edge sdktest.FakeEdgeConfig,
	newApp func(originURL string, keys *wire.AssertionKeys) (http.Handler, error)) *Fakes {
	t.Helper()
	f := &Fakes{Origin: sdktest.NewFakeOrigin(origin), Keys: sdktest.NewAssertionKeys()}
	t.Cleanup(f.Origin.Close)
	h, err := newApp(f.Origin.URL, f.Keys)
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(h)
	t.Cleanup(app.Close)
	f.AppURL = app.URL
	edge.Origin, edge.Upstream, edge.AssertionKeys = f.Origin, app.URL, f.Keys
	f.Edge = sdktest.NewFakeEdge(edge)
	t.Cleanup(f.Edge.Close)
	return f
}
