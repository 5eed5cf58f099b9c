// Command caddybench measures what the proxy_wasm handler costs in Caddy:
// the throughput of Caddy's reverse_proxy with the handler in front of it
// against reverse_proxy alone, in one Caddy process (the built binary, two
// sites on two loopback ports) in front of one upstream, alternating
// rounds between the two so drift on a shared machine hits both alike. It
// prints a table and the ratio with its range over the rounds.
//
// The plugin configuration goes to Caddy in a file (0600); the session
// cookie of a first response is sent on every request, so the filter runs
// its warm path. The filter's origin cluster is a local server that
// answers 404 at once.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	var o options
	flag.StringVar(&o.caddy, "caddy", "build/bin/caddy", "the Caddy binary with proxy_wasm (make build)")
	flag.StringVar(&o.wasm, "wasm", "build/sessionedge.wasm", "filter module")
	flag.StringVar(&o.pluginConfigFile, "plugin-config-file", "", "plugin configuration file (default: none)")
	flag.DurationVar(&o.duration, "duration", time.Second, "length of one round")
	flag.IntVar(&o.rounds, "rounds", 7, "rounds per mode (alternating)")
	flag.IntVar(&o.conns, "conns", 16, "concurrent connections of the load generator")
	flag.IntVar(&o.vms, "vms", 0, "filter VMs (default: GOMAXPROCS of Caddy)")
	flag.StringVar(&o.path, "path", "/products/42", "request path")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "after the rounds, write a CPU profile of Caddy during one more round with the handler")
	flag.StringVar(&o.cpuProfilePlain, "cpuprofile-plain", "", "likewise, during one more round without the handler")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "caddybench:", err)
		os.Exit(1)
	}
}

type options struct {
	caddy, wasm, pluginConfigFile, path, cpuProfile, cpuProfilePlain string
	duration                                                         time.Duration
	rounds, conns, vms                                               int
}

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func freeAddr() (string, error) {
	ln, err := listen()
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func run(o options) error {
	for _, p := range []*string{&o.caddy, &o.wasm, &o.pluginConfigFile} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return err
			}
			*p = abs
		}
	}
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
	orLn, err := listen()
	if err != nil {
		return err
	}
	var originCalls atomic.Int64
	origin := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		originCalls.Add(1)
		ctx.SetStatusCode(404)
	}}
	go func() { _ = origin.Serve(orLn) }()
	defer origin.Shutdown()

	dir, err := os.MkdirTemp("", "caddybench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	plain, filtered, admin := must(freeAddr()), must(freeAddr()), must(freeAddr())
	var handler strings.Builder
	fmt.Fprintf(&handler, "\t\twasm %s\n\t\tcluster origin %s\n", o.wasm, orLn.Addr())
	if o.pluginConfigFile != "" {
		fmt.Fprintf(&handler, "\t\tplugin_config_file %s\n", o.pluginConfigFile)
	}
	if o.vms > 0 {
		fmt.Fprintf(&handler, "\t\tvms %d\n", o.vms)
	}
	caddyfile := fmt.Sprintf(`{
	admin %s
	auto_https off
	persist_config off
}

http://:%s {
	bind 127.0.0.1
	reverse_proxy %s
}

http://:%s {
	bind 127.0.0.1
	proxy_wasm {
%s	}
	reverse_proxy %s
}
`, admin, port(plain), upLn.Addr(), port(filtered), handler.String(), upLn.Addr())
	cf := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cf, []byte(caddyfile), 0o600); err != nil {
		return err
	}
	var log bytes.Buffer
	cmd := exec.Command(o.caddy, "run", "--config", cf, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()

	// Ready, and the session cookie of a first response through the filter.
	cookie := ""
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + filtered + o.path)
		req.Header.SetHost("shop.example")
		err := fasthttp.DoTimeout(req, resp, 5*time.Second)
		if err == nil && resp.StatusCode() == 200 {
			var parts []string
			for _, v := range resp.Header.Cookies() {
				c := fasthttp.AcquireCookie()
				if c.ParseBytes(v) == nil {
					parts = append(parts, string(c.Key())+"="+string(c.Value()))
				}
				fasthttp.ReleaseCookie(c)
			}
			cookie = strings.Join(parts, "; ")
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("caddy did not answer within 60s (last: %v, status %d):\n%s", err, resp.StatusCode(), log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Warm both sites' connection pools.
	load(plain, o.path, cookie, o.conns, 200*time.Millisecond)
	load(filtered, o.path, cookie, o.conns, 200*time.Millisecond)

	var offs, ons []loadResult
	var ratios []float64
	pid := cmd.Process.Pid
	for r := 0; r < o.rounds; r++ {
		off := measure(pid, plain, o.path, cookie, o.conns, o.duration)
		on := measure(pid, filtered, o.path, cookie, o.conns, o.duration)
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
	fmt.Printf("Caddy reverse_proxy with and without proxy_wasm, loopback, %d conns, %d alternating rounds of %v per mode, GOMAXPROCS=%d\n",
		o.conns, o.rounds, o.duration, runtime.GOMAXPROCS(0))
	fmt.Printf("wasm: %s  session cookie reused: %v  calls to the origin: %d\n\n", o.wasm, cookie != "", originCalls.Load())
	fmt.Printf("| mode | req/s (median round) | p50 | p99 | Caddy CPU per request | errors |\n|---|---:|---:|---:|---:|---:|\n")
	for _, x := range []struct {
		n  string
		r  loadResult
		rs []loadResult
	}{{"reverse_proxy", off, offs}, {"proxy_wasm + reverse_proxy", on, ons}} {
		fmt.Printf("| %s | %.0f | %v | %v | %v | %d |\n", x.n, x.r.rps, x.r.p50, x.r.p99, cpuPerRequest(x.rs), x.r.errs)
	}
	for _, p := range []struct{ file, addr string }{{o.cpuProfile, filtered}, {o.cpuProfilePlain, plain}} {
		if p.file != "" {
			if err := profile(admin, p.addr, p.file, o, cookie); err != nil {
				return err
			}
		}
	}
	if len(ratios) > 0 {
		fmt.Printf("\nratio with/without: %.2f (median of per-round ratios; min %.2f, max %.2f; target >= 0.85)\n",
			ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1])
	}
	return nil
}

// profile writes a CPU profile of Caddy (its admin endpoint's pprof) taken
// during one round against addr.
func profile(admin, addr, file string, o options, cookie string) error {
	secs := int(o.duration/time.Second) + 1
	errc := make(chan error, 1)
	go func() {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, secs))
		req.Header.SetHost(admin)
		if err := fasthttp.DoTimeout(req, resp, time.Duration(secs+30)*time.Second); err != nil {
			errc <- err
			return
		}
		errc <- os.WriteFile(file, resp.Body(), 0o644)
	}()
	load(addr, o.path, cookie, o.conns, time.Duration(secs)*time.Second)
	return <-errc
}

// measure runs one round against addr and records the CPU time Caddy
// (process pid) spent meanwhile.
func measure(pid int, addr, path, cookie string, conns int, d time.Duration) loadResult {
	before := cpuTime(pid)
	r := load(addr, path, cookie, conns, d)
	if before >= 0 {
		r.cpu = cpuTime(pid) - before
	}
	return r
}

// cpuTime returns the user and system CPU time of process pid so far, from
// /proc (clock ticks of 10 ms); -1 where there is no /proc.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return -1
	}
	var utime, stime int64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// cpuPerRequest is Caddy's CPU time per request over the rounds.
func cpuPerRequest(rs []loadResult) string {
	var cpu time.Duration
	var n int64
	for _, r := range rs {
		if r.cpu < 0 {
			return "n/a"
		}
		cpu += r.cpu
		n += r.n
	}
	if n == 0 {
		return "n/a"
	}
	return (cpu / time.Duration(n)).Round(time.Microsecond).String()
}

func port(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

func must(s string, err error) string {
	if err != nil {
		fmt.Fprintln(os.Stderr, "caddybench:", err)
		os.Exit(1)
	}
	return s
}

type loadResult struct {
	n, errs  int64
	rps      float64
	p50, p99 time.Duration
	cpu      time.Duration // Caddy's CPU time during the round
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
