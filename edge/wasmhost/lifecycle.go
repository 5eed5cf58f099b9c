package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// Lifecycle drives HTTP requests through the plugin of a Host the way a
// proxy does, so every proxy built on the host (the edge proxy, the test
// harness, an HTTP handler in another server) shares one implementation of
// the phases:
//
//   - the request headers as the plugin sees them: :authority, :path,
//     :method, :scheme, then every header in order, lower-cased, without
//     hop-by-hop headers (and the names listed in Connection) or Host;
//   - the request body: with no proxy_on_request_body it streams past the
//     plugin; with one, every chunk goes through the callback as it arrives
//     and only the bytes the plugin holds (Pause before the end of the
//     stream) are buffered, up to MaxRequestBuffer; request trailers go
//     through proxy_on_request_trailers;
//   - the upstream round trip, once the plugin let the headers go;
//   - the response headers and body, alike (a body of known length up to
//     64 KiB is given to the plugin in one call);
//   - local replies (proxy_send_local_response) and resets
//     (proxy_close_stream), which never reach the upstream, or replace its
//     answer;
//   - the failure policy when the plugin fails (a trap, a stream paused past
//     Config.PauseTimeout, no healthy VM): 503, or with FailOpen the request
//     or response goes on unfiltered, never twice to the upstream, with the
//     headers the plugin owns (StripPrefixes) removed in both directions;
//   - the end of the stream (proxy_on_done, proxy_on_log, proxy_on_delete)
//     once the client has the response: Exchange.Close.
//
// A Lifecycle is safe for concurrent use; set its fields before the first Run.
type Lifecycle struct {
	// Host runs the plugin. Nil forwards every request unfiltered (with
	// StripPrefixes applied).
	Host *Host
	// FailOpen forwards a request unfiltered when the plugin fails, and
	// hands the client the upstream's response unfiltered when it fails on
	// the response. Default: answer 503.
	FailOpen bool
	// StripPrefixes are the header-name prefixes the plugin owns, given
	// lower-case ("x-session-"). A request or response that passes without
	// the plugin loses every header and trailer whose name, lower-cased and
	// with '_' read as '-' (as CGI-style applications read names), starts
	// with one of them, as the plugin would have removed them.
	StripPrefixes []string
	// MaxRequestBuffer caps the request body bytes held while the plugin
	// stops iteration; beyond it the client gets 413. Default: 8 MiB.
	MaxRequestBuffer int
	// MaxResponseBuffer caps the response body bytes held while the plugin
	// stops iteration; beyond it the client gets 502. Default: 16 MiB.
	MaxResponseBuffer int

	pool sync.Pool
}

// Request is a client request given to Lifecycle.Run. It is read only
// during Run.
type Request struct {
	// Method, Path (the request target with its query), Authority and
	// Scheme become the pseudo-headers.
	Method, Path, Authority, Scheme string
	// Header adds the request's headers; nil when there are none. It may be
	// called twice: for the plugin, and again to forward the request
	// unfiltered when the plugin fails.
	Header HeaderSource
	// Body is the request body; nil when there is none.
	Body io.Reader
	// ContentLength is the length of Body; -1 when unknown. A request with a
	// Body and ContentLength 0 has no body.
	ContentLength int64
	// Trailer adds the request trailers once Body returned io.EOF; nil when
	// there are none.
	Trailer HeaderSource
	// Info gives the stream properties (request.id, source.address, ...).
	Info StreamInfo
}

// HeaderSource adds a message's header fields to a map, in order, with
// their names in any case. AddHeaders returns the map's error when it is
// full (proxywasm.ErrMapLimit).
type HeaderSource interface {
	AddHeaders(m *HeaderMap) error
}

// HTTPHeader is a HeaderSource for net/http header maps.
type HTTPHeader http.Header

// AddHeaders adds every value of h.
func (h HTTPHeader) AddHeaders(m *HeaderMap) error {
	for k, vs := range h {
		for _, v := range vs {
			if err := m.Add(k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// Upstream sends a request the plugin let through (or one forwarded
// unfiltered) and fills resp with the answer. It reads req.Body while it
// sends the request. An error is a failed exchange: the client gets 502, or
// 504 when the error reports a timeout (a Timeout() bool method, or
// context.DeadlineExceeded).
type Upstream interface {
	RoundTrip(ctx context.Context, req *UpstreamRequest, resp *UpstreamResponse) error
}

// UpstreamFunc adapts a function to Upstream.
type UpstreamFunc func(ctx context.Context, req *UpstreamRequest, resp *UpstreamResponse) error

// RoundTrip calls f.
func (f UpstreamFunc) RoundTrip(ctx context.Context, req *UpstreamRequest, resp *UpstreamResponse) error {
	return f(ctx, req, resp)
}

// UpstreamRequest is the request for the upstream. It is valid during
// RoundTrip only.
type UpstreamRequest struct {
	// Headers are the request headers as the plugin left them, with the
	// pseudo-headers :method, :path, :authority and :scheme (keys that
	// start with ':'; skip them when copying).
	Headers *HeaderMap
	// Body is the request body; nil when there is none. It may stream
	// through the plugin as it is read.
	Body io.Reader
	// ContentLength is the length of Body, -1 when unknown (send it chunked).
	ContentLength int64
	// Trailers are the request trailers, complete once Body returned io.EOF.
	Trailers *HeaderMap
	// Filtered is false when the request goes on without the plugin.
	Filtered bool
}

// Method returns the :method pseudo-header.
func (r *UpstreamRequest) Method() []byte { return r.pseudo(":method") }

// Path returns the :path pseudo-header (with the query).
func (r *UpstreamRequest) Path() []byte { return r.pseudo(":path") }

// Authority returns the :authority pseudo-header.
func (r *UpstreamRequest) Authority() []byte { return r.pseudo(":authority") }

// Scheme returns the :scheme pseudo-header.
func (r *UpstreamRequest) Scheme() []byte { return r.pseudo(":scheme") }

func (r *UpstreamRequest) pseudo(name string) []byte {
	if i := r.Headers.index(name); i >= 0 {
		return r.Headers.pairs[i].value
	}
	return nil
}

// UpstreamResponse is the upstream's answer, filled by Upstream.RoundTrip.
type UpstreamResponse struct {
	// Status is the status code.
	Status int
	// Headers are the response headers; pseudo-headers and hop-by-hop
	// headers are ignored.
	Headers HeaderMap
	// Body is the response body; nil when there is none. When it is an
	// io.Closer, the Lifecycle closes it once the client has the response
	// (Exchange.Close), or as soon as it is not needed.
	Body io.Reader
	// ContentLength is the length of Body, -1 when unknown.
	ContentLength int64
}

// Exchange is the response Lifecycle.Run produced for the client: write
// Status, Headers and the body (Read to io.EOF, or BodyBytes), then call
// Close. The plugin may still run while the body is read (a response body
// filtered chunk by chunk), so a Read error means the body ended early: the
// client connection must then be closed.
type Exchange struct {
	// Status is the status code for the client.
	Status int
	// Headers are the response headers for the client: no pseudo-headers,
	// no hop-by-hop headers; every Set-Cookie is its own pair.
	Headers HeaderMap
	// ContentLength is the length of the body, -1 when unknown (stream it
	// chunked).
	ContentLength int64

	// Local reports that the plugin answered with proxy_send_local_response;
	// Details is the details argument it gave.
	Local   bool
	Details string
	// Reset reports that the plugin reset the stream (proxy_close_stream):
	// the response is a 502, and the client connection should be closed.
	Reset bool
	// Forwarded reports that the upstream received the request and answered.
	Forwarded bool
	// Filtered is false when the request or the response went on without
	// the plugin (no Host, or FailOpen after FilterErr).
	Filtered bool
	// FilterErr is the plugin failure the failure policy turned into this
	// response; nil normally.
	FilterErr error
	// UpstreamErr is the error of the upstream exchange (502/504).
	UpstreamErr error

	l    *Lifecycle
	ctx  context.Context
	st   *Stream
	ureq UpstreamRequest
	up   UpstreamResponse
	rb   bodyFilter // the request body, when it goes through the plugin
	body bodyFilter // the response body, when it comes from the upstream
	mem  []byte     // the response body when it is in memory
	off  int
	// The maps of unfiltered requests.
	reqHeaders, reqTrailers HeaderMap
	scratch                 [8]byte
}

// Errors a body read returns when the plugin stopped the body.
var (
	errBodyAnswered = errors.New("wasmhost: the plugin answered or reset the stream during the body")
	errBodyTooLarge = errors.New("wasmhost: body held by the plugin exceeds the buffer limit")
	errBodyDone     = errors.New("wasmhost: request body read after the exchange moved on")
)

const (
	// smallBody is the largest response body of known length given to the
	// plugin in one call, read before the headers leave.
	smallBody = 64 << 10
	// chunkSize is the size of one read of a body that streams through the plugin.
	chunkSize = 32 << 10
	// keepBuffer is the largest body buffer a pooled exchange keeps.
	keepBuffer = 256 << 10
)

// Run drives req through the plugin and the upstream and returns the
// response for the client. It never returns nil; the caller must Close the
// Exchange. ctx bounds the plugin's pauses and is passed to the upstream;
// it also bounds the plugin's work on the response body, read after Run
// returns.
func (l *Lifecycle) Run(ctx context.Context, req *Request, up Upstream) *Exchange {
	x := l.get()
	x.ctx = ctx
	if l.Host == nil {
		x.forwardUnfiltered(req, up, nil)
		return x
	}
	st, err := l.Host.NewStream(req.Info)
	if err != nil {
		x.failed(req, up, err, nil)
		return x
	}
	x.st = st
	rh := st.RequestHeaders()
	if err := addRequestHeaders(rh, req); err != nil {
		x.answer(http.StatusRequestHeaderFieldsTooLarge)
		return x
	}
	hasBody := req.Body != nil && req.ContentLength != 0
	vd, err := st.OnRequestHeaders(ctx, !hasBody)
	if err != nil {
		x.failed(req, up, err, nil)
		return x
	}
	if vd == LocalReply || vd == Reset {
		x.answered(vd)
		return x
	}
	x.ureq = UpstreamRequest{Headers: rh, Filtered: true}
	if hasBody {
		filter := st.WantsRequestBody()
		if !filter && req.Trailer == nil {
			x.ureq.Body, x.ureq.ContentLength = req.Body, req.ContentLength
		} else {
			rb := &x.rb
			rb.init(x, req.Body, false, filter, l.maxRequestBuffer())
			rb.trailer, rb.trailers = req.Trailer, st.RequestTrailers()
			if vd == Buffer {
				// The plugin holds the headers until it has seen (enough of)
				// the body.
				rb.held = true
				for rb.held && !rb.eof {
					if rb.step() != nil {
						x.requestBodyStopped(req, up)
						return x
					}
				}
			}
			rb.passOnFail = l.FailOpen
			x.ureq.Body, x.ureq.ContentLength, x.ureq.Trailers = rb, -1, rb.trailers
			if rb.eof && rb.filter {
				x.ureq.ContentLength = int64(len(rb.out))
			}
		}
	}
	x.roundTrip(up)
	if !x.requestBodyDone() || x.UpstreamErr != nil {
		return x
	}
	if !x.Filtered {
		x.respondUnfiltered()
		return x
	}
	x.respond()
	return x
}

// requestBodyStopped handles a request body that stopped before the
// upstream was called: the plugin answered, failed or held too much, or the
// client's body could not be read.
func (x *Exchange) requestBodyStopped(req *Request, up Upstream) {
	rb := &x.rb
	switch {
	case rb.verdict != Continue:
		x.answered(rb.verdict)
	case rb.tooLarge:
		x.answer(http.StatusRequestEntityTooLarge)
	case rb.failErr != nil:
		x.failed(req, up, rb.failErr, rb.acc)
	default:
		x.answer(http.StatusBadRequest)
	}
}

// roundTrip calls the upstream and records the outcome.
func (x *Exchange) roundTrip(up Upstream) {
	x.up.Headers.Reset()
	x.up.Status, x.up.Body, x.up.ContentLength = 0, nil, 0
	err := up.RoundTrip(x.ctx, &x.ureq, &x.up)
	if err == nil {
		x.Forwarded = true
		return
	}
	x.closeUpstreamBody()
	x.UpstreamErr = err
	code := http.StatusBadGateway
	var t interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &t) && t.Timeout() {
		code = http.StatusGatewayTimeout
	}
	x.answer(code)
}

// requestBodyDone ends the plugin's work on a request body the upstream
// read, and applies what a body callback decided while it streamed. It
// reports whether the exchange goes on to the response.
func (x *Exchange) requestBodyDone() bool {
	rb := &x.rb
	if rb.x == nil {
		return true
	}
	rb.mu.Lock()
	rb.done = true
	rb.mu.Unlock()
	stop := func(code int) bool {
		x.closeUpstreamBody()
		x.UpstreamErr, x.Forwarded = nil, false
		if code == 0 {
			x.answered(rb.verdict)
		} else {
			x.answer(code)
		}
		return false
	}
	switch {
	case rb.verdict != Continue:
		return stop(0)
	case rb.tooLarge:
		return stop(http.StatusRequestEntityTooLarge)
	case rb.failErr != nil:
		// The plugin failed while the body streamed: failing open let the
		// rest through unfiltered; failing closed aborted the upstream.
		x.FilterErr = rb.failErr
		if !x.l.FailOpen {
			return stop(http.StatusServiceUnavailable)
		}
		x.Filtered = false
	}
	return true
}

// respond runs the response through the plugin.
func (x *Exchange) respond() {
	st, up := x.st, &x.up
	ph := st.ResponseHeaders()
	ph.Reset()
	_ = ph.AddBytes([]byte(":status"), strconv.AppendInt(x.scratch[:0], int64(up.Status), 10))
	copyHeaders(ph, &up.Headers)
	hasBody := up.Body != nil && up.ContentLength != 0
	vd, err := st.OnResponseHeaders(x.ctx, !hasBody)
	if err != nil {
		x.responseFailed(err)
		return
	}
	if vd == LocalReply || vd == Reset {
		x.closeUpstreamBody()
		x.answered(vd)
		return
	}
	b := &x.body
	if hasBody {
		b.init(x, up.Body, true, st.WantsResponseBody(), x.l.maxResponseBuffer())
		x.ContentLength = up.ContentLength
		if b.filter {
			x.ContentLength = -1
			if up.ContentLength >= 0 && up.ContentLength <= smallBody {
				err = b.readWhole(int(up.ContentLength))
			} else if vd == Buffer {
				// The plugin holds the headers until it has seen (enough
				// of) the body.
				b.held = true
				for b.held && !b.eof && err == nil {
					err = b.step()
				}
			}
			if err != nil {
				x.responseBodyStopped(err)
				return
			}
			b.passOnFail = x.l.FailOpen
			if b.eof {
				// The plugin saw the whole body: it leaves from memory.
				x.mem, b.out, b.src = b.out, nil, nil
				x.ContentLength = int64(len(x.mem))
				x.closeUpstreamBody()
			}
		}
	}
	x.Status = up.Status
	if i := ph.index(":status"); i >= 0 {
		if n, ok := parseStatus(ph.pairs[i].value); ok {
			x.Status = n
		}
	}
	copyHeaders(&x.Headers, ph)
}

// responseBodyStopped handles a response body that stopped before the
// headers left.
func (x *Exchange) responseBodyStopped(err error) {
	b := &x.body
	if b.failErr != nil {
		x.responseFailed(b.failErr)
		return
	}
	x.closeUpstreamBody()
	switch {
	case b.verdict != Continue:
		x.answered(b.verdict)
	case b.tooLarge:
		x.UpstreamErr = errBodyTooLarge
		x.answer(http.StatusBadGateway)
	default:
		x.UpstreamErr = err
		x.answer(http.StatusBadGateway)
	}
}

// responseFailed applies the failure policy once the upstream answered: the
// request is never sent twice, so failing open hands the client the
// upstream's response unfiltered.
func (x *Exchange) responseFailed(err error) {
	x.FilterErr = err
	if !x.l.FailOpen {
		x.closeUpstreamBody()
		x.answer(http.StatusServiceUnavailable)
		return
	}
	held := x.body.acc
	x.body.out, x.body.acc = held, nil
	x.respondUnfiltered()
}

// respondUnfiltered hands the client the upstream response without the
// plugin, minus the headers the plugin owns.
func (x *Exchange) respondUnfiltered() {
	up := &x.up
	x.Filtered = false
	x.Status = up.Status
	x.Headers.Reset()
	copyHeaders(&x.Headers, &up.Headers)
	x.l.strip(&x.Headers)
	// What the plugin had read of the body already goes out first.
	out := x.body.out
	x.ContentLength, x.mem, x.off, x.body.src = 0, nil, 0, nil
	switch {
	case up.Body != nil && up.ContentLength != 0:
		x.body.init(x, up.Body, true, false, 0)
		x.body.out = out
		x.ContentLength = up.ContentLength
	case len(out) > 0: // the plugin had read the whole body
		x.mem = out
		x.ContentLength = int64(len(out))
	}
}

// failed applies the failure policy to a plugin failure before the upstream
// was called; consumed is the part of the request body read so far.
func (x *Exchange) failed(req *Request, up Upstream, err error, consumed []byte) {
	x.FilterErr = err
	if !x.l.FailOpen || x.ctx.Err() != nil {
		x.answer(http.StatusServiceUnavailable)
		return
	}
	x.forwardUnfiltered(req, up, consumed)
}

// forwardUnfiltered sends req to the upstream without the plugin, minus the
// headers and trailers the plugin owns; consumed is the part of the body
// already read from req.Body.
func (x *Exchange) forwardUnfiltered(req *Request, up Upstream, consumed []byte) {
	x.Filtered = false
	m := &x.reqHeaders
	m.Reset()
	if err := addRequestHeaders(m, req); err != nil {
		x.answer(http.StatusRequestHeaderFieldsTooLarge)
		return
	}
	x.l.strip(m)
	x.ureq = UpstreamRequest{Headers: m}
	if req.Body != nil && req.ContentLength != 0 {
		rb := &x.rb
		rb.init(x, req.Body, false, false, 0)
		rb.out = consumed
		x.reqTrailers.Reset()
		rb.trailer, rb.trailers = req.Trailer, &x.reqTrailers
		x.ureq.Body, x.ureq.ContentLength = rb, req.ContentLength
		if req.Trailer != nil {
			x.ureq.Trailers = rb.trailers
		}
	}
	x.roundTrip(up)
	x.rb.mu.Lock()
	x.rb.done = true
	x.rb.mu.Unlock()
	if x.UpstreamErr == nil {
		x.respondUnfiltered()
	}
}

// answered turns a local reply or a reset of the plugin into the response.
func (x *Exchange) answered(vd Verdict) {
	if vd == Reset {
		x.Reset = true
		x.answer(http.StatusBadGateway)
		return
	}
	l := x.st.LocalResponse()
	x.Local, x.Details = true, l.Details
	x.Status = l.Status
	x.Headers.Reset()
	copyHeaders(&x.Headers, &l.Headers)
	x.mem, x.off = l.Body, 0
	x.ContentLength = int64(len(l.Body))
	x.body.src = nil
}

// answer makes a plain-text response of the proxy itself.
func (x *Exchange) answer(code int) {
	x.Status = code
	x.Headers.Reset()
	_ = x.Headers.Add("content-type", "text/plain; charset=utf-8")
	x.mem, x.off = statusText(code), 0
	x.ContentLength = int64(len(x.mem))
	x.body.src = nil
}

var statusTexts sync.Map // int → []byte

func statusText(code int) []byte {
	if b, ok := statusTexts.Load(code); ok {
		return b.([]byte)
	}
	b := []byte(http.StatusText(code) + "\n")
	statusTexts.Store(code, b)
	return b
}

// BodyBytes returns the whole body when it is in memory (a local reply, an
// answer of the proxy, a body the plugin saw whole); ok is false when the
// body streams and must be Read. The bytes are valid until Close.
func (x *Exchange) BodyBytes() (b []byte, ok bool) {
	if x.body.src != nil {
		return nil, false
	}
	return x.mem[x.off:], true
}

// Read reads the response body.
func (x *Exchange) Read(p []byte) (int, error) {
	if x.off < len(x.mem) {
		n := copy(p, x.mem[x.off:])
		x.off += n
		return n, nil
	}
	if x.body.src == nil {
		return 0, io.EOF
	}
	n, err := x.body.Read(p)
	if err != nil && err != io.EOF && x.body.failErr != nil {
		x.FilterErr = x.body.failErr
	}
	return n, err
}

// Close ends the exchange: it releases the upstream response and ends the
// plugin's stream (proxy_on_done, proxy_on_log, proxy_on_delete). The
// Exchange must not be used afterwards. Close returns the error that ended
// the body early, if any.
func (x *Exchange) Close() error {
	err := x.body.err
	x.closeUpstreamBody()
	if x.st != nil {
		x.st.Close()
	}
	x.l.put(x)
	return err
}

func (x *Exchange) closeUpstreamBody() {
	if c, ok := x.up.Body.(io.Closer); ok {
		_ = c.Close()
	}
	x.up.Body = nil
}

func (l *Lifecycle) get() *Exchange {
	x, _ := l.pool.Get().(*Exchange)
	if x == nil {
		x = &Exchange{l: l}
	}
	x.Filtered = true
	return x
}

func (l *Lifecycle) put(x *Exchange) {
	x.Status, x.ContentLength = 0, 0
	x.Headers.Reset()
	x.Local, x.Details, x.Reset, x.Forwarded, x.Filtered = false, "", false, false, false
	x.FilterErr, x.UpstreamErr = nil, nil
	x.ctx, x.st = nil, nil
	x.ureq = UpstreamRequest{}
	x.up.Body = nil
	x.rb.reset()
	x.body.reset()
	x.mem, x.off = nil, 0
	l.pool.Put(x)
}

func (l *Lifecycle) maxRequestBuffer() int {
	if l.MaxRequestBuffer > 0 {
		return l.MaxRequestBuffer
	}
	return 8 << 20
}

func (l *Lifecycle) maxResponseBuffer() int {
	if l.MaxResponseBuffer > 0 {
		return l.MaxResponseBuffer
	}
	return 16 << 20
}

// strip removes the headers the plugin owns from m.
func (l *Lifecycle) strip(m *HeaderMap) {
	if len(l.StripPrefixes) == 0 {
		return
	}
	m.removeIf(func(k, _ []byte) bool {
		for _, p := range l.StripPrefixes {
			if hasFoldedPrefix(k, p) {
				return true
			}
		}
		return false
	})
}

// hasFoldedPrefix reports whether name, lower-cased with '_' read as '-',
// starts with prefix.
func hasFoldedPrefix(name []byte, prefix string) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i := range prefix {
		if foldName[name[i]] != prefix[i] {
			return false
		}
	}
	return true
}

// foldName maps a header-name byte to lower case, and '_' to '-'.
var foldName = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = byte(c) + 'a' - 'A'
	}
	t['_'] = '-'
	return t
}()

// addRequestHeaders fills m with the pseudo-headers and headers of req,
// without hop-by-hop headers and Host.
func addRequestHeaders(m *HeaderMap, req *Request) error {
	_ = m.Add(":authority", req.Authority)
	_ = m.Add(":path", req.Path)
	_ = m.Add(":method", req.Method)
	_ = m.Add(":scheme", req.Scheme)
	if req.Header != nil {
		if err := req.Header.AddHeaders(m); err != nil {
			return err
		}
	}
	dropHopByHop(m, true)
	return nil
}

// copyHeaders adds the pairs of src to dst, without pseudo-headers and
// hop-by-hop headers.
func copyHeaders(dst, src *HeaderMap) {
	for i := 0; i < src.n; i++ {
		k, v := src.pairs[i].key, src.pairs[i].value
		if len(k) > 0 && k[0] == ':' || isHopByHop(k, v, false) {
			continue
		}
		_ = dst.AddBytes(k, v)
	}
	dropConnectionListed(dst, src)
}

// dropHopByHop removes the hop-by-hop headers of m, those its Connection
// headers list, and Host when request is set (the :authority carries it).
func dropHopByHop(m *HeaderMap, request bool) {
	dropConnectionListed(m, m)
	m.removeIf(func(k, v []byte) bool {
		return isHopByHop(k, v, request) && (len(k) == 0 || k[0] != ':')
	})
}

// dropConnectionListed removes from m the headers that the Connection
// headers of src name (src may be m).
func dropConnectionListed(m, src *HeaderMap) {
	// Removing pairs moves the later ones, so find the next Connection
	// header afresh each time: they keep their order.
	for done := 0; ; done++ {
		v, ok := nthValue(src, "connection", done)
		if !ok {
			return
		}
		for len(v) > 0 {
			var tok []byte
			if j := bytes.IndexByte(v, ','); j >= 0 {
				tok, v = v[:j], v[j+1:]
			} else {
				tok, v = v, nil
			}
			tok = bytes.TrimSpace(tok)
			if len(tok) > 0 && !equalFoldLower([]byte("connection"), tok) {
				delPairs(m, tok)
			}
		}
	}
}

// nthValue returns the value of the n-th pair (from 0) of key.
func nthValue(m *HeaderMap, key string, n int) ([]byte, bool) {
	for i := 0; i < m.n; i++ {
		if string(m.pairs[i].key) == key {
			if n == 0 {
				return m.pairs[i].value, true
			}
			n--
		}
	}
	return nil, false
}

// isHopByHop reports whether a header belongs to one connection (RFC 9110
// §7.6.1, plus Content-Length, which the proxy recomputes). "te: trailers"
// passes, as gRPC needs it.
func isHopByHop(k, v []byte, request bool) bool {
	switch string(k) {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "trailer", "upgrade",
		"proxy-authenticate", "proxy-authorization", "content-length":
		return true
	case "te":
		return string(v) != "trailers"
	case "host":
		return request
	}
	return false
}

// parseStatus parses a three-digit :status value.
func parseStatus(v []byte) (int, bool) {
	if len(v) != 3 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n >= 100
}
