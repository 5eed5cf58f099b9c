package proxy_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/edge/proxy"
	"github.com/valyala/fasthttp"
)

// TestProxyHammer sends parallel requests of every kind through one edge
// (plain, local answers, HTTP calls that pause the stream) and checks each
// gets its own answer. Run it with -race.
func TestProxyHammer(t *testing.T) {
	e := startEdge(t, proxy.Config{Upstream: startUpstream(t), Wasm: watGuest, VMs: 3,
		Clusters: map[string]string{"backend": startCluster(t)}})
	c := &fasthttp.HostClient{Addr: e.url[len("http://"):], MaxConns: 64, ReadTimeout: 10 * time.Second}
	const workers, per = 24, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers*per)
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for i := 0; i < per; i++ {
				path := []string{"/", "/local", "/call"}[(w+i)%3]
				uri := path
				if path == "/" {
					// The guest matches /local and /call exactly; plain requests
					// carry an id the upstream echoes back.
					uri = fmt.Sprintf("/?w=%d&i=%d", w, i)
				}
				req.SetRequestURI(e.url + uri)
				if err := c.Do(req, resp); err != nil {
					errs <- err
					continue
				}
				var bad string
				switch path {
				case "/":
					if resp.StatusCode() != 200 || string(resp.Header.Peek("x-got-wat")) != "1" {
						bad = "plain"
					}
				case "/local":
					if resp.StatusCode() != 403 || string(resp.Body()) != "forbidden" {
						bad = "local"
					}
				case "/call":
					if resp.StatusCode() != 200 || string(resp.Header.Peek("x-got-answer")) != "from-cluster" {
						bad = "call"
					}
				}
				if got := string(resp.Header.Peek("x-got-path")); path != "/local" && got != uri {
					bad += " answered with another request's response (" + got + ")"
				}
				if bad != "" {
					errs <- fmt.Errorf("%s: %s, status %d", path, bad, resp.StatusCode())
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 5 {
			t.Error(err)
		}
	}
}
