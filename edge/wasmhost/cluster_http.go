package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// HTTPCluster is a Cluster that sends calls to a real HTTP server at Addr
// ("host:port", or a URL with scheme); :authority becomes the Host header.
// Calls share one keep-alive connection pool sized for MaxInFlight calls,
// whatever VM makes them, and at most MaxInFlight run at once: a call beyond
// that fails at once (the guest sees num_headers == 0), so a slow origin
// costs queued calls nothing but their refusal.
type HTTPCluster struct {
	// Addr is the server address.
	Addr string
	// MaxInFlight caps the calls in flight. Default: 1024.
	MaxInFlight int
	// Client sends the requests. Default: a client whose transport keeps up
	// to MaxInFlight idle connections to Addr.
	Client *http.Client
	// MaxBodyBytes caps the response body. Default: 16 MiB.
	MaxBodyBytes int64

	once     sync.Once
	client   *http.Client
	base     string
	inflight atomic.Int64
	refused  atomic.Int64
}

// ErrClusterBusy is the error of a call refused because MaxInFlight calls
// are in flight.
var ErrClusterBusy = errors.New("wasmhost: too many calls in flight to the cluster")

// InFlight returns the number of calls in flight.
func (c *HTTPCluster) InFlight() int64 { return c.inflight.Load() }

// Refused returns the number of calls refused because MaxInFlight calls
// were in flight.
func (c *HTTPCluster) Refused() int64 { return c.refused.Load() }

func (c *HTTPCluster) maxInFlight() int64 {
	if c.MaxInFlight > 0 {
		return int64(c.MaxInFlight)
	}
	return 1024
}

func (c *HTTPCluster) init() {
	c.base = strings.TrimSuffix(c.Addr, "/")
	if !strings.Contains(c.base, "://") {
		c.base = "http://" + c.base
	}
	c.client = c.Client
	if c.client == nil {
		n := int(c.maxInFlight())
		c.client = &http.Client{Transport: &http.Transport{
			Proxy:               nil, // the cluster is the destination
			MaxIdleConns:        n,
			MaxIdleConnsPerHost: n,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}}
	}
}

// RoundTrip implements Cluster.
func (c *HTTPCluster) RoundTrip(ctx context.Context, req *CallRequest, resp *CallResponse) error {
	c.once.Do(c.init)
	if c.inflight.Add(1) > c.maxInFlight() {
		c.inflight.Add(-1)
		c.refused.Add(1)
		return ErrClusterBusy
	}
	defer c.inflight.Add(-1)
	method, _ := req.Headers.Get(":method")
	path, _ := req.Headers.Get(":path")
	authority, _ := req.Headers.Get(":authority")
	hr, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(req.Body))
	if err != nil {
		return err
	}
	hr.Host = authority
	for i := 0; i < req.Headers.Len(); i++ {
		k, v := req.Headers.Pair(i)
		if len(k) > 0 && k[0] == ':' {
			continue
		}
		hr.Header.Add(string(k), string(v))
	}
	res, err := c.client.Do(hr)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	max := c.MaxBodyBytes
	if max <= 0 {
		max = 16 << 20
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, max))
	if err != nil {
		return err
	}
	resp.SetStatus(res.StatusCode)
	for k, vs := range res.Header {
		for _, v := range vs {
			_ = resp.Headers.Add(k, v)
		}
	}
	resp.Body = append(resp.Body[:0], body...)
	return nil
}

var _ Cluster = (*HTTPCluster)(nil)
