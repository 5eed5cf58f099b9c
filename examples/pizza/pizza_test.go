package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/examples/internal/e2e"
	"github.com/sessionedge/sessionedge/sdk/sdktest"
)

func TestPizzaWithFakeOrigin(t *testing.T) {
	origin := sdktest.NewFakeOrigin(sdktest.FakeOriginConfig{})
	defer origin.Close()
	h, err := newTracker(origin.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(h)
	defer app.Close()
	walkDelivery(t, app.URL)
}

// TestPizzaEndToEnd runs the tracker binary against the real origin.
func TestPizzaEndToEnd(t *testing.T) {
	origin := sdktest.StartOrigin(t, sdktest.OriginConfig{APIKeys: map[string][]string{e2e.AppKey: {"sessions:read", "sessions:write"}}})
	bin := sdktest.Build(t, "./examples/pizza")
	addr := sdktest.FreeAddr(t)
	sdktest.Start(t, sdktest.Cmd{Name: "pizza", Path: bin, Args: []string{"-addr", addr, "-origin", origin.URL, "-api-key", e2e.AppKey},
		Ready: "http://" + addr + "/healthz"})
	walkDelivery(t, "http://"+addr)
}

func call(t *testing.T, method, url string, body any, want int) delivery {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, resp.StatusCode, data, want)
	}
	var d delivery
	if want/100 == 2 && len(data) > 0 {
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// walkDelivery: order, three position updates along the way with the ETA
// shrinking, hand-over, and the data gone.
func walkDelivery(t *testing.T, base string) {
	home := point{Lat: 52.5200, Lon: 13.4050}
	d := call(t, "POST", base+"/deliveries", map[string]any{"order": "2× margherita", "address": home}, http.StatusCreated)
	if d.ID == "" || d.Order != "2× margherita" || d.Address != home || d.Position != nil {
		t.Fatalf("created %+v", d)
	}
	route := []point{{52.5300, 13.3800}, {52.5250, 13.3950}, {52.5205, 13.4045}}
	var lastETA time.Time
	for i, p := range route {
		got := call(t, "POST", base+"/deliveries/"+d.ID+"/position", p, http.StatusOK)
		if got.Position == nil || *got.Position != p {
			t.Fatalf("update %d: position %+v", i, got.Position)
		}
		if i > 0 && !got.ETA.Before(lastETA) {
			t.Fatalf("update %d: ETA %v did not shrink from %v as the driver got closer", i, got.ETA, lastETA)
		}
		lastETA = got.ETA
		seen := call(t, "GET", base+"/deliveries/"+d.ID, nil, http.StatusOK)
		if seen.Position == nil || *seen.Position != p || !seen.ETA.Equal(got.ETA) {
			t.Fatalf("customer sees %+v after update %d", seen, i)
		}
	}
	if time.Until(lastETA) > time.Minute {
		t.Fatalf("ETA %v for 50 m is too far off", lastETA)
	}
	call(t, "POST", base+"/deliveries/"+d.ID+"/delivered", nil, http.StatusNoContent)
	call(t, "GET", base+"/deliveries/"+d.ID, nil, http.StatusGone)
	call(t, "POST", base+"/deliveries/"+d.ID+"/position", route[0], http.StatusGone)
	call(t, "GET", base+"/deliveries/AAAAAAAAAAAAAAAAAAAAAA", nil, http.StatusNotFound)
}
