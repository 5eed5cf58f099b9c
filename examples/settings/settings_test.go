package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/sessionedge/sessionedge/examples/internal/e2e"
	"github.com/sessionedge/sessionedge/sdk/sdktest"
)

func TestSettingsWithFakeOrigin(t *testing.T) {
	origin := sdktest.NewFakeOrigin(sdktest.FakeOriginConfig{})
	defer origin.Close()
	var bases []string
	for _, who := range []string{"admin", "checkout", "search"} {
		h, err := newService(origin.URL, "", "shop-settings", who)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		defer srv.Close()
		bases = append(bases, srv.URL)
	}
	walkSettings(t, bases)
}

// TestSettingsEndToEnd runs three instances of the binary, as three
// services, against the real origin.
func TestSettingsEndToEnd(t *testing.T) {
	origin := sdktest.StartOrigin(t, sdktest.OriginConfig{APIKeys: map[string][]string{e2e.AppKey: {"sessions:read", "sessions:write"}}})
	bin := sdktest.Build(t, "./examples/settings")
	var bases []string
	for _, who := range []string{"admin", "checkout", "search"} {
		addr := sdktest.FreeAddr(t)
		sdktest.Start(t, sdktest.Cmd{Name: who, Path: bin, Ready: "http://" + addr + "/healthz",
			Args: []string{"-addr", addr, "-origin", origin.URL, "-api-key", e2e.AppKey, "-service", who}})
		bases = append(bases, "http://"+addr)
	}
	walkSettings(t, bases)
}

func req(t *testing.T, method, url string, body any, ifMatch string, want int) settings {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	r, _ := http.NewRequest(method, url, rd)
	if ifMatch != "" {
		r.Header.Set("If-Match", ifMatch)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, resp.StatusCode, data, want)
	}
	var s settings
	json.Unmarshal(data, &s)
	return s
}

// walkSettings: the admin service writes, the other services find the same
// settings by name, and a stale edit is refused.
func walkSettings(t *testing.T, bases []string) {
	admin, others := bases[0], bases[1:]
	req(t, "GET", others[0]+"/settings", nil, "", http.StatusNotFound)
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
}
