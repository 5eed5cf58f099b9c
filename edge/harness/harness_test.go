package harness_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/edge/harness"
)

const watGuest = "../testdata/conformance.wasm"

func TestRequestHeaders(t *testing.T) {
	h := harness.New(t, harness.Config{Wasm: watGuest})
	res := h.Do(&harness.Request{
		Path:    "/anything",
		Headers: harness.Headers{{"X-Remove", "a"}, {"x-replace", "old1"}, {"x-replace", "old2"}, {"cookie", "a=1"}, {"cookie", "b=2"}},
	})
	res.ExpectStatus(t, 200).ExpectForwarded(t).
		ExpectUpstreamHeader(t, "x-wat", "1").
		ExpectNoUpstreamHeader(t, "x-remove").
		ExpectUpstreamHeader(t, "x-replace", "new").
		ExpectResponseHeader(t, "x-wat-response", "1")
	if got := res.Upstream.Headers.Values("x-replace"); len(got) != 1 {
		t.Errorf("x-replace values = %q, want one", got)
	}
	if got := res.Upstream.Headers.Values("cookie"); len(got) != 2 {
		t.Errorf("cookie values = %q, want both kept", got)
	}
	if got := h.Metric("wat_requests"); got != 1 {
		t.Errorf("wat_requests = %d, want 1", got)
	}
}

func TestLocalResponse(t *testing.T) {
	h := harness.New(t, harness.Config{Wasm: watGuest})
	called := false
	h.SetUpstream(func(*harness.UpstreamRequest) *harness.Response { called = true; return &harness.Response{Status: 200} })
	res := h.Get("/local")
	res.ExpectStatus(t, 403).ExpectLocal(t).ExpectResponseHeader(t, "x-wat", "local")
	if string(res.Response.Body) != "forbidden" || res.LocalDetails != "denied" {
		t.Errorf("body %q details %q", res.Response.Body, res.LocalDetails)
	}
	if called || res.Upstream != nil {
		t.Error("a local response must not reach the upstream")
	}
}

func TestHTTPCall(t *testing.T) {
	testDone := make(chan struct{})
	defer close(testDone)
	tests := []struct {
		name       string
		responder  harness.ClusterFunc
		wantStatus int
		wantAnswer string
	}{
		{"ok", func(req *harness.CallRequest) (*harness.Response, error) {
			return &harness.Response{Status: 200, Headers: harness.Headers{{"x-answer", "42"}}}, nil
		}, 200, "42"},
		{"error", func(req *harness.CallRequest) (*harness.Response, error) {
			return nil, errors.New("connection refused")
		}, 503, ""},
		{"timeout", func(req *harness.CallRequest) (*harness.Response, error) {
			<-testDone
			return &harness.Response{Status: 200}, nil
		}, 503, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := harness.New(t, harness.Config{Wasm: watGuest})
			h.SetCluster("backend", tt.responder)
			res := h.Get("/call")
			res.ExpectStatus(t, tt.wantStatus)
			if tt.wantAnswer != "" {
				res.ExpectUpstreamHeader(t, "x-answer", tt.wantAnswer)
			}
			calls := h.Calls()
			if len(calls) != 1 || calls[0].Cluster != "backend" || calls[0].Method != "GET" || calls[0].Path != "/lookup" || calls[0].Authority != "origin" {
				t.Errorf("calls = %+v", calls)
			}
			if calls[0].Timeout != 3*time.Second {
				t.Errorf("timeout = %v, want 3s", calls[0].Timeout)
			}
		})
	}
}

func TestClusterAddr(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-answer", "from-server")
	}))
	t.Cleanup(srv.Close)
	h := harness.New(t, harness.Config{Wasm: watGuest})
	h.SetClusterAddr("backend", srv.Listener.Addr().String())
	h.Get("/call").ExpectStatus(t, 200).ExpectUpstreamHeader(t, "x-answer", "from-server")
}

func TestUnknownClusterFailsCall(t *testing.T) {
	h := harness.New(t, harness.Config{Wasm: watGuest})
	// proxy_http_call returns BAD_ARGUMENT; the guest answers 500.
	h.Get("/call").ExpectStatus(t, 500).ExpectLocal(t)
}

func TestFailurePolicy(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		name := map[bool]string{false: "closed", true: "open"}[failOpen]
		t.Run(name, func(t *testing.T) {
			h := harness.New(t, harness.Config{Wasm: watGuest, FailOpen: failOpen})
			res := h.Get("/trap")
			if res.Err == nil {
				t.Fatal("a trap must surface as Result.Err")
			}
			if failOpen {
				res.ExpectStatus(t, 200).ExpectForwarded(t).ExpectNoUpstreamHeader(t, "x-wat")
			} else {
				res.ExpectStatus(t, 503)
			}
			// The VM is replaced (rate-limited) and serves again.
			deadline := time.Now().Add(5 * time.Second)
			for h.Host().Restarts() == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			h.Get("/").ExpectStatus(t, 200).ExpectUpstreamHeader(t, "x-wat", "1")
		})
	}
}

func TestRejectedConfiguration(t *testing.T) {
	_, err := harness.Load(t, harness.Config{Wasm: watGuest, PluginConfig: "reject"})
	if err == nil || !strings.Contains(err.Error(), "rejected") {
		t.Fatalf("Load = %v, want a rejected configuration", err)
	}
}

func TestTickAndClock(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := harness.New(t, harness.Config{Wasm: watGuest, VMs: 3, Start: start})
	h.Tick()
	h.Tick()
	if got := h.Metric("wat_ticks"); got != 6 {
		t.Errorf("wat_ticks = %d after 2 ticks of 3 VMs, want 6", got)
	}
	c := h.Clock()
	n0 := c.Nanotime()
	c.Advance(time.Hour)
	if !c.Now().Equal(start.Add(time.Hour)) || c.Nanotime()-n0 != int64(time.Hour) {
		t.Errorf("clock after Advance: %v %d", c.Now(), c.Nanotime()-n0)
	}
}

func TestRequestBody(t *testing.T) {
	h := harness.New(t, harness.Config{Wasm: watGuest})
	h.SetUpstream(func(r *harness.UpstreamRequest) *harness.Response {
		return &harness.Response{Status: 201, Headers: harness.Headers{{"set-cookie", "a=1"}, {"set-cookie", "b=2"}}, Body: r.Body}
	})
	res := h.Do(&harness.Request{Method: "POST", Path: "/echo", Body: []byte("hello")})
	res.ExpectStatus(t, 201)
	if string(res.Response.Body) != "hello" {
		t.Errorf("body = %q", res.Response.Body)
	}
	if v, ok := res.Cookie("b"); !ok || v != "2" || len(res.SetCookies()) != 2 {
		t.Errorf("set-cookie = %q", res.SetCookies())
	}
}
