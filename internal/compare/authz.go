package compare

import (
	"net/http"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sessionedge/sessionedge/sdk/sdktest"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Authz is the ext_authz mode: an edge without a cache. For every request
// it verifies the session cookie, asks the origin for the session
// (GET /v1/sessions/{id}, CBOR, over a pooled keep-alive client) and forwards
// the request to the app with the session as the edge forwards it to apps
// with the SDK middleware (forward.mode "compact": x-session-context, its
// status and the signed assertion).
type Authz struct {
	Cookie string               // the session cookie's name (the filter's cookie.name)
	Tokens *wire.Keyring        // verifies the cookie's token
	Keys   *wire.AssertionKeys  // signs what is forwarded
	Origin *fasthttp.HostClient // the origin API
	APIKey string               // origin API key with sessions:read
	App    *fasthttp.HostClient // the app
}

// NewHostClient returns a pooled keep-alive client for addr.
func NewHostClient(addr string, conns int) *fasthttp.HostClient {
	return &fasthttp.HostClient{Addr: addr, MaxConns: conns, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
}

// compactHeaders are what the filter forwards with forward.mode "compact",
// the mode for apps with the SDK middleware, which reads nothing else.
var compactHeaders = [...]string{"x-session-context", "x-session-context-status", "x-session-assertion"}

// Handler serves one request.
func (a *Authz) Handler(ctx *fasthttp.RequestCtx) {
	var c wire.Claims
	if err := a.Tokens.VerifyToken(ctx.Request.Header.Cookie(a.Cookie), time.Now().Unix(), &c); err != nil {
		ctx.Error("no valid session cookie", fasthttp.StatusUnauthorized)
		return
	}
	var s wire.Session
	status, err := a.session(c.ID, &s)
	switch {
	case err != nil:
		ctx.Error("origin: "+err.Error(), fasthttp.StatusBadGateway)
		return
	case status != fasthttp.StatusOK:
		ctx.Error("origin answered "+http.StatusText(status), fasthttp.StatusUnauthorized)
		return
	case s.Generation != c.Generation:
		ctx.Error("stale session token", fasthttp.StatusUnauthorized)
		return
	}

	// The assertion is bound to the request's Host and target; sdktest.Forward
	// builds the headers exactly as the edge does.
	view := &http.Request{Host: string(ctx.Host()), RequestURI: string(ctx.RequestURI()), Header: http.Header{}}
	sdktest.Forward(view, a.Keys, &s, wire.AssertOK)

	up := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(up)
	ctx.Request.CopyTo(up)
	var forged [][]byte // a client's own x-session-* headers go
	up.Header.VisitAll(func(k, _ []byte) {
		if len(k) >= 10 && strings.EqualFold(string(k[:10]), "x-session-") {
			forged = append(forged, append([]byte(nil), k...))
		}
	})
	for _, k := range forged {
		up.Header.DelBytes(k)
	}
	for _, k := range compactHeaders {
		up.Header.Set(k, view.Header.Get(k))
	}
	if err := a.App.Do(up, &ctx.Response); err != nil {
		ctx.Error("app: "+err.Error(), fasthttp.StatusBadGateway)
	}
}

func (a *Authz) session(id wire.ID, s *wire.Session) (int, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + a.Origin.Addr + "/v1/sessions/" + id.String())
	req.Header.Set("Accept", "application/cbor")
	req.Header.Set("Authorization", "Bearer "+a.APIKey)
	if err := a.Origin.Do(req, resp); err != nil {
		return 0, err
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return resp.StatusCode(), nil
	}
	return fasthttp.StatusOK, wire.DecodeSession(resp.Body(), s)
}
