// Package sessionfasthttp is fasthttp middleware for apps behind the
// sessionedge edge: it reads the session the edge forwards in x-session-*
// headers into an sdk.View, rejects requests that did not come through the
// edge, and hands tokens from login and logout back to the edge.
//
// The headers are trusted only as far as the path from the edge to the app:
// see sdk.EdgeCheck for the trust model.
package sessionfasthttp

import (
	"errors"

	"github.com/valyala/fasthttp"

	"github.com/sessionedge/sessionedge/sdk"
)

// Config configures the middleware. The zero value requires session headers
// on every request and checks no secret.
type Config struct {
	// Check decides which requests are trusted; see sdk.EdgeCheck.
	Check sdk.EdgeCheck
	// Reject answers requests that fail the check. Default: 403 for requests
	// that did not come through the edge, 400 for malformed headers.
	Reject func(ctx *fasthttp.RequestCtx, err error)
}

// userValueKey is the RequestCtx user value that holds the *sdk.View.
const userValueKey = "sessionedge.view"

// Middleware wraps next so that every request it serves carries its session,
// which FromCtx returns.
func Middleware(cfg Config, next fasthttp.RequestHandler) fasthttp.RequestHandler {
	reject := cfg.Reject
	if reject == nil {
		reject = defaultReject
	}
	check := cfg.Check
	return func(ctx *fasthttp.RequestCtx) {
		v, err := check.Check(func(name string) string { return string(ctx.Request.Header.Peek(name)) })
		if err != nil {
			reject(ctx, err)
			return
		}
		if v != nil {
			ctx.SetUserValue(userValueKey, v)
		}
		next(ctx)
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
