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
	"os"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/sessionedge/sessionedge/edge/internal/loadgen"
	"github.com/sessionedge/sessionedge/edge/proxy"
	"github.com/valyala/fasthttp"
)

func main() {
	var o options
	o.Flags("JSON; default {}", "default GOMAXPROCS")
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
	if o.PluginConfigFile != "" {
		b, err := os.ReadFile(o.PluginConfigFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "edgebench:", err)
			os.Exit(1)
		}
		pluginConfig = b
	}
	if err := run(o.Wasm, pluginConfig, o.Duration, o.Rounds, o.Conns, o.VMs, o.Path); err != nil {
		fmt.Fprintln(os.Stderr, "edgebench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

type options struct {
	loadgen.Options
	cpuProfile  string
	originDelay time.Duration
	callsRate   int
}

func run(wasm string, pluginConfig []byte, duration time.Duration, rounds, conns, vms int, path string) error {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	upstream, stopUpstream, err := loadgen.Upstream()
	if err != nil {
		return err
	}
	defer stopUpstream()
	// A fake origin for the filter's HTTP calls answers 404 quickly.
	origin, stopOrigin, err := loadgen.Origin(new(atomic.Int64))
	if err != nil {
		return err
	}
	defer stopOrigin()

	type edge struct {
		name string
		addr string
		srv  *proxy.Server
	}
	var edges []*edge
	for _, noFilter := range []bool{true, false} {
		s, err := proxy.New(context.Background(), proxy.Config{
			Upstream:     upstream,
			Wasm:         wasm,
			PluginConfig: pluginConfig,
			Clusters:     map[string]string{"origin": origin},
			VMs:          vms,
			NoFilter:     noFilter,
			FailOpen:     true,
			Logger:       quiet,
		})
		if err != nil {
			return err
		}
		ln, err := loadgen.Listen()
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
		cookie = loadgen.Cookie(resp)
	}

	rs := loadgen.Alternate(rounds,
		func() loadgen.Result { return loadgen.Run(edges[0].addr, path, cookie, conns, duration) },
		func() loadgen.Result { return loadgen.Run(edges[1].addr, path, cookie, conns, duration) })
	off, on := rs.Medians()
	fmt.Printf("edge proxy throughput, loopback, %d conns, %d alternating rounds of %v per mode, GOMAXPROCS=%d\n", conns, rounds, duration, runtime.GOMAXPROCS(0))
	fmt.Printf("wasm: %s  session cookie reused: %v\n\n", wasm, cookie != "")
	fmt.Printf("| mode | req/s (median round) | p50 | p99 | errors |\n|---|---:|---:|---:|---:|\n")
	for _, x := range []struct {
		n string
		r loadgen.Result
	}{{"filter off", off}, {"filter on", on}} {
		fmt.Printf("| %s | %.0f | %v | %v | %d |\n", x.n, x.r.RPS, x.r.P50, x.r.P99, x.r.Errs)
	}
	if line := rs.Ratio("on/off", 0.90); line != "" {
		fmt.Printf("\n%s\n", line)
	}
	return nil
}
