package sessionfasthttp_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/internal/middlewaretest"
	"github.com/sessionedge/sessionedge/sdk/sdktest"
	"github.com/sessionedge/sessionedge/sdk/sessionfasthttp"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// serve runs h on loopback until the test ends and returns its address.
func serve(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln := testbin.Listen(t)
	srv := &fasthttp.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

// do sends GET path to addr with prepare's headers (prepare gets a net/http
// request so sdktest.Forward can sign it).
func do(t *testing.T, addr, path string, prepare func(*http.Request)) *fasthttp.Response {
	t.Helper()
	hr, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	if prepare != nil {
		prepare(hr)
	}
	req, resp := fasthttp.AcquireRequest(), new(fasthttp.Response)
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI(hr.URL.String())
	for k, vs := range hr.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestMiddleware(t *testing.T) {
	keys := sdktest.NewAssertionKeys()
	app := func(ctx *fasthttp.RequestCtx) {
		v := sessionfasthttp.FromCtx(ctx)
		if v == nil {
			ctx.WriteString("no session")
			return
		}
		if string(ctx.Path()) == "/login" {
			sessionfasthttp.SetToken(ctx, "new-token")
		}
		fmt.Fprintf(ctx, "%s %s %s %s", v.ID, v.Kind, v.CustomerID(), v.Text(wire.FieldCurrency))
	}
	for _, tt := range middlewaretest.Cases(keys) {
		t.Run(tt.Name, func(t *testing.T) {
			cfg := sessionfasthttp.Config{Optional: tt.Optional, Insecure: tt.Insecure}
			if !cfg.Insecure {
				cfg.AssertionKeys = keys
			}
			resp := do(t, serve(t, sessionfasthttp.Middleware(cfg, app)), tt.Path, tt.Prepare)
			if resp.StatusCode() != tt.WantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode(), resp.Body(), tt.WantStatus)
			}
			if tt.WantBody != "" && string(resp.Body()) != tt.WantBody {
				t.Errorf("body %q, want %q", resp.Body(), tt.WantBody)
			}
			if got := string(resp.Header.Peek(sdk.HeaderToken)); got != tt.WantToken {
				t.Errorf("token header %q, want %q", got, tt.WantToken)
			}
		})
	}
}

func TestWritten(t *testing.T) {
	keys := sdktest.NewAssertionKeys()
	client := middlewaretest.Client(t)
	var reached uint64
	tests := []struct {
		name    string
		handler fasthttp.RequestHandler
		want    func() string
	}{
		{"no write", func(ctx *fasthttp.RequestCtx) { ctx.WriteString("x") }, func() string { return "" }},
		{"a client write with the RequestCtx as its context", func(ctx *fasthttp.RequestCtx) {
			s, err := client.Patch(ctx, sessionfasthttp.FromCtx(ctx).ID, new(sdk.Patch).SetField(wire.FieldCartID, wire.Text("c")), sdk.Upsert())
			if err != nil {
				panic(err)
			}
			reached = s.Version
			ctx.Redirect("/", fasthttp.StatusSeeOther)
		}, func() string { return fmt.Sprint(reached) }},
		{"Written by hand", func(ctx *fasthttp.RequestCtx) { sessionfasthttp.Written(ctx, 42) }, func() string { return "42" }},
		{"the highest wins", func(ctx *fasthttp.RequestCtx) {
			sessionfasthttp.Written(ctx, 42)
			sessionfasthttp.Written(ctx, 40)
		}, func() string { return "42" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, sessionfasthttp.Middleware(sessionfasthttp.Config{AssertionKeys: keys}, tt.handler))
			resp := do(t, addr, "/", func(r *http.Request) {
				sdktest.Forward(r, keys, middlewaretest.Session(wire.KindAnonymous), wire.AssertOK)
			})
			if got := string(resp.Header.Peek(sdk.HeaderWritten)); got != tt.want() {
				t.Fatalf("%s: %q, want %q", sdk.HeaderWritten, got, tt.want())
			}
		})
	}
}
