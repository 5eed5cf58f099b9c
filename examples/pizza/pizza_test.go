package main

import (
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/examples/internal/e2e"
	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/sdk/sdktest"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

func TestPizzaWithFakes(t *testing.T) {
	f := e2e.StartFakes(t, sdktest.FakeOriginConfig{}, sdktest.FakeEdgeConfig{}, func(originURL string, keys *wire.AssertionKeys) (http.Handler, error) {
		return newTracker(originURL, "", keys)
	})
	walkDelivery(t, f.AppURL, e2e.NewBrowser(f.Edge.URL))
}

// TestPizzaEndToEnd runs the tracker binary behind the real edge, with the
// real origin: the shopper orders and tracks through the edge, the driver
// reports to the app directly.
func TestPizzaEndToEnd(t *testing.T) {
	stack := e2e.Start(t, e2e.Options{App: "./examples/pizza"})
	walkDelivery(t, stack.AppURL, e2e.NewBrowser(stack.EdgeURL))
}

// TestPizzaRefusesForgedHeaders: the shopper's routes answer only requests
// the edge signed.
func TestPizzaRefusesForgedHeaders(t *testing.T) {
	stack := e2e.Start(t, e2e.Options{App: "./examples/pizza"})
	stack.MustRefuseForged(t, "GET", "/my-delivery")
	stack.MustRefuseForged(t, "POST", "/order")
}

// call is a request of the driver's app or the kitchen to the tracker.
func call(t *testing.T, method, url string, body any, want int) delivery {
	t.Helper()
	var d delivery
	e2e.Call(t, method, url, body, want, &d)
	return d
}

// walkDelivery: the shopper orders through the edge and sees the order on
// the very next request; three position updates from the driver with the
// ETA shrinking, each seen on the shopper's page; hand-over, and the data
// gone.
func walkDelivery(t *testing.T, service string, shopper *e2e.Browser) {
	home := point{Lat: 52.5200, Lon: 13.4050}
	shopper.GetJSON(t, "/my-delivery", http.StatusNotFound, nil)
	p := shopper.PostJSON(t, "/order", map[string]any{"order": "2× margherita", "address": home})
	if p.Status != http.StatusCreated {
		t.Fatalf("order: %d %s", p.Status, p.Body)
	}
	var d delivery
	if err := json.Unmarshal([]byte(p.Body), &d); err != nil {
		t.Fatal(err)
	}
	if d.ID == "" || d.Order != "2× margherita" || d.Address != home || d.Position != nil {
		t.Fatalf("created %+v", d)
	}
	var mine delivery
	shopper.GetJSON(t, "/my-delivery", http.StatusOK, &mine)
	if mine.ID != d.ID {
		t.Fatalf("my delivery is %q right after ordering %q", mine.ID, d.ID)
	}

	route := []point{{52.5300, 13.3800}, {52.5250, 13.3950}, {52.5205, 13.4045}}
	var lastETA time.Time
	for i, p := range route {
		got := call(t, "POST", service+"/deliveries/"+d.ID+"/position", p, http.StatusOK)
		if got.Position == nil || *got.Position != p {
			t.Fatalf("update %d: position %+v", i, got.Position)
		}
		if i > 0 && !got.ETA.Before(lastETA) {
			t.Fatalf("update %d: ETA %v did not shrink from %v as the driver got closer", i, got.ETA, lastETA)
		}
		lastETA = got.ETA
		var seen delivery
		shopper.GetJSON(t, "/my-delivery", http.StatusOK, &seen)
		if seen.Position == nil || *seen.Position != p || !seen.ETA.Equal(got.ETA) {
			t.Fatalf("the shopper sees %+v after update %d", seen, i)
		}
	}
	if time.Until(lastETA) > time.Minute {
		t.Fatalf("ETA %v for 50 m is too far off", lastETA)
	}
	call(t, "POST", service+"/deliveries/"+d.ID+"/delivered", nil, http.StatusNoContent)
	shopper.GetJSON(t, "/my-delivery", http.StatusGone, nil)
	call(t, "GET", service+"/deliveries/"+d.ID, nil, http.StatusGone)
	call(t, "POST", service+"/deliveries/"+d.ID+"/position", route[0], http.StatusGone)
	call(t, "GET", service+"/deliveries/AAAAAAAAAAAAAAAAAAAAAA", nil, http.StatusNotFound)

	// A delivery the kitchen starts directly has no shopper session.
	k := call(t, "POST", service+"/deliveries", map[string]any{"order": "calzone", "address": home}, http.StatusCreated)
	call(t, "GET", service+"/deliveries/"+k.ID, nil, http.StatusOK)
}
