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
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sessionedge/sessionedge/edge/internal/loadgen"
	"github.com/valyala/fasthttp"
)

func main() {
	var o options
	flag.StringVar(&o.caddy, "caddy", "build/bin/caddy", "the Caddy binary with proxy_wasm (make build)")
	o.Flags("default: none", "default: GOMAXPROCS of Caddy")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "after the rounds, write a CPU profile of Caddy during one more round with the handler")
	flag.StringVar(&o.cpuProfilePlain, "cpuprofile-plain", "", "likewise, during one more round without the handler")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "caddybench:", err)
		os.Exit(1)
	}
}

type options struct {
	loadgen.Options
	caddy, cpuProfile, cpuProfilePlain string
}

func freeAddr() (string, error) {
	ln, err := loadgen.Listen()
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func run(o options) error {
	for _, p := range []*string{&o.caddy, &o.Wasm, &o.PluginConfigFile} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return err
			}
			*p = abs
		}
	}
	upstream, stopUpstream, err := loadgen.Upstream()
	if err != nil {
		return err
	}
	defer stopUpstream()
	var originCalls atomic.Int64
	origin, stopOrigin, err := loadgen.Origin(&originCalls)
	if err != nil {
		return err
	}
	defer stopOrigin()

	dir, err := os.MkdirTemp("", "caddybench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	plain, filtered, admin := must(freeAddr()), must(freeAddr()), must(freeAddr())
	var handler strings.Builder
	fmt.Fprintf(&handler, "\t\twasm %s\n\t\tcluster origin %s\n", o.Wasm, origin)
	if o.PluginConfigFile != "" {
		fmt.Fprintf(&handler, "\t\tplugin_config_file %s\n", o.PluginConfigFile)
	}
	if o.VMs > 0 {
		fmt.Fprintf(&handler, "\t\tvms %d\n", o.VMs)
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
`, admin, port(plain), upstream, port(filtered), handler.String(), upstream)
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
		req.SetRequestURI("http://" + filtered + o.Path)
		req.Header.SetHost(loadgen.Host)
		err := fasthttp.DoTimeout(req, resp, 5*time.Second)
		if err == nil && resp.StatusCode() == 200 {
			cookie = loadgen.Cookie(resp)
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("caddy did not answer within 60s (last: %v, status %d):\n%s", err, resp.StatusCode(), log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Warm both sites' connection pools.
	loadgen.Run(plain, o.Path, cookie, o.Conns, 200*time.Millisecond)
	loadgen.Run(filtered, o.Path, cookie, o.Conns, 200*time.Millisecond)

	pid := cmd.Process.Pid
	rs := loadgen.Alternate(o.Rounds,
		func() loadgen.Result { return measure(pid, plain, o.Path, cookie, o.Conns, o.Duration) },
		func() loadgen.Result { return measure(pid, filtered, o.Path, cookie, o.Conns, o.Duration) })
	off, on := rs.Medians()
	fmt.Printf("Caddy reverse_proxy with and without proxy_wasm, loopback, %d conns, %d alternating rounds of %v per mode, GOMAXPROCS=%d\n",
		o.Conns, o.Rounds, o.Duration, runtime.GOMAXPROCS(0))
	fmt.Printf("wasm: %s  session cookie reused: %v  calls to the origin: %d\n\n", o.Wasm, cookie != "", originCalls.Load())
	fmt.Printf("| mode | req/s (median round) | p50 | p99 | Caddy CPU per request | errors |\n|---|---:|---:|---:|---:|---:|\n")
	for _, x := range []struct {
		n  string
		r  loadgen.Result
		rs []loadgen.Result
	}{{"reverse_proxy", off, rs.Off}, {"proxy_wasm + reverse_proxy", on, rs.On}} {
		fmt.Printf("| %s | %.0f | %v | %v | %v | %d |\n", x.n, x.r.RPS, x.r.P50, x.r.P99, cpuPerRequest(x.rs), x.r.Errs)
	}
	for _, p := range []struct{ file, addr string }{{o.cpuProfile, filtered}, {o.cpuProfilePlain, plain}} {
		if p.file != "" {
			if err := profile(admin, p.addr, p.file, o, cookie); err != nil {
				return err
			}
		}
	}
	if line := rs.Ratio("with/without", 0.85); line != "" {
		fmt.Printf("\n%s\n", line)
	}
	return nil
}

// profile writes a CPU profile of Caddy (its admin endpoint's pprof) taken
// during one round against addr.
func profile(admin, addr, file string, o options, cookie string) error {
	secs := int(o.Duration/time.Second) + 1
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
	loadgen.Run(addr, o.Path, cookie, o.Conns, time.Duration(secs)*time.Second)
	return <-errc
}

// measure runs one round against addr and records the CPU time Caddy
// (process pid) spent meanwhile.
func measure(pid int, addr, path, cookie string, conns int, d time.Duration) loadgen.Result {
	before := cpuTime(pid)
	r := loadgen.Run(addr, path, cookie, conns, d)
	if before >= 0 {
		r.CPU = cpuTime(pid) - before
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
func cpuPerRequest(rs []loadgen.Result) string {
	var cpu time.Duration
	var n int64
	for _, r := range rs {
		if r.CPU < 0 {
			return "n/a"
		}
		cpu += r.CPU
		n += r.N
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
