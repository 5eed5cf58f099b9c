package proxy_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/edge/proxy"
	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/valyala/fasthttp"
)

// TestUploadStreams sends a 32 MiB upload through a filter with a request
// body callback that lets every chunk through: the edge streams it, holding
// one chunk at a time, instead of reading the upload into memory.
func TestUploadStreams(t *testing.T) {
	e := startEdge(t, proxy.Config{Upstream: startHashUpstream(t), Wasm: buildGoGuest(t), VMs: 1})
	const size = 32 << 20
	sum := sha256.New()
	_, _ = io.CopyN(sum, zeros{}, size)
	sum.Write([]byte("+go")) // the guest appends to the last chunk
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	req, _ := http.NewRequest("POST", e.url+"/upload", io.LimitReader(zeros{}, size)) // chunked
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	runtime.ReadMemStats(&after)
	if res.StatusCode != 200 || res.Header.Get("x-got-sha") != hex.EncodeToString(sum.Sum(nil)) {
		t.Fatalf("status %d, upstream got %s bytes", res.StatusCode, res.Header.Get("x-got-len"))
	}
	// Client, edge and upstream share this process; a buffered upload
	// alone would allocate 32 MiB.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("a 32 MiB upload allocated %d MiB in the process: the edge buffered it", alloc>>20)
	}
}

// TestBodyForTheFilter: a filter that needs the whole body (it stops
// iteration until the end of the stream) gets it, within MaxRequestBuffer.
func TestBodyForTheFilter(t *testing.T) {
	e := startEdge(t, proxy.Config{Upstream: startUpstream(t), Wasm: buildGoGuest(t), VMs: 1, MaxRequestBuffer: 256 << 10})
	for _, tt := range []struct {
		size   int
		status int
	}{{100 << 10, 200}, {1 << 20, 413}} {
		req, _ := http.NewRequest("PATCH", e.url+"/body-echo", io.LimitReader(zeros{}, int64(tt.size)))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tt.status || tt.status == 200 && len(b) != len("got:")+tt.size {
			t.Errorf("%d bytes: status %d, %d bytes back; want %d", tt.size, res.StatusCode, len(b), tt.status)
		}
	}
}

// TestFailOpenStrips: when the filter fails and the edge fails open, the
// client's session headers (every spelling) do not reach the app, and the
// app's do not reach the client.
func TestFailOpenStrips(t *testing.T) {
	upAddr := serve(t, &fasthttp.Server{DisableHeaderNamesNormalizing: true, Handler: func(ctx *fasthttp.RequestCtx) {
		var names []string
		for k := range ctx.Request.Header.All() {
			names = append(names, string(k))
		}
		ctx.Response.Header.Set("x-got-names", strings.Join(names, ","))
		ctx.Response.Header.Set("x-session-token", "from-app")
		ctx.Response.Header.Set("X_Session_Debug", "1")
		if string(ctx.Request.Header.Peek("x-trap-response")) != "" {
			ctx.Response.Header.Set("x-trap-response", "1")
		}
	}})
	e := startEdge(t, proxy.Config{Upstream: upAddr, Wasm: watGuest, VMs: 2, FailOpen: true})
	for _, path := range []string{"/trap", "/"} {
		hdr := []string{"X-Session-Id", "spoofed", "x_session_customer", "victim-42", "X_SESSION_KIND", "customer", "x-keep", "1"}
		if path == "/" {
			hdr = append(hdr, "x-trap-response", "1") // the filter fails on the response
		}
		res, _ := get(t, e.url+path, hdr...)
		names := strings.ToLower(res.Header.Get("x-got-names"))
		if res.StatusCode != 200 || !strings.Contains(names, "x-keep") {
			t.Fatalf("%s: status %d, upstream got %q", path, res.StatusCode, names)
		}
		// On the response the request went through the filter, whose job
		// stripping it is (the .wat guest does not).
		if path == "/trap" && strings.Contains(strings.ReplaceAll(names, "_", "-"), "x-session-") {
			t.Errorf("%s: the app got session headers: %s", path, names)
		}
		for k := range res.Header {
			if strings.HasPrefix(strings.ReplaceAll(strings.ToLower(k), "_", "-"), "x-session-") {
				t.Errorf("%s: the client got %s", path, k)
			}
		}
	}
}

// TestSlowClients opens many connections that trickle their headers from
// one address while a normal client sends requests from another: the
// per-client cap and the header timeout keep the normal requests' p99
// within twice the quiet p99.
func TestSlowClients(t *testing.T) {
	if raceEnabled {
		t.Skip("latency under the race detector says nothing about the server")
	}
	e := startEdge(t, proxy.Config{Upstream: startUpstream(t), Wasm: watGuest, VMs: 2,
		HeaderTimeout: wire.Duration(time.Second), MaxConnsPerClient: 32})
	addr := strings.TrimPrefix(e.url, "http://")
	client := &fasthttp.HostClient{Addr: addr, MaxConns: 4, ReadTimeout: 10 * time.Second}
	p99 := func() time.Duration {
		const n = 300
		lat := make([]time.Duration, 0, n)
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(e.url + "/")
		for i := 0; i < n; i++ {
			t0 := time.Now()
			if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				t.Fatalf("normal request: %v %d", err, resp.StatusCode())
			}
			lat = append(lat, time.Since(t0))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		return lat[n*99/100]
	}
	// The slow clients come from 127.0.0.2 (all of 127/8 is loopback).
	var refused, timedOut atomic.Int64
	slow := func(ctx context.Context, wg *sync.WaitGroup) {
		defer wg.Done()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		for ctx.Err() == nil {
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return
			}
			head := "GET / HTTP/1.1\r\nHost: a\r\nx-pad: " + strings.Repeat("x", 200)
			start := time.Now()
			for i := 0; i < len(head) && ctx.Err() == nil; i++ {
				if _, err := c.Write([]byte{head[i]}); err != nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			// What the edge answered: nothing (the header timeout closed the
			// connection) or an error status (too many connections).
			_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			line, _ := bufio.NewReader(c).ReadString('\n')
			switch {
			case strings.Contains(line, " 429"):
				refused.Add(1)
				time.Sleep(250 * time.Millisecond) // then try again
			case time.Since(start) < 3*time.Second:
				timedOut.Add(1)
			}
			c.Close()
		}
	}
	var quiet, loaded time.Duration
	for attempt := 0; attempt < 3; attempt++ {
		quiet = p99()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go slow(ctx, &wg)
		}
		time.Sleep(1500 * time.Millisecond) // the slow clients are connected, some timed out
		loaded = p99()
		cancel()
		wg.Wait()
		if loaded <= 2*max(quiet, time.Millisecond) {
			break
		}
		t.Logf("attempt %d: quiet p99 %v, with slow clients %v", attempt, quiet, loaded)
	}
	t.Logf("quiet p99 %v, with 200 slow clients %v; slow connections refused %d, cut by the header timeout %d", quiet, loaded, refused.Load(), timedOut.Load())
	if loaded > 2*max(quiet, time.Millisecond) {
		t.Errorf("p99 with slow clients %v, more than twice the quiet %v", loaded, quiet)
	}
	if refused.Load() == 0 || timedOut.Load() == 0 {
		t.Errorf("slow clients: %d refused by the per-client cap, %d cut by the header timeout; want both", refused.Load(), timedOut.Load())
	}
}

// TestCallsInFlightCap: beyond maxCallsInFlight, a call of the filter fails
// at once (the .wat guest answers 503) and is counted.
func TestCallsInFlightCap(t *testing.T) {
	release := make(chan struct{})
	backendAddr := serve(t, &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		<-release
		ctx.Response.Header.Set("x-answer", "slow")
	}})
	e := startEdge(t, proxy.Config{Upstream: startUpstream(t), Wasm: watGuest, VMs: 2,
		Clusters: map[string]string{"backend": backendAddr}, MaxCallsInFlight: 2})
	var wg sync.WaitGroup
	codes := make(chan int, 6)
	for i := 0; i < 6; i++ {
		wg.Go(func() {
			res, err := http.Get(e.url + "/call")
			if err != nil {
				codes <- 0
				return
			}
			res.Body.Close()
			codes <- res.StatusCode
		})
	}
	// Four calls are refused at once; two wait for the backend.
	refusedFast := 0
	deadline := time.After(10 * time.Second)
	for refusedFast < 4 {
		select {
		case c := <-codes:
			if c != 503 {
				t.Fatalf("a request finished with %d before the backend answered", c)
			}
			refusedFast++
		case <-deadline:
			t.Fatalf("%d calls refused, want 4", refusedFast)
		}
	}
	_, metrics := get(t, e.admin+"/metrics")
	if !strings.Contains(metrics, `edge_cluster_calls_in_flight{cluster="backend"} 2`) ||
		!strings.Contains(metrics, `edge_cluster_calls_refused_total{cluster="backend"} 4`) {
		t.Errorf("metrics:\n%s", metrics)
	}
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("a call that waited ended with %d", c)
		}
	}
}

// TestLogsHoldNoSecrets runs requests that make the edge log (a header too
// large for the server, a filter failure, an upstream failure) with a
// session cookie, a token header and an API key, then greps the log for them.
func TestLogsHoldNoSecrets(t *testing.T) {
	const cookie, token, apiKey = "COOKIESECRET", "TOKENSECRET", "APIKEYSECRET"
	logFile, err := os.Create(filepath.Join(t.TempDir(), "edge.log")) // safe for concurrent writes
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	logger := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))
	down := testbin.FreeAddr(t)
	for _, cfg := range []proxy.Config{
		{Upstream: startUpstream(t), Wasm: watGuest, VMs: 1, Logger: logger},
		{Upstream: down, Wasm: watGuest, VMs: 1, Logger: logger, FailOpen: true},
	} {
		e := startEdge(t, cfg)
		hdr := []string{"Cookie", "__Host-sid=" + cookie, "x-session-token", token, "Authorization", "Bearer " + apiKey}
		get(t, e.url+"/", hdr...)
		get(t, e.url+"/trap", hdr...)
		// A request head larger than the server's read buffer: 431.
		c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: a\r\nCookie: __Host-sid=%s\r\nx-session-token: %s\r\nx-pad: %s\r\n\r\n", cookie, token, strings.Repeat("p", 8<<10))
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if !strings.Contains(line, "431") {
			t.Errorf("oversized head: %q, want 431", line)
		}
	}
	b, err := os.ReadFile(logFile.Name())
	if err != nil {
		t.Fatal(err)
	}
	logs := string(b)
	if !strings.Contains(logs, "filter failed") || !strings.Contains(logs, "upstream failed") {
		t.Fatalf("the failures were not logged:\n%s", logs)
	}
	for _, secret := range []string{cookie, token, apiKey} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %s:\n%s", secret, logs)
		}
	}
}

// TestCompilationCacheDir: the directory the edge creates for compiled code
// is private (0700).
func TestCompilationCacheDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache", "wasm")
	startEdge(t, proxy.Config{Upstream: startUpstream(t), Wasm: watGuest, VMs: 1, CompilationCacheDir: dir})
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("compilation cache %s has mode %v, want 0700", dir, fi.Mode().Perm())
	}
}
