package main

// The HTTP-call measure: requests through wasmhost.Lifecycle make the .wat
// guest call the "backend" cluster (a loopback fasthttp origin) and wait for
// the answer, at a fixed rate. It reports the call latency as the cluster
// sees it and how many connections the origin accepted, for the pooled
// HTTPCluster and, for comparison, the same cluster on http.DefaultClient
// (two idle connections per host).

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessionedge/sessionedge/edge/internal/loadgen"
	"github.com/sessionedge/sessionedge/edge/wasmhost"
	"github.com/valyala/fasthttp"
)

// countingListener counts the connections the origin accepts.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// timedCluster records the latency of every call.
type timedCluster struct {
	c       *wasmhost.HTTPCluster
	mu      sync.Mutex
	lat     []time.Duration
	fails   atomic.Int64
	maxBusy atomic.Int64
}

func (t *timedCluster) RoundTrip(ctx context.Context, req *wasmhost.CallRequest, resp *wasmhost.CallResponse) error {
	t0 := time.Now()
	if n := t.c.InFlight() + 1; n > t.maxBusy.Load() {
		t.maxBusy.Store(n)
	}
	err := t.c.RoundTrip(ctx, req, resp)
	d := time.Since(t0)
	if err != nil {
		t.fails.Add(1)
		return err
	}
	t.mu.Lock()
	t.lat = append(t.lat, d)
	t.mu.Unlock()
	return nil
}

func runCalls(o options) error {
	body := []byte(strings.Repeat("s", 300)) // about a session in CBOR
	delay := o.originDelay
	origin := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if delay > 0 {
			time.Sleep(delay)
		}
		ctx.Response.Header.Set("x-answer", "1")
		ctx.SetBody(body)
	}}
	fmt.Printf("origin calls through the host at %d/s for %v each, GOMAXPROCS=%d, origin delay %v\n\n", o.callsRate, o.Duration, runtime.GOMAXPROCS(0), o.originDelay)
	fmt.Printf("| client | calls | achieved/s | p50 | p90 | p99 | max | failed | origin connections | most in flight |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, mode := range []string{"pooled (HTTPCluster)", "http.DefaultClient"} {
		ln, err := loadgen.Listen()
		if err != nil {
			return err
		}
		cl := &countingListener{Listener: ln}
		go func() { _ = origin.Serve(cl) }()
		hc := &wasmhost.HTTPCluster{Addr: ln.Addr().String()}
		if mode == "http.DefaultClient" {
			hc.Client = http.DefaultClient
		}
		tc := &timedCluster{c: hc}
		host, err := wasmhost.New(context.Background(), wasmhost.Config{
			WasmPath: o.Wasm,
			Clusters: wasmhost.Clusters{"backend": tc},
			Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			return err
		}
		achieved := callLoad(&wasmhost.Lifecycle{Host: host}, o.callsRate, o.Duration)
		_ = host.Close(context.Background())
		_ = ln.Close()
		lat := tc.lat
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		q := func(f float64) time.Duration { return loadgen.Quantile(lat, f) }
		fmt.Printf("| %s | %d | %.0f | %v | %v | %v | %v | %d | %d | %d |\n", mode, len(lat), achieved, q(0.5), q(0.9), q(0.99), q(1), tc.fails.Load(), cl.n.Load(), tc.maxBusy.Load())
	}
	return nil
}

// callLoad sends rate requests per second for d, each on its own goroutine (a
// request waits for its call), and returns the rate achieved.
func callLoad(lc *wasmhost.Lifecycle, rate int, d time.Duration) float64 {
	up := wasmhost.UpstreamFunc(func(_ context.Context, _ *wasmhost.UpstreamRequest, resp *wasmhost.UpstreamResponse) error {
		resp.Status = 200
		return nil
	})
	var wg sync.WaitGroup
	var sent int64
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	for next := start; time.Since(start) < d; next = next.Add(interval) {
		time.Sleep(time.Until(next))
		sent++
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			x := lc.Run(ctx, &wasmhost.Request{Method: "GET", Path: "/call", Authority: "shop.example", Scheme: "http"}, up)
			_ = x.Close()
		}()
	}
	el := time.Since(start)
	wg.Wait()
	return float64(sent) / el.Seconds()
}
