package sessionfasthttp_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sessionedge/sessionedge/sdk"
	"github.com/sessionedge/sessionedge/sdk/sessionfasthttp"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

const testID = "AAECAwQFBgcICQoLDA0ODw"

func TestMiddleware(t *testing.T) {
	app := func(ctx *fasthttp.RequestCtx) {
		v := sessionfasthttp.FromCtx(ctx)
		if v == nil {
			ctx.WriteString("no session")
			return
		}
		if string(ctx.Path()) == "/login" {
			sessionfasthttp.SetToken(ctx, "new-token")
		}
		fmt.Fprintf(ctx, "%s %s %s", v.ID, v.Kind, v.Text(wire.FieldCurrency))
	}
	tests := []struct {
		name       string
		cfg        sessionfasthttp.Config
		path       string
		headers    map[string]string
		wantStatus int
		wantBody   string
		wantToken  string
	}{
		{name: "session", path: "/", headers: map[string]string{"X-Session-Id": testID, "X-Session-Kind": "anonymous", "X-Session-Currency": "EUR"},
			wantStatus: 200, wantBody: testID + " anonymous EUR"},
		{name: "token handed back", path: "/login", headers: map[string]string{"X-Session-Id": testID, "X-Session-Kind": "customer"},
			wantStatus: 200, wantBody: testID + " customer ", wantToken: "new-token"},
		{name: "no session rejected", path: "/", wantStatus: 403},
		{name: "malformed rejected", path: "/", headers: map[string]string{"X-Session-Id": "nope"}, wantStatus: 400},
		{name: "optional passes without session", cfg: sessionfasthttp.Config{Check: sdk.EdgeCheck{Optional: true}}, path: "/", wantStatus: 200, wantBody: "no session"},
		{name: "secret required", cfg: sessionfasthttp.Config{Check: sdk.EdgeCheck{Header: "X-Edge-Secret", Secret: "s"}}, path: "/",
			headers: map[string]string{"X-Session-Id": testID}, wantStatus: 403},
		{name: "secret given", cfg: sessionfasthttp.Config{Check: sdk.EdgeCheck{Header: "X-Edge-Secret", Secret: "s"}}, path: "/",
			headers: map[string]string{"X-Session-Id": testID, "X-Edge-Secret": "s"}, wantStatus: 200, wantBody: testID + " anonymous "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &fasthttp.Server{Handler: sessionfasthttp.Middleware(tt.cfg, app)}
			go srv.Serve(ln)
			defer srv.Shutdown()

			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + ln.Addr().String() + tt.path)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode() != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode(), resp.Body(), tt.wantStatus)
			}
			if tt.wantBody != "" && string(resp.Body()) != tt.wantBody {
				t.Errorf("body %q, want %q", resp.Body(), tt.wantBody)
			}
			if got := string(resp.Header.Peek(sdk.HeaderToken)); got != tt.wantToken {
				t.Errorf("token header %q, want %q", got, tt.wantToken)
			}
		})
	}
}
