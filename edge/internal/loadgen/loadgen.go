// Package loadgen is what the edge benchmarks (edgebench, caddybench) share:
// the loopback upstream and origin they proxy to, the closed-loop load
// generator, and the alternating rounds that compare a proxy with the filter
// against the same proxy without it.
package loadgen

import (
	"flag"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Host is the Host header of every request the benchmarks send.
const Host = "shop.example"

// Listen listens on a free loopback port.
func Listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// Serve serves h on a free loopback port; stop shuts the server down.
func Serve(h fasthttp.RequestHandler) (addr string, stop func(), err error) {
	ln, err := Listen()
	if err != nil {
		return "", nil, err
	}
	srv := &fasthttp.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Shutdown() }, nil
}

// Upstream serves the benchmarks' page: 1 KiB of text/html.
func Upstream() (addr string, stop func(), err error) {
	body := []byte(strings.Repeat("x", 1024))
	return Serve(func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Content-Type", "text/html")
		ctx.SetBody(body)
	})
}

// Origin is a stand-in for the filter's origin cluster that answers 404 at
// once; calls counts the requests it got.
func Origin(calls *atomic.Int64) (addr string, stop func(), err error) {
	return Serve(func(ctx *fasthttp.RequestCtx) {
		calls.Add(1)
		ctx.SetStatusCode(fasthttp.StatusNotFound)
	})
}

// Cookie is the Cookie header that sends back the cookies resp sets (the
// session cookie of a first response through the filter), so later requests
// take the filter's warm path.
func Cookie(resp *fasthttp.Response) string {
	var parts []string
	for _, v := range resp.Header.Cookies() {
		c := fasthttp.AcquireCookie()
		if c.ParseBytes(v) == nil {
			parts = append(parts, string(c.Key())+"="+string(c.Value()))
		}
		fasthttp.ReleaseCookie(c)
	}
	return strings.Join(parts, "; ")
}

// Result is one round of load.
type Result struct {
	N, Errs  int64 // answered requests; failed ones (transport errors and 5xx)
	RPS      float64
	P50, P99 time.Duration
	CPU      time.Duration // CPU time of the proxy's process during the round, where measured
}

// Run sends GET path to addr (Host: shop.example, with cookie) from conns
// connections, each sending its next request when the last is answered, for
// d, and reports throughput and latency.
func Run(addr, path, cookie string, conns int, d time.Duration) Result {
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
				req.Header.SetHost(Host)
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
	return Result{N: n.Load(), Errs: errs.Load(), RPS: float64(n.Load()) / el.Seconds(), P50: Quantile(lat, 0.5), P99: Quantile(lat, 0.99)}
}

// Quantile is the f-quantile (0 to 1) of the sorted latencies lat, to the
// microsecond; 0 for none.
func Quantile(lat []time.Duration, f float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[int(f*float64(len(lat)-1))].Round(time.Microsecond)
}

// Rounds are the results of Alternate.
type Rounds struct {
	Off, On []Result  // each round without and with the filter
	Ratios  []float64 // per round, on/off throughput, sorted
}

// Alternate runs n rounds of off (the proxy without the filter) and on (with
// it), alternating, so that drift on a shared machine hits both alike.
func Alternate(n int, off, on func() Result) Rounds {
	var r Rounds
	for i := 0; i < n; i++ {
		a, b := off(), on()
		r.Off, r.On = append(r.Off, a), append(r.On, b)
		if a.RPS > 0 {
			r.Ratios = append(r.Ratios, b.RPS/a.RPS)
		}
	}
	sort.Float64s(r.Ratios)
	return r
}

// Medians returns the median round of each mode by throughput.
func (r Rounds) Medians() (off, on Result) { return median(r.Off), median(r.On) }

func median(rs []Result) Result {
	rs = append([]Result(nil), rs...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].RPS < rs[j].RPS })
	return rs[len(rs)/2]
}

// Ratio is the summary line of the per-round ratios, named name ("on/off"),
// against target; "" without rounds.
func (r Rounds) Ratio(name string, target float64) string {
	if len(r.Ratios) == 0 {
		return ""
	}
	return fmt.Sprintf("ratio %s: %.2f (median of per-round ratios; min %.2f, max %.2f; target >= %.2f)",
		name, r.Ratios[len(r.Ratios)/2], r.Ratios[0], r.Ratios[len(r.Ratios)-1], target)
}

// Options are the command-line options the benchmarks share.
type Options struct {
	Wasm, PluginConfigFile, Path string
	Duration                     time.Duration
	Rounds, Conns, VMs           int
}

// Flags defines the options' flags on flag.CommandLine; pluginConfig and
// vms say what their defaults mean for the proxy measured.
func (o *Options) Flags(pluginConfig, vms string) {
	flag.StringVar(&o.Wasm, "wasm", "build/sessionedge.wasm", "filter module")
	flag.StringVar(&o.PluginConfigFile, "plugin-config-file", "", "plugin configuration file ("+pluginConfig+")")
	flag.DurationVar(&o.Duration, "duration", time.Second, "length of one round")
	flag.IntVar(&o.Rounds, "rounds", 7, "rounds per mode (alternating)")
	flag.IntVar(&o.Conns, "conns", 16, "concurrent connections of the load generator")
	flag.IntVar(&o.VMs, "vms", 0, "filter VMs ("+vms+")")
	flag.StringVar(&o.Path, "path", "/products/42", "request path")
}
