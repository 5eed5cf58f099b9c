package server

import (
	"bytes"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// route is one entry of the API table; openapi_test.go checks that every
// route is in openapi.json.
type route struct {
	method  string
	pattern string // segments; {name} captures one
	name    string // metrics label
	scope   scope
	segs    []string
	h       func(ctx *fasthttp.RequestCtx, p params) error
}

// params holds the captured path segments, still percent-encoded; they alias
// the request and are valid during the handler only.
type params struct {
	v [3][]byte
	n int
}

// text returns capture i percent-decoded.
func (p params) text(i int) (string, error) {
	s, err := url.PathUnescape(string(p.v[i]))
	if err != nil {
		return "", badInput("path", "bad percent-encoding")
	}
	return s, nil
}

func (s *Server) routeTable() []route {
	rs := []route{
		{method: "POST", pattern: "/v1/sessions", name: "create", scope: scopeWrite, h: s.handleCreate},
		{method: "GET", pattern: "/v1/sessions/{id}", name: "get", scope: scopeRead, h: s.handleGet},
		{method: "DELETE", pattern: "/v1/sessions/{id}", name: "end", scope: scopeWrite, h: s.handleEnd},
		{method: "PUT", pattern: "/v1/sessions/{id}/context", name: "put_context", scope: scopeWrite, h: s.handlePutContext},
		{method: "PATCH", pattern: "/v1/sessions/{id}/context", name: "patch_context", scope: scopeWrite, h: s.handlePatchContext},
		{method: "POST", pattern: "/v1/sessions/{id}/attributes", name: "add_attribute", scope: scopeWrite, h: s.handleAddAttr},
		{method: "DELETE", pattern: "/v1/sessions/{id}/attributes/{ns}/{key}", name: "delete_attribute", scope: scopeWrite, h: s.handleDeleteAttr},
		{method: "DELETE", pattern: "/v1/sessions/{id}/data", name: "clear_data", scope: scopeWrite, h: s.handleClearData},
		{method: "POST", pattern: "/v1/sessions/{id}/login", name: "login", scope: scopeWrite, h: s.handleLogin},
		{method: "POST", pattern: "/v1/sessions/{id}/logout", name: "logout", scope: scopeWrite, h: s.handleLogout},
		{method: "POST", pattern: "/v1/sessions/{id}/refresh", name: "refresh", scope: scopeWrite, h: s.handleRefresh},
		{method: "PUT", pattern: "/v1/shared/{name}", name: "put_shared", scope: scopeWrite, h: s.handlePutShared},
		{method: "GET", pattern: "/v1/shared/{name}", name: "get_shared", scope: scopeRead, h: s.handleGetShared},
		{method: "GET", pattern: "/v1/customers/{cid}/sessions", name: "customer_sessions", scope: scopeAdmin, h: s.handleCustomerSessions},
		{method: "DELETE", pattern: "/v1/customers/{cid}/sessions", name: "revoke_customer", scope: scopeAdmin, h: s.handleRevokeCustomer},
		{method: "GET", pattern: "/v1/sync", name: "sync", scope: scopeSync, h: s.handleSync},
		{method: "POST", pattern: "/v1/sync/touch", name: "touch", scope: scopeSync, h: s.handleTouch},
		{method: "GET", pattern: "/healthz", name: "healthz", h: s.handleHealthz},
		{method: "GET", pattern: "/readyz", name: "readyz", h: s.handleReadyz},
		{method: "GET", pattern: "/metrics", name: "metrics", h: s.handleMetrics},
		{method: "GET", pattern: "/openapi.json", name: "openapi", h: s.handleOpenAPI},
	}
	for i := range rs {
		rs[i].segs = strings.Split(strings.TrimPrefix(rs[i].pattern, "/"), "/")
	}
	return rs
}

// match reports whether path fits the route's pattern, filling p; it does
// not allocate.
func (r *route) match(path []byte, p *params) bool {
	if len(path) == 0 || path[0] != '/' {
		return false
	}
	path = path[1:]
	p.n = 0
	for i, seg := range r.segs {
		j := bytes.IndexByte(path, '/')
		var part []byte
		if j < 0 {
			part, path = path, nil
			if i != len(r.segs)-1 {
				return false
			}
		} else {
			part, path = path[:j], path[j+1:]
			if i == len(r.segs)-1 {
				return false
			}
		}
		if len(seg) > 0 && seg[0] == '{' {
			if len(part) == 0 {
				return false
			}
			p.v[p.n] = part
			p.n++
			continue
		}
		if string(part) != seg {
			return false
		}
	}
	return true
}

// handle routes a request, checks auth and body size, and records metrics.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	path := ctx.URI().PathOriginal()
	method := ctx.Method()
	var p params
	idx, pathMatched := -1, false
	for i := range s.routes {
		r := &s.routes[i]
		if !r.match(path, &p) {
			continue
		}
		pathMatched = true
		if string(method) == r.method {
			idx = i
			break
		}
	}
	var err error
	switch {
	case idx < 0 && pathMatched:
		err = errMethod
	case idx < 0:
		err = errRouteNotFound
	default:
		r := &s.routes[idx]
		if err = s.authorize(ctx, r.scope); err == nil {
			if len(ctx.Request.Body()) > s.maxBody {
				err = errBodyTooLarge
			} else {
				err = r.h(ctx, p)
			}
		}
	}
	if err != nil {
		writeError(ctx, err)
	}
	s.metrics.observe(idx, ctx.Response.StatusCode(), time.Since(start))
}

func (s *Server) handleHealthz(ctx *fasthttp.RequestCtx, _ params) error {
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"status":"ok"}`)
	return nil
}

func (s *Server) handleReadyz(ctx *fasthttp.RequestCtx, _ params) error {
	if s.base.Err() != nil {
		return errShuttingDown
	}
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"status":"ready"}`)
	return nil
}
