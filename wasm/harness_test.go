//go:build !wasip1

package main_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/edge/harness"
	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
	"github.com/sessionedge/sessionedge/wasm/internal/proxytest"
)

// These tests load the module into the edge's own proxy-wasm host
// (edge/wasmhost through edge/harness): real asynchronous HTTP calls, VMs
// on their own goroutines, the host's header maps and shared data. The fake
// origin is the one the scenarios use, behind a harness cluster.

type harnessOrigin struct {
	mu sync.Mutex
	o  *proxytest.Origin
}

func (h *harnessOrigin) serve(req *harness.CallRequest) (*harness.Response, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := &abi.MockCall{Upstream: req.Cluster, Body: req.Body}
	for _, p := range req.Headers {
		c.Headers = append(c.Headers, abi.Pair{Key: strings.ToLower(p[0]), Value: p[1]})
	}
	status, body := h.o.Handle(c)
	return &harness.Response{Status: status, Headers: harness.Headers{{"content-type", "application/cbor"}}, Body: body}, nil
}

func newHarness(t *testing.T, vms int, extra string) (*harness.Harness, *harnessOrigin) {
	o := &harnessOrigin{o: proxytest.NewOrigin(proxytest.Start)}
	o.o.APIKey = "edge-key"
	h := harness.New(t, harness.Config{Wasm: buildModule(t), PluginConfig: proxytest.Config(extra), VMs: vms, Start: proxytest.Start})
	h.SetCluster("origin", o.serve)
	return h, o
}

func TestHarnessMintAndVerify(t *testing.T) {
	h, _ := newHarness(t, 1, "")
	first := h.Do(&harness.Request{Host: "shop.example.com", Headers: harness.Headers{{"x-session-id", "spoofed"}}})
	first.ExpectStatus(t, 200).ExpectForwarded(t).
		ExpectUpstreamHeader(t, "x-session-kind", "anonymous").
		ExpectUpstreamHeader(t, "x-session-context-status", "new").
		ExpectUpstreamHeader(t, "x-session-site", "DE")
	id := first.UpstreamHeader("x-session-id")
	tok, ok := first.Cookie("__Host-sid")
	if !ok || id == "" || id == "spoofed" {
		t.Fatalf("first request: id %q, cookie %v", id, first.SetCookies())
	}
	if c := proxytest.Claims(t, tok, proxytest.Start); c.ID.String() != id {
		t.Fatalf("cookie names %s, upstream got %s", c.ID, id)
	}
	second := h.Do(&harness.Request{Host: "shop.example.com", Headers: harness.Headers{{"cookie", "a=1"}, {"cookie", "__Host-sid=" + tok}}})
	second.ExpectForwarded(t).ExpectUpstreamHeader(t, "x-session-id", id)
	if len(second.SetCookies()) != 0 {
		t.Fatalf("second request set %v", second.SetCookies())
	}
	if n := len(h.Calls()); n != 0 {
		t.Fatalf("minting and verifying made %d origin calls", n)
	}
}

func TestHarnessFetchAndLogin(t *testing.T) {
	h, o := newHarness(t, 1, "")
	id, _ := wire.NewID()
	o.mu.Lock()
	o.o.Write(id, wire.Op{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("CHF")})
	o.mu.Unlock()
	now := proxytest.Start.Unix()
	tok := proxytest.Token(wire.Claims{Kind: wire.KindAnonymous, ID: id, Generation: 1, IssuedAt: now, IdleDeadline: now + 1800, HardDeadline: now + 3600})
	login := proxytest.Token(wire.Claims{Kind: wire.KindCustomer, ID: id, Generation: 2, IssuedAt: now, IdleDeadline: now + 1800, HardDeadline: now + 3600})
	h.SetUpstream(func(req *harness.UpstreamRequest) *harness.Response {
		return &harness.Response{Status: 200, Headers: harness.Headers{{"x-session-token", login}, {"x-session-debug", "1"}, {"set-cookie", "app=1"}}}
	})
	res := h.Get("/login", "cookie", "__Host-sid="+tok)
	res.ExpectForwarded(t).ExpectUpstreamHeader(t, "x-session-currency", "CHF").ExpectUpstreamHeader(t, "x-session-version", "1").
		ExpectNoResponseHeader(t, "x-session-token").ExpectNoResponseHeader(t, "x-session-debug")
	if got, _ := res.Cookie("__Host-sid"); got != login {
		t.Fatalf("Set-Cookie %v: want the login token", res.SetCookies())
	}
	if len(res.SetCookies()) != 2 {
		t.Fatalf("the app's cookie was replaced: %v", res.SetCookies())
	}
	calls := h.Calls()
	if len(calls) != 1 || calls[0].Path != "/v1/sessions/"+id.String() || calls[0].Method != "GET" {
		t.Fatalf("calls %+v", calls)
	}
}

func TestHarnessSelfServiceAndSync(t *testing.T) {
	h, o := newHarness(t, 2, `,"sync":{"interval":"100ms"}`)
	id, _ := wire.NewID()
	o.mu.Lock()
	o.o.Write(id, wire.Op{Code: wire.OpSetAttr, NS: wire.NamespacePublic, Key: "theme", Value: wire.Text("dark")})
	o.mu.Unlock()
	now := proxytest.Start.Unix()
	cookie := "__Host-sid=" + proxytest.Token(wire.Claims{Kind: wire.KindAnonymous, ID: id, Generation: 1, IssuedAt: now, IdleDeadline: now + 1800, HardDeadline: now + 3600})
	h.Tick() // joins the feed
	res := h.Get("/.session/context", "cookie", cookie)
	res.ExpectLocal(t).ExpectStatus(t, 200)
	if !strings.Contains(string(res.Response.Body), `"public":{"theme":"dark"}`) {
		t.Fatalf("GET context: %s", res.Response.Body)
	}
	// PATCH is covered by the scenarios only: the harness delivers a body
	// only when the headers callback continued, while Envoy (and the filter)
	// keep delivering it to a filter that paused on the headers.
	del := h.Do(&harness.Request{Method: "DELETE", Path: "/.session/context/public/theme", Headers: harness.Headers{{"cookie", cookie}}})
	del.ExpectLocal(t).ExpectStatus(t, 200)
	if !strings.Contains(string(del.Response.Body), `"public":{}`) {
		t.Fatalf("DELETE context/public/theme: %s", del.Response.Body)
	}
	// A change at the origin reaches every VM through the feed, polled by one.
	o.mu.Lock()
	polls := o.o.Polls
	o.o.Write(id, wire.Op{Code: wire.OpSetField, Field: wire.FieldLocale, Value: wire.Text("fr-CH")})
	o.mu.Unlock()
	for i := 0; i < 4; i++ {
		h.Clock().Advance(100 * time.Millisecond)
		h.Tick()
	}
	o.mu.Lock()
	polled := o.o.Polls - polls
	o.mu.Unlock()
	if polled < 1 || polled > 5 {
		t.Fatalf("2 VMs polled %d times in 4 intervals", polled)
	}
	for i := 0; i < 4; i++ { // requests spread over both VMs
		r := h.Get("/", "cookie", cookie)
		r.ExpectForwarded(t)
		if got := r.UpstreamHeader("x-session-locale"); got != "fr-CH" {
			t.Fatalf("request %d: locale %q, want the synced fr-CH", i, got)
		}
	}
}
