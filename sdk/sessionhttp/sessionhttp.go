// Package sessionhttp is net/http middleware for apps behind the sessionedge
// edge: it reads the session the edge forwards in x-session-* headers into an
// sdk.View, rejects requests that did not come through the edge, and hands
// tokens from login and logout back to the edge.
//
// The headers are trusted only as far as the path from the edge to the app:
// see sdk.EdgeCheck for the trust model.
package sessionhttp

import (
	"context"
	"errors"
	"net/http"

	"github.com/sessionedge/sessionedge/sdk"
)

// Config configures the middleware. The zero value requires session headers
// on every request and checks no secret.
type Config struct {
	// Check decides which requests are trusted; see sdk.EdgeCheck.
	Check sdk.EdgeCheck
	// Reject answers requests that fail the check. Default: 403 for requests
	// that did not come through the edge, 400 for malformed headers. err is
	// sdk.ErrNoSession, sdk.ErrNotFromEdge or wraps sdk.ErrBadHeaders.
	Reject func(w http.ResponseWriter, r *http.Request, err error)
}

type viewKey struct{}

// Middleware returns middleware that puts the request's session into the
// request context, where FromRequest finds it.
func Middleware(cfg Config) func(http.Handler) http.Handler {
	reject := cfg.Reject
	if reject == nil {
		reject = defaultReject
	}
	check := cfg.Check
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v, err := check.Check(r.Header.Get)
			if err != nil {
				reject(w, r, err)
				return
			}
			if v != nil {
				r = r.WithContext(context.WithValue(r.Context(), viewKey{}, v))
			}
			next.ServeHTTP(w, r)
		})
	}
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
// (EdgeCheck.Optional).
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
