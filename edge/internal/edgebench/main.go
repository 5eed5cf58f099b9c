// Command edgebench measures the edge proxy's throughput with the filter on
// and off against the same upstream, in one run, on loopback only. It starts
// an upstream, two edges (filter on, filter off) and a Go load generator in
// one process, alternates rounds between the two edges so drift hits both
// alike, and prints a table. The number of requests is bounded by -duration
// and -rounds.
//
// With -calls-rate it measures the filter's HTTP calls instead (calls.go).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessionedge/sessionedge/edge/proxy"
	"github.com/valyala/fasthttp"
)

func main() {
	var o options
	flag.StringVar(&o.wasm, "wasm", "build/sessionedge.wasm", "filter module")
	flag.StringVar(&o.pluginConfigFile, "plugin-config-file", "", "plugin configuration file (JSON; default {})")
	flag.DurationVar(&o.duration, "duration", time.Second, "length of one round")
	flag.IntVar(&o.rounds, "rounds", 7, "rounds per mode (alternating)")
	flag.IntVar(&o.conns, "conns", 16, "concurrent connections of the load generator")
	flag.IntVar(&o.vms, "vms", 0, "filter VMs (default GOMAXPROCS)")
	flag.StringVar(&o.path, "path", "/products/42", "request path")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run")
	flag.IntVar(&o.callsRate, "calls-rate", 0, "measure HTTP calls of the .wat guest at this rate per second instead (-wasm edge/testdata/conformance.wasm)")
	flag.DurationVar(&o.originDelay, "origin-delay", 0, "with -calls-rate: time the origin takes to answer")
	flag.Parse()
	if o.callsRate > 0 {
		if err := runCalls(o); err != nil {
			fmt.Fprintln(os.Stderr, "edgebench:", err)
			os.Exit(1)
		}
		return
	}
	if o.cpuProfile != "" {
		if f, err := os.Create(o.cpuProfile); err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	pluginConfig := []byte("{}")
	if o.pluginConfigFile != "" {
		b, err := os.ReadFile(o.pluginConfigFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "edgebench:", err)
			os.Exit(1)
		}
		pluginConfig = b
	}
	if err := run(o.wasm, pluginConfig, o.duration, o.rounds, o.conns, o.vms, o.path); err != nil {
		fmt.Fprintln(os.Stderr, "edgebench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

type options struct {
	wasm, pluginConfigFile, path, cpuProfile string
	duration, originDelay                    time.Duration
	rounds, conns, vms, callsRate            int
}

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func run(wasm string, pluginConfig []byte, duration time.Duration, rounds, conns, vms int, path string) error {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	upLn, err := listen()
	if err != nil {
		return err
	}
	body := []byte(strings.Repeat("x", 1024))
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Content-Type", "text/html")
		ctx.SetBody(body)
	}}
	go func() { _ = up.Serve(upLn) }()
	defer up.Shutdown()

	// A fake origin for the filter's HTTP calls answers 404 quickly.
	orLn, err := listen()
	if err != nil {
		return err
	}
	origin := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(404) }}
	go func() { _ = origin.Serve(orLn) }()
	defer origin.Shutdown()

	type edge struct {
		name string
		addr string
		srv  *proxy.Server
	}
	var edges []*edge
	for _, noFilter := range []bool{true, false} {
		s, err := proxy.New(context.Background(), proxy.Config{
			Upstream:     upLn.Addr().String(),
			Wasm:         wasm,
			PluginConfig: pluginConfig,
			Clusters:     map[string]string{"origin": orLn.Addr().String()},
			VMs:          vms,
			NoFilter:     noFilter,
			FailOpen:     true,
			Logger:       quiet,
		})
		if err != nil {
			return err
		}
		ln, err := listen()
		if err != nil {
			return err
		}
		go func() { _ = s.Serve(ln) }()
		name := "filter on"
		if noFilter {
			name = "filter off"
		}
		edges = append(edges, &edge{name: name, addr: ln.Addr().String(), srv: s})
		defer s.Shutdown(context.Background())
	}

	// Warm up and pick up the session cookie the filter sets, so the rounds
	// measure the warm path (valid cookie, cached context).
	cookie := ""
	{
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + edges[1].addr + path)
		if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil {
			return fmt.Errorf("warm-up request: %w", err)
		}
		var parts []string
		for _, v := range resp.Header.Cookies() {
			c := fasthttp.AcquireCookie()
			if c.ParseBytes(v) == nil {
				parts = append(parts, string(c.Key())+"="+string(c.Value()))
			}
			fasthttp.ReleaseCookie(c)
		}
		cookie = strings.Join(parts, "; ")
	}

	var offs, ons []loadResult
	var ratios []float64
	for r := 0; r < rounds; r++ {
		off := load(edges[0].addr, path, cookie, conns, duration)
		on := load(edges[1].addr, path, cookie, conns, duration)
		offs, ons = append(offs, off), append(ons, on)
		if off.rps > 0 {
			ratios = append(ratios, on.rps/off.rps)
		}
	}
	median := func(rs []loadResult) loadResult {
		sort.Slice(rs, func(i, j int) bool { return rs[i].rps < rs[j].rps })
		return rs[len(rs)/2]
	}
	sort.Float64s(ratios)
	off, on := median(offs), median(ons)
	fmt.Printf("edge proxy throughput, loopback, %d conns, %d alternating rounds of %v per mode, GOMAXPROCS=%d\n", conns, rounds, duration, runtime.GOMAXPROCS(0))
	fmt.Printf("wasm: %s  session cookie reused: %v\n\n", wasm, cookie != "")
	fmt.Printf("| mode | req/s (median round) | p50 | p99 | errors |\n|---|---:|---:|---:|---:|\n")
	for _, x := range []struct {
		n string
		r loadResult
	}{{"filter off", off}, {"filter on", on}} {
		fmt.Printf("| %s | %.0f | %v | %v | %d |\n", x.n, x.r.rps, x.r.p50, x.r.p99, x.r.errs)
	}
	if len(ratios) > 0 {
		fmt.Printf("\nratio on/off: %.2f (median of per-round ratios; min %.2f, max %.2f; target >= 0.85)\n", ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1])
	}
	return nil
}

type loadResult struct {
	n, errs  int64
	rps      float64
	p50, p99 time.Duration
}

// load sends requests from conns goroutines for d and reports throughput
// and latency.
func load(addr, path, cookie string, conns int, d time.Duration) loadResult {
	client := &fasthttp.HostClient{Addr: addr, MaxConns: conns, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	var n, errs atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			local := make([]time.Duration, 0, 1<<14)
			for time.Now().Before(deadline) {
				req.Reset()
				req.SetRequestURI("http://" + addr + path)
				req.Header.SetHost("shop.example")
				if cookie != "" {
					req.Header.Set("Cookie", cookie)
				}
				t0 := time.Now()
				err := client.Do(req, resp)
				if err != nil || resp.StatusCode() >= 500 {
					errs.Add(1)
					continue
				}
				local = append(local, time.Since(t0))
				n.Add(1)
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(f float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(f*float64(len(lat)-1))].Round(time.Microsecond)
	}
	return loadResult{n: n.Load(), errs: errs.Load(), rps: float64(n.Load()) / el.Seconds(), p50: q(0.5), p99: q(0.99)}
}
