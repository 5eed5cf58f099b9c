package sessionfasthttp_test

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/sdktest"
	"github.com/sessionedge/sessionedge/sdk/sessionfasthttp"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Example serves a fasthttp app behind the edge on loopback and calls it
// with the headers the edge would add, signed with the edge's assertion key.
func Example() {
	keys := sdktest.NewAssertionKeys() // in production: sdk.AssertionKeysFromEnv()
	app := func(ctx *fasthttp.RequestCtx) {
		s := sessionfasthttp.FromCtx(ctx)
		if string(ctx.Path()) == "/login" {
			// A real app calls sdk.Client.Login(ctx, ...) and passes the
			// token it returns.
			sessionfasthttp.SetToken(ctx, "token-from-origin")
		}
		fmt.Fprintf(ctx, "%s session, prices in %s", s.Kind, s.Text(wire.FieldCurrency))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &fasthttp.Server{Handler: sessionfasthttp.Middleware(sessionfasthttp.Config{AssertionKeys: keys}, app)}
	go srv.Serve(ln)
	defer srv.Shutdown()

	id, _ := wire.ParseID("AAECAwQFBgcICQoLDA0ODw")
	session := &wire.Session{ID: id, Kind: wire.KindAnonymous, Generation: 1, Version: 3}
	session.Fields[wire.FieldCurrency] = wire.Text("CHF")
	for _, path := range []string{"/", "/login"} {
		// sdktest.Forward signs a net/http request; copy it over.
		hr, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+path, nil)
		sdktest.Forward(hr, keys, session, wire.AssertOK)
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI(hr.URL.String())
		for k := range hr.Header {
			req.Header.Set(k, hr.Header.Get(k))
		}
		if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil {
			panic(err)
		}
		fmt.Printf("%s [token %q]\n", resp.Body(), resp.Header.Peek(sdk.HeaderToken))
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
	// Output:
	// anonymous session, prices in CHF [token ""]
	// anonymous session, prices in CHF [token "token-from-origin"]
}
