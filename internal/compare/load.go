package compare

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Client is one connection of the load generator: the Cookie header it
// sends and the page its session must produce.
type Client struct {
	Cookie string
	Want   []byte
}

// Result is one run of Load.
type Result struct {
	Requests int64 // answered 200 with the expected page
	Bad      int64 // any other answer, or a transport error
	FirstBad string
	RPS      float64 // good requests per second
	P50, P99 time.Duration
}

// Load sends GET requests for path (Host host) to addr, one connection per
// client, each keeping one request in flight, until d has passed or, when
// limit > 0, limit requests were sent in all. Every answer is checked
// against the client's page.
func Load(addr, host, path string, clients []Client, d time.Duration, limit int64) Result {
	hc := NewHostClient(addr, len(clients))
	defer hc.CloseIdleConnections()
	var (
		sent, good, bad atomic.Int64
		mu              sync.Mutex
		lat             []time.Duration
		firstBad        string
		wg              sync.WaitGroup
	)
	uri := "http://" + addr + path
	start := time.Now()
	deadline := start.Add(d)
	for _, c := range clients {
		wg.Go(func() {
			var req fasthttp.Request
			var resp fasthttp.Response
			req.SetRequestURI(uri)
			req.Header.SetHost(host)
			req.Header.Set("Cookie", c.Cookie)
			mine := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) && (limit <= 0 || sent.Add(1) <= limit) {
				t0 := time.Now()
				err := hc.Do(&req, &resp)
				el := time.Since(t0)
				if err == nil && resp.StatusCode() == fasthttp.StatusOK && bytes.Equal(resp.Body(), c.Want) {
					good.Add(1)
					mine = append(mine, el)
					continue
				}
				if bad.Add(1) == 1 {
					msg := fmt.Sprintf("status %d: %.200q", resp.StatusCode(), resp.Body())
					if err != nil {
						msg = err.Error()
					}
					mu.Lock()
					firstBad = msg
					mu.Unlock()
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	q := func(f float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(f*float64(len(lat)-1))]
	}
	return Result{Requests: good.Load(), Bad: bad.Load(), FirstBad: firstBad,
		RPS: float64(good.Load()) / elapsed.Seconds(), P50: q(0.50), P99: q(0.99)}
}
