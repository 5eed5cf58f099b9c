package server

import (
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSlowClients opens many connections from one address that trickle a
// request head a byte at a time: the origin cuts them (header timeout, per
// address connection limit), and normal requests from another address keep
// their p99 within twice the quiet p99.
func TestSlowClients(t *testing.T) {
	if testing.Short() {
		t.Skip("takes several seconds")
	}
	cfg := baseConfig(t)
	cfg.HTTP = HTTPConfig{HeaderTimeout: Duration(time.Second), MaxConnsPerIP: 32}
	o := startOrigin(t, cfg)
	id := o.create(map[string]any{"currency": "EUR"})
	addr := strings.TrimPrefix(o.url, "http://")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 10 * time.Second}
	p99 := func() time.Duration {
		var lat []time.Duration
		for i := 0; i < 300; i++ {
			req, _ := http.NewRequest("GET", o.url+"/v1/sessions/"+id, nil)
			req.Header.Set("Authorization", "Bearer "+keyRead)
			start := time.Now()
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		return lat[len(lat)*99/100]
	}

	var stop atomic.Bool
	var cut, refused, dials atomic.Int64
	var wg sync.WaitGroup
	slow := func() {
		defer wg.Done()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: time.Second}
		head := "GET /v1/sessions/" + id + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + keyRead + "\r\n"
		for !stop.Load() {
			c, err := d.Dial("tcp", addr)
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			dials.Add(1)
			closed := make(chan struct{})
			go func() {
				var b [512]byte
				n, _ := c.Read(b[:]) // blocks until the server answers or closes
				if strings.HasPrefix(string(b[:n]), "HTTP/1.1 429") {
					refused.Add(1)
				} else {
					cut.Add(1)
				}
				close(closed)
			}()
		trickle:
			for i := 0; !stop.Load(); i = (i + 1) % len(head) {
				if _, err := c.Write([]byte{head[i]}); err != nil {
					break
				}
				select {
				case <-closed:
					break trickle
				case <-time.After(100 * time.Millisecond):
				}
			}
			c.Close()
			<-closed
			// A slow client holds connections; it does not hammer the
			// accept loop.
			time.Sleep(300 * time.Millisecond)
		}
	}

	var quiet, loaded time.Duration
	ok := false
	for round := 0; round < 5 && !ok; round++ { // rounds against other load on the machine
		quiet = p99()
		stop.Store(false)
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go slow()
		}
		time.Sleep(1500 * time.Millisecond) // the slow clients hold their connections
		loaded = p99()
		stop.Store(true)
		wg.Wait()
		// Twice quiet, with a floor of a millisecond against timer noise
		// on a shared machine.
		ok = loaded <= max(2*quiet, quiet+time.Millisecond)
		t.Logf("round %d: p99 quiet %v, with 200 slow clients %v", round, quiet, loaded)
	}
	if !ok {
		t.Fatalf("slow clients moved the p99 of normal requests from %v to %v", quiet, loaded)
	}
	if refused.Load() == 0 || cut.Load() == 0 {
		t.Fatalf("of %d slow connections, %d were refused (per-address limit) and %d cut (header timeout); want both", dials.Load(), refused.Load(), cut.Load())
	}
}
