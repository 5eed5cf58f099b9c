package wasmhost

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// conformanceHost is a quiet host of the .wat guest with vms VMs (0: the
// default), ticking only when told, closed when the test ends.
func conformanceHost(tb testing.TB, vms int) *Host {
	tb.Helper()
	h, err := New(context.Background(), Config{
		WasmPath:    "../testdata/conformance.wasm",
		VMs:         vms,
		ManualTicks: true,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = h.Close(context.Background()) })
	return h
}

func benchProbe(b *testing.B) (*Host, *vm) {
	b.Helper()
	h := conformanceHost(b, 1)
	return h, h.slots[0].Load()
}

// BenchmarkHostCall measures one guest export that calls one host function,
// against the same export shape calling nothing (noop): the difference is the
// cost of a host call on the raw stack API.
func BenchmarkHostCall(b *testing.B) {
	h, v := benchProbe(b)
	s, err := h.NewStream(StreamInfo{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	_ = s.reqHeaders.Add(":path", "/bench")
	_ = s.reqHeaders.Add("cookie", "a=1")
	v.mem.Write(addrKey, []byte("cookie"))
	v.mem.Write(addrVal, []byte("value"))
	cases := []struct {
		name string
		fn   string
		args []uint64
	}{
		{"noop", "proxy_on_context_create", []uint64{99, 1}},
		{"get_log_level", "probe_proxy_get_log_level", []uint64{addrRet}},
		{"get_header_map_value", "probe_proxy_get_header_map_value", []uint64{0, addrKey, 6, addrRet, addrRet2}},
		{"replace_header_map_value", "probe_proxy_replace_header_map_value", []uint64{0, addrKey, 6, addrVal, 5}},
		{"get_property", "probe_proxy_get_property", []uint64{0, 0, addrRet, addrRet2}},
	}
	v.mem.Write(addrBlob, []byte("request\x00path"))
	cases[4].args = []uint64{addrBlob, 12, addrRet, addrRet2}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			f := v.mod.ExportedFunction(c.fn)
			reset := v.mod.ExportedFunction("probe_reset_heap")
			stack := make([]uint64, 8)
			v.mu.Lock()
			defer v.mu.Unlock()
			s.state = stateInCallback
			v.cur, v.phase = s, phaseStream
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%1024 == 0 {
					// Returned bytes come from the guest's bump heap: rewind it.
					if err := reset.CallWithStack(v.ctx, stack); err != nil {
						b.Fatal(err)
					}
				}
				copy(stack, c.args)
				if err := f.CallWithStack(v.ctx, stack); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			v.cur, v.phase = nil, phaseNone
			s.state = stateIdle
		})
	}
}

// BenchmarkStream is the per-request cost of a filter through the host: a
// stream with 8 request headers through request and response headers, with
// the .wat guest adding, removing and replacing headers.
func BenchmarkStream(b *testing.B) {
	h, _ := benchProbe(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := oneBenchStream(ctx, h); err != nil {
			b.Fatal(err)
		}
	}
}

func oneBenchStream(ctx context.Context, h *Host) error {
	s, err := benchExchange(ctx, h, "__Host-sid=abcdef", "x-replace", "old")
	if err != nil {
		return err
	}
	s.Close()
	return nil
}

// benchExchange runs the headers of a GET https://shop.example/products/42
// with cookie (none if "") and more request headers (name, value pairs),
// and of its 200 text/html answer, through a new stream of h, and returns
// the stream for the caller to close.
func benchExchange(ctx context.Context, h *Host, cookie string, more ...string) (*Stream, error) {
	s, err := h.NewStream(StreamInfo{ID: "id", SourceAddress: "127.0.0.1:1234"})
	if err != nil {
		return nil, err
	}
	rh := s.RequestHeaders()
	_ = rh.Add(":authority", "shop.example")
	_ = rh.Add(":path", "/products/42")
	_ = rh.Add(":method", "GET")
	_ = rh.Add(":scheme", "https")
	_ = rh.Add("user-agent", "bench")
	_ = rh.Add("accept", "*/*")
	if cookie != "" {
		_ = rh.Add("cookie", cookie)
	}
	for i := 0; i+1 < len(more); i += 2 {
		_ = rh.Add(more[i], more[i+1])
	}
	if _, err := s.OnRequestHeaders(ctx, true); err != nil {
		return s, err
	}
	_ = s.ResponseHeaders().Add(":status", "200")
	_ = s.ResponseHeaders().Add("content-type", "text/html")
	if _, err := s.OnResponseHeaders(ctx, false); err != nil {
		return s, err
	}
	return s, nil
}

// BenchmarkStreamParallel runs streams from GOMAXPROCS goroutines over as
// many VMs.
func BenchmarkStreamParallel(b *testing.B) {
	h := conformanceHost(b, 0)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := oneBenchStream(ctx, h); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestStreamAllocations proves the host adds no allocation per request once
// warm: stream, maps and call stacks are reused.
func TestStreamAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items)")
	}
	h := conformanceHost(t, 1)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(200, func() {
		if err := oneBenchStream(ctx, h); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("a request through the host allocates %.1f times, want 0", allocs)
	}
}

// benchGuest is the guest the benchmarks run: EDGE_BENCH_WASM (default: the
// .wat guest) with the plugin configuration in EDGE_BENCH_PLUGIN_CONFIG_FILE.
func benchGuest(b *testing.B) (wasm string, pluginConfig []byte) {
	wasm = os.Getenv("EDGE_BENCH_WASM")
	if wasm == "" {
		wasm = "../testdata/conformance.wasm"
	}
	if f := os.Getenv("EDGE_BENCH_PLUGIN_CONFIG_FILE"); f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		pluginConfig = data
	}
	return wasm, pluginConfig
}

// BenchmarkGuestRequest is the per-request cost of the guest named by
// EDGE_BENCH_WASM (default: the .wat guest) through the host, on its warm
// path: the first response's Set-Cookie values are sent back as the cookie
// of every request, and a fake "origin" cluster answers 404.
func BenchmarkGuestRequest(b *testing.B) {
	wasm, pluginConfig := benchGuest(b)
	h, err := New(context.Background(), Config{
		WasmPath:     wasm,
		PluginConfig: pluginConfig,
		VMs:          1,
		ManualTicks:  true,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Clusters: Clusters{"origin": ClusterFunc(func(ctx context.Context, req *CallRequest, resp *CallResponse) error {
			resp.SetStatus(404)
			return nil
		})},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(context.Background())
	ctx := context.Background()
	cookie := ""
	one := func() error {
		s, err := benchExchange(ctx, h, cookie)
		if s != nil {
			defer s.Close()
		}
		if err != nil {
			return err
		}
		if cookie == "" {
			var parts []string
			for _, sc := range s.ResponseHeaders().Values("set-cookie") {
				nv, _, _ := strings.Cut(sc, ";")
				parts = append(parts, strings.TrimSpace(nv))
			}
			cookie = strings.Join(parts, "; ")
		}
		return nil
	}
	benchWarm(b, one)
}

// benchHeaders is the request of BenchmarkLifecycle: what a browser sends,
// about.
type benchHeaders struct{ cookie string }

func (h *benchHeaders) AddHeaders(m *HeaderMap) error {
	_ = m.Add("user-agent", "Mozilla/5.0 (X11; Linux x86_64) bench")
	_ = m.Add("accept", "text/html,application/xhtml+xml")
	_ = m.Add("accept-encoding", "gzip, deflate, br")
	_ = m.Add("accept-language", "en-GB,en;q=0.9")
	if h.cookie != "" {
		_ = m.Add("cookie", h.cookie)
	}
	_ = m.Add("x-forwarded-for", "127.0.0.1")
	return m.Add("x-forwarded-proto", "https")
}

// BenchmarkLifecycle measures one request through Lifecycle.Run with an
// upstream in memory (5 response headers, a 1 KiB body), the filter off and
// on (EDGE_BENCH_WASM, as BenchmarkGuestRequest): against
// BenchmarkGuestRequest, the difference is the lifecycle's own work.
func BenchmarkLifecycle(b *testing.B) {
	wasm, pluginConfig := benchGuest(b)
	body := strings.Repeat("x", 1024)
	var rd strings.Reader
	up := UpstreamFunc(func(_ context.Context, req *UpstreamRequest, resp *UpstreamResponse) error {
		resp.Status = 200
		_ = resp.Headers.Add("content-type", "text/html; charset=utf-8")
		_ = resp.Headers.Add("cache-control", "no-store")
		_ = resp.Headers.Add("vary", "Cookie")
		_ = resp.Headers.Add("x-request-time", "0.001")
		_ = resp.Headers.Add("content-length", "1024")
		rd.Reset(body)
		resp.Body, resp.ContentLength = &rd, int64(len(body))
		return nil
	})
	for _, filter := range []bool{false, true} {
		b.Run(map[bool]string{false: "filter=off", true: "filter=on"}[filter], func(b *testing.B) {
			l := &Lifecycle{StripPrefixes: []string{"x-session-"}}
			if filter {
				h, err := New(context.Background(), Config{
					WasmPath: wasm, PluginConfig: pluginConfig, VMs: 1, ManualTicks: true,
					Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				})
				if err != nil {
					b.Fatal(err)
				}
				defer h.Close(context.Background())
				l.Host = h
			}
			hdr := &benchHeaders{}
			req := &Request{Method: "GET", Path: "/products/42", Authority: "shop.example", Scheme: "https", Header: hdr,
				Info: StreamInfo{ID: "id", SourceAddress: "127.0.0.1:1234", Protocol: "HTTP/1.1"}}
			buf := make([]byte, 4096)
			one := func() error {
				x := l.Run(context.Background(), req, up)
				if x.Status != 200 {
					_ = x.Close()
					return fmt.Errorf("status %d", x.Status)
				}
				if _, ok := x.BodyBytes(); !ok {
					for {
						if _, err := x.Read(buf); err != nil {
							break
						}
					}
				}
				if hdr.cookie == "" {
					var parts []string
					for i := 0; i < x.Headers.Len(); i++ {
						if k, v := x.Headers.Pair(i); string(k) == "set-cookie" {
							nv, _, _ := strings.Cut(string(v), ";")
							parts = append(parts, strings.TrimSpace(nv))
						}
					}
					hdr.cookie = strings.Join(parts, "; ")
				}
				return x.Close()
			}
			benchWarm(b, one)
		})
	}
}

// benchWarm runs one request three times untimed (minting the session and
// filling the caches), then b.N times timed.
func benchWarm(b *testing.B, one func() error) {
	for range 3 {
		if err := one(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := one(); err != nil {
			b.Fatal(err)
		}
	}
}
