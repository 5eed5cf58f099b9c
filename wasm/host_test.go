//go:build !wasip1

package main_test

import (
	"bytes"
	"context"
	"io"
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
// through a Lifecycle.
type hostGuest struct {
	noExports // the Env drives the host, never the exports

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
	moves   int // streams that reached the upstream, read their request or ended
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
	return &hostGuest{noExports: noExports{t}, t: t, wasm: wasm, clock: harness.NewClock(time.Unix(0, m.NowNs)), shared: wasmhost.NewSharedData()}
}

// noExports is the proxytest.Guest side of a Host: an Env that has a Host
// drives it, not the module's exports, so a call here is a bug of the Env.
type noExports struct{ t testing.TB }

func (n noExports) export(name string) {
	n.t.Helper()
	n.t.Fatalf("the Env called the export %s of a proxytest.Host: it must drive the Host instead", name)
}

func (n noExports) ContextCreate(id, parent uint32)  { n.export("proxy_on_context_create") }
func (n noExports) VMStart(root, size uint32) bool   { n.export("proxy_on_vm_start"); return false }
func (n noExports) Configure(root, size uint32) bool { n.export("proxy_on_configure"); return false }
func (n noExports) Tick(root uint32)                 { n.export("proxy_on_tick") }
func (n noExports) RequestHeaders(id, k uint32, eos bool) uint32 {
	n.export("proxy_on_request_headers")
	return 0
}
func (n noExports) RequestBody(id, size uint32, eos bool) uint32 {
	n.export("proxy_on_request_body")
	return 0
}
func (n noExports) RequestTrailers(id, k uint32) uint32 {
	n.export("proxy_on_request_trailers")
	return 0
}
func (n noExports) ResponseHeaders(id, k uint32, eos bool) uint32 {
	n.export("proxy_on_response_headers")
	return 0
}
func (n noExports) ResponseTrailers(id, k uint32) uint32 {
	n.export("proxy_on_response_trailers")
	return 0
}
func (n noExports) HTTPCallResponse(root, token, nHeaders, bodySize, nTrailers uint32) {
	n.export("proxy_on_http_call_response")
}
func (n noExports) Done(id uint32) bool { n.export("proxy_on_done"); return false }
func (n noExports) Log(id uint32)       { n.export("proxy_on_log") }
func (n noExports) Delete(id uint32)    { n.export("proxy_on_delete") }

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

// SupportsResponseTrailers is false: the Lifecycle has no response trailers
// (docs/edge.md), so the edge never runs proxy_on_response_trailers.
func (g *hostGuest) SupportsResponseTrailers() bool { return false }

// settle waits until nothing moves: every HTTP call in flight waits for an
// answer, every stream waits for the scenario (at the upstream, or for the
// client's next step), for the guest, or is done. Then it wakes the bodies
// that wait for the client (clientBody), so that the Lifecycle notices a
// held request the filter let go, and settles again while that moves a
// stream.
func (g *hostGuest) settle() {
	g.t.Helper()
	for {
		g.quiesce()
		g.mu.Lock()
		moves, poked := g.moves, false
		for _, s := range g.streams {
			if s.body != nil && s.body.pokeLocked() {
				poked = true
			}
		}
		g.mu.Unlock()
		if !poked {
			return
		}
		g.quiesce()
		g.mu.Lock()
		moved := g.moves != moves
		g.mu.Unlock()
		if !moved {
			return
		}
	}
}

// quiesce waits until every HTTP call in flight waits for an answer and
// every stream that runs is paused by the guest.
func (g *hostGuest) quiesce() {
	g.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.mu.Lock()
		calls := int64(len(g.calls))
		var running int64
		for _, s := range g.streams {
			if s.running() {
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
	body   *clientBody // the body of an open request; nil otherwise

	// Guarded by g.mu.
	atUpstream bool // the upstream got the request headers
	answering  bool // the upstream read the request and waits for Respond
	done       bool
	forwarded  []abi.Pair
	trailers   []abi.Pair // the request trailers the upstream got
	local      *abi.LocalResponse
	response   []abi.Pair
	x          *wasmhost.Exchange
	finished   bool
}

// running reports whether the stream's goroutine runs the guest or waits
// for it: it is not done and waits neither for Respond nor for the client.
// g.mu is held.
func (s *hostStream) running() bool {
	return !s.done && !s.answering && (s.body == nil || !s.body.blocked)
}

func (g *hostGuest) Start(method, path string, body []byte, open bool, pairs []abi.Pair) proxytest.HostStream {
	s := &hostStream{g: g, respCh: make(chan []abi.Pair, 1), end: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	req := &wasmhost.Request{Method: method, Path: path, Authority: "shop.example.com", Scheme: "https",
		Header: pairSource(pairs), Info: wasmhost.StreamInfo{ID: "req", SourceAddress: "192.0.2.1:54321", Protocol: "HTTP/1.1"}}
	switch {
	case open:
		// A body of unknown length that the client ends later, perhaps
		// with trailers; it may have no data at all.
		s.body = &clientBody{g: g, ctx: ctx, data: body, wake: make(chan struct{}, 1)}
		req.Body, req.ContentLength, req.Trailer = s.body, -1, s.body
	case body != nil:
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
		g.moves++
		if x.Local {
			s.local = &abi.LocalResponse{Status: uint32(x.Status), Details: x.Details, Body: b.Bytes(), Headers: resp[1:]}
		}
	}()
	g.settle()
	return s
}

// RoundTrip is the upstream: it records the request headers, reads the
// request to its end (the Lifecycle runs the body and trailers callbacks
// as it is read), records the trailers, and waits for Respond.
func (s *hostStream) RoundTrip(ctx context.Context, req *wasmhost.UpstreamRequest, resp *wasmhost.UpstreamResponse) error {
	s.g.mu.Lock()
	s.atUpstream, s.forwarded = true, headerPairs(req.Headers)
	s.g.moves++
	s.g.mu.Unlock()
	if req.Body != nil {
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return err
		}
	}
	s.g.mu.Lock()
	s.answering = true
	s.g.moves++
	if req.Trailers != nil {
		s.trailers = headerPairs(req.Trailers)
	}
	s.g.mu.Unlock()
	defer func() {
		s.g.mu.Lock()
		s.answering = false
		s.g.mu.Unlock()
	}()
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

// headerPairs copies a header map.
func headerPairs(m *wasmhost.HeaderMap) []abi.Pair {
	var ps []abi.Pair
	for i := 0; i < m.Len(); i++ {
		k, v := m.Pair(i)
		ps = append(ps, abi.Pair{Key: string(k), Value: string(v)})
	}
	return ps
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

func (s *hostStream) Trailers() []abi.Pair {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	return s.trailers
}

func (s *hostStream) Local() *abi.LocalResponse {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	return s.local
}

// RequestTrailers ends the open request with the client's trailers: the
// body reaches its end, and the Lifecycle reads the trailers after it.
func (s *hostStream) RequestTrailers(pairs []abi.Pair) {
	s.g.t.Helper()
	if s.body == nil {
		s.g.t.Fatal("RequestTrailers: the request is not open")
	}
	s.g.mu.Lock()
	s.body.endLocked(pairs)
	s.g.mu.Unlock()
	s.g.settle()
}

// Respond answers the request at the upstream; an open request ends first,
// without trailers, as the upstream reads a request to its end before it
// answers.
func (s *hostStream) Respond(pairs []abi.Pair) []abi.Pair {
	s.g.t.Helper()
	s.g.mu.Lock()
	reached := s.atUpstream || s.done
	if reached && s.body != nil {
		s.body.endLocked(nil)
	}
	s.g.mu.Unlock()
	if !reached {
		s.g.t.Fatal("Respond: the request has not reached the upstream (the filter holds it)")
	}
	s.respCh <- pairs
	<-s.end
	s.g.settle()
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	return s.response
}

// ResponseTrailers is never called: the host does not
// SupportsResponseTrailers.
func (s *hostStream) ResponseTrailers([]abi.Pair) []abi.Pair {
	s.g.t.Helper()
	s.g.t.Fatal("the Lifecycle delivers no response trailers")
	return nil
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

// clientBody is the body of an open request as the client sends it: Read
// returns the scenario's body bytes, then waits for the client's next step.
// RequestTrailers (or Respond) ends the body: Read returns io.EOF, and
// AddHeaders, the Request.Trailer, adds the trailers.
//
// The Lifecycle notices that the filter let a held request go (an
// HTTP-call answer continuing it) only before its next read of the body
// (docs/edge.md). So that a request leaves as soon as the filter lets it
// go, as in a proxy that watches a stream while the client is idle, settle
// wakes a waiting Read once the host is still, which returns no data
// (0, nil; io.Reader allows it) and is called again.
type clientBody struct {
	g    *hostGuest
	ctx  context.Context
	wake chan struct{} // a waiting Read has something to look at (buffer of 1)

	// Guarded by g.mu.
	data     []byte
	trailers []abi.Pair
	ended    bool // the client ended the request
	blocked  bool // a Read waits for the client
	poked    bool // the waiting Read returns with no data
}

func (b *clientBody) Read(p []byte) (int, error) {
	b.g.mu.Lock()
	defer b.g.mu.Unlock()
	for {
		switch {
		case len(b.data) > 0:
			n := copy(p, b.data)
			b.data = b.data[n:]
			return n, nil
		case b.ended:
			return 0, io.EOF
		case b.poked:
			b.poked = false
			return 0, nil
		}
		b.blocked = true
		b.g.mu.Unlock()
		select {
		case <-b.wake:
		case <-b.ctx.Done():
		}
		b.g.mu.Lock()
		b.blocked = false
		if err := b.ctx.Err(); err != nil {
			return 0, err // the client went away
		}
	}
}

// wakeLocked wakes a waiting Read; the stream counts as running until it
// waits again. g.mu is held.
func (b *clientBody) wakeLocked() {
	if b.blocked {
		b.blocked = false
		b.wake <- struct{}{}
	}
}

// pokeLocked makes a waiting Read return with no data and reports whether
// there was one. g.mu is held.
func (b *clientBody) pokeLocked() bool {
	if !b.blocked || b.ended {
		return false
	}
	b.poked = true
	b.wakeLocked()
	return true
}

// endLocked ends the body with trailers (none: nil). g.mu is held.
func (b *clientBody) endLocked(trailers []abi.Pair) {
	if !b.ended {
		b.ended, b.trailers = true, trailers
		b.wakeLocked()
	}
}

// AddHeaders adds the client's trailers; the Lifecycle calls it once the
// body returned io.EOF.
func (b *clientBody) AddHeaders(m *wasmhost.HeaderMap) error {
	b.g.mu.Lock()
	tr := b.trailers
	b.g.mu.Unlock()
	return pairSource(tr).AddHeaders(m)
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
