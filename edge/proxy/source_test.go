package proxy

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestSourceAddress checks that the source.address the proxy writes without
// allocating is the text of net.Addr.String for the addresses a listener
// gives, and that the request ID is the client's or a fresh one.
func TestSourceAddress(t *testing.T) {
	for _, a := range []net.Addr{
		&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 41234},
		&net.TCPAddr{IP: net.ParseIP("10.1.2.3").To4(), Port: 80},
		&net.TCPAddr{IP: net.ParseIP("::1"), Port: 8080},
		&net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 443},
		&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 9, Zone: "eth0"},
		&net.TCPAddr{Port: 1},
		&net.UnixAddr{Name: "/run/edge.sock", Net: "unix"},
	} {
		var ctx fasthttp.RequestCtx
		ctx.Init(&fasthttp.Request{}, a, nil)
		if got, want := string(appendSourceAddress([]byte("id"), &ctx)), "id"+a.String(); got != want {
			t.Errorf("source address of %#v = %q, want %q", a, got, want)
		}
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, nil, nil)
	s := &Server{idPrefix: "p-"}
	if got := string(appendRequestID(nil, &ctx, s.idPrefix, &s.reqID)); got != "p-1" {
		t.Errorf("generated request ID = %q, want p-1", got)
	}
	ctx.Request.Header.Set("X-Request-Id", "abc")
	if got := string(appendRequestID(nil, &ctx, s.idPrefix, &s.reqID)); got != "abc" {
		t.Errorf("request ID = %q, want the client's abc", got)
	}
}
