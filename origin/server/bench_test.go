package server

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// BenchmarkGetHandler measures the GET handler on a cache hit, without the
// network.
func BenchmarkGetHandler(b *testing.B) {
	s := newServer(b, baseConfig(b))
	id := createThroughHandler(b, s, benchContext)
	var g fasthttp.RequestCtx
	setRequest(&g.Request, "GET", "/v1/sessions/"+id, keyRead)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g.Response.Reset()
		s.handle(&g)
	}
}

// benchContext is the body that creates the sessions of the benchmarks.
const benchContext = `{"context":{"currency":"EUR","custom":{"a":"b"}}}`

// newServer is a server with cfg, for calling its handler without the
// network; it shuts down when the test ends.
func newServer(tb testing.TB, cfg Config) *Server {
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

// setRequest makes req a method request of uri with API key key, asking
// for CBOR.
func setRequest(req *fasthttp.Request, method, uri, key string) {
	req.SetRequestURI(uri)
	req.Header.SetMethod(method)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", "application/cbor")
}

// createThroughHandler creates a session with body through s's handler,
// without the network, and returns its id.
func createThroughHandler(tb testing.TB, s *Server, body string) string {
	var ctx fasthttp.RequestCtx
	setRequest(&ctx.Request, "POST", "/v1/sessions", keyAll)
	ctx.Request.SetBodyString(body)
	s.handle(&ctx)
	return sessionID(tb, ctx.Response.Body())
}

// sessionID returns the id of the CBOR session in body.
func sessionID(tb testing.TB, body []byte) string {
	var s wire.Session
	if err := wire.DecodeSession(body, &s); err != nil {
		tb.Fatal(err)
	}
	return s.ID.String()
}

// BenchmarkPatchHandlerParallel measures durable PATCHes from 64 goroutines
// on distinct sessions, without the network.
func BenchmarkPatchHandlerParallel(b *testing.B) {
	s := newServer(b, baseConfig(b))
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := createThroughHandler(b, s, benchContext)
		var p fasthttp.RequestCtx
		setRequest(&p.Request, "PATCH", "/v1/sessions/"+id+"/context", keyAll)
		p.Request.SetBodyString(`{"custom":{"n":1}}`)
		for pb.Next() {
			p.Response.Reset()
			s.handle(&p)
			if p.Response.StatusCode() != 200 {
				b.Fatalf("PATCH: %d %s", p.Response.StatusCode(), p.Response.Body())
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "patches/s")
}

// BenchmarkGetLoopback measures GET over loopback HTTP with 64 clients
// (client and server in one process).
func BenchmarkGetLoopback(b *testing.B) {
	cfg := baseConfig(b)
	cfg.Logger = quietLogger()
	s := newServer(b, cfg)
	ln := listen(b)
	go s.Serve(ln)
	hc := &fasthttp.HostClient{Addr: ln.Addr().String(), MaxConns: 128}
	req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	setRequest(req, "POST", "http://x/v1/sessions", keyAll)
	req.SetBodyString(benchContext)
	if err := hc.Do(req, res); err != nil {
		b.Fatal(err)
	}
	id := sessionID(b, res.Body())
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var req fasthttp.Request
		var res fasthttp.Response
		setRequest(&req, "GET", "http://x/v1/sessions/"+id, keyRead)
		for pb.Next() {
			if err := hc.Do(&req, &res); err != nil || res.StatusCode() != 200 {
				b.Fatalf("GET: %v %d", err, res.StatusCode())
			}
		}
	})
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
