package proxy_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/edge/proxy"
	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/valyala/fasthttp"
)

const watGuest = "../testdata/conformance.wasm"

// serve runs srv on a free loopback port until the test ends and returns
// its address.
func serve(t testing.TB, srv *fasthttp.Server) string {
	t.Helper()
	ln := testbin.Listen(t)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { shutdown(srv) })
	return ln.Addr().String()
}

// startUpstream starts an upstream that echoes what it received in headers
// and sets two cookies.
func startUpstream(t testing.TB) string {
	return serve(t, &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("x-got-wat", string(ctx.Request.Header.Peek("x-wat")))
		ctx.Response.Header.Set("x-got-xff", string(ctx.Request.Header.Peek("x-forwarded-for")))
		ctx.Response.Header.Set("x-got-proto", string(ctx.Request.Header.Peek("x-forwarded-proto")))
		ctx.Response.Header.Set("x-got-answer", string(ctx.Request.Header.Peek("x-answer")))
		ctx.Response.Header.Set("x-got-path", string(ctx.RequestURI()))
		ctx.Response.Header.Add("Set-Cookie", "a=1; Path=/")
		ctx.Response.Header.Add("Set-Cookie", "b=2; Path=/")
		ctx.SetBody(append([]byte("echo:"), ctx.Request.Body()...))
	}})
}

func startCluster(t testing.TB) string {
	return serve(t, &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("x-answer", "from-cluster")
	}})
}

type edge struct {
	url, admin string
}

func startEdge(t testing.TB, cfg proxy.Config) edge {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := proxy.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln := testbin.Listen(t)
	aln := testbin.Listen(t)
	go func() { _ = s.Serve(ln) }()
	go func() { _ = s.ServeAdmin(aln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return edge{url: "http://" + ln.Addr().String(), admin: "http://" + aln.Addr().String()}
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return send(t, req)
}

// post sends body (text/plain) to url and returns the response and its body.
func post(t *testing.T, url, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "text/plain")
	return send(t, req)
}

func send(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestProxy(t *testing.T) {
	up := startUpstream(t)
	e := startEdge(t, proxy.Config{Upstream: up, Wasm: watGuest, VMs: 2, Clusters: map[string]string{"backend": startCluster(t)}})

	tests := []struct {
		name, path string
		hdr        []string
		check      func(t *testing.T, res *http.Response, body string)
	}{
		{"filtered", "/x?q=1", []string{"X-Forwarded-For", "203.0.113.9"}, func(t *testing.T, res *http.Response, body string) {
			if res.StatusCode != 200 || body != "echo:" {
				t.Errorf("status %d body %q", res.StatusCode, body)
			}
			if res.Header.Get("x-got-wat") != "1" || res.Header.Get("x-wat-response") != "1" {
				t.Errorf("filter did not run: %v", res.Header)
			}
			if got := res.Header.Get("x-got-xff"); got != "203.0.113.9, 127.0.0.1" {
				t.Errorf("x-forwarded-for = %q", got)
			}
			if res.Header.Get("x-got-proto") != "http" || res.Header.Get("x-got-path") != "/x?q=1" {
				t.Errorf("proto/path: %v", res.Header)
			}
			if got := res.Header.Values("Set-Cookie"); len(got) != 2 {
				t.Errorf("Set-Cookie = %q, want both", got)
			}
		}},
		{"local", "/local", nil, func(t *testing.T, res *http.Response, body string) {
			if res.StatusCode != 403 || body != "forbidden" || res.Header.Get("x-wat") != "local" {
				t.Errorf("status %d body %q hdr %v", res.StatusCode, body, res.Header)
			}
		}},
		{"http call", "/call", nil, func(t *testing.T, res *http.Response, body string) {
			if res.StatusCode != 200 || res.Header.Get("x-got-answer") != "from-cluster" {
				t.Errorf("status %d hdr %v", res.StatusCode, res.Header)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := get(t, e.url+tt.path, tt.hdr...)
			tt.check(t, res, body)
		})
	}

	t.Run("admin", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			if res, _ := get(t, e.admin+p); res.StatusCode != 200 {
				t.Errorf("%s = %d", p, res.StatusCode)
			}
		}
		_, body := get(t, e.admin+"/metrics")
		for _, want := range []string{"edge_requests_total", "edge_local_replies_total 1", "# TYPE wasm_wat_requests counter", "wasm_wat_requests 3"} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %q:\n%s", want, body)
			}
		}
	})
}

func TestProxyPostBody(t *testing.T) {
	e := startEdge(t, proxy.Config{Upstream: startUpstream(t), Wasm: watGuest, VMs: 1})
	if _, b := post(t, e.url+"/p", "payload"); b != "echo:payload" {
		t.Errorf("body = %q", b)
	}
}

func TestFailurePolicy(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		t.Run(map[bool]string{false: "closed", true: "open"}[failOpen], func(t *testing.T) {
			e := startEdge(t, proxy.Config{Upstream: startUpstream(t), Wasm: watGuest, VMs: 1, FailOpen: failOpen})
			res, _ := get(t, e.url+"/trap")
			want := 503
			if failOpen {
				want = 200
			}
			if res.StatusCode != want {
				t.Errorf("status = %d, want %d", res.StatusCode, want)
			}
		})
	}
}

func TestNoFilter(t *testing.T) {
	e := startEdge(t, proxy.Config{Upstream: startUpstream(t), NoFilter: true})
	res, body := get(t, e.url+"/local")
	if res.StatusCode != 200 || body != "echo:" || res.Header.Get("x-got-wat") != "" {
		t.Errorf("status %d body %q", res.StatusCode, body)
	}
	if got := res.Header.Values("Set-Cookie"); len(got) != 2 {
		t.Errorf("Set-Cookie = %q", got)
	}
}

func TestUpstreamDown(t *testing.T) {
	addr := testbin.FreeAddr(t)
	e := startEdge(t, proxy.Config{Upstream: addr, Wasm: watGuest, VMs: 1})
	if res, _ := get(t, e.url+"/"); res.StatusCode != 502 {
		t.Errorf("status = %d, want 502", res.StatusCode)
	}
}

func TestRunGracefulShutdown(t *testing.T) {
	addr := testbin.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- proxy.Run(ctx, proxy.Config{Listen: addr, Admin: "-", Upstream: startUpstream(t), Wasm: watGuest, VMs: 1,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/")
		if err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("edge did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestConfigValidation(t *testing.T) {
	if _, err := proxy.New(context.Background(), proxy.Config{}); err != proxy.ErrNoUpstream {
		t.Errorf("New without upstream = %v", err)
	}
}

// shutdown stops a test server without waiting forever for clients that keep
// connections open.
func shutdown(srv *fasthttp.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.ShutdownWithContext(ctx)
}

// TestResponsePhaseFailure checks the failure policy once the upstream has
// answered: the request is never sent twice; failing open hands the client
// the upstream response unfiltered.
func TestResponsePhaseFailure(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		t.Run(map[bool]string{false: "closed", true: "open"}[failOpen], func(t *testing.T) {
			var hits atomic.Int64
			upAddr := serve(t, &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
				hits.Add(1)
				ctx.Response.Header.Set("x-trap-response", "1")
				ctx.SetBodyString("from upstream")
			}})
			e := startEdge(t, proxy.Config{Upstream: upAddr, Wasm: watGuest, VMs: 1, FailOpen: failOpen})
			res, body := get(t, e.url+"/")
			if hits.Load() != 1 {
				t.Errorf("upstream hit %d times, want 1", hits.Load())
			}
			if failOpen && (res.StatusCode != 200 || body != "from upstream") {
				t.Errorf("fail open: status %d body %q", res.StatusCode, body)
			}
			if !failOpen && res.StatusCode != 503 {
				t.Errorf("fail closed: status %d", res.StatusCode)
			}
		})
	}
}
