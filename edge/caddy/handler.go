// Package caddy is a Caddy v2 HTTP handler module, http.handlers.proxy_wasm,
// that runs a proxy-wasm filter (the sessionedge filter, or any other) on
// edge/wasmhost in Caddy's middleware chain: every request goes through the
// filter's request phase, then to the rest of the chain (reverse_proxy,
// typically), whose response goes through the filter's response phase on
// its way to the client. wasmhost.Lifecycle drives the phases, as it does
// for the bundled edge proxy and the test harness.
//
// Build Caddy with it with xcaddy, or build ./edge/cmd/caddy (make build).
// docs/caddy.md is the reference: the Caddyfile directive, the JSON
// configuration, the failure modes and the metrics.
package caddy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	caddy2 "github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sessionedge/sessionedge/edge/wasmhost"
)

func init() {
	caddy2.RegisterModule(Handler{})
}

// Handler runs a proxy-wasm filter on every request it handles. The zero
// value of every field but Wasm means its default.
type Handler struct {
	// Wasm is the path of the filter's .wasm module. Required.
	Wasm string `json:"wasm,omitempty"`
	// PluginConfig is the plugin configuration the filter reads in
	// proxy_on_configure: a JSON value (placeholders in its strings, such
	// as {env.TOKEN_KEY}, are resolved at provisioning), or a JSON string
	// whose text, placeholders resolved, is the configuration (such as
	// "{file./run/secrets/plugin.json}"). It holds the token keys of the
	// sessionedge filter: prefer PluginConfigFile or placeholders, which
	// keep the keys out of the configuration Caddy keeps and serves on its
	// admin API. Default: empty.
	PluginConfig json.RawMessage `json:"plugin_config,omitempty"`
	// PluginConfigFile is a file holding the plugin configuration, read at
	// provisioning. Not together with PluginConfig.
	PluginConfigFile string `json:"plugin_config_file,omitempty"`
	// VMConfig is the VM configuration the filter reads in
	// proxy_on_vm_start. Default: empty.
	VMConfig string `json:"vm_config,omitempty"`
	// PluginName is the plugin_name property and the "plugin" label of
	// the metrics. Default: "sessionedge".
	PluginName string `json:"plugin_name,omitempty"`
	// RootID is the plugin_root_id property. Default: empty.
	RootID string `json:"root_id,omitempty"`
	// VMID is the plugin_vm_id property; filters with the same VM id share
	// their shared data, across reloads too. Default: "sessionedge".
	VMID string `json:"vm_id,omitempty"`
	// VMs is the number of filter instances (VMs); a request runs on one.
	// Default: GOMAXPROCS.
	VMs int `json:"vms,omitempty"`
	// Clusters maps the cluster names of the filter's HTTP calls to
	// "host:port" addresses (or URLs): {"origin": "127.0.0.1:8081"}.
	Clusters map[string]string `json:"clusters,omitempty"`
	// FailOpen forwards a request unfiltered when the filter fails (a
	// trap, a request held past FilterTimeout, no healthy VM), and hands
	// the client an upstream response unfiltered when it fails on the
	// response. Either way the headers of StripPrefixes are removed.
	// Default: false, answer 503.
	FailOpen bool `json:"fail_open,omitempty"`
	// StripPrefixes are the header-name prefixes the filter owns, removed
	// from a request and a response that pass without the filter (and from
	// the request Caddy's error routes get): a name, lower-cased and with
	// '_' read as '-', that starts with one of them. Default:
	// ["x-session-"].
	StripPrefixes []string `json:"strip_prefixes,omitempty"`
	// FilterTimeout bounds how long the filter may hold a request (waiting
	// for an HTTP call, say); past it the filter has failed. Default: 10s.
	FilterTimeout caddy2.Duration `json:"filter_timeout,omitempty"`
	// MaxCallTimeout caps the timeout of the filter's HTTP calls. Default:
	// 60s.
	MaxCallTimeout caddy2.Duration `json:"max_call_timeout,omitempty"`
	// MaxCallsInFlight caps the filter's HTTP calls in flight per cluster;
	// a call beyond it fails at once. Default: 1024.
	MaxCallsInFlight int `json:"max_calls_in_flight,omitempty"`
	// MaxRequestBuffer caps the request body bytes held while the filter
	// reads a body (413 beyond). Default: 8 MiB.
	MaxRequestBuffer int `json:"max_request_buffer,omitempty"`
	// MaxResponseBuffer caps the response body bytes held while the filter
	// reads a body before the headers leave (502 beyond). Default: 16 MiB.
	MaxResponseBuffer int `json:"max_response_buffer,omitempty"`
	// CompilationCache is a directory where compiled filter code is kept,
	// so a restart does not compile the module again. Default: none.
	CompilationCache string `json:"compilation_cache,omitempty"`

	logger  *zap.Logger
	hostKey string
	host    *pooledHost
	metrics *collector
	*state
}

// state is what a provisioned handler runs with. It is behind a pointer:
// Caddy copies module values (CaddyModule has a value receiver).
type state struct {
	lc       wasmhost.Lifecycle
	reqID    atomic.Uint64
	idPrefix string

	requests, inFlight, filterFailures, localReplies, upstreamErrors atomic.Int64
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy2.ModuleInfo {
	return caddy2.ModuleInfo{
		ID:  "http.handlers.proxy_wasm",
		New: func() caddy2.Module { return new(Handler) },
	}
}

// Provision loads the filter: it reads the module and the plugin
// configuration, resolving placeholders, then starts the VMs (or shares
// the running ones of a handler with the same filter and configuration)
// and registers the metrics.
func (h *Handler) Provision(ctx caddy2.Context) error {
	h.logger = ctx.Logger()
	if err := h.checkFields(); err != nil {
		return err
	}
	repl := caddy2.NewReplacer()
	spec := &hostSpec{
		PluginName:       orDefault(h.PluginName, "sessionedge"),
		RootID:           h.RootID,
		VMID:             orDefault(h.VMID, "sessionedge"),
		VMs:              h.VMs,
		Clusters:         map[string]string{},
		MaxCallsInFlight: h.MaxCallsInFlight,
		MaxCallTimeout:   time.Duration(h.MaxCallTimeout),
		FilterTimeout:    time.Duration(h.FilterTimeout),
		CompilationCache: repl.ReplaceKnown(h.CompilationCache, ""),
		VMConfig:         repl.ReplaceKnown(h.VMConfig, ""),
		LogLevel:         slog.LevelInfo,
	}
	if spec.FilterTimeout == 0 {
		spec.FilterTimeout = 10 * time.Second
	}
	if h.logger.Core().Enabled(zapcore.DebugLevel) {
		spec.LogLevel = slog.LevelDebug
	}
	for name, addr := range h.Clusters {
		addr = repl.ReplaceKnown(addr, "")
		if err := checkClusterAddr(addr); err != nil {
			return fmt.Errorf("clusters: %s: %w", name, err)
		}
		spec.Clusters[name] = addr
	}
	var err error
	path := repl.ReplaceKnown(h.Wasm, "")
	if spec.wasm, err = os.ReadFile(path); err != nil {
		return fmt.Errorf("wasm: %w", err)
	}
	sum := sha256.Sum256(spec.wasm)
	spec.WasmDigest = hex.EncodeToString(sum[:])
	if spec.PluginConfig, spec.configField, err = h.pluginConfig(repl); err != nil {
		return err
	}
	if spec.CompilationCache != "" {
		if err := os.MkdirAll(spec.CompilationCache, 0o700); err != nil {
			return fmt.Errorf("compilation_cache: %w", err)
		}
	}

	logger := ctx.Slogger()
	key := spec.key()
	v, _, err := hosts.LoadOrNew(key, func() (caddy2.Destructor, error) {
		return newPooledHost(spec, logger)
	})
	if err != nil {
		return err
	}
	h.hostKey, h.host = key, v.(*pooledHost)
	h.host.attach(h, logger)

	strip := h.StripPrefixes
	if len(strip) == 0 {
		strip = []string{"x-session-"}
	}
	h.state = &state{}
	h.lc = wasmhost.Lifecycle{
		Host:              h.host.host,
		FailOpen:          h.FailOpen,
		StripPrefixes:     lowerAll(strip),
		MaxRequestBuffer:  h.MaxRequestBuffer,
		MaxResponseBuffer: h.MaxResponseBuffer,
	}
	h.idPrefix = strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	h.metrics = registerMetrics(ctx.GetMetricsRegistry(), h)
	return nil
}

// Validate checks the configuration (Provision checked it before loading
// the filter) and that the filter is loaded.
func (h *Handler) Validate() error {
	if err := h.checkFields(); err != nil {
		return err
	}
	if h.host == nil {
		return fmt.Errorf("wasm: the filter %s is not loaded", h.Wasm)
	}
	return nil
}

// Cleanup releases the filter: the VMs stop when no handler of any loaded
// configuration uses them any more.
func (h *Handler) Cleanup() error {
	if h.metrics != nil {
		h.metrics.remove(h)
		h.metrics = nil
	}
	if h.host == nil {
		return nil
	}
	h.host.detach(h)
	h.host = nil
	_, err := hosts.Delete(h.hostKey)
	return err
}

// ServeHTTP runs the request through the filter, the rest of the chain
// (next) and the filter again, and writes the response.
//
// Two goroutines share the work. The filter's exchange (call.exchange:
// wasmhost.Lifecycle.Run, then writing the response) runs on a worker
// (exchanges); next runs here, on the request's own goroutine, when the exchange asks
// for it (call.RoundTrip), writing its response into a pipe the exchange
// reads. The chain keeps the goroutine whose stack the server has grown
// already, and a panic in it happens where it would without the filter.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	h.requests.Add(1)
	h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	c := &call{h: h, next: next, r: r, client: w, ctx: ctx, cancel: cancel,
		toNext: make(chan *http.Request, 1), nextDone: make(chan struct{}), done: make(chan struct{})}
	exchanges.run(c)
	select {
	case r2 := <-c.toNext:
		c.serveNext(r2)
	case <-c.done:
	}
	switch {
	case c.panic != nil:
		panic(c.panic)
	case c.failedBeforeAnswer():
		// next failed before it answered (reverse_proxy found no upstream,
		// file_server no file): Caddy's error handling takes the request
		// over, as it would without the filter, with the filter's headers
		// removed from the request its error routes get.
		stripHeaders(r.Header, h.lc.StripPrefixes)
		return c.err
	case c.abort:
		// The body ended early (the filter failed or answered after the
		// headers left, or next failed while writing it): the client must
		// see a broken response, not a short one.
		panic(http.ErrAbortHandler)
	}
	return nil
}

// exchange runs the request through the filter (next is its upstream) and
// writes the response, then ends the exchange.
func (c *call) exchange() {
	h, r, w := c.h, c.r, c.client
	defer close(c.done)
	defer func() {
		if p := recover(); p != nil {
			c.panic = p
		}
	}()
	req := wasmhost.Request{
		Method:    r.Method,
		Path:      r.URL.RequestURI(),
		Authority: r.Host,
		Scheme:    "http",
		Header:    wasmhost.HTTPHeader(r.Header),
		Info: wasmhost.StreamInfo{
			ID:            h.requestID(r),
			SourceAddress: r.RemoteAddr,
			Protocol:      r.Proto,
		},
	}
	if r.TLS != nil {
		req.Scheme = "https"
	}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		req.Body, req.ContentLength = r.Body, r.ContentLength
	}
	x := h.lc.Run(c.ctx, &req, c)
	h.observe(x, c)
	if c.failedBeforeAnswer() {
		c.end(x)
		return
	}

	hdr := w.Header()
	if x.Forwarded {
		// The response the filter saw started from the client writer's
		// headers (Server, say): its headers replace them.
		clear(hdr)
	}
	for i := 0; i < x.Headers.Len(); i++ {
		k, v := x.Headers.Pair(i)
		key := canonicalKey(k)
		hdr[key] = append(hdr[key], string(v))
	}
	switch {
	case r.Method == http.MethodHead:
		// A HEAD response has no body; its length is the one next gave.
		if x.Forwarded && c.w.headLength != "" {
			hdr.Set("Content-Length", c.w.headLength)
		}
	case x.Status < 200 || x.Status == http.StatusNoContent || x.Status == http.StatusNotModified:
	case x.ContentLength >= 0:
		hdr.Set("Content-Length", strconv.FormatInt(x.ContentLength, 10))
	}
	if x.Reset {
		hdr.Set("Connection", "close")
	}
	w.WriteHeader(x.Status)
	bodyErr := h.writeBody(w, x, c)
	if err := c.end(x); err != nil && bodyErr == nil {
		bodyErr = err
	}
	if bodyErr != nil {
		h.logger.Warn("proxy_wasm: response body ended early", zap.Error(bodyErr))
		c.abort = true
	}
}

// exchanges runs the filters' exchanges on goroutines that outlive a
// request: the stack a filter call grows (wazero's calls into Go need
// some) is grown once per worker rather than once per request.
var exchanges = &workers{idle: 10 * time.Second}

// workers is a pool of goroutines that run exchanges: an idle one takes
// the next exchange, a new one starts when none is idle, and one idle for
// longer than idle exits.
type workers struct {
	tasks chan *call
	once  sync.Once
	idle  time.Duration
}

func (p *workers) run(c *call) {
	p.once.Do(func() { p.tasks = make(chan *call) })
	select {
	case p.tasks <- c:
	default:
		go p.work(c)
	}
}

func (p *workers) work(c *call) {
	t := time.NewTimer(p.idle)
	defer t.Stop()
	for {
		c.exchange()
		t.Reset(p.idle)
		select {
		case c = <-p.tasks:
		case <-t.C:
			return
		}
	}
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// writeBody copies the exchange's body to the client. A body of unknown
// length, or one next flushed, is flushed after every write, as
// reverse_proxy flushes such a body. It returns the error that ended the
// body early; a client that went away is not one.
func (h *Handler) writeBody(w http.ResponseWriter, x *wasmhost.Exchange, c *call) error {
	if b, ok := x.BodyBytes(); ok {
		_, _ = w.Write(b)
		return nil
	}
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	rc := http.NewResponseController(w)
	stream := x.ContentLength < 0
	for {
		n, err := x.Read(*bp)
		if n > 0 {
			if _, werr := w.Write((*bp)[:n]); werr != nil {
				return nil
			}
			if stream || c.w.flushed.Load() {
				_ = rc.Flush()
			}
		}
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
	}
}

// observe counts the exchange and logs what went wrong.
func (h *Handler) observe(x *wasmhost.Exchange, c *call) {
	if x.FilterErr != nil {
		h.filterFailures.Add(1)
		h.logger.Error("proxy_wasm: filter failed", zap.Error(x.FilterErr), zap.Bool("fail_open", h.lc.FailOpen), zap.Bool("forwarded", x.Forwarded))
	}
	if x.Local {
		h.localReplies.Add(1)
	}
	if x.UpstreamErr != nil {
		h.upstreamErrors.Add(1)
		if !c.failedBeforeAnswer() {
			h.logger.Warn("proxy_wasm: the handlers after the filter failed", zap.Error(x.UpstreamErr))
		}
	}
}

// requestID is the request.id property: X-Request-Id, or a counter.
func (h *Handler) requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" {
		return id
	}
	var b [48]byte
	return string(strconv.AppendUint(append(b[:0], h.idPrefix...), h.reqID.Add(1), 36))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// canonicalKeys maps the lower-case header names the filter hands back to
// their canonical form (the keys of http.Header), so a warm request
// allocates nothing for them. It is copied on write and holds at most
// maxCanonicalKeys names: a client sending ever new names cannot grow it.
var (
	canonicalKeys   atomic.Pointer[map[string]string]
	canonicalKeysMu sync.Mutex
)

const maxCanonicalKeys = 1024

// canonicalKey returns the canonical form of a header name.
func canonicalKey(k []byte) string {
	if m := canonicalKeys.Load(); m != nil {
		if v, ok := (*m)[string(k)]; ok {
			return v
		}
	}
	key := textproto.CanonicalMIMEHeaderKey(string(k))
	canonicalKeysMu.Lock()
	defer canonicalKeysMu.Unlock()
	old := canonicalKeys.Load()
	if old != nil && len(*old) >= maxCanonicalKeys {
		return key
	}
	next := make(map[string]string, 1+len(mapOrNil(old)))
	for n, c := range mapOrNil(old) {
		next[n] = c
	}
	next[string(k)] = key
	canonicalKeys.Store(&next)
	return key
}

func mapOrNil(m *map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	return *m
}

// lowerAll returns the prefixes in lower case, as the Lifecycle wants them.
func lowerAll(prefixes []string) []string {
	out := make([]string, len(prefixes))
	for i, p := range prefixes {
		out[i] = strings.ToLower(p)
	}
	return out
}

// stripHeaders removes the headers whose name, lower-cased and with '_'
// read as '-', starts with one of the prefixes (given lower-case).
func stripHeaders(h http.Header, prefixes []string) {
	for name := range h {
		folded := strings.ReplaceAll(strings.ToLower(name), "_", "-")
		for _, p := range prefixes {
			if strings.HasPrefix(folded, p) {
				delete(h, name)
				break
			}
		}
	}
}

// Interface guards
var (
	_ caddy2.Module               = (*Handler)(nil)
	_ caddy2.Provisioner          = (*Handler)(nil)
	_ caddy2.Validator            = (*Handler)(nil)
	_ caddy2.CleanerUpper         = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
