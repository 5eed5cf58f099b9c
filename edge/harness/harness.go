// Package harness runs a proxy-wasm filter in the wazero host from a Go test,
// without Envoy: load a .wasm with a plugin configuration, drive requests
// through it against a fake upstream and fake clusters, control the clock the
// guest sees, trigger ticks, and assert on what the upstream and the client
// received.
//
//	h := harness.New(t, harness.Config{Wasm: "../../build/sessionedge.wasm", PluginConfig: `{}`})
//	h.SetCluster("origin", func(req *harness.CallRequest) (*harness.Response, error) { ... })
//	h.Do(&harness.Request{Path: "/"}).ExpectStatus(t, 200).ExpectUpstreamHeader(t, "x-session-kind", "anonymous")
//	h.Clock().Advance(time.Hour)
//	h.Tick()
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessionedge/sessionedge/edge/wasmhost"
)

// TB is the part of testing.TB the harness uses; *testing.T and *testing.B
// satisfy it.
type TB interface {
	Helper()
	Cleanup(func())
	Log(args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Config configures a Harness. The zero value of every field but Wasm means
// its default.
type Config struct {
	// Wasm is the path of the .wasm module. Required.
	Wasm string
	// PluginConfig is the plugin configuration, usually JSON. Default: empty.
	PluginConfig string
	// VMConfig is the VM configuration. Default: empty.
	VMConfig string
	// VMs is the number of VMs. Default: 1, so tests are deterministic.
	VMs int
	// FailOpen selects the failure policy when the plugin fails (trap, paused
	// stream timing out): true forwards the request unfiltered, false (the
	// default) answers 503.
	FailOpen bool
	// StripPrefixes are the header-name prefixes the plugin owns: a request
	// or response that passes unfiltered (FailOpen) loses every header and
	// trailer whose name, lower-cased with '_' read as '-', starts with one
	// of them (wasmhost.Lifecycle.StripPrefixes). Default: none.
	StripPrefixes []string
	// RequestTimeout bounds how long a paused stream may wait for the guest.
	// Default: 5s.
	RequestTimeout time.Duration
	// Start is the initial time of the clock. Default: time.Now().
	Start time.Time
	// LogLevel is the guest's log level. Default: slog.LevelInfo.
	LogLevel slog.Level
	// Logger receives guest and host logs. Default: the test log.
	Logger *slog.Logger
	// PluginName is the plugin_name property. Default: "sessionedge".
	PluginName string
	// RootID is the plugin_root_id property. Default: empty.
	RootID string
}

// Harness drives requests through a plugin. It is safe for concurrent use:
// Do may run from many goroutines.
type Harness struct {
	tb    TB
	cfg   Config
	host  *wasmhost.Host
	lc    *wasmhost.Lifecycle
	clock *Clock

	mu       sync.Mutex
	upstream UpstreamFunc
	clusters map[string]wasmhost.Cluster
	calls    []CallRequest
	logs     []string

	reqID atomic.Uint64
}

// New loads the module, starts its VMs with manual ticks and registers
// cleanup with tb. It fails the test when the module does not load or
// rejects its configuration; use Load to test that case.
func New(tb TB, cfg Config) *Harness {
	tb.Helper()
	h, err := Load(tb, cfg)
	if err != nil {
		tb.Fatalf("harness: %v", err)
	}
	return h
}

// Load is New returning the error instead of failing the test.
func Load(tb TB, cfg Config) (*Harness, error) {
	tb.Helper()
	if cfg.Wasm == "" {
		return nil, errors.New("harness: Config.Wasm is required")
	}
	if cfg.VMs <= 0 {
		cfg.VMs = 1
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Now()
	}
	h := &Harness{tb: tb, cfg: cfg, clock: NewClock(cfg.Start), clusters: make(map[string]wasmhost.Cluster)}
	h.upstream = func(*UpstreamRequest) *Response {
		return &Response{Status: 200, Headers: Headers{{"content-type", "text/plain"}}, Body: []byte("upstream ok")}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(&logHandler{h: h, level: cfg.LogLevel})
	}
	host, err := wasmhost.New(context.Background(), wasmhost.Config{
		WasmPath:     cfg.Wasm,
		PluginConfig: []byte(cfg.PluginConfig),
		VMConfig:     []byte(cfg.VMConfig),
		PluginName:   cfg.PluginName,
		RootID:       cfg.RootID,
		VMs:          cfg.VMs,
		Clusters:     (*resolver)(h),
		Clock:        h.clock,
		Logger:       logger,
		LogLevel:     cfg.LogLevel,
		ManualTicks:  true,
		// Replacement in tests should be quick but still rate-limited.
		MinRestartInterval: 10 * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	h.host = host
	h.lc = &wasmhost.Lifecycle{Host: host, FailOpen: cfg.FailOpen, StripPrefixes: cfg.StripPrefixes}
	tb.Cleanup(func() { _ = host.Close(context.Background()) })
	return h, nil
}

// Host returns the underlying host, for tests that need more than the harness.
func (h *Harness) Host() *wasmhost.Host { return h.host }

// Clock returns the clock the guest sees.
func (h *Harness) Clock() *Clock { return h.clock }

// SetUpstream replaces the fake upstream. The default answers 200
// "upstream ok".
func (h *Harness) SetUpstream(fn UpstreamFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.upstream = fn
}

// SetCluster makes fn answer the guest's HTTP calls to the cluster name.
func (h *Harness) SetCluster(name string, fn ClusterFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clusters[name] = funcCluster(fn)
}

// SetClusterAddr sends the guest's HTTP calls to the cluster name to a real
// HTTP server at addr ("127.0.0.1:port").
func (h *Harness) SetClusterAddr(name, addr string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clusters[name] = &wasmhost.HTTPCluster{Addr: addr}
}

// Calls returns every HTTP call the guest made so far, in order of start.
func (h *Harness) Calls() []CallRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]CallRequest(nil), h.calls...)
}

// Logs returns the messages the guest logged so far (proxy_log, stdout,
// stderr) when Config.Logger is not set.
func (h *Harness) Logs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.logs...)
}

// Tick calls proxy_on_tick on every VM, then waits until the HTTP calls in
// flight (those the tick started included) have been delivered to the guest.
func (h *Harness) Tick() {
	h.host.Tick()
	h.WaitCalls()
}

// WaitCalls waits until no HTTP call is in flight, at most RequestTimeout.
func (h *Harness) WaitCalls() {
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.RequestTimeout)
	defer cancel()
	if err := h.host.WaitCalls(ctx); err != nil {
		h.tb.Errorf("harness: HTTP calls still in flight after %v", h.cfg.RequestTimeout)
	}
}

// Metric returns the value of the guest's counter or gauge name (0 if undefined).
func (h *Harness) Metric(name string) int64 {
	v, _ := h.host.Metric(name)
	return v
}

// SharedData returns the shared-data value of key and its CAS.
func (h *Harness) SharedData(key string) ([]byte, uint32, bool) { return h.host.SharedData(key) }

// Get is Do for a GET of path with headers given as name, value pairs.
func (h *Harness) Get(path string, headerPairs ...string) *Result {
	req := &Request{Path: path}
	for i := 0; i+1 < len(headerPairs); i += 2 {
		req.Headers = append(req.Headers, [2]string{headerPairs[i], headerPairs[i+1]})
	}
	return h.Do(req)
}

// Do drives req through the filter like a proxy (wasmhost.Lifecycle, the
// same driver as the edge proxy): request headers, body and trailers, then
// the fake upstream, then response headers and body, then the stream ends
// (proxy_on_done, proxy_on_log, proxy_on_delete). It returns what the
// upstream and the client saw.
func (h *Harness) Do(req *Request) *Result {
	res := &Result{}
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.RequestTimeout)
	defer cancel()
	hr := &wasmhost.Request{
		Method:    orDefault(req.Method, "GET"),
		Path:      orDefault(req.Path, "/"),
		Authority: orDefault(req.Host, "example.com"),
		Scheme:    orDefault(req.Scheme, "https"),
		Header:    req.Headers,
		Info: wasmhost.StreamInfo{
			ID:            orDefault(req.ID, "req-"+strconv.FormatUint(h.reqID.Add(1), 10)),
			SourceAddress: orDefault(req.RemoteAddr, "192.0.2.1:54321"),
			Protocol:      "HTTP/1.1",
		},
	}
	if req.Body != nil {
		hr.Body, hr.ContentLength = bytes.NewReader(req.Body), int64(len(req.Body))
	}
	if req.Trailers != nil {
		hr.Trailer = req.Trailers
	}
	x := h.lc.Run(ctx, hr, upstream{h, res})
	defer x.Close()
	body, err := io.ReadAll(x)
	out := &Response{Status: x.Status, Body: body}
	for i := 0; i < x.Headers.Len(); i++ {
		k, v := x.Headers.Pair(i)
		out.Headers = append(out.Headers, [2]string{string(k), string(v)})
	}
	res.Response, res.Local, res.LocalDetails = out, x.Local, x.Details
	switch {
	case x.FilterErr != nil:
		res.Err = x.FilterErr
	case x.Reset:
		res.Err = errors.New("harness: stream reset by the filter")
	case err != nil:
		res.Err = err
	}
	if !x.Forwarded {
		res.Upstream = nil
	}
	return res
}

// upstream runs the fake upstream for one request of Do.
type upstream struct {
	h   *Harness
	res *Result
}

func (u upstream) RoundTrip(_ context.Context, req *wasmhost.UpstreamRequest, resp *wasmhost.UpstreamResponse) error {
	up := &UpstreamRequest{}
	for i := 0; i < req.Headers.Len(); i++ {
		k, v := req.Headers.Pair(i)
		switch string(k) {
		case ":method":
			up.Method = string(v)
		case ":path":
			up.Path = string(v)
		case ":authority":
			up.Host = string(v)
		case ":scheme":
			up.Scheme = string(v)
		default:
			if len(k) > 0 && k[0] != ':' {
				up.Headers = append(up.Headers, [2]string{string(k), string(v)})
			}
		}
	}
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return err
		}
		up.Body = b
	}
	if req.Trailers != nil {
		for i := 0; i < req.Trailers.Len(); i++ {
			k, v := req.Trailers.Pair(i)
			up.Trailers = append(up.Trailers, [2]string{string(k), string(v)})
		}
	}
	u.res.Upstream = up
	u.h.mu.Lock()
	fn := u.h.upstream
	u.h.mu.Unlock()
	r := fn(up)
	if r == nil {
		r = &Response{Status: 502}
	}
	resp.Status = r.Status
	for _, p := range r.Headers {
		_ = resp.Headers.Add(p[0], p[1])
	}
	if len(r.Body) > 0 {
		resp.Body, resp.ContentLength = bytes.NewReader(r.Body), int64(len(r.Body))
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// resolver gives the host the harness's clusters, looked up at call time so
// SetCluster works after New.
type resolver Harness

func (r *resolver) Cluster(name string) wasmhost.Cluster {
	h := (*Harness)(r)
	h.mu.Lock()
	c := h.clusters[name]
	h.mu.Unlock()
	if c == nil {
		return nil
	}
	return recordingCluster{h: h, c: c}
}

type recordingCluster struct {
	h *Harness
	c wasmhost.Cluster
}

func (rc recordingCluster) RoundTrip(ctx context.Context, req *wasmhost.CallRequest, resp *wasmhost.CallResponse) error {
	cr := toCallRequest(req)
	rc.h.mu.Lock()
	rc.h.calls = append(rc.h.calls, *cr)
	rc.h.mu.Unlock()
	return rc.c.RoundTrip(ctx, req, resp)
}

func toCallRequest(req *wasmhost.CallRequest) *CallRequest {
	cr := &CallRequest{Cluster: req.Cluster, Body: append([]byte(nil), req.Body...), Timeout: req.Timeout}
	for i := 0; i < req.Headers.Len(); i++ {
		k, v := req.Headers.Pair(i)
		cr.Headers = append(cr.Headers, [2]string{string(k), string(v)})
	}
	cr.Method, _ = cr.Headers.Get(":method")
	cr.Path, _ = cr.Headers.Get(":path")
	cr.Authority, _ = cr.Headers.Get(":authority")
	return cr
}

// funcCluster runs a ClusterFunc on its own goroutine so a responder that
// ignores the timeout still lets the call fail on time.
type funcCluster ClusterFunc

func (f funcCluster) RoundTrip(ctx context.Context, req *wasmhost.CallRequest, resp *wasmhost.CallResponse) error {
	cr := toCallRequest(req)
	type answer struct {
		r   *Response
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		r, err := f(cr)
		ch <- answer{r, err}
	}()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case a := <-ch:
		if a.err != nil {
			return a.err
		}
		if a.r == nil {
			return errors.New("harness: cluster returned no response")
		}
		resp.SetStatus(a.r.Status)
		for _, p := range a.r.Headers {
			_ = resp.Headers.Add(p[0], p[1])
		}
		resp.Body = append(resp.Body[:0], a.r.Body...)
		return nil
	}
}

// logHandler sends log records to the test log and keeps guest messages.
type logHandler struct {
	h     *Harness
	level slog.Level
	attrs []slog.Attr
}

func (l *logHandler) Enabled(_ context.Context, lv slog.Level) bool { return lv >= l.level }

func (l *logHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	guest := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "source" && strings.HasPrefix(a.Value.String(), "guest") {
			guest = true
		}
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	if guest {
		l.h.mu.Lock()
		l.h.logs = append(l.h.logs, r.Message)
		l.h.mu.Unlock()
	}
	l.h.tb.Log(b.String())
	return nil
}

func (l *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &logHandler{h: l.h, level: l.level, attrs: append(append([]slog.Attr(nil), l.attrs...), as...)}
}

func (l *logHandler) WithGroup(string) slog.Handler { return l }
