//go:build !wasip1

package main_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/edge/harness"
	"github.com/sessionedge/sessionedge/edge/wasmhost"
	"github.com/sessionedge/sessionedge/proxywasm"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
	"github.com/sessionedge/sessionedge/wasm/internal/proxytest"
)

// TestScenarios runs every proxytest scenario against the .wasm module in
// the edge's production host: edge/wasmhost with its request lifecycle
// (wasmhost.Lifecycle, the driver of the edge proxy), real asynchronous HTTP
// calls on their own goroutines, the host's header maps, shared data and
// clock. The native run of the same scenarios is in internal/filter.
func TestScenarios(t *testing.T) {
	wasm := buildModule(t)
	proxytest.Run(t, func(t testing.TB, m *abi.Mock) proxytest.Guest { return newHostGuest(t, wasm, m) })
}

// hostGuest is a proxytest.Host: the module in wasmhost, one VM, driven
// through a Lifecycle. Its Guest methods are never called.
type hostGuest struct {
	proxytest.Guest // nil: the Env drives the host, not the exports

	t        testing.TB
	wasm     string
	clock    *harness.Clock
	shared   *wasmhost.SharedData
	noShared bool
	host     *wasmhost.Host
	lc       *wasmhost.Lifecycle

	mu      sync.Mutex
	logs    []abi.LogLine
	calls   []*hostCall
	token   uint32
	streams []*hostStream
}

type hostCall struct {
	call  *abi.MockCall
	reply chan callReply
}

type callReply struct {
	status int
	body   []byte
	pairs  []abi.Pair
}

func newHostGuest(t testing.TB, wasm string, m *abi.Mock) *hostGuest {
	return &hostGuest{t: t, wasm: wasm, clock: harness.NewClock(time.Unix(0, m.NowNs)), shared: wasmhost.NewSharedData()}
}

func (g *hostGuest) ShareData(other proxytest.Host) { g.shared = other.(*hostGuest).shared }
func (g *hostGuest) DisableSharedData()             { g.noShared = true }
func (g *hostGuest) SetNow(now time.Time)           { g.clock.Set(now) }

func (g *hostGuest) LoadPlugin(e *proxytest.Env, config string) bool {
	host, err := wasmhost.New(context.Background(), wasmhost.Config{
		WasmPath:           g.wasm,
		PluginConfig:       []byte(config),
		VMs:                1,
		ManualTicks:        true,
		Clock:              g.clock,
		Logger:             slog.New(logCapture{g}),
		LogLevel:           slog.LevelDebug,
		Clusters:           wasmhost.Clusters{"origin": wasmhost.ClusterFunc(g.roundTrip)},
		SharedData:         g.shared,
		NoSharedData:       g.noShared,
		MinRestartInterval: time.Millisecond,
		// Every Env has its own host: compile the module once per test binary.
		CompilationCacheDir: filepath.Join(filepath.Dir(g.wasm), "compiled"),
	})
	if err != nil {
		return false
	}
	g.host = host
	g.lc = &wasmhost.Lifecycle{Host: host}
	g.t.Cleanup(g.close)
	return true
}

// close ends what the scenario left running.
func (g *hostGuest) close() {
	g.mu.Lock()
	streams := g.streams
	g.mu.Unlock()
	for _, s := range streams {
		s.Finish()
	}
	_ = g.host.Close(context.Background())
}

func (g *hostGuest) TickVMs() {
	g.host.Tick()
	g.settle()
}

func (g *hostGuest) Logs() []abi.LogLine {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]abi.LogLine(nil), g.logs...)
}

func (g *hostGuest) TickMs() uint32 {
	if g.host == nil {
		return 0
	}
	return uint32(g.host.TickPeriod().Milliseconds())
}

// roundTrip is the cluster of every call: it waits for the scenario's Answer.
func (g *hostGuest) roundTrip(ctx context.Context, req *wasmhost.CallRequest, resp *wasmhost.CallResponse) error {
	c := &abi.MockCall{Upstream: req.Cluster, Body: append([]byte(nil), req.Body...), Timeout: uint32(req.Timeout.Milliseconds()),
		Context: 1} // the host delivers every reply to the root context
	for i := 0; i < req.Headers.Len(); i++ {
		k, v := req.Headers.Pair(i)
		c.Headers = append(c.Headers, abi.Pair{Key: string(k), Value: string(v)})
	}
	hc := &hostCall{call: c, reply: make(chan callReply, 1)}
	g.mu.Lock()
	g.token++
	c.Token = g.token
	g.calls = append(g.calls, hc)
	g.mu.Unlock()
	select {
	case r := <-hc.reply:
		if r.status == 0 {
			return context.Canceled // a failed call: the guest sees no headers
		}
		resp.SetStatus(r.status)
		for _, p := range r.pairs {
			_ = resp.Headers.Add(p.Key, p.Value)
		}
		resp.Body = append(resp.Body[:0], r.body...)
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		g.removeCall(hc)
		g.mu.Unlock()
		return ctx.Err()
	}
}

func (g *hostGuest) removeCall(hc *hostCall) bool {
	for i, x := range g.calls {
		if x == hc {
			g.calls = append(g.calls[:i], g.calls[i+1:]...)
			return true
		}
	}
	return false
}

func (g *hostGuest) Pending() []*abi.MockCall {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*abi.MockCall, 0, len(g.calls))
	for _, hc := range g.calls {
		out = append(out, hc.call)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Token < out[j].Token })
	return out
}

// Answer replies to a call the guest made; the host delivers replies only
// to calls it made, so an unknown call is ignored.
func (g *hostGuest) Answer(c *abi.MockCall, status int, body []byte, pairs []abi.Pair) {
	g.mu.Lock()
	var hc *hostCall
	for _, x := range g.calls {
		if x.call == c {
			hc = x
		}
	}
	if hc != nil {
		g.removeCall(hc)
	}
	g.mu.Unlock()
	if hc == nil {
		return
	}
	hc.reply <- callReply{status, body, pairs}
	g.settle()
}

// Metric reads a guest metric from the host, where every VM that defines
// a name adds to one metric.
func (g *hostGuest) Metric(name string) int64 {
	if g.host == nil {
		return 0
	}
	v, _ := g.host.Metric(name)
	return v
}

// settle waits until nothing moves: every HTTP call in flight waits for an
// answer, every stream waits at the upstream, for the guest, or is done.
func (g *hostGuest) settle() {
	g.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.mu.Lock()
		calls := int64(len(g.calls))
		var running int64
		for _, s := range g.streams {
			if !s.atUpstream && !s.done {
				running++
			}
		}
		g.mu.Unlock()
		if g.host == nil || calls == g.host.InflightCalls() && running == g.host.PausedStreams() {
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("the host did not settle: %d calls waiting of %d in flight, %d streams running, %d paused",
				calls, g.host.InflightCalls(), running, g.host.PausedStreams())
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// hostStream is one request through the Lifecycle, on its own goroutine.
type hostStream struct {
	g      *hostGuest
	cancel context.CancelFunc
	respCh chan []abi.Pair
	end    chan struct{}

	// Guarded by g.mu.
	atUpstream, done bool
	forwarded        []abi.Pair
	local            *abi.LocalResponse
	response         []abi.Pair
	x                *wasmhost.Exchange
	finished         bool
}

func (g *hostGuest) Start(method, path string, body []byte, pairs []abi.Pair) proxytest.HostStream {
	s := &hostStream{g: g, respCh: make(chan []abi.Pair, 1), end: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	req := &wasmhost.Request{Method: method, Path: path, Authority: "shop.example.com", Scheme: "https",
		Header: pairSource(pairs), Info: wasmhost.StreamInfo{ID: "req", SourceAddress: "192.0.2.1:54321", Protocol: "HTTP/1.1"}}
	if body != nil {
		req.Body, req.ContentLength = bytes.NewReader(body), int64(len(body))
	}
	g.mu.Lock()
	g.streams = append(g.streams, s)
	g.mu.Unlock()
	go func() {
		defer close(s.end)
		x := g.lc.Run(ctx, req, s)
		b := new(bytes.Buffer)
		_, _ = b.ReadFrom(x)
		resp := []abi.Pair{{Key: ":status", Value: strconv.Itoa(x.Status)}}
		for i := 0; i < x.Headers.Len(); i++ {
			k, v := x.Headers.Pair(i)
			resp = append(resp, abi.Pair{Key: string(k), Value: string(v)})
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		s.x, s.done, s.response = x, true, resp
		if x.Local {
			s.local = &abi.LocalResponse{Status: uint32(x.Status), Details: x.Details, Body: b.Bytes(), Headers: resp[1:]}
		}
	}()
	g.settle()
	return s
}

// RoundTrip is the upstream: it records the request and waits for Respond.
func (s *hostStream) RoundTrip(ctx context.Context, req *wasmhost.UpstreamRequest, resp *wasmhost.UpstreamResponse) error {
	var fwd []abi.Pair
	for i := 0; i < req.Headers.Len(); i++ {
		k, v := req.Headers.Pair(i)
		fwd = append(fwd, abi.Pair{Key: string(k), Value: string(v)})
	}
	s.g.mu.Lock()
	s.atUpstream, s.forwarded = true, fwd
	s.g.mu.Unlock()
	select {
	case pairs := <-s.respCh:
		resp.Status = 200
		for _, p := range pairs {
			_ = resp.Headers.Add(p.Key, p.Value)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *hostStream) Paused() bool {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	return !s.atUpstream && !s.done
}

func (s *hostStream) Forwarded() []abi.Pair {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	return s.forwarded
}

func (s *hostStream) Local() *abi.LocalResponse {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	return s.local
}

func (s *hostStream) Respond(pairs []abi.Pair) []abi.Pair {
	s.respCh <- pairs
	<-s.end
	s.g.settle()
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	return s.response
}

// Finish ends the stream: a request still waiting is cancelled (the client
// went away), then the stream ends (proxy_on_done, proxy_on_log,
// proxy_on_delete).
func (s *hostStream) Finish() {
	s.cancel()
	<-s.end
	s.g.mu.Lock()
	x, finished := s.x, s.finished
	s.finished = true
	s.g.mu.Unlock()
	if !finished {
		_ = x.Close()
	}
	s.g.settle()
}

// pairSource adds pairs to a header map.
type pairSource []abi.Pair

func (p pairSource) AddHeaders(m *wasmhost.HeaderMap) error {
	for _, kv := range p {
		if err := m.Add(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	return nil
}

// logCapture keeps what the guest logs: the host tags its records with
// source "guest" (proxy_log) or "guest stdout" and "guest stderr" (WASI
// output, at info and warn), and the host's own records not.
type logCapture struct{ g *hostGuest }

func (l logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (l logCapture) Handle(_ context.Context, r slog.Record) error {
	guest := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "source" {
			src := a.Value.String()
			guest = src == "guest" || strings.HasPrefix(src, "guest ")
		}
		return !guest
	})
	if !guest {
		return nil
	}
	level := proxywasm.LogInfo
	switch {
	case r.Level >= slog.LevelError:
		level = proxywasm.LogError
	case r.Level >= slog.LevelWarn:
		level = proxywasm.LogWarn
	case r.Level < slog.LevelInfo:
		level = proxywasm.LogDebug
	}
	l.g.mu.Lock()
	l.g.logs = append(l.g.logs, abi.LogLine{Level: level, Msg: r.Message})
	l.g.mu.Unlock()
	return nil
}

func (l logCapture) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l logCapture) WithGroup(string) slog.Handler      { return l }
