package sessionfasthttp_test

import (
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/sessionfasthttp"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Example serves a fasthttp app behind the edge on loopback and calls it
// with the headers the edge would add.
func Example() {
	app := func(ctx *fasthttp.RequestCtx) {
		s := sessionfasthttp.FromCtx(ctx)
		if string(ctx.Path()) == "/login" {
			// A real app calls sdk.Client.Login and passes the token it returns.
			sessionfasthttp.SetToken(ctx, "token-from-origin")
		}
		fmt.Fprintf(ctx, "%s session, prices in %s", s.Kind, s.Text(wire.FieldCurrency))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &fasthttp.Server{Handler: sessionfasthttp.Middleware(sessionfasthttp.Config{}, app)}
	go srv.Serve(ln)
	defer srv.Shutdown()

	for _, path := range []string{"/", "/login"} {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + ln.Addr().String() + path)
		req.Header.Set(sdk.HeaderID, "AAECAwQFBgcICQoLDA0ODw")
		req.Header.Set(sdk.HeaderKind, "anonymous")
		req.Header.Set(sdk.HeaderCurrency, "CHF")
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
