package caddy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/sessionedge/sessionedge/edge/wasmhost"
)

// errDetached is what a late read of the request body gets once the
// exchange is over (a transport may read a request body on a goroutine of
// its own, after the handler that got it returned).
var errDetached = errors.New("proxy_wasm: request body read after the exchange ended")

// call is one request through the handler: the filter's exchange, with
// the rest of Caddy's chain (next) as the Lifecycle's upstream. RoundTrip
// hands next's request to the request's goroutine (Handler.ServeHTTP),
// which runs next with a ResponseWriter (responseWriter) that hands the
// response over whole when next wrote it within bufferLimit bytes, and
// otherwise as soon as next writes more or flushes, the body going on
// through a pipe as next writes it: a body streams through the filter and
// nothing holds it whole but what the filter asks to hold.
type call struct {
	h      *Handler
	next   caddyhttp.Handler
	r      *http.Request       // the client's request
	client http.ResponseWriter // the client's writer
	ctx    context.Context     // ends next's work when the exchange ends
	cancel context.CancelFunc

	toNext   chan *http.Request // the exchange asks for next to run
	nextDone chan struct{}      // closed when next returned (or panicked)
	done     chan struct{}      // closed when the exchange is over

	started bool // set by the exchange in RoundTrip
	w       responseWriter
	body    detachableBody
	err     error // what next returned; read after w.ready or nextDone
	panic   any   // a panic of the exchange, raised again by ServeHTTP
	abort   bool  // the response body ended early: abort the connection
}

// RoundTrip implements wasmhost.Upstream.
func (c *call) RoundTrip(ctx context.Context, ur *wasmhost.UpstreamRequest, resp *wasmhost.UpstreamResponse) error {
	r, err := c.request(ctx, ur)
	if err != nil {
		return err
	}
	c.started = true
	c.w.init(resp, c.client.Header().Clone(), r.Method == http.MethodHead)
	c.toNext <- r
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
		key := canonicalKey(k)
		hdr[key] = append(hdr[key], sameString(c.r.Header[key], v))
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

// sameString returns v as a string: one of have when it is equal to one
// (a header the filter left as the client sent it), so it costs no
// allocation.
func sameString(have []string, v []byte) string {
	for _, s := range have {
		if s == string(v) {
			return s
		}
	}
	return string(v)
}

// serveNext runs next on the request's goroutine, then waits until the
// exchange is over. A panic in next goes on (after the exchange ended), as
// it would without the filter.
func (c *call) serveNext(r *http.Request) {
	returned := false
	defer func() {
		if !returned {
			c.w.finish(errNextPanicked)
			close(c.nextDone)
			<-c.done
		}
	}()
	err := c.next.ServeHTTP(&c.w, r)
	returned = true
	c.err = err
	c.w.finish(err)
	close(c.nextDone)
	<-c.done
}

var errNextPanicked = errors.New("proxy_wasm: a later handler panicked")

// end ends the exchange once the client has the response: the rest of
// next's body is refused, next's context ends, and once next has
// returned its request body is detached, so nothing of next reads from
// the exchange when it serves another request. It returns the error that
// ended the body early, if any.
func (c *call) end(x *wasmhost.Exchange) error {
	if !c.started {
		return x.Close()
	}
	if c.w.pr != nil {
		c.w.pr.CloseWithError(errExchangeOver)
	}
	c.cancel()
	<-c.nextDone
	c.body.detach()
	err := x.Close()
	c.w.release()
	return err
}

var errExchangeOver = errors.New("proxy_wasm: the response body is no longer read")

// failedBeforeAnswer reports whether next returned an error before it
// wrote a response: Caddy's error handling then takes the request over.
func (c *call) failedBeforeAnswer() bool {
	return c.started && !c.w.wroteHeader && c.err != nil && c.err != errNextPanicked
}

// bufferLimit is how much of a body the responseWriter keeps before it
// hands the response over: a body next writes whole within it (and
// without a Flush) leaves from memory, with its exact length, at the cost
// of no goroutine hand-off per write; a longer one streams.
const bufferLimit = 16 << 10

var writeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, bufferLimit); return &b }}

// responseWriter is the http.ResponseWriter next writes to. Like net/http's
// own, it holds the start of a response (up to bufferLimit bytes) until
// next returns, flushes, or writes more: then it fills the
// UpstreamResponse and closes ready. A response that fitted leaves from
// memory; the rest of a longer one goes through a pipe, one Write at a
// time, read by the Lifecycle as the client's response leaves.
type responseWriter struct {
	header http.Header
	resp   *wasmhost.UpstreamResponse
	head   bool // a HEAD request: no body whatever the headers say
	// headLength is the Content-Length next gave a HEAD response.
	headLength  string
	wroteHeader bool // the status and headers are in resp
	committed   bool // resp is handed over (ready is closed)
	discard     bool // a response without a body: writes are dropped
	length      int64
	buf         *[]byte // the body so far, before the hand-over
	ready       chan struct{}
	err         error // next failed before writing anything
	pr          *io.PipeReader
	pw          *io.PipeWriter
	flushed     atomic.Bool // next asked for a flush: the response streams
}

func (w *responseWriter) init(resp *wasmhost.UpstreamResponse, header http.Header, head bool) {
	if header == nil {
		header = http.Header{}
	}
	w.header, w.resp, w.head = header, resp, head
	w.ready = make(chan struct{})
}

// Header implements http.ResponseWriter.
func (w *responseWriter) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter: the status and headers are
// taken now, as net/http takes them. Informational responses (1xx) are not
// passed on: the filter sees one response per request.
func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader || code >= 100 && code < 200 {
		return
	}
	w.wroteHeader = true
	resp := w.resp
	resp.Status = code
	for k, vs := range w.header {
		for _, v := range vs {
			_ = resp.Headers.Add(k, v)
		}
	}
	w.length = -1
	if cl := w.header.Get("Content-Length"); cl != "" {
		if v, err := strconv.ParseInt(cl, 10, 64); err == nil && v >= 0 {
			w.length = v
		}
	}
	if w.head {
		w.headLength = w.header.Get("Content-Length")
	}
	if w.head || code == http.StatusNoContent || code == http.StatusNotModified || w.length == 0 {
		w.discard = true
	}
}

// Write implements http.ResponseWriter.
func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.discard {
		return len(p), nil
	}
	if !w.committed {
		if w.buf == nil {
			w.buf = writeBuffers.Get().(*[]byte)
		}
		if len(*w.buf)+len(p) <= bufferLimit {
			*w.buf = append(*w.buf, p...)
			return len(p), nil
		}
		if err := w.stream(); err != nil {
			return 0, err
		}
	}
	return w.pw.Write(p)
}

// stream hands the response over with a body that streams through the
// pipe, starting with what was held.
func (w *responseWriter) stream() error {
	w.pr, w.pw = io.Pipe()
	w.resp.Body, w.resp.ContentLength = w.pr, w.length
	w.committed = true
	close(w.ready)
	if w.buf != nil && len(*w.buf) > 0 {
		if _, err := w.pw.Write(*w.buf); err != nil {
			return err
		}
		*w.buf = (*w.buf)[:0]
	}
	return nil
}

// Flush implements http.Flusher: the response is streaming, so the handler
// flushes the client's response after every write from now on.
func (w *responseWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.flushed.Store(true)
	if !w.committed && !w.discard {
		_ = w.stream()
	}
}

// finish ends the response when next returned: an answer without a body
// when it wrote nothing (as net/http sends one), or next's error when it
// failed before writing. A body held whole leaves from memory with its
// length; a streaming one ends with next's error, if any.
func (w *responseWriter) finish(err error) {
	if !w.wroteHeader {
		if err != nil {
			w.err = err
			w.committed = true
			close(w.ready)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
	if w.committed {
		w.pw.CloseWithError(err)
		return
	}
	resp := w.resp
	switch {
	case w.discard || w.buf == nil || len(*w.buf) == 0 && err == nil:
		resp.Body, resp.ContentLength = nil, 0
	case err != nil:
		// next failed in the middle of its body: what it wrote, then the
		// error, so the client's response breaks.
		resp.Body, resp.ContentLength = io.MultiReader(bytes.NewReader(*w.buf), errReader{err}), -1
	default:
		resp.Body, resp.ContentLength = bytes.NewReader(*w.buf), int64(len(*w.buf))
	}
	w.committed = true
	close(w.ready)
}

// release returns the body buffer once the exchange no longer reads it.
func (w *responseWriter) release() {
	if w.buf != nil {
		*w.buf = (*w.buf)[:0]
		writeBuffers.Put(w.buf)
		w.buf = nil
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

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
