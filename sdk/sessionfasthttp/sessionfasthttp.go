// Package sessionfasthttp is fasthttp middleware for apps behind the
// sessionedge edge: it checks that a request came through the edge (the
// edge's signed assertion, see sdk.Verifier), makes the request's session
// available as an sdk.View, tells the edge about the app's writes so the
// client reads them on its next request (sdk.HeaderWritten), and hands
// tokens from login and logout back to the edge.
//
// A *fasthttp.RequestCtx is a context.Context: pass it (or a context derived
// from it) to sdk.Client calls, and the writes they make to the request's
// session are reported to the edge when the handler returns.
package sessionfasthttp

import (
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

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
	Reject func(ctx *fasthttp.RequestCtx, err error)
}

// userValueKey is the RequestCtx user value that holds the *sdk.View.
const userValueKey = "sessionedge.view"

// Middleware wraps next so that every request it serves carries its session,
// which FromCtx returns, and a sdk.WriteRecorder for it. It panics when cfg
// has neither AssertionKeys nor Insecure.
func Middleware(cfg Config, next fasthttp.RequestHandler) fasthttp.RequestHandler {
	if cfg.AssertionKeys == nil && !cfg.Insecure {
		panic("sessionfasthttp: Config.AssertionKeys is required (the edge's assertion keys, e.g. sdk.AssertionKeysFromEnv); set Insecure to trust unsigned x-session-* headers")
	}
	reject := cfg.Reject
	if reject == nil {
		reject = defaultReject
	}
	vf := &sdk.Verifier{Keys: cfg.AssertionKeys, MaxSkew: cfg.MaxSkew}
	return func(ctx *fasthttp.RequestCtx) {
		get := func(name string) string { return string(ctx.Request.Header.Peek(name)) }
		var v *sdk.View
		var err error
		if cfg.Insecure && cfg.AssertionKeys == nil {
			v, err = sdk.ParseView(get)
		} else {
			v, err = vf.Verify(string(ctx.Host()), string(ctx.RequestURI()), get)
		}
		if errors.Is(err, sdk.ErrNoSession) && cfg.Optional {
			next(ctx)
			return
		}
		if err != nil {
			reject(ctx, err)
			return
		}
		rec := sdk.NewWriteRecorderFor(v)
		ctx.SetUserValue(userValueKey, v)
		ctx.SetUserValue(sdk.WriteRecorderKey, rec)
		next(ctx)
		// fasthttp sends the response header after the handler returns.
		if n := rec.Version(); n > 0 {
			setWritten(&ctx.Response.Header, n)
		}
	}
}

func defaultReject(ctx *fasthttp.RequestCtx, err error) {
	status := fasthttp.StatusForbidden
	if errors.Is(err, sdk.ErrBadHeaders) {
		status = fasthttp.StatusBadRequest
	}
	ctx.Error(err.Error(), status)
}

// FromCtx returns the session the middleware found for the request, or nil.
func FromCtx(ctx *fasthttp.RequestCtx) *sdk.View {
	v, _ := ctx.UserValue(userValueKey).(*sdk.View)
	return v
}

// SetToken hands a token the origin issued to the edge, which sets it as the
// session cookie.
func SetToken(ctx *fasthttp.RequestCtx, token string) {
	ctx.Response.Header.Set(sdk.HeaderToken, token)
}

// Written tells the edge that the request's session is at version or later
// at the origin (sdk.HeaderWritten), for writes the middleware did not see:
// made with another context, or by another service. Behind the middleware
// the highest version wins; without it, Written sets the header itself.
func Written(ctx *fasthttp.RequestCtx, version uint64) {
	if rec, ok := ctx.UserValue(sdk.WriteRecorderKey).(*sdk.WriteRecorder); ok {
		rec.Record(version)
		return
	}
	setWritten(&ctx.Response.Header, version)
}

func setWritten(h *fasthttp.ResponseHeader, version uint64) {
	if cur, err := strconv.ParseUint(string(h.Peek(sdk.HeaderWritten)), 10, 64); err == nil && cur >= version {
		return
	}
	h.Set(sdk.HeaderWritten, strconv.FormatUint(version, 10))
}
