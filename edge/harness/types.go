package harness

import (
	"strings"
	"time"

	"github.com/sessionedge/sessionedge/edge/wasmhost"
)

// Headers is an ordered list of header pairs; duplicates are kept.
//
//	harness.Headers{{"cookie", "a=1"}, {"cookie", "b=2"}}
type Headers [][2]string

// AddHeaders adds the pairs to m (wasmhost.HeaderSource).
func (h Headers) AddHeaders(m *wasmhost.HeaderMap) error {
	for _, p := range h {
		if err := m.Add(p[0], p[1]); err != nil {
			return err
		}
	}
	return nil
}

// Get returns the first value of name (case-insensitive).
func (h Headers) Get(name string) (string, bool) {
	for _, p := range h {
		if strings.EqualFold(p[0], name) {
			return p[1], true
		}
	}
	return "", false
}

// Values returns every value of name in order.
func (h Headers) Values(name string) []string {
	var vs []string
	for _, p := range h {
		if strings.EqualFold(p[0], name) {
			vs = append(vs, p[1])
		}
	}
	return vs
}

// Request is a client request driven through the filter.
type Request struct {
	// Method defaults to GET.
	Method string
	// Path is the request target with query; defaults to "/".
	Path string
	// Host is :authority; defaults to "example.com".
	Host string
	// Scheme is :scheme; defaults to "https".
	Scheme string
	// Headers are the regular headers, in order.
	Headers Headers
	// Body is the request body; nil for none.
	Body []byte
	// Trailers are the request trailers, sent after the body.
	Trailers Headers
	// RemoteAddr is source.address; defaults to "192.0.2.1:54321".
	RemoteAddr string
	// ID is request.id; defaults to a counter.
	ID string
}

// UpstreamRequest is the request as it reaches the upstream after the filter.
type UpstreamRequest struct {
	Method, Path, Host, Scheme string
	// Headers excludes pseudo-headers.
	Headers  Headers
	Body     []byte
	Trailers Headers
}

// Response is an HTTP response: from the upstream, a cluster, or to the client.
type Response struct {
	Status int
	// Headers excludes :status.
	Headers Headers
	Body    []byte
}

// UpstreamFunc is a fake upstream: it answers the request the filter forwarded.
type UpstreamFunc func(req *UpstreamRequest) *Response

// CallRequest is an HTTP call the guest made with proxy_http_call.
type CallRequest struct {
	Cluster                 string
	Method, Path, Authority string
	// Headers are every header of the call, pseudo-headers included.
	Headers Headers
	Body    []byte
	Timeout time.Duration
}

// ClusterFunc is a fake cluster. Returning an error makes the call fail
// (the guest sees num_headers == 0); so does sleeping past req.Timeout.
type ClusterFunc func(req *CallRequest) (*Response, error)

// Result is the outcome of Harness.Do.
type Result struct {
	// Upstream is the request the upstream received; nil when the filter
	// answered locally or the request failed.
	Upstream *UpstreamRequest
	// Response is what the client received.
	Response *Response
	// Local is true when the guest answered with proxy_send_local_response.
	Local bool
	// LocalDetails is the details argument of proxy_send_local_response.
	LocalDetails string
	// Err is the plugin failure (VM trap, timeout of a paused stream) that the
	// failure policy turned into Response; nil normally.
	Err error
}

// SetCookies returns every Set-Cookie value of the client response.
func (r *Result) SetCookies() []string { return r.Response.Headers.Values("set-cookie") }

// Cookie returns the value of the named cookie set on the client response.
func (r *Result) Cookie(name string) (string, bool) {
	for _, sc := range r.SetCookies() {
		nv, _, _ := strings.Cut(sc, ";")
		k, v, ok := strings.Cut(strings.TrimSpace(nv), "=")
		if ok && k == name {
			return v, true
		}
	}
	return "", false
}

// ExpectStatus fails the test unless the client got status code.
func (r *Result) ExpectStatus(tb TB, code int) *Result {
	tb.Helper()
	if r.Response.Status != code {
		tb.Errorf("status = %d, want %d (local=%v details=%q err=%v body=%q)", r.Response.Status, code, r.Local, r.LocalDetails, r.Err, r.Response.Body)
	}
	return r
}

// ExpectLocal fails the test unless the guest answered locally.
func (r *Result) ExpectLocal(tb TB) *Result {
	tb.Helper()
	if !r.Local {
		tb.Errorf("request was not answered locally by the filter (status %d, err %v)", r.Response.Status, r.Err)
	}
	return r
}

// ExpectForwarded fails the test unless the request reached the upstream.
func (r *Result) ExpectForwarded(tb TB) *Result {
	tb.Helper()
	if r.Upstream == nil {
		tb.Errorf("request did not reach the upstream (status %d, local=%v details=%q err=%v)", r.Response.Status, r.Local, r.LocalDetails, r.Err)
	}
	return r
}

// ExpectResponseHeader fails the test unless the client response has name
// with first value want.
func (r *Result) ExpectResponseHeader(tb TB, name, want string) *Result {
	tb.Helper()
	if got, ok := r.Response.Headers.Get(name); !ok || got != want {
		tb.Errorf("response header %s = %q (present %v), want %q", name, got, ok, want)
	}
	return r
}

// ExpectNoResponseHeader fails the test if the client response has name.
func (r *Result) ExpectNoResponseHeader(tb TB, name string) *Result {
	tb.Helper()
	if got, ok := r.Response.Headers.Get(name); ok {
		tb.Errorf("response header %s = %q, want absent", name, got)
	}
	return r
}

// ExpectUpstreamHeader fails the test unless the upstream request has name
// with first value want.
func (r *Result) ExpectUpstreamHeader(tb TB, name, want string) *Result {
	tb.Helper()
	if r.Upstream == nil {
		tb.Errorf("upstream header %s: request did not reach the upstream", name)
		return r
	}
	if got, ok := r.Upstream.Headers.Get(name); !ok || got != want {
		tb.Errorf("upstream header %s = %q (present %v), want %q", name, got, ok, want)
	}
	return r
}

// ExpectNoUpstreamHeader fails the test if the upstream request has name.
func (r *Result) ExpectNoUpstreamHeader(tb TB, name string) *Result {
	tb.Helper()
	if r.Upstream == nil {
		return r
	}
	if got, ok := r.Upstream.Headers.Get(name); ok {
		tb.Errorf("upstream header %s = %q, want absent", name, got)
	}
	return r
}

// UpstreamHeader returns the first value of name in the upstream request.
func (r *Result) UpstreamHeader(name string) string {
	if r.Upstream == nil {
		return ""
	}
	v, _ := r.Upstream.Headers.Get(name)
	return v
}
