package proxy_test

import (
	"testing"

	"github.com/sessionedge/sessionedge/edge/proxy"
	"github.com/valyala/fasthttp"
)

// BenchmarkProxy measures a request through the edge on loopback, with the
// .wat filter on and off; the client and upstream costs are the same in both,
// so the difference is the filter path.
func BenchmarkProxy(b *testing.B) {
	up := startUpstream(b)
	for _, noFilter := range []bool{true, false} {
		name := map[bool]string{true: "filter=off", false: "filter=on"}[noFilter]
		b.Run(name, func(b *testing.B) {
			e := startEdge(b, proxy.Config{Upstream: up, Wasm: watGuest, NoFilter: noFilter})
			c := &fasthttp.HostClient{Addr: e.url[len("http://"):]}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				req.SetRequestURI(e.url + "/products/42")
				req.Header.SetCookie("__Host-sid", "abc")
				for pb.Next() {
					if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
						b.Errorf("status %d err %v", resp.StatusCode(), err)
						return
					}
				}
			})
		})
	}
}
