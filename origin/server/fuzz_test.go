package server

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/sessionedge/sessionedge/internal/fuzzbudget"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// FuzzDecodeBodies feeds arbitrary bodies to the decoder of every route
// that takes one: each answers within the time budget (fuzzbudget: 50 ms an
// input) and never panics.
func FuzzDecodeBodies(f *testing.F) {
	for _, seed := range []string{
		`{"custom":{"a":1}}`, `{"currency":null}`, `{"public":null}`, `{"custom":{"t":{"$time":"2024-01-01T00:00:00Z"}}}`,
		`{"custom":{"d":{"$decimal":"1.5"}}}`, `{"namespace":"custom","key":"k","value":[1,2,{"a":true}]}`,
		`{"customerId":"c","profile":{"locale":"de"}}`, `{"kind":"customer","customerId":"c","context":{"public":{"a":1}}}`,
		`{`, `[]`, `null`, "\xa1\x01\x02", `{"custom":{"a":1e999}}`, "\x81\xa2\x01\x50" + string(make([]byte, 16)),
	} {
		f.Add([]byte(seed), uint8(0))
	}
	s := newServer(f, baseConfig(f))
	decoders := []func(b []byte){
		func(b []byte) { s.parseCreate(b) },
		func(b []byte) { s.parseLogin(b) },
		func(b []byte) { s.parseAttribute(b) },
		func(b []byte) {
			if v, err := s.parseContextBody(b, false); err == nil {
				wire.ContextOps(v, false, &s.lim)
			}
		},
		func(b []byte) {
			if v, err := s.parseContextBody(b, true); err == nil {
				wire.ContextOps(v, true, &s.lim)
			}
		},
		func(b []byte) { wire.DecodeTouchesLimits(b, nil, &s.lim) },
	}
	f.Fuzz(func(t *testing.T, body []byte, which uint8) {
		if len(body) > s.maxBody {
			return // refused with 413 before any decoding
		}
		dec := decoders[int(which)%len(decoders)]
		fuzzbudget.Check(t, len(body), func() { dec(body) })
	})
}

// FuzzRequestHead feeds arbitrary query parameters and headers to what
// parses them (items, minVersion, idleTimeout, If-Match, X-Session-Token,
// X-Session-Init, framing): within the budget, no panic.
func FuzzRequestHead(f *testing.F) {
	f.Add("currency,custom.color,public", "5", `"3"`, "AQEB", "oQGBhlAAAAAAAAAAAAAAAAAAAAAAAQEAAAA")
	f.Add(",,,custom.,.x", "18446744073709551616", `W/"1"`, "", "=")
	s := newServer(f, baseConfig(f))
	sess := &wire.Session{Kind: wire.KindAnonymous, Generation: 1, Version: 1}
	sess.Attrs[wire.NamespaceCustom] = sess.Attrs[wire.NamespaceCustom].With("color", wire.Text("red"))
	f.Fuzz(func(t *testing.T, items, minVersion, ifMatchV, token, init string) {
		n := len(items) + len(minVersion) + len(ifMatchV) + len(token) + len(init)
		if n > 8<<10 {
			return // over maxHeaderBytes: refused with 431
		}
		var ctx fasthttp.RequestCtx
		args := fasthttp.AcquireArgs()
		defer fasthttp.ReleaseArgs(args)
		args.Add("items", items)
		args.Add("minVersion", minVersion)
		args.Add("idleTimeout", minVersion)
		ctx.Request.SetRequestURI("/v1/sessions/x?" + args.String())
		ctx.Request.Header.Set("If-Match", ifMatchV)
		ctx.Request.Header.Set("X-Session-Token", token)
		ctx.Request.Header.Set("X-Session-Init", init)
		fuzzbudget.Check(t, n, func() {
			selectItems(sess, string(ctx.QueryArgs().Peek("items")))
			queryUint(&ctx, "minVersion")
			ifMatch(&ctx)
			s.sessionToken(&ctx, sess.ID, access{edge: true}, true)
			ambiguousFraming(&ctx.Request.Header)
			s.sessionInit(&ctx, sess.ID)
			s.lifetimeQuery(&ctx)
		})
	})
}

// FuzzWriteBodies feeds arbitrary bodies to every route that parses one,
// through the whole handler: the origin answers 2xx or 4xx, never 5xx, and
// never panics.
func FuzzWriteBodies(f *testing.F) {
	for _, seed := range []string{
		`{"custom":{"a":1}}`, `{"currency":null}`, `{"public":null}`, `{"custom":{"t":{"$time":"2024-01-01T00:00:00Z"}}}`,
		`{"custom":{"d":{"$decimal":"1.5"}}}`, `{"namespace":"custom","key":"k","value":[1,2,{"a":true}]}`,
		`{"customerId":"c","profile":{"locale":"de"}}`, `{`, `[]`, `null`, "\xa1\x01\x02", `{"custom":{"a":1e999}}`,
		`{"lifetime":{"idle":"5m","hard":3600}}`, `{"customerId":"c","lifetime":{"idle":1e300}}`, `{"lifetime":{"hard":"none"}}`,
	} {
		f.Add(seed, uint8(0))
	}
	s := newServer(f, baseConfig(f))
	id := createThroughHandler(f, s, "")
	routes := []struct{ method, path, ctype, key string }{
		{"PATCH", "/v1/sessions/" + id + "/context", "application/json", keyAll},
		{"PUT", "/v1/sessions/" + id + "/context", "application/json", keyAll},
		{"PUT", "/v1/sessions/" + id + "/context", "application/cbor", keyAll},
		{"POST", "/v1/sessions/" + id + "/attributes", "application/json", keyAll},
		{"POST", "/v1/sessions/" + id + "/login", "application/json", keyAll},
		{"POST", "/v1/sessions", "application/json", keyAll},
		{"PUT", "/v1/shared/fuzz", "application/json", keyAll},
		{"POST", "/v1/sync/touch", "application/cbor", keyEdge},
		{"PATCH", "/v1/sessions/" + id + "/context", "application/json", keyEdge},
	}
	f.Fuzz(func(t *testing.T, body string, route uint8) {
		r := routes[int(route)%len(routes)]
		var c fasthttp.RequestCtx
		c.Request.SetRequestURI(r.path)
		c.Request.Header.SetMethod(r.method)
		c.Request.Header.Set("Authorization", "Bearer "+r.key)
		c.Request.Header.SetContentType(r.ctype)
		c.Request.SetBodyString(body)
		s.handle(&c)
		if st := c.Response.StatusCode(); st >= 500 {
			t.Fatalf("%s %s with %q: %d %s", r.method, r.path, body, st, c.Response.Body())
		}
	})
}
