// Package sessionhttp is net/http middleware for apps behind the sessionedge
// edge: it checks that a request came through the edge (the edge's signed
// assertion, see sdk.Verifier), puts the request's session into the request
// context as an sdk.View, tells the edge about the app's writes so the
// client reads them on its next request (sdk.HeaderWritten), and hands
// tokens from login and logout back to the edge.
package sessionhttp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Config configures the middleware.
type Config struct {
	// AssertionKeys verify the x-session-assertion header the edge signs
	// every forwarded request with (sdk.ParseAssertionKeys,
	// sdk.AssertionKeysFromEnv). A request whose assertion is missing,
	// invalid or stale is rejected with 403, and the View is built from the
	// assertion and the context it vouches for. Required unless Insecure.
	AssertionKeys *wire.AssertionKeys
	// MaxSkew is how far an assertion's issue time may be from the app's
	// clock. Default sdk.DefaultMaxSkew (30s).
	MaxSkew time.Duration
	// Insecure trusts the x-session-* headers as they arrive, without an
	// assertion (sdk.ParseView). Anyone who can reach the app can then
	// claim any session: only for an app nothing but the edge can reach.
	Insecure bool
	// Optional lets requests that carry no session (no assertion; with
	// Insecure, no x-session-id) through with a nil View, for routes that
	// also serve direct traffic. Their x-session-* headers are ignored.
	// A request with an assertion that does not verify is still rejected.
	Optional bool
	// Reject answers requests that fail the check. Default: 403 for
	// requests that did not come through the edge, 400 for malformed
	// headers. err is sdk.ErrNoSession, or wraps sdk.ErrNotFromEdge or
	// sdk.ErrBadHeaders.
	Reject func(w http.ResponseWriter, r *http.Request, err error)
}

type viewKey struct{}

// Middleware returns middleware that puts the request's session into the
// request context, where FromRequest finds it, and a sdk.WriteRecorder for
// it, so that sdk.Client writes given r.Context() set sdk.HeaderWritten on
// the response. It panics when cfg has neither AssertionKeys nor Insecure.
func Middleware(cfg Config) func(http.Handler) http.Handler {
	if cfg.AssertionKeys == nil && !cfg.Insecure {
		panic("sessionhttp: Config.AssertionKeys is required (the edge's assertion keys, e.g. sdk.AssertionKeysFromEnv); set Insecure to trust unsigned x-session-* headers")
	}
	reject := cfg.Reject
	if reject == nil {
		reject = defaultReject
	}
	vf := &sdk.Verifier{Keys: cfg.AssertionKeys, MaxSkew: cfg.MaxSkew}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var v *sdk.View
			var err error
			if cfg.Insecure && cfg.AssertionKeys == nil {
				v, err = sdk.ParseView(r.Header.Get)
			} else {
				v, err = vf.Verify(r.Host, requestTarget(r), r.Header.Get)
			}
			if errors.Is(err, sdk.ErrNoSession) && cfg.Optional {
				next.ServeHTTP(w, r)
				return
			}
			if err != nil {
				reject(w, r, err)
				return
			}
			rec := sdk.NewWriteRecorderFor(v)
			ctx := context.WithValue(sdk.WithWriteRecorder(r.Context(), rec), viewKey{}, v)
			rw := &writer{rw: w, rec: rec}
			next.ServeHTTP(rw, r.WithContext(ctx))
			// A handler that wrote nothing gets an implicit 200 from the
			// server; the header must be on it too.
			rw.before()
		})
	}
}

// requestTarget returns the request target as the edge sent it.
func requestTarget(r *http.Request) string {
	if r.RequestURI != "" {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

func defaultReject(w http.ResponseWriter, _ *http.Request, err error) {
	status := http.StatusForbidden
	if errors.Is(err, sdk.ErrBadHeaders) {
		status = http.StatusBadRequest
	}
	http.Error(w, err.Error(), status)
}

// FromRequest returns the session the middleware found for r, or nil when
// the middleware did not run or let the request through without one
// (Config.Optional).
func FromRequest(r *http.Request) *sdk.View {
	v, _ := r.Context().Value(viewKey{}).(*sdk.View)
	return v
}

// SetToken hands a token the origin issued (sdk.Client Login, Logout or
// Create) to the edge, which sets it as the session cookie. Call it before
// writing the response header.
func SetToken(w http.ResponseWriter, token string) {
	w.Header().Set(sdk.HeaderToken, token)
}

// Written tells the edge that the request's session is at version or later
// at the origin (sdk.HeaderWritten), for writes the middleware did not see:
// made with another context, or by another service. Call it before writing
// the response header. Behind the middleware the highest version wins;
// without it, Written sets the header itself.
func Written(w http.ResponseWriter, version uint64) {
	for u := w; u != nil; {
		if sw, ok := u.(*writer); ok {
			sw.rec.Record(version)
			return
		}
		uw, ok := u.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		u = uw.Unwrap()
	}
	setWritten(w.Header(), version)
}

func setWritten(h http.Header, version uint64) {
	if cur, err := strconv.ParseUint(h.Get(sdk.HeaderWritten), 10, 64); err == nil && cur >= version {
		return
	}
	h.Set(sdk.HeaderWritten, strconv.FormatUint(version, 10))
}

// writer sets sdk.HeaderWritten just before the response header goes out.
// It implements http.Flusher, http.Hijacker and io.ReaderFrom, as the
// server's own ResponseWriter does, and Unwrap for http.ResponseController;
// each passes through to the writer it wraps (Flush and Hijack through
// http.ResponseController, so a writer that cannot do them reports
// http.ErrNotSupported). http.Pusher is not passed through.
type writer struct {
	rw      http.ResponseWriter
	rec     *sdk.WriteRecorder
	written bool
}

// before runs once, before the response header is sent.
func (w *writer) before() {
	if w.written {
		return
	}
	w.written = true
	if v := w.rec.Version(); v > 0 {
		setWritten(w.rw.Header(), v)
	}
}

func (w *writer) Header() http.Header { return w.rw.Header() }

func (w *writer) WriteHeader(code int) {
	// 1xx answers (103 Early Hints) precede the real header; 101 Switching
	// Protocols is final.
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.rw.WriteHeader(code)
		return
	}
	w.before()
	w.rw.WriteHeader(code)
}

func (w *writer) Write(b []byte) (int, error) {
	w.before()
	return w.rw.Write(b)
}

func (w *writer) Flush() {
	w.before()
	http.NewResponseController(w.rw).Flush()
}

func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.written = true // nothing this middleware could add reaches the client now
	return http.NewResponseController(w.rw).Hijack()
}

func (w *writer) ReadFrom(src io.Reader) (int64, error) {
	w.before()
	if rf, ok := w.rw.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{w.rw}, src)
}

// writerOnly hides every method but Write, so io.Copy cannot loop back
// into ReadFrom.
type writerOnly struct{ io.Writer }

func (w *writer) Unwrap() http.ResponseWriter { return w.rw }
