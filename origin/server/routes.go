package server

import (
	"bytes"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// route is one entry of the API table; a test checks that every route is in
// openapi.json and that the scope table of docs/api.md matches grants.
type route struct {
	method  string
	pattern string // segments; {name} captures one
	name    string // metrics label
	// grants are the scopes that open the route, app scopes first: a key
	// holding an app scope gets full access, one holding only an edge
	// scope gets the edge rules (see access). None: a public route.
	grants []scope
	// body: the route takes a request body, and an empty one is refused.
	body bool
	segs []string
	h    func(ctx *fasthttp.RequestCtx, p params, a access) error
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

func grants(scopes ...scope) []scope { return scopes }

func (s *Server) routeTable() []route {
	var (
		read      = grants(scopeRead)
		readOrGet = grants(scopeRead, scopeSync)
		write     = grants(scopeWrite)
		selfServe = grants(scopeWrite, scopeSelfService)
		admin     = grants(scopeAdmin)
		sync      = grants(scopeSync)
	)
	rs := []route{
		{method: "POST", pattern: "/v1/sessions", name: "create", grants: write, h: s.handleCreate},
		{method: "GET", pattern: "/v1/sessions/{id}", name: "get", grants: readOrGet, h: s.handleGet},
		{method: "DELETE", pattern: "/v1/sessions/{id}", name: "end", grants: write, h: s.handleEnd},
		{method: "PUT", pattern: "/v1/sessions/{id}/context", name: "put_context", grants: write, body: true, h: s.handlePutContext},
		{method: "PATCH", pattern: "/v1/sessions/{id}/context", name: "patch_context", grants: selfServe, body: true, h: s.handlePatchContext},
		{method: "POST", pattern: "/v1/sessions/{id}/attributes", name: "add_attribute", grants: write, body: true, h: s.handleAddAttr},
		{method: "DELETE", pattern: "/v1/sessions/{id}/attributes/{ns}/{key}", name: "delete_attribute", grants: selfServe, h: s.handleDeleteAttr},
		{method: "DELETE", pattern: "/v1/sessions/{id}/data", name: "clear_data", grants: write, h: s.handleClearData},
		{method: "POST", pattern: "/v1/sessions/{id}/login", name: "login", grants: write, body: true, h: s.handleLogin},
		{method: "POST", pattern: "/v1/sessions/{id}/logout", name: "logout", grants: selfServe, h: s.handleLogout},
		{method: "POST", pattern: "/v1/sessions/{id}/refresh", name: "refresh", grants: write, h: s.handleRefresh},
		{method: "POST", pattern: "/v1/sessions/{id}/flush", name: "flush", grants: write, h: s.handleFlush},
		{method: "GET", pattern: "/v1/sessions/{id}/peers", name: "peers", grants: grants(scopeRead, scopeSelfService), h: s.handlePeers},
		{method: "DELETE", pattern: "/v1/sessions/{id}/peers", name: "revoke_peers", grants: selfServe, h: s.handleRevokePeers},
		{method: "PUT", pattern: "/v1/shared/{name}", name: "put_shared", grants: write, h: s.handlePutShared},
		{method: "GET", pattern: "/v1/shared/{name}", name: "get_shared", grants: read, h: s.handleGetShared},
		{method: "GET", pattern: "/v1/customers/{cid}/sessions", name: "customer_sessions", grants: admin, h: s.handleCustomerSessions},
		{method: "DELETE", pattern: "/v1/customers/{cid}/sessions", name: "revoke_customer", grants: admin, h: s.handleRevokeCustomer},
		{method: "GET", pattern: "/v1/sync", name: "sync", grants: sync, h: s.handleSync},
		{method: "POST", pattern: "/v1/sync/touch", name: "touch", grants: sync, body: true, h: s.handleTouch},
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

// handle routes a request, checks framing, auth and body, runs the
// handler, logs server errors and records metrics.
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
	case ambiguousFraming(&ctx.Request.Header):
		// Content-Length and Transfer-Encoding together: refuse, and close
		// the connection, since a proxy in front may have framed the
		// request differently.
		ctx.SetConnectionClose()
		err = badInput("Transfer-Encoding", "Content-Length and Transfer-Encoding must not both be sent")
	case idx < 0 && pathMatched:
		err = errMethod
	case idx < 0:
		err = errRouteNotFound
	default:
		r := &s.routes[idx]
		var a access
		if a, err = s.authorize(ctx, r); err == nil {
			body := ctx.Request.Body()
			switch {
			case len(body) > s.maxBody:
				err = errBodyTooLarge
			case r.body && len(bytes.TrimSpace(body)) == 0:
				err = badInput("body", "required")
			default:
				err = r.h(ctx, p, a)
			}
		}
	}
	if err != nil {
		writeError(ctx, err)
		if status := ctx.Response.StatusCode(); status >= 500 {
			name := "unmatched"
			if idx >= 0 {
				name = s.routes[idx].name
			}
			// The cause never holds a secret: errors name sessions by id
			// and stores by address, never tokens or keys.
			s.log.Error("request failed", "route", name, "method", string(method), "status", status, "err", err)
		}
	}
	s.metrics.observe(idx, ctx.Response.StatusCode(), time.Since(start))
}

// ambiguousFraming reports a request that sent both Transfer-Encoding (of
// any value) and Content-Length. fasthttp lets chunked win and drops the
// other header from the parsed request, and ignores "identity", so the raw
// head is scanned; only for requests with a body, which are the writes.
func ambiguousFraming(h *fasthttp.RequestHeader) bool {
	if h.ContentLength() == -2 {
		return false // neither a length nor chunked: no body to frame
	}
	raw := h.RawHeaders()
	var cl, te bool
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		name, _, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		name = bytes.TrimSpace(name)
		cl = cl || bytes.EqualFold(name, []byte("Content-Length"))
		te = te || bytes.EqualFold(name, []byte("Transfer-Encoding"))
	}
	return cl && te
}

// handleAdmin serves the admin listener: metrics and health.
func (s *Server) handleAdmin(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		writeError(ctx, errMethod)
		return
	}
	switch string(ctx.Path()) {
	case "/metrics":
		s.metrics.handler(ctx)
	case "/healthz":
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"status":"ok"}`)
	case "/readyz":
		if s.base.Err() != nil {
			writeError(ctx, errShuttingDown)
			return
		}
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"status":"ready"}`)
	default:
		writeError(ctx, errRouteNotFound)
	}
}
