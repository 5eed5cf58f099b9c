package caddy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/sessionedge/sessionedge/edge/wasmhost"
)

// errDetached is what a late read of the request body gets once the
// exchange is over (a transport may read a request body on a goroutine of
// its own, after the handler that got it returned).
var errDetached = errors.New("proxy_wasm: request body read after the exchange ended")

// call is the rest of Caddy's handler chain (next) as the Lifecycle's
// upstream: RoundTrip runs next.ServeHTTP on a goroutine of its own with a
// ResponseWriter that hands the status and headers over as soon as next
// writes them, and the body through a pipe as next writes it, so a body
// streams through the filter and nothing holds it whole but what the
// filter asks to hold.
type call struct {
	h      *Handler
	next   caddyhttp.Handler
	r      *http.Request       // the client's request
	client http.ResponseWriter // the client's writer, for its headers only
	ctx    context.Context     // ends next's work when the exchange ends

	started bool
	w       responseWriter
	body    detachableBody
	done    chan struct{} // closed when next.ServeHTTP returned
	err     error         // what next returned, valid after done
	panic   any           // what next panicked with, valid after done
}

// RoundTrip implements wasmhost.Upstream.
func (c *call) RoundTrip(ctx context.Context, ur *wasmhost.UpstreamRequest, resp *wasmhost.UpstreamResponse) error {
	r, err := c.request(ctx, ur)
	if err != nil {
		return err
	}
	c.started = true
	c.done = make(chan struct{})
	c.w.init(resp, c.client.Header().Clone(), r.Method == http.MethodHead)
	go c.serve(r)
	<-c.w.ready
	return c.w.err
}

// request builds the request next gets: the client's (its context values,
// Caddy's replacer and variables among them) with what the filter left of
// the method, target, authority, headers and body.
func (c *call) request(ctx context.Context, ur *wasmhost.UpstreamRequest) (*http.Request, error) {
	r := c.r.WithContext(ctx)
	if m := ur.Method(); string(m) != c.r.Method {
		r.Method = string(m)
	}
	if a := ur.Authority(); string(a) != c.r.Host {
		r.Host = string(a)
	}
	if p := ur.Path(); string(p) != c.r.URL.RequestURI() {
		u, err := url.ParseRequestURI(string(p))
		if err != nil {
			return nil, fmt.Errorf("proxy_wasm: the filter set an invalid :path: %w", err)
		}
		nu := *c.r.URL
		nu.Path, nu.RawPath, nu.RawQuery, nu.ForceQuery = u.Path, u.RawPath, u.RawQuery, u.ForceQuery
		r.URL = &nu
		r.RequestURI = string(p)
	}
	hdr := make(http.Header, ur.Headers.Len())
	for i := 0; i < ur.Headers.Len(); i++ {
		k, v := ur.Headers.Pair(i)
		if len(k) > 0 && k[0] == ':' {
			continue
		}
		key := textproto.CanonicalMIMEHeaderKey(string(k))
		hdr[key] = append(hdr[key], string(v))
	}
	r.Header = hdr
	// Request trailers reach the filter; Caddy's handlers get none (the
	// bundled edge proxy does the same).
	r.Trailer = nil
	if ur.Body == nil {
		r.Body, r.ContentLength = http.NoBody, 0
	} else {
		c.body.r = ur.Body
		r.Body, r.ContentLength = &c.body, ur.ContentLength
	}
	return r, nil
}

// serve runs next. A panic in next is recovered here, on the goroutine
// that would otherwise take the process down, and raised again on the
// request's own goroutine once the exchange is cleaned up (end).
func (c *call) serve(r *http.Request) {
	var err error
	defer func() {
		if p := recover(); p != nil {
			c.panic = p
			err = errNextPanicked
			if p != http.ErrAbortHandler {
				c.h.logger.Error("proxy_wasm: a later handler panicked", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			}
		}
		c.err = err
		c.w.finish(err)
		close(c.done)
	}()
	err = c.next.ServeHTTP(&c.w, r)
}

var errNextPanicked = errors.New("proxy_wasm: a later handler panicked")

// end stops next's work on the exchange and waits for it: the rest of the
// body is refused, next's context ends, and the request body is detached,
// so nothing of next reads from the exchange once it is pooled again.
func (c *call) end(cancel context.CancelFunc) {
	if !c.started {
		return
	}
	c.w.pr.CloseWithError(errExchangeOver)
	cancel()
	<-c.done
	c.body.detach()
}

var errExchangeOver = errors.New("proxy_wasm: the response body is no longer read")

// failedBeforeAnswer reports whether next returned an error before it
// wrote a response: Caddy's error handling then takes the request over.
func (c *call) failedBeforeAnswer() bool {
	return c.started && !c.w.committed && c.err != nil && c.panic == nil
}

// responseWriter is the http.ResponseWriter next writes to. It fills the
// UpstreamResponse on the first WriteHeader (or Write, or Flush, or when
// next returns) and closes ready; the body goes through a pipe, one Write
// at a time, read by the Lifecycle as the client's response leaves.
type responseWriter struct {
	header http.Header
	resp   *wasmhost.UpstreamResponse
	head   bool // a HEAD request: no body whatever the headers say
	// headLength is the Content-Length next gave a HEAD response.
	headLength string
	committed  bool
	discard    bool // a response without a body: writes are dropped
	ready      chan struct{}
	err        error // next failed before writing anything
	pr         *io.PipeReader
	pw         *io.PipeWriter
	flushed    atomic.Bool // next asked for a flush: the response streams
}

func (w *responseWriter) init(resp *wasmhost.UpstreamResponse, header http.Header, head bool) {
	if header == nil {
		header = http.Header{}
	}
	w.header, w.resp, w.head = header, resp, head
	w.ready = make(chan struct{})
	w.pr, w.pw = io.Pipe()
}

// Header implements http.ResponseWriter.
func (w *responseWriter) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter. Informational responses
// (1xx) are not passed on: the filter sees one response per request.
func (w *responseWriter) WriteHeader(code int) {
	if w.committed || code >= 100 && code < 200 {
		return
	}
	w.committed = true
	resp := w.resp
	resp.Status = code
	for k, vs := range w.header {
		for _, v := range vs {
			_ = resp.Headers.Add(k, v)
		}
	}
	n, lenOK := int64(-1), false
	if cl := w.header.Get("Content-Length"); cl != "" {
		if v, err := strconv.ParseInt(cl, 10, 64); err == nil && v >= 0 {
			n, lenOK = v, true
		}
	}
	if w.head {
		w.headLength = w.header.Get("Content-Length")
	}
	switch {
	case w.head || code == http.StatusNoContent || code == http.StatusNotModified || lenOK && n == 0:
		w.discard = true
		resp.Body, resp.ContentLength = nil, 0
	default:
		resp.Body, resp.ContentLength = w.pr, n
	}
	close(w.ready)
}

// Write implements http.ResponseWriter.
func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.committed {
		w.WriteHeader(http.StatusOK)
	}
	if w.discard {
		return len(p), nil
	}
	return w.pw.Write(p)
}

// Flush implements http.Flusher: the response is streaming, so the handler
// flushes the client's response after every write from now on.
func (w *responseWriter) Flush() {
	if !w.committed {
		w.WriteHeader(http.StatusOK)
	}
	w.flushed.Store(true)
}

// finish ends the response when next returned: an answer without a body
// when it wrote nothing (as net/http sends one), or next's error when it
// failed before writing; the body ends with next's error, if any.
func (w *responseWriter) finish(err error) {
	if !w.committed {
		if err != nil {
			w.err = err
			close(w.ready)
		} else {
			w.WriteHeader(http.StatusOK)
		}
	}
	w.pw.CloseWithError(err)
}

// detachableBody is the request body next reads; once detached, reads fail
// and never reach the exchange, which may serve another request by then.
type detachableBody struct {
	mu       sync.Mutex
	r        io.Reader
	detached bool
}

func (b *detachableBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.detached {
		return 0, errDetached
	}
	return b.r.Read(p)
}

// Close does nothing: the client's body belongs to the server.
func (b *detachableBody) Close() error { return nil }

func (b *detachableBody) detach() {
	b.mu.Lock()
	b.detached, b.r = true, nil
	b.mu.Unlock()
}

// Interface guards
var (
	_ wasmhost.Upstream   = (*call)(nil)
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ http.Flusher        = (*responseWriter)(nil)
	_ io.ReadCloser       = (*detachableBody)(nil)
)
