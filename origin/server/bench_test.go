package server

import (
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// BenchmarkGetHandler measures the GET handler on a cache hit, without the
// network.
func BenchmarkGetHandler(b *testing.B) {
	cfg := baseConfig(b)
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(b.Context())
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/v1/sessions")
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.Header.Set("Authorization", "Bearer "+keyAll)
	ctx.Request.Header.Set("Accept", "application/cbor")
	ctx.Request.SetBodyString(`{"context":{"currency":"EUR","custom":{"a":"b"}}}`)
	s.handle(&ctx)
	sess := decodeForBench(b, ctx.Response.Body())
	var g fasthttp.RequestCtx
	g.Request.SetRequestURI("/v1/sessions/" + sess)
	g.Request.Header.SetMethod("GET")
	g.Request.Header.Set("Accept", "application/cbor")
	g.Request.Header.Set("Authorization", "Bearer "+keyRead)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g.Response.Reset()
		s.handle(&g)
	}
}

func decodeForBench(b *testing.B, body []byte) string { return decodeForBenchTB(b, body) }

func decodeForBenchTB(tb testing.TB, body []byte) string {
	var s wire.Session
	if err := wire.DecodeSession(body, &s); err != nil {
		tb.Fatal(err)
	}
	return s.ID.String()
}

// BenchmarkPatchHandlerParallel measures durable PATCHes from 64 goroutines
// on distinct sessions, without the network.
func BenchmarkPatchHandlerParallel(b *testing.B) {
	cfg := baseConfig(b)
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(b.Context())
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI("/v1/sessions")
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.Header.Set("Authorization", "Bearer "+keyAll)
		ctx.Request.Header.Set("Accept", "application/cbor")
		ctx.Request.SetBodyString(`{"context":{"currency":"EUR","custom":{"a":"b"}}}`)
		s.handle(&ctx)
		id := decodeForBench(b, ctx.Response.Body())
		var p fasthttp.RequestCtx
		p.Request.SetRequestURI("/v1/sessions/" + id + "/context")
		p.Request.Header.SetMethod("PATCH")
		p.Request.Header.Set("Authorization", "Bearer "+keyAll)
		p.Request.Header.Set("Accept", "application/cbor")
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
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Shutdown(b.Context())
	hc := &fasthttp.HostClient{Addr: ln.Addr().String(), MaxConns: 128}
	req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI("http://x/v1/sessions")
	req.Header.SetMethod("POST")
	req.Header.Set("Authorization", "Bearer "+keyAll)
	req.Header.Set("Accept", "application/cbor")
	req.SetBodyString(`{"context":{"currency":"EUR","custom":{"a":"b"}}}`)
	if err := hc.Do(req, res); err != nil {
		b.Fatal(err)
	}
	id := decodeForBench(b, res.Body())
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var req fasthttp.Request
		var res fasthttp.Response
		req.SetRequestURI("http://x/v1/sessions/" + id)
		req.Header.Set("Authorization", "Bearer "+keyRead)
		req.Header.Set("Accept", "application/cbor")
		for pb.Next() {
			if err := hc.Do(&req, &res); err != nil || res.StatusCode() != 200 {
				b.Fatalf("GET: %v %d", err, res.StatusCode())
			}
		}
	})
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
