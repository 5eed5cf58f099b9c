// Command origin-bench measures the origin on loopback and prints the table
// of docs/benchmarks.md: GET session against a Redis GET of the same encoded
// bytes (redis-server started on a free port), durable PATCH throughput,
// sync long-poll latency, and optionally RSS and disk use with many
// sessions. scripts/bench-origin.sh runs it.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

const apiKey = "bench-key"

func main() {
	clients := flag.Int("c", 64, "concurrent clients")
	dur := flag.Duration("d", 5*time.Second, "duration of each throughput run")
	sessions := flag.Int("sessions", 10000, "sessions for the GET run")
	many := flag.Int("many", 0, "if > 0: create this many ~300 B sessions in an origin subprocess and report RSS and data-dir size")
	originBin := flag.String("origin", "build/bin/origin", "origin binary (run as a subprocess, like redis-server)")
	static := flag.String("static-server", "", "internal: serve a fixed body with a bare fasthttp server on this address (the HTTP floor)")
	flag.Parse()
	if *static != "" {
		serveStatic(*static)
		return
	}
	if *many > 0 {
		if err := runMany(*originBin, *many, *clients); err != nil {
			fmt.Fprintln(os.Stderr, "origin-bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*originBin, *clients, *dur, *sessions); err != nil {
		fmt.Fprintln(os.Stderr, "origin-bench:", err)
		os.Exit(1)
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startBinary runs the origin binary on a free loopback port (its admin
// listener on another) with its data directory in a new temporary
// directory, dir, and waits until it is ready. stop ends it and removes
// dir.
func startBinary(bin string) (addr, dir string, stop func(), err error) {
	if dir, err = os.MkdirTemp("", "origin-bench-"); err != nil {
		return "", "", nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if addr, err = freeAddr(); err != nil {
		return "", "", nil, err
	}
	admin, err := freeAddr()
	if err != nil {
		return "", "", nil, err
	}
	cfg := fmt.Sprintf(`{"dataDir":%q,"apiKeys":[{"name":"b","key":%q,"scopes":["sessions:read","sessions:write","edge:sync"]}],`+
		`"tokenKeys":{"1":%q},"sharedSecret":%q}`, filepath.Join(dir, "data"), apiKey,
		base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)), base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32)))
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return "", "", nil, err
	}
	cmd := exec.Command(bin, "-config", cfgPath, "-listen", addr, "-admin", admin)
	if err := cmd.Start(); err != nil {
		return "", "", nil, err
	}
	kill := func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }
	c := newClient(admin, 1)
	for i := 0; ; i++ {
		if status, _, err := c.do("GET", "/readyz", nil, "", nil); err == nil && status == 200 {
			break
		}
		if i > 500 {
			kill()
			return "", "", nil, fmt.Errorf("origin did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	pidForRSS = cmd.Process.Pid
	return addr, dir, func() { kill(); pidForRSS = 0; os.RemoveAll(dir) }, nil
}

// pidForRSS is the running origin subprocess.
var pidForRSS int

// sampleContext is a context of about 300 bytes encoded.
func sampleContext(i int) string {
	return fmt.Sprintf(`{"context":{"siteCode":"DE","currency":"EUR","locale":"de-DE","targetLocation":"DE","cartId":"cart-%08d",`+
		`"custom":{"segment":"returning","ab":"variant-b","lastCategory":"shoes/running","visits":%d},`+
		`"public":{"consent":true,"theme":"dark","recent":["sku-%06d","sku-%06d","sku-%06d"]},`+
		`"privacy":{"email":"user%d@example.com","zip":"10115"}}}`, i, i%100, i*3, i*3+1, i*3+2, i)
}

type client struct {
	hc *fasthttp.HostClient
}

func newClient(addr string, conns int) *client {
	return &client{hc: &fasthttp.HostClient{Addr: addr, MaxConns: conns, ReadTimeout: 40 * time.Second}}
}

func (c *client) do(method, path string, body []byte, accept string, out []byte) (int, []byte, error) {
	req := fasthttp.AcquireRequest()
	res := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(res)
	req.SetRequestURI("http://x" + path)
	req.Header.SetMethod(method)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if body != nil {
		req.Header.SetContentType("application/json")
		req.SetBody(body)
	}
	if err := c.hc.Do(req, res); err != nil {
		return 0, out, err
	}
	return res.StatusCode(), append(out[:0], res.Body()...), nil
}

// getter is one worker's reusable GET request, so the load generator spends
// as little as it can per request, as the RESP client does.
type getter struct {
	c   *client
	req fasthttp.Request
	res fasthttp.Response
	uri []byte
}

func (g *getter) get(id string) error {
	g.uri = append(append(g.uri[:0], "/v1/sessions/"...), id...)
	g.req.SetRequestURIBytes(g.uri)
	g.req.Header.SetHost("x")
	g.req.Header.SetMethod("GET")
	g.req.Header.Set("Authorization", "Bearer "+apiKey)
	g.req.Header.Set("Accept", "application/cbor")
	if err := g.c.hc.Do(&g.req, &g.res); err != nil {
		return err
	}
	if g.res.StatusCode() != 200 {
		return fmt.Errorf("GET: %d", g.res.StatusCode())
	}
	return nil
}

// getLoad returns a load (see load) of CBOR GETs through c of the sessions
// ids, spread over them, with a getter per client.
func getLoad(c *client, clients int, d time.Duration, ids []string) func() (float64, time.Duration, time.Duration, error) {
	getters := make([]getter, clients)
	for i := range getters {
		getters[i].c = c
	}
	return func() (float64, time.Duration, time.Duration, error) {
		return load(clients, d, func(w, i int) error {
			return getters[w].get(ids[(w*7919+i)%len(ids)])
		})
	}
}

// load runs fn from n workers for d and returns operations per second and
// latency percentiles.
func load(n int, d time.Duration, fn func(worker, i int) error) (float64, time.Duration, time.Duration, error) {
	var ops atomic.Int64
	var firstErr atomic.Value
	lat := make([][]time.Duration, n)
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				if err := fn(w, i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if i%16 == 0 {
					lat[w] = append(lat[w], time.Since(t0))
				}
				ops.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if e := firstErr.Load(); e != nil {
		return 0, 0, 0, e.(error)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	p50, p99 := percentiles(all)
	return float64(ops.Load()) / elapsed.Seconds(), p50, p99, nil
}

func percentiles(all []time.Duration) (time.Duration, time.Duration) {
	if len(all) == 0 {
		return 0, 0
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return all[len(all)/2], all[len(all)*99/100]
}

const rounds = 3

type result struct {
	rate     float64
	p50, p99 time.Duration
}

func median(rs []result) result {
	sort.Slice(rs, func(i, j int) bool { return rs[i].rate < rs[j].rate })
	return rs[len(rs)/2]
}

// redisConn is a minimal RESP client: one request, one reply, no pipelining,
// like the HTTP client it is compared with.
type redisConn struct {
	c  net.Conn
	r  *bufio.Reader
	wb []byte
}

func dialRedis(addr string) (*redisConn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &redisConn{c: c, r: bufio.NewReaderSize(c, 16<<10)}, nil
}

func (rc *redisConn) cmd(args ...[]byte) ([]byte, error) {
	rc.wb = append(rc.wb[:0], '*')
	rc.wb = strconv.AppendInt(rc.wb, int64(len(args)), 10)
	rc.wb = append(rc.wb, "\r\n"...)
	for _, a := range args {
		rc.wb = append(rc.wb, '$')
		rc.wb = strconv.AppendInt(rc.wb, int64(len(a)), 10)
		rc.wb = append(append(append(rc.wb, "\r\n"...), a...), "\r\n"...)
	}
	if _, err := rc.c.Write(rc.wb); err != nil {
		return nil, err
	}
	line, err := rc.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	switch line[0] {
	case '+':
		return nil, nil
	case '$':
		n, err := strconv.Atoi(string(bytes.TrimSpace(line[1:])))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("redis: nil or bad reply %q", line)
		}
		buf := make([]byte, n+2)
		_, err = io.ReadFull(rc.r, buf)
		return buf[:n], err
	}
	return nil, fmt.Errorf("redis: reply %q", line)
}

func startRedis(dir string) (*exec.Cmd, string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	for i := 0; i < 200; i++ {
		if rc, err := dialRedis(addr); err == nil {
			rc.c.Close()
			return cmd, addr, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	return nil, "", fmt.Errorf("redis-server did not start")
}

func run(originBin string, clients int, d time.Duration, nsessions int) error {
	addr, tmp, stop, err := startBinary(originBin)
	if err != nil {
		return err
	}
	defer stop()
	c := newClient(addr, clients*2)

	// Sessions for the GET run, and their encoded bytes for Redis.
	ids := make([]string, nsessions)
	encoded := make([][]byte, nsessions)
	var wg sync.WaitGroup
	var werr atomic.Value
	for w := 0; w < clients; w++ {
		wg.Go(func() {
			var buf []byte
			for i := w; i < nsessions; i += clients {
				status, body, err := c.do("POST", "/v1/sessions", []byte(sampleContext(i)), "application/cbor", buf)
				if err != nil || status != 201 {
					werr.CompareAndSwap(nil, fmt.Errorf("create: %d %v", status, err))
					return
				}
				var s wire.Session
				if err := wire.DecodeSession(body, &s); err != nil {
					werr.CompareAndSwap(nil, err)
					return
				}
				ids[i] = s.ID.String()
				encoded[i] = append([]byte(nil), body...)
			}
		})
	}
	wg.Wait()
	if e := werr.Load(); e != nil {
		return e.(error)
	}
	fmt.Printf("origin benchmarks: %d clients, %s per run, loopback, GOMAXPROCS=%d\n\n", clients, d, runtimeProcs())
	fmt.Printf("| benchmark | result | p50 | p99 |\n|---|---|---|---|\n")

	// GET session (CBOR, as the edge asks) vs Redis GET of the same bytes.
	originGET := getLoad(c, clients, d, ids)
	var redisGET func() (float64, time.Duration, time.Duration, error)
	cmd, raddr, rerr := startRedis(tmp)
	if rerr == nil {
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		conns := make([]*redisConn, clients)
		for i := range conns {
			if conns[i], err = dialRedis(raddr); err != nil {
				return err
			}
		}
		for i, e := range encoded {
			if _, err := conns[0].cmd([]byte("SET"), []byte(ids[i]), e); err != nil {
				return err
			}
		}
		redisGET = func() (float64, time.Duration, time.Duration, error) {
			return load(clients, d, func(w, i int) error {
				_, err := conns[w].cmd([]byte("GET"), []byte(ids[(w*7919+i)%nsessions]))
				return err
			})
		}
	}
	// The HTTP floor: a bare fasthttp server (another process) answering
	// every GET with the same bytes, no routing, auth or store.
	staticAddr, stopStatic, err := startStatic(encoded[0])
	if err != nil {
		return err
	}
	defer stopStatic()
	staticGET := getLoad(newClient(staticAddr, clients*2), clients, d, ids)
	// The machine is noisy: alternate the runs and compare medians.
	var og, rg, sg []result
	for round := 0; round < rounds; round++ {
		r, p50, p99, err := originGET()
		if err != nil {
			return err
		}
		og = append(og, result{r, p50, p99})
		if r, p50, p99, err = staticGET(); err != nil {
			return err
		}
		sg = append(sg, result{r, p50, p99})
		if redisGET != nil {
			r, p50, p99, err := redisGET()
			if err != nil {
				return err
			}
			rg = append(rg, result{r, p50, p99})
		}
	}
	o := median(og)
	fmt.Printf("| origin GET session (CBOR, %d B), median of %d | %.0f req/s | %s | %s |\n", len(encoded[0]), rounds, o.rate, o.p50, o.p99)
	if redisGET == nil {
		fmt.Printf("| redis GET same bytes | skipped: %v | | |\n", rerr)
	} else {
		r := median(rg)
		fmt.Printf("| redis GET same bytes, median of %d | %.0f req/s | %s | %s |\n", rounds, r.rate, r.p50, r.p99)
		fmt.Printf("| ratio origin/redis (target >= 0.8) | %.2f | | |\n", o.rate/r.rate)
	}
	st := median(sg)
	fmt.Printf("| bare fasthttp, same bytes (HTTP floor), median of %d | %.0f req/s | %s | %s |\n", rounds, st.rate, st.p50, st.p99)
	fmt.Printf("| ratio origin/bare fasthttp | %.2f | | |\n", o.rate/st.rate)
	if redisGET != nil {
		fmt.Printf("| ratio bare fasthttp/redis | %.2f | | |\n", st.rate/median(rg).rate)
	}

	// Durable PATCH: each client patches its own sessions; every answer
	// follows an fsync'd Pebble commit.
	patchRate, p50, p99, err := load(clients, d, func(w, i int) error {
		k := (w + clients*(i%8)) % nsessions
		body := []byte(`{"custom":{"n` + strconv.Itoa(i%50) + `":` + strconv.Itoa(i) + `}}`)
		status, _, err := c.do("PATCH", "/v1/sessions/"+ids[k]+"/context", body, "application/cbor", nil)
		if err == nil && status != 200 {
			err = fmt.Errorf("PATCH: %d", status)
		}
		return err
	})
	if err != nil {
		return err
	}
	fmt.Printf("| origin durable PATCH, %d clients (target >= 20000/s) | %.0f req/s | %s | %s |\n", clients, patchRate, p50, p99)

	// Sync: write-to-delivery latency through a long-poll.
	sl50, sl99, err := syncLatency(c, ids[0], 300)
	if err != nil {
		return err
	}
	fmt.Printf("| sync long-poll, write ack to delivery (300 writes) | | %s | %s |\n", sl50, sl99)
	return nil
}

func syncLatency(c *client, id string, n int) (time.Duration, time.Duration, error) {
	status, body, err := c.do("GET", "/v1/sync", nil, "application/cbor", nil)
	if err != nil || status != 200 {
		return 0, 0, fmt.Errorf("sync: %d %v", status, err)
	}
	var bt wire.Batch
	if err := wire.DecodeBatch(body, &bt); err != nil {
		return 0, 0, err
	}
	cursor := bt.Cursor
	type result struct {
		at  time.Time
		err error
	}
	got := make(chan result, 1)
	var lats []time.Duration
	for i := 0; i < n; i++ {
		go func() {
			for {
				status, body, err := c.do("GET", "/v1/sync?after="+cursor+"&wait=30000", nil, "application/cbor", nil)
				if err != nil || status != 200 {
					got <- result{err: fmt.Errorf("sync: %d %v", status, err)}
					return
				}
				var bt wire.Batch
				if err := wire.DecodeBatch(body, &bt); err != nil {
					got <- result{err: err}
					return
				}
				cursor = bt.Cursor
				if len(bt.Deltas) > 0 {
					got <- result{at: time.Now()}
					return
				}
			}
		}()
		time.Sleep(2 * time.Millisecond) // let the poll park
		t0 := time.Now()
		status, _, err := c.do("PATCH", "/v1/sessions/"+id+"/context", []byte(`{"custom":{"s":`+strconv.Itoa(i)+`}}`), "", nil)
		if err != nil || status != 200 {
			return 0, 0, fmt.Errorf("PATCH: %d %v", status, err)
		}
		r := <-got
		if r.err != nil {
			return 0, 0, r.err
		}
		lats = append(lats, r.at.Sub(t0))
	}
	p50, p99 := percentiles(lats)
	return p50, p99, nil
}

func runtimeProcs() int {
	return runtimeGOMAXPROCS()
}

// runMany fills an origin subprocess with n sessions of ~300 B and reports
// its RSS and data-directory size.
func runMany(bin string, n, clients int) error {
	addr, tmp, stop, err := startBinary(bin)
	if err != nil {
		return err
	}
	defer stop()
	pid := pidForRSS
	c := newClient(addr, clients*2)
	start := time.Now()
	var next atomic.Int64
	var werr atomic.Value
	var wg sync.WaitGroup
	size := 0
	for w := 0; w < clients; w++ {
		wg.Go(func() {
			var buf []byte
			for {
				i := int(next.Add(1)) - 1
				if i >= n || werr.Load() != nil {
					return
				}
				status, body, err := c.do("POST", "/v1/sessions", []byte(sampleContext(i)), "application/cbor", buf)
				if err != nil || status != 201 {
					werr.CompareAndSwap(nil, fmt.Errorf("create %d: %d %v", i, status, err))
					return
				}
				if i == 0 {
					size = len(body)
				}
				buf = body
			}
		})
	}
	wg.Wait()
	if e := werr.Load(); e != nil {
		return e.(error)
	}
	elapsed := time.Since(start)
	time.Sleep(2 * time.Second)
	rss, err := readRSS(pid)
	if err != nil {
		return err
	}
	du, err := dirSize(filepath.Join(tmp, "data"))
	if err != nil {
		return err
	}
	fmt.Printf("| %d sessions of %d B (CBOR): created in %s (%.0f/s) | RSS %.0f MiB (target <= 1536) | data dir %.0f MiB |\n",
		n, size, elapsed.Round(time.Second), float64(n)/elapsed.Seconds(), float64(rss)/(1<<20), float64(du)/(1<<20))
	return nil
}

func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS")
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return err
	})
	return n, err
}

// serveStatic is the HTTP floor: fasthttp answering the fixed body read
// from stdin to every request.
func serveStatic(addr string) {
	body, err := io.ReadAll(os.Stdin)
	if err != nil {
		os.Exit(1)
	}
	srv := &fasthttp.Server{NoDefaultServerHeader: true, NoDefaultDate: true, Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/cbor")
		ctx.SetBody(body)
	}}
	if err := srv.ListenAndServe(addr); err != nil {
		os.Exit(1)
	}
}

func startStatic(body []byte) (string, func(), error) {
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, "-static-server", addr)
	cmd.Stdin = bytes.NewReader(body)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	c := newClient(addr, 1)
	for i := 0; ; i++ {
		if status, _, err := c.do("GET", "/", nil, "", nil); err == nil && status == 200 {
			return addr, stop, nil
		}
		if i > 500 {
			stop()
			return "", nil, fmt.Errorf("static server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
