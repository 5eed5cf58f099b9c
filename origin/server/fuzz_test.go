package server

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// FuzzWriteBodies feeds arbitrary bodies to every route that parses one: the
// origin answers 2xx or 4xx, never 5xx, and never panics.
func FuzzWriteBodies(f *testing.F) {
	for _, seed := range []string{
		`{"custom":{"a":1}}`, `{"currency":null}`, `{"public":null}`, `{"custom":{"t":{"$time":"2024-01-01T00:00:00Z"}}}`,
		`{"custom":{"d":{"$decimal":"1.5"}}}`, `{"namespace":"custom","key":"k","value":[1,2,{"a":true}]}`,
		`{"customerId":"c","profile":{"locale":"de"}}`, `{`, `[]`, `null`, "\xa1\x01\x02", `{"custom":{"a":1e999}}`,
	} {
		f.Add(seed, uint8(0))
	}
	cfg := baseConfig(f)
	s, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Shutdown(f.Context()) })
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/v1/sessions")
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.Header.Set("Authorization", "Bearer "+keyAll)
	ctx.Request.Header.Set("Accept", "application/cbor")
	s.handle(&ctx)
	id := decodeID(f, ctx.Response.Body())
	routes := []struct{ method, path, ctype string }{
		{"PATCH", "/v1/sessions/" + id + "/context", "application/json"},
		{"PUT", "/v1/sessions/" + id + "/context", "application/json"},
		{"PUT", "/v1/sessions/" + id + "/context", "application/cbor"},
		{"POST", "/v1/sessions/" + id + "/attributes", "application/json"},
		{"POST", "/v1/sessions/" + id + "/login", "application/json"},
		{"POST", "/v1/sessions", "application/json"},
		{"PUT", "/v1/shared/fuzz", "application/json"},
		{"POST", "/v1/sync/touch", "application/cbor"},
	}
	f.Fuzz(func(t *testing.T, body string, route uint8) {
		r := routes[int(route)%len(routes)]
		var c fasthttp.RequestCtx
		c.Request.SetRequestURI(r.path)
		c.Request.Header.SetMethod(r.method)
		c.Request.Header.Set("Authorization", "Bearer "+keyAll)
		c.Request.Header.SetContentType(r.ctype)
		c.Request.SetBodyString(body)
		s.handle(&c)
		if st := c.Response.StatusCode(); st >= 500 {
			t.Fatalf("%s %s with %q: %d %s", r.method, r.path, body, st, c.Response.Body())
		}
	})
}

func decodeID(f *testing.F, body []byte) string { return decodeForBenchTB(f, body) }
