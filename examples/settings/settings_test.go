package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"

	"github.com/sessionedge/sessionedge/examples/internal/e2e"
	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/sdk/sdktest"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

func TestSettingsWithFakes(t *testing.T) {
	origin := sdktest.NewFakeOrigin(sdktest.FakeOriginConfig{})
	defer origin.Close()
	keys := sdktest.NewAssertionKeys()
	var bases []string
	for _, who := range []string{"shop", "admin", "checkout"} {
		h, err := newService(origin.URL, "", keys, "shop-settings", who)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		defer srv.Close()
		bases = append(bases, srv.URL)
	}
	edge := sdktest.NewFakeEdge(sdktest.FakeEdgeConfig{Origin: origin, Upstream: bases[0], AssertionKeys: keys,
		Defaults: map[wire.Field]string{wire.FieldCurrency: "EUR"}})
	defer edge.Close()
	walkSettings(t, bases[1:], e2e.NewBrowser(edge.URL))
}

// TestSettingsEndToEnd runs three instances of the binary against the real
// origin: "shop" behind the real edge serves shoppers, "admin" and
// "checkout" are services that change and read the settings directly.
func TestSettingsEndToEnd(t *testing.T) {
	stack := e2e.Start(t, e2e.Options{App: "./examples/settings", AppArgs: []string{"-service", "shop"}})
	var bases []string
	for _, who := range []string{"admin", "checkout"} {
		addr := testbin.FreeAddr(t)
		stack.StartApp(t, who, addr, "-service", who)
		bases = append(bases, "http://"+addr)
	}
	walkSettings(t, bases, e2e.NewBrowser(stack.EdgeURL))
}

// TestSettingsRefusesForgedHeaders: the shopper's route answers only
// requests the edge signed.
func TestSettingsRefusesForgedHeaders(t *testing.T) {
	stack := e2e.Start(t, e2e.Options{App: "./examples/settings"})
	stack.MustRefuseForged(t, "GET", "/banner")
}

// req is a request of a service or an admin to the settings service, with
// If-Match unless ifMatch is "".
func req(t *testing.T, method, url string, body any, ifMatch string, want int) settings {
	t.Helper()
	var header []string
	if ifMatch != "" {
		header = []string{"If-Match", ifMatch}
	}
	var s settings
	e2e.Call(t, method, url, body, want, &s, header...)
	return s
}

// walkSettings: the admin service writes, the other services and the
// shopper's banner find the same settings by name, and a stale edit is
// refused.
func walkSettings(t *testing.T, bases []string, shopper *e2e.Browser) {
	admin, others := bases[0], bases[1:]
	req(t, "GET", others[0]+"/settings", nil, "", http.StatusNotFound)
	var b bannerOut
	shopper.GetJSON(t, "/banner", http.StatusOK, &b)
	if b.Banner != "" || b.Currency != "EUR" {
		t.Fatalf("banner before any settings: %+v", b)
	}
	first := req(t, "PUT", admin+"/settings", settings{Banner: "Free shipping from €49.90", FreeShippingFrom: "49.90"}, "", http.StatusOK)
	for _, b := range others {
		got := req(t, "GET", b+"/settings", nil, "", http.StatusOK)
		if got.Version != first.Version || got.Banner != "Free shipping from €49.90" || got.FreeShippingFrom != "49.90" || got.Maintenance {
			t.Fatalf("%s sees %+v, admin wrote %+v", got.Service, got, first)
		}
	}
	v := strconv.FormatUint(first.Version, 10)
	second := req(t, "PUT", admin+"/settings", settings{Maintenance: true, Banner: "Back at 6", FreeShippingFrom: "49.90"}, `"`+v+`"`, http.StatusOK)
	if second.Version <= first.Version {
		t.Fatalf("version %d after %d", second.Version, first.Version)
	}
	// A second admin still editing the first version is refused.
	req(t, "PUT", others[0]+"/settings", settings{Banner: "stale"}, `"`+v+`"`, http.StatusConflict)
	for _, b := range others {
		if got := req(t, "GET", b+"/settings", nil, "", http.StatusOK); !got.Maintenance || got.Banner != "Back at 6" {
			t.Fatalf("%s sees %+v after the change", got.Service, got)
		}
	}
	shopper.GetJSON(t, "/banner", http.StatusOK, &b)
	if !b.Maintenance || b.Banner != "Back at 6" || b.FreeShippingFrom != "49.90" || b.Currency != "EUR" {
		t.Fatalf("the shopper sees %+v", b)
	}
}
