// Package proxy is the edge reverse proxy: a fasthttp server that runs the
// proxy-wasm filter on every request (edge/wasmhost) and forwards to one
// upstream, with an admin server for /metrics, /healthz and /readyz.
package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/sessionedge/sessionedge/edge/wasmhost"
	"github.com/valyala/fasthttp"
)

// Server is the edge proxy.
type Server struct {
	cfg       Config
	log       *slog.Logger
	host      *wasmhost.Host // nil when NoFilter
	lc        wasmhost.Lifecycle
	exchanges sync.Pool
	upstream  *fasthttp.HostClient
	srv       *fasthttp.Server
	admin     *fasthttp.Server
	draining  atomic.Bool
	reqID     atomic.Uint64
	idPrefix  string

	clusters []wasmhost.NamedCluster

	requests, upstreamErrors, filterFailures, localReplies, inFlight, refusedConns atomic.Int64
}

// New validates cfg, loads the filter and prepares the servers.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	s.idPrefix = strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	if !cfg.NoFilter {
		var clusters wasmhost.Clusters
		clusters, s.clusters = wasmhost.NewHTTPClusters(cfg.Clusters, cfg.MaxCallsInFlight)
		host, err := wasmhost.New(ctx, wasmhost.Config{
			WasmPath:            cfg.Wasm,
			PluginConfig:        cfg.PluginConfig,
			VMs:                 cfg.VMs,
			Clusters:            clusters,
			Logger:              cfg.Logger,
			CompilationCacheDir: cfg.CompilationCacheDir,
			PauseTimeout:        cfg.FilterTimeout.Std(),
		})
		if err != nil {
			return nil, err
		}
		s.host = host
	}
	s.lc = wasmhost.Lifecycle{
		Host:              s.host,
		FailOpen:          cfg.FailOpen,
		StripPrefixes:     []string{"x-session-"},
		MaxRequestBuffer:  cfg.MaxRequestBuffer,
		MaxResponseBuffer: cfg.MaxResponseBuffer,
	}
	s.exchanges.New = func() any { return &exchange{s: s} }
	// UpstreamTimeout bounds each exchange through DoTimeout (RoundTrip);
	// per-read and per-write timeouts of the same length would never fire
	// first and cost clock reads on every request.
	s.upstream = &fasthttp.HostClient{
		Addr:                          cfg.Upstream,
		MaxConns:                      4096,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
		MaxIdleConnDuration:           cfg.IdleTimeout.Std(),
		StreamResponseBody:            true,
		// With StreamResponseBody, a body of known length up to this size
		// is read with the headers, and a larger one streams; without it
		// every body of known length would be read whole first.
		MaxResponseBodySize:   upstreamReadWhole,
		SecureErrorLogMessage: true,
	}
	bodyTimeout := cfg.ReadTimeout.Std()
	s.srv = &fasthttp.Server{
		Handler: s.handle,
		Name:    "sessionedge",
		// ReadTimeout bounds the request headers (a slow client trickling
		// them); HeaderReceived then gives the body its own deadline.
		ReadTimeout: cfg.HeaderTimeout.Std(),
		// A request without a body has nothing more to read: its deadline
		// stays, which saves a clock read and a timer update.
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			if cl := h.ContentLength(); cl == 0 || cl < -1 {
				return fasthttp.RequestConfig{}
			}
			return fasthttp.RequestConfig{ReadTimeout: bodyTimeout}
		},
		WriteTimeout: cfg.WriteTimeout.Std(),
		IdleTimeout:  cfg.IdleTimeout.Std(),
		Concurrency:  cfg.MaxConns,
		// Bodies stream: the filter holds only what it asks to hold
		// (MaxRequestBuffer); multipart uploads are not parsed here.
		StreamRequestBody:             true,
		DisablePreParseMultipartForm:  true,
		DisableHeaderNamesNormalizing: true,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		NoDefaultDate:                 true,
		// fasthttp's own error logs (a 431 among them) would quote the
		// request head, cookies and tokens included.
		SecureErrorLogMessage: true,
		Logger:                fasthttpLogger{s.log},
	}
	s.admin = &fasthttp.Server{Handler: s.handleAdmin, Name: "sessionedge-admin", SecureErrorLogMessage: true, Logger: fasthttpLogger{s.log}}
	return s, nil
}

// Handler returns the proxy's request handler.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// AdminHandler returns the admin handler (/metrics, /healthz, /readyz).
func (s *Server) AdminHandler() fasthttp.RequestHandler { return s.handleAdmin }

// Serve serves the proxy on ln until Shutdown, at most
// Config.MaxConnsPerClient connections per client IP address.
func (s *Server) Serve(ln net.Listener) error {
	return s.srv.Serve(limitClients(ln, s.cfg.MaxConnsPerClient, &s.refusedConns))
}

// ServeAdmin serves the admin endpoints on ln until Shutdown.
func (s *Server) ServeAdmin(ln net.Listener) error { return s.admin.Serve(ln) }

// Shutdown stops accepting connections, waits for requests in flight (at
// most until ctx is done), then releases the filter.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	err := s.srv.ShutdownWithContext(ctx)
	_ = s.admin.ShutdownWithContext(ctx)
	if s.host != nil {
		if cerr := s.host.Close(ctx); err == nil {
			err = cerr
		}
	}
	s.upstream.CloseIdleConnections()
	return err
}

// Run starts the proxy and its admin server on the configured addresses and
// serves until ctx is done, then shuts down gracefully.
func Run(ctx context.Context, cfg Config) error {
	s, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	cfg = s.cfg
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = s.Shutdown(context.Background())
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- s.Serve(ln) }()
	if cfg.Admin != "-" {
		aln, err := net.Listen("tcp", cfg.Admin)
		if err != nil {
			_ = ln.Close()
			_ = s.Shutdown(context.Background())
			return err
		}
		go func() { errc <- s.ServeAdmin(aln) }()
		s.log.Info("edge: admin listening", "addr", aln.Addr().String())
	}
	s.log.Info("edge: listening", "addr", ln.Addr().String(), "upstream", cfg.Upstream, "filter", !cfg.NoFilter, "wasm", cfg.Wasm)
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil {
			_ = s.Shutdown(context.Background())
			return err
		}
	}
	s.log.Info("edge: shutting down")
	sctx, cancel := context.WithCancel(context.Background())
	if d := cfg.ShutdownTimeout.Std(); d > 0 {
		sctx, cancel = context.WithTimeout(context.Background(), d)
	}
	defer cancel()
	return s.Shutdown(sctx)
}

// handle runs one request through the filter (wasmhost.Lifecycle) and writes
// the response.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	s.requests.Add(1)
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	e := s.exchanges.Get().(*exchange)
	e.ctx = ctx
	e.req = wasmhost.Request{
		Method:    b2s(ctx.Method()),
		Path:      b2s(ctx.RequestURI()),
		Authority: b2s(ctx.Host()),
		Scheme:    scheme(ctx),
		Header:    e,
	}
	if s.host != nil {
		// The strings alias the request and the exchange, which outlive the
		// stream: the host copies them into the guest while it runs.
		e.info = appendRequestID(e.info[:0], ctx, s.idPrefix, &s.reqID)
		n := len(e.info)
		e.info = appendSourceAddress(e.info, ctx)
		e.req.Info = wasmhost.StreamInfo{
			ID:            b2s(e.info[:n]),
			SourceAddress: b2s(e.info[n:]),
			Protocol:      protocol(ctx),
		}
	}
	if cl := requestBodyLength(ctx); cl != 0 {
		e.req.ContentLength = int64(cl)
		if r := ctx.RequestBodyStream(); r != nil {
			e.clientBody = clientBody{r: r}
			e.req.Body = &e.clientBody
		} else {
			e.bodyBytes.Reset(ctx.Request.Body())
			e.req.Body = &e.bodyBytes
		}
	}
	// The request context ends paused streams early when the server shuts
	// down; the host bounds them with FilterTimeout.
	x := s.lc.Run(ctx, &e.req, e)
	e.x = x
	if !x.Forwarded && e.req.Body == &e.clientBody && !e.clientBody.eof {
		discardUnread(ctx, &e.clientBody)
	}
	if x.FilterErr != nil {
		s.filterFailures.Add(1)
		s.log.Error("edge: filter failed", "err", x.FilterErr, "failOpen", s.cfg.FailOpen, "forwarded", x.Forwarded)
	}
	if x.UpstreamErr != nil {
		s.upstreamErrors.Add(1)
		s.log.Warn("edge: upstream failed", "err", x.UpstreamErr)
	}
	if x.Local {
		s.localReplies.Add(1)
	}
	out := &ctx.Response
	out.Header.DisableNormalizing()
	out.Header.SetNoDefaultContentType(true)
	out.SetStatusCode(x.Status)
	for i := 0; i < x.Headers.Len(); i++ {
		k, v := x.Headers.Pair(i)
		out.Header.AddBytesKV(k, v)
	}
	if x.Reset {
		ctx.SetConnectionClose()
	}
	if b, ok := x.BodyBytes(); ok {
		out.SetBody(b)
		_ = e.Close()
		return
	}
	// The server reads the body after the handler returned, then closes it,
	// which ends the exchange.
	out.SetBodyStream(e, int(x.ContentLength))
}

// exchange is the proxy's side of one request: the client request as the
// filter reads it (a wasmhost.HeaderSource), the upstream (a
// wasmhost.Upstream), and the response body for the server to stream.
// Exchanges are pooled.
type exchange struct {
	s          *Server
	ctx        *fasthttp.RequestCtx
	req        wasmhost.Request
	x          *wasmhost.Exchange
	bodyBytes  bytes.Reader
	clientBody clientBody
	reqBody    readerOnly
	respBody   upstreamBody
	freq       fasthttp.Request
	fresp      fasthttp.Response
	ip, xff    []byte
	info       []byte // the request ID, then the source address
}

// AddHeaders adds the client's headers, then X-Forwarded-For (the client
// address appended) and X-Forwarded-Proto, as Envoy's connection manager
// does before the filters run.
func (e *exchange) AddHeaders(m *wasmhost.HeaderMap) error {
	e.ip = appendRemoteIP(e.ip[:0], e.ctx)
	ip := e.ip
	xff := false
	for k, v := range e.ctx.Request.Header.All() {
		switch {
		case !xff && bytes.EqualFold(k, []byte("x-forwarded-for")):
			xff = true
			e.xff = append(append(append(e.xff[:0], v...), ", "...), ip...)
			v = e.xff
		case bytes.EqualFold(k, []byte("x-forwarded-proto")):
			continue
		}
		if err := m.AddBytes(k, v); err != nil {
			return err
		}
	}
	if !xff {
		if err := m.Add("x-forwarded-for", b2s(ip)); err != nil {
			return err
		}
	}
	return m.Add("x-forwarded-proto", scheme(e.ctx))
}

// RoundTrip sends the request to the upstream (wasmhost.Upstream).
func (e *exchange) RoundTrip(_ context.Context, ur *wasmhost.UpstreamRequest, resp *wasmhost.UpstreamResponse) error {
	req, fresp := &e.freq, &e.fresp
	req.Reset()
	req.Header.DisableNormalizing()
	for i := 0; i < ur.Headers.Len(); i++ {
		k, v := ur.Headers.Pair(i)
		switch string(k) {
		case ":method":
			req.Header.SetMethodBytes(v)
		case ":path":
			req.SetRequestURIBytes(v)
		case ":authority":
			req.Header.SetHostBytes(v)
		default:
			if len(k) > 0 && k[0] != ':' {
				req.Header.AddBytesKV(k, v)
			}
		}
	}
	if ur.Body != nil {
		// The body is read through a reader without Close: the request
		// must not close (and so release) the client's body stream.
		e.reqBody.Reader = ur.Body
		n := int(ur.ContentLength)
		if n < 0 {
			n = -1
		}
		req.SetBodyStream(&e.reqBody, n)
	}
	fresp.Reset()
	var err error
	if d := e.s.cfg.UpstreamTimeout.Std(); d > 0 {
		err = e.s.upstream.DoTimeout(req, fresp, d)
	} else {
		// "none": no bound (DoTimeout would fail at once).
		err = e.s.upstream.Do(req, fresp)
	}
	if err != nil {
		return err
	}
	resp.Status = fresp.StatusCode()
	for k, v := range fresp.Header.All() {
		_ = resp.Headers.AddBytes(k, v)
	}
	if fresp.BodyStream() != nil {
		e.respBody.resp = fresp
		resp.Body = &e.respBody
		resp.ContentLength = int64(fresp.Header.ContentLength())
		if resp.ContentLength < 0 {
			resp.ContentLength = -1
		}
	} else if b := fresp.Body(); len(b) > 0 {
		e.bodyBytes.Reset(b)
		resp.Body, resp.ContentLength = &e.bodyBytes, int64(len(b))
	}
	return nil
}

// Read reads the response body for the server.
func (e *exchange) Read(p []byte) (int, error) { return e.x.Read(p) }

// Close ends the exchange once the server has written the response.
func (e *exchange) Close() error {
	if e.x == nil {
		return nil
	}
	if err := e.x.Close(); err != nil {
		e.s.log.Warn("edge: response body ended early", "err", err)
	}
	e.x, e.ctx, e.req = nil, nil, wasmhost.Request{}
	e.reqBody.Reader = nil
	e.respBody.resp = nil
	e.bodyBytes.Reset(nil)
	e.clientBody = clientBody{}
	e.s.exchanges.Put(e)
	return nil
}

// upstreamBody is the streamed body of an upstream response; closing it
// releases the upstream connection.
type upstreamBody struct{ resp *fasthttp.Response }

func (u *upstreamBody) Read(p []byte) (int, error) { return u.resp.BodyStream().Read(p) }

func (u *upstreamBody) Close() error { return u.resp.CloseBodyStream() }

type readerOnly struct{ io.Reader }

// requestBodyLength is the request's body length, -1 for chunked, 0 for
// none. fasthttp reports -2 ("identity") for a request with neither
// Content-Length nor Transfer-Encoding, which has no body (RFC 9112 §6.3):
// a GET must reach the filter with end_of_stream set.
func requestBodyLength(ctx *fasthttp.RequestCtx) int {
	cl := ctx.Request.Header.ContentLength()
	if cl < -1 {
		return 0
	}
	return cl
}

func scheme(ctx *fasthttp.RequestCtx) string {
	if ctx.IsTLS() {
		return "https"
	}
	return "http"
}

// appendRemoteIP appends the client's IP address to dst.
func appendRemoteIP(dst []byte, ctx *fasthttp.RequestCtx) []byte {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap().AppendTo(dst)
	}
	host, _, err := net.SplitHostPort(ctx.RemoteAddr().String())
	if err != nil {
		return append(dst, ctx.RemoteAddr().String()...)
	}
	return append(dst, host...)
}

// b2s returns b as a string without copying; the string is valid while b is.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// appendRequestID appends the request.id property to dst: the client's
// X-Request-Id, else prefix and the next number of seq.
func appendRequestID(dst []byte, ctx *fasthttp.RequestCtx, prefix string, seq *atomic.Uint64) []byte {
	if id := ctx.Request.Header.Peek("X-Request-Id"); len(id) > 0 {
		return append(dst, id...)
	}
	return strconv.AppendUint(append(dst, prefix...), seq.Add(1), 36)
}

// appendSourceAddress appends the client's "ip:port" to dst, as
// net.Addr.String writes it.
func appendSourceAddress(dst []byte, ctx *fasthttp.RequestCtx) []byte {
	a, ok := ctx.RemoteAddr().(*net.TCPAddr)
	if !ok || len(a.IP) == 0 {
		return append(dst, ctx.RemoteAddr().String()...)
	}
	ap := a.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).AppendTo(dst)
}

// protocol returns request.protocol without allocating for the common cases.
func protocol(ctx *fasthttp.RequestCtx) string {
	p := ctx.Request.Header.Protocol()
	switch string(p) {
	case "HTTP/1.1":
		return "HTTP/1.1"
	case "HTTP/1.0":
		return "HTTP/1.0"
	}
	return string(p)
}

func (s *Server) handleAdmin(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/healthz":
		ctx.SetBodyString("ok\n")
	case "/readyz":
		if s.draining.Load() {
			ctx.Error("draining\n", fasthttp.StatusServiceUnavailable)
			return
		}
		if s.host != nil && s.host.HealthyVMs() == 0 {
			ctx.Error("filter not ready: no healthy VM\n", fasthttp.StatusServiceUnavailable)
			return
		}
		ctx.SetBodyString("ready\n")
	case "/metrics":
		ctx.SetContentType("text/plain; version=0.0.4")
		s.WriteMetrics(ctx)
	default:
		ctx.Error("not found\n", fasthttp.StatusNotFound)
	}
}

// WriteMetrics writes the proxy's and the filter's metrics in the Prometheus
// text format.
func (s *Server) WriteMetrics(w io.Writer) {
	counter := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	counter("edge_requests_total", "Requests received.", s.requests.Load())
	counter("edge_upstream_errors_total", "Upstream exchanges that failed.", s.upstreamErrors.Load())
	counter("edge_filter_failures_total", "Requests whose filter failed (failure policy applied).", s.filterFailures.Load())
	counter("edge_local_replies_total", "Requests answered by the filter.", s.localReplies.Load())
	counter("edge_connections_refused_total", "Client connections refused: maxConnsPerClient from one address.", s.refusedConns.Load())
	gauge := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", name, help, name, name, v)
	}
	gauge("edge_requests_in_flight", "Requests being served.", s.inFlight.Load())
	if s.host != nil {
		counter("edge_vm_restarts_total", "Failed filter VMs replaced.", s.host.Restarts())
		gauge("edge_http_calls_in_flight", "HTTP calls of the filter in flight.", s.host.InflightCalls())
		gauge("edge_streams_paused", "Requests waiting for the filter (an HTTP call of the filter, say).", s.host.PausedStreams())
		if len(s.clusters) > 0 {
			fmt.Fprintf(w, "# HELP edge_cluster_calls_in_flight HTTP calls of the filter in flight, per cluster.\n# TYPE edge_cluster_calls_in_flight gauge\n")
			for _, c := range s.clusters {
				fmt.Fprintf(w, "edge_cluster_calls_in_flight{cluster=%q} %d\n", c.Name, c.InFlight())
			}
			fmt.Fprintf(w, "# HELP edge_cluster_calls_refused_total HTTP calls of the filter refused because maxCallsInFlight were in flight.\n# TYPE edge_cluster_calls_refused_total counter\n")
			for _, c := range s.clusters {
				fmt.Fprintf(w, "edge_cluster_calls_refused_total{cluster=%q} %d\n", c.Name, c.Refused())
			}
		}
		_ = s.host.WriteMetrics(w)
	}
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) { f.l.Warn(fmt.Sprintf(format, args...)) }

// clientBody is the client's streamed request body; it remembers reaching
// its end, because reading a chunked stream past its end would wait for the
// connection's next request.
type clientBody struct {
	r   io.Reader
	eof bool
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	b.eof = err == io.EOF
	return n, err
}

// upstreamReadWhole is the largest upstream response body of known length
// read with its headers; the filter reads bodies up to 64 KiB whole anyway.
const upstreamReadWhole = 64 << 10

// maxDiscard bounds what discardUnread reads of a body nobody wanted.
const maxDiscard = 4 << 20

// discardUnread reads what the client still sends of a request body that
// was answered without being read (a 413, a filter's local reply): closing a
// connection with unread bytes makes the kernel reset it, and a client still
// sending its body then loses the answer. The read is bounded by maxDiscard
// and by the body's read timeout; a body beyond either closes the connection.
func discardUnread(ctx *fasthttp.RequestCtx, body io.Reader) {
	lr := io.LimitedReader{R: body, N: maxDiscard}
	if _, err := io.Copy(io.Discard, &lr); err != nil || lr.N == 0 {
		ctx.SetConnectionClose()
	}
}
