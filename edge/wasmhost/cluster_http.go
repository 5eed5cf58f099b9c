package wasmhost

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
)

// HTTPCluster is a Cluster that sends calls to a real HTTP server at Addr
// ("host:port", or a URL with scheme). :authority becomes the Host header.
type HTTPCluster struct {
	// Addr is the server address.
	Addr string
	// Client sends the requests. Default: http.DefaultClient.
	Client *http.Client
	// MaxBodyBytes caps the response body. Default: 16 MiB.
	MaxBodyBytes int64
}

// RoundTrip implements Cluster.
func (c *HTTPCluster) RoundTrip(ctx context.Context, req *CallRequest, resp *CallResponse) error {
	method, _ := req.Headers.Get(":method")
	path, _ := req.Headers.Get(":path")
	authority, _ := req.Headers.Get(":authority")
	base := c.Addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	hr, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(base, "/")+path, bytes.NewReader(req.Body))
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
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(hr)
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
