// Package proxy is the edge reverse proxy: a fasthttp server that runs the
// proxy-wasm filter on every request (edge/wasmhost) and forwards to one
// upstream, with an admin server for /metrics, /healthz and /readyz.
package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessionedge/sessionedge/edge/wasmhost"
	"github.com/valyala/fasthttp"
)

// Server is the edge proxy.
type Server struct {
	cfg      Config
	log      *slog.Logger
	host     *wasmhost.Host // nil when NoFilter
	upstream *fasthttp.HostClient
	srv      *fasthttp.Server
	admin    *fasthttp.Server
	draining atomic.Bool
	reqID    atomic.Uint64
	idPrefix string

	requests, upstreamErrors, filterFailures, localReplies, inFlight atomic.Int64
}

// New validates cfg, loads the filter and prepares the servers.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	s.idPrefix = strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	if !cfg.NoFilter {
		clusters := wasmhost.Clusters{}
		for name, addr := range cfg.Clusters {
			clusters[name] = &wasmhost.HTTPCluster{Addr: addr}
		}
		host, err := wasmhost.New(ctx, wasmhost.Config{
			WasmPath:            cfg.Wasm,
			PluginConfig:        cfg.PluginConfig,
			VMs:                 cfg.VMs,
			Clusters:            clusters,
			Logger:              cfg.Logger,
			CompilationCacheDir: cfg.CompilationCacheDir,
			PauseTimeout:        time.Duration(cfg.FilterTimeout),
		})
		if err != nil {
			return nil, err
		}
		s.host = host
	}
	s.upstream = &fasthttp.HostClient{
		Addr:                          cfg.Upstream,
		ReadTimeout:                   time.Duration(cfg.UpstreamTimeout),
		WriteTimeout:                  time.Duration(cfg.UpstreamTimeout),
		MaxConns:                      4096,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
		MaxIdleConnDuration:           time.Duration(cfg.IdleTimeout),
		StreamResponseBody:            true,
	}
	s.srv = &fasthttp.Server{
		Handler:                       s.handle,
		Name:                          "sessionedge",
		ReadTimeout:                   time.Duration(cfg.ReadTimeout),
		WriteTimeout:                  time.Duration(cfg.WriteTimeout),
		IdleTimeout:                   time.Duration(cfg.IdleTimeout),
		MaxRequestBodySize:            cfg.MaxRequestBodySize,
		StreamRequestBody:             true,
		DisableHeaderNamesNormalizing: true,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		NoDefaultDate:                 true,
		Logger:                        fasthttpLogger{s.log},
	}
	s.admin = &fasthttp.Server{Handler: s.handleAdmin, Name: "sessionedge-admin", Logger: fasthttpLogger{s.log}}
	return s, nil
}

// Handler returns the proxy's request handler.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// AdminHandler returns the admin handler (/metrics, /healthz, /readyz).
func (s *Server) AdminHandler() fasthttp.RequestHandler { return s.handleAdmin }

// Serve serves the proxy on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

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
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout))
	defer cancel()
	return s.Shutdown(sctx)
}

var hopHeaders = [...]string{"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}

func isHop(k []byte) bool {
	for _, h := range hopHeaders {
		if string(k) == h || bytes.EqualFold(k, []byte(h)) {
			return true
		}
	}
	return false
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	s.requests.Add(1)
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	if s.host == nil {
		s.forwardDirect(ctx)
		return
	}
	st, err := s.host.NewStream(wasmhost.StreamInfo{
		ID:            s.requestID(ctx),
		SourceAddress: ctx.RemoteAddr().String(),
		Protocol:      string(ctx.Request.Header.Protocol()),
	})
	if err != nil {
		s.filterFailed(ctx, err, nil, false)
		return
	}
	closeStream := true // false once a body writer owns the stream
	defer func() {
		if closeStream {
			st.Close()
		}
	}()
	// The host bounds paused streams with FilterTimeout; the request context
	// ends them early when the server shuts down.
	fctx := context.Context(ctx)

	rh := st.RequestHeaders()
	_ = rh.AddBytes([]byte(":authority"), ctx.Host())
	_ = rh.AddBytes([]byte(":path"), ctx.RequestURI())
	_ = rh.AddBytes([]byte(":method"), ctx.Method())
	_ = rh.Add(":scheme", scheme(ctx))
	var hdrErr error
	for k, v := range ctx.Request.Header.All() {
		if bytes.EqualFold(k, []byte("host")) || isHop(k) {
			continue
		}
		if err := rh.AddBytes(k, v); err != nil {
			hdrErr = err
			break
		}
	}
	if hdrErr != nil {
		ctx.Error("request header fields too large", fasthttp.StatusRequestHeaderFieldsTooLarge)
		return
	}
	setForwarded(rh, ctx)

	// Bodies stream past the filter unless the guest has a body callback.
	cl := ctx.Request.Header.ContentLength()
	hasBody := cl != 0
	var body []byte
	bodyRead := false
	vd, err := st.OnRequestHeaders(fctx, !hasBody)
	if err == nil && (vd == wasmhost.Continue || vd == wasmhost.Buffer) && hasBody && st.WantsRequestBody() {
		body, err = readRequestBody(ctx, s.cfg.MaxRequestBodySize)
		if err != nil {
			ctx.Error("request body too large or unreadable", fasthttp.StatusRequestEntityTooLarge)
			return
		}
		bodyRead = true
		st.SetRequestBody(body)
		vd, err = st.OnRequestBody(fctx, true)
	}
	if err != nil {
		s.filterFailed(ctx, err, body, bodyRead)
		return
	}
	if vd != wasmhost.Continue {
		s.answer(ctx, st, vd)
		return
	}

	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	streaming := false
	defer func() {
		if !streaming {
			// An unread body stream holds the upstream connection until closed.
			_ = resp.CloseBodyStream()
			fasthttp.ReleaseResponse(resp)
		}
	}()
	req.Header.DisableNormalizing()
	for i := 0; i < rh.Len(); i++ {
		k, v := rh.Pair(i)
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
	setUpstreamBody(req, ctx, st.RequestBody(), bodyRead, cl)
	if err := s.upstream.DoTimeout(req, resp, time.Duration(s.cfg.UpstreamTimeout)); err != nil {
		s.upstreamFailed(ctx, err)
		return
	}

	ph := st.ResponseHeaders()
	var code [3]byte
	_ = ph.AddBytes([]byte(":status"), strconv.AppendInt(code[:0], int64(resp.StatusCode()), 10))
	for k, v := range resp.Header.All() {
		if isHop(k) {
			continue
		}
		_ = ph.AddBytes(k, v)
	}
	respStream := resp.BodyStream()
	respLen := resp.Header.ContentLength()
	var rbody []byte
	hasRespBody := respLen != 0
	if respStream == nil {
		rbody = resp.Body()
		hasRespBody = len(rbody) > 0
	}
	vd, err = st.OnResponseHeaders(fctx, !hasRespBody)
	if err != nil {
		s.filterFailed(ctx, err, nil, false)
		return
	}
	if vd == wasmhost.LocalReply || vd == wasmhost.Reset {
		s.answer(ctx, st, vd)
		return
	}
	wants := hasRespBody && st.WantsResponseBody()
	bufferedWhole := wants && (vd == wasmhost.Buffer || respStream == nil)
	if bufferedWhole {
		// The guest sees the whole body before the headers leave.
		if respStream != nil {
			if rbody, err = readLimited(respStream, s.cfg.MaxResponseBufferSize); err != nil {
				s.upstreamFailed(ctx, err)
				return
			}
		}
		st.SetResponseBody(rbody)
		if vd, err = st.OnResponseBody(fctx, true); err != nil {
			s.filterFailed(ctx, err, nil, false)
			return
		}
		if vd != wasmhost.Continue {
			s.answer(ctx, st, vd)
			return
		}
	}
	out := &ctx.Response
	out.Header.DisableNormalizing()
	out.Header.SetNoDefaultContentType(true)
	out.SetStatusCode(resp.StatusCode())
	for i := 0; i < ph.Len(); i++ {
		k, v := ph.Pair(i)
		if string(k) == ":status" {
			if n, err := strconv.Atoi(string(v)); err == nil {
				out.SetStatusCode(n)
			}
			continue
		}
		if len(k) > 0 && k[0] == ':' {
			continue
		}
		out.Header.AddBytesKV(k, v)
	}
	switch {
	case bufferedWhole:
		out.SetBody(st.ResponseBody())
	case respStream == nil:
		out.SetBody(rbody)
	case !wants:
		// No body callback: the body streams past the filter. The server
		// reads the stream after the handler returns and closes it; closing
		// releases the upstream response.
		streaming = true
		if respLen < 0 {
			respLen = -1
		}
		out.SetBodyStream(&upstreamBody{resp: resp}, respLen)
	default:
		// The body streams through the guest's body callback chunk by chunk.
		streaming, closeStream = true, false
		out.SetBodyStreamWriter(func(w *bufio.Writer) {
			s.filterResponseBody(w, st, resp)
		})
	}
}

// filterResponseBody runs after the handler returned, while the server writes
// the response: each chunk read from the upstream goes through
// proxy_on_response_body and what the guest leaves is written out. A guest
// that returns Buffer gets the accumulated bytes again with the next chunk.
// The headers are already sent, so a failure or local answer at this point
// ends the body early and closes the connection.
func (s *Server) filterResponseBody(w *bufio.Writer, st *wasmhost.Stream, resp *fasthttp.Response) {
	defer fasthttp.ReleaseResponse(resp)
	defer st.Close()
	defer resp.CloseBodyStream()
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	chunk := *bp
	var pending []byte
	src := resp.BodyStream()
	for {
		n, rerr := src.Read(chunk)
		eos := rerr != nil
		if n == 0 && !eos {
			continue
		}
		pending = append(pending, chunk[:n]...)
		st.SetResponseBody(pending)
		vd, err := st.OnResponseBody(context.Background(), eos)
		if err != nil || vd == wasmhost.LocalReply || vd == wasmhost.Reset {
			s.log.Warn("edge: filter stopped a response body already under way", "err", err, "verdict", vd)
			return
		}
		if vd == wasmhost.Continue {
			if _, err := w.Write(st.ResponseBody()); err != nil {
				return
			}
			if err := w.Flush(); err != nil {
				return
			}
			pending = pending[:0]
		}
		if eos {
			if rerr != io.EOF {
				s.log.Warn("edge: upstream body ended with an error", "err", rerr)
			}
			return
		}
	}
}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func readLimited(r io.Reader, max int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, errBodyTooLarge
	}
	return b, nil
}

// upstreamBody streams an upstream response body to the client and releases
// the response when the server closes it.
type upstreamBody struct {
	resp *fasthttp.Response
	done bool
}

func (u *upstreamBody) Read(p []byte) (int, error) { return u.resp.BodyStream().Read(p) }

func (u *upstreamBody) Close() error {
	if u.done {
		return nil
	}
	u.done = true
	err := u.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(u.resp)
	return err
}

func readRequestBody(ctx *fasthttp.RequestCtx, max int) ([]byte, error) {
	r := ctx.RequestBodyStream()
	if r == nil {
		return ctx.Request.Body(), nil
	}
	return readLimited(r, max)
}

var errBodyTooLarge = errors.New("proxy: body larger than the configured limit")

// setUpstreamBody gives the upstream request the body the filter saw, or the
// client's body stream when the filter did not read it.
func setUpstreamBody(req *fasthttp.Request, ctx *fasthttp.RequestCtx, body []byte, bodyRead bool, cl int) {
	switch {
	case bodyRead:
		req.SetBodyRaw(body)
	case cl == 0:
	case ctx.RequestBodyStream() != nil:
		if cl < 0 {
			cl = -1
		}
		req.SetBodyStream(ctx.RequestBodyStream(), cl)
	default:
		req.SetBodyRaw(ctx.Request.Body())
	}
}

func (s *Server) upstreamFailed(ctx *fasthttp.RequestCtx, err error) {
	s.upstreamErrors.Add(1)
	s.log.Warn("edge: upstream failed", "err", err)
	code := fasthttp.StatusBadGateway
	if errors.Is(err, fasthttp.ErrTimeout) {
		code = fasthttp.StatusGatewayTimeout
	}
	ctx.Response.Reset()
	ctx.Error(fasthttp.StatusMessage(code), code)
}

// answer writes the guest's local response, or resets the connection.
func (s *Server) answer(ctx *fasthttp.RequestCtx, st *wasmhost.Stream, vd wasmhost.Verdict) {
	if vd == wasmhost.Reset {
		ctx.Error("stream reset by filter", fasthttp.StatusBadGateway)
		ctx.SetConnectionClose()
		return
	}
	s.localReplies.Add(1)
	l := st.LocalResponse()
	out := &ctx.Response
	out.Header.DisableNormalizing()
	out.SetStatusCode(l.Status)
	for i := 0; i < l.Headers.Len(); i++ {
		k, v := l.Headers.Pair(i)
		if len(k) > 0 && k[0] == ':' || isHop(k) {
			continue
		}
		out.Header.AddBytesKV(k, v)
	}
	out.SetBody(l.Body)
}

// filterFailed applies the failure policy; body is the request body when
// the filter already read it from the client.
func (s *Server) filterFailed(ctx *fasthttp.RequestCtx, err error, body []byte, bodyRead bool) {
	s.filterFailures.Add(1)
	s.log.Error("edge: filter failed", "err", err, "fail_open", s.cfg.FailOpen)
	if s.cfg.FailOpen {
		ctx.Response.Reset()
		s.forward(ctx, body, bodyRead)
		return
	}
	ctx.Error("Service Unavailable", fasthttp.StatusServiceUnavailable)
}

// forwardDirect proxies without the filter, streaming both bodies.
func (s *Server) forwardDirect(ctx *fasthttp.RequestCtx) { s.forward(ctx, nil, false) }

func (s *Server) forward(ctx *fasthttp.RequestCtx, body []byte, bodyRead bool) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	ctx.Request.Header.CopyTo(&req.Header)
	req.SetRequestURIBytes(ctx.Request.Header.RequestURI())
	req.Header.Del("Connection")
	appendXFF(&req.Header, ctx)
	setUpstreamBody(req, ctx, body, bodyRead, ctx.Request.Header.ContentLength())
	if err := s.upstream.DoTimeout(req, resp, time.Duration(s.cfg.UpstreamTimeout)); err != nil {
		fasthttp.ReleaseResponse(resp)
		s.upstreamFailed(ctx, err)
		return
	}
	out := &ctx.Response
	resp.Header.CopyTo(&out.Header)
	if st := resp.BodyStream(); st != nil {
		n := resp.Header.ContentLength()
		if n < 0 {
			n = -1
		}
		out.SetBodyStream(&upstreamBody{resp: resp}, n)
		return
	}
	out.SetBody(resp.Body())
	fasthttp.ReleaseResponse(resp)
}

func scheme(ctx *fasthttp.RequestCtx) string {
	if ctx.IsTLS() {
		return "https"
	}
	return "http"
}

// setForwarded appends the client address to X-Forwarded-For and sets
// X-Forwarded-Proto, before the filter runs, as Envoy's connection manager does.
func setForwarded(m *wasmhost.HeaderMap, ctx *fasthttp.RequestCtx) {
	ip := remoteIP(ctx)
	if prev, ok := m.Get("x-forwarded-for"); ok {
		_ = m.Set("x-forwarded-for", prev+", "+ip)
	} else {
		_ = m.Add("x-forwarded-for", ip)
	}
	_ = m.Set("x-forwarded-proto", scheme(ctx))
}

func appendXFF(h *fasthttp.RequestHeader, ctx *fasthttp.RequestCtx) {
	ip := remoteIP(ctx)
	if prev := h.Peek("X-Forwarded-For"); len(prev) > 0 {
		h.Set("X-Forwarded-For", string(prev)+", "+ip)
	} else {
		h.Set("X-Forwarded-For", ip)
	}
	h.Set("X-Forwarded-Proto", scheme(ctx))
}

func remoteIP(ctx *fasthttp.RequestCtx) string {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(ctx.RemoteAddr().String())
	if err != nil {
		return ctx.RemoteAddr().String()
	}
	return host
}

func (s *Server) requestID(ctx *fasthttp.RequestCtx) string {
	if id := ctx.Request.Header.Peek("X-Request-Id"); len(id) > 0 {
		return string(id)
	}
	return s.idPrefix + strconv.FormatUint(s.reqID.Add(1), 36)
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
	fmt.Fprintf(w, "# HELP edge_requests_in_flight Requests being served.\n# TYPE edge_requests_in_flight gauge\nedge_requests_in_flight %d\n", s.inFlight.Load())
	if s.host != nil {
		counter("edge_vm_restarts_total", "Failed filter VMs replaced.", s.host.Restarts())
		fmt.Fprintf(w, "# HELP edge_http_calls_in_flight HTTP calls of the filter in flight.\n# TYPE edge_http_calls_in_flight gauge\nedge_http_calls_in_flight %d\n", s.host.InflightCalls())
		_ = s.host.WriteMetrics(w)
	}
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) { f.l.Warn(fmt.Sprintf(format, args...)) }
