package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config configures a Client. The zero value of each field means its default.
type Config struct {
	// BaseURL is the origin's address, e.g. "http://127.0.0.1:8081". Required.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <APIKey>". Apps need the scopes
	// sessions:read and sessions:write; revoking a customer's sessions needs
	// sessions:admin.
	APIKey string
	// HTTPClient sends the requests. Default: a client of its own whose
	// Transport keeps up to 64 idle keep-alive connections to the origin, so
	// a busy app does not open a connection per call.
	HTTPClient *http.Client
	// Timeout bounds one attempt of a call when the caller's context has no
	// earlier deadline. Default 10s.
	Timeout time.Duration
	// MaxRetries is how often an idempotent call (GET, PUT, DELETE) is
	// retried after a network error or a 502/503/504. Default 3; negative
	// means never. Non-idempotent calls (POST, PATCH) are never retried,
	// because the first attempt may have been applied.
	MaxRetries int
	// RetryBackoff is the wait before the first retry; it doubles with each
	// retry, with jitter, up to 2s, unless the origin sent Retry-After.
	// Default 50ms.
	RetryBackoff time.Duration
	// UserAgent is sent with every request. Default "sessionedge-go-sdk".
	UserAgent string
}

// Client calls the origin API (/v1). It is safe for concurrent use; make one
// per origin and share it.
//
// A write (Replace, Patch, SetAttribute, DeleteAttribute, ClearData, Login,
// Logout, Refresh) given a context that carries a WriteRecorder for the
// session it writes records the version it reached; the middlewares put one
// into every request's context, so passing the request's context is all an
// app does for read-your-writes. End has no version to record: the end
// reaches the edges through the change feed.
type Client struct {
	base       string
	auth       string
	hc         *http.Client
	timeout    time.Duration
	maxRetries int
	backoff    time.Duration
	ua         string
}

// New returns a client for the origin at cfg.BaseURL.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("sessionedge: BaseURL %q is not an http(s) URL", cfg.BaseURL)
	}
	c := &Client{
		base:       strings.TrimRight(cfg.BaseURL, "/"),
		hc:         cfg.HTTPClient,
		timeout:    cfg.Timeout,
		maxRetries: cfg.MaxRetries,
		backoff:    cfg.RetryBackoff,
		ua:         cfg.UserAgent,
	}
	if cfg.APIKey != "" {
		c.auth = "Bearer " + cfg.APIKey
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        64,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		}}
	}
	if c.timeout == 0 {
		c.timeout = 10 * time.Second
	}
	if c.maxRetries == 0 {
		c.maxRetries = 3
	} else if c.maxRetries < 0 {
		c.maxRetries = 0
	}
	if c.backoff == 0 {
		c.backoff = 50 * time.Millisecond
	}
	if c.ua == "" {
		c.ua = "sessionedge-go-sdk"
	}
	return c, nil
}

// request is one API call.
type request struct {
	method  string
	path    string // escaped path below the base URL
	query   url.Values
	body    []byte // JSON; nil for none
	ifMatch string
	token   string // X-Session-Token; "" for none
	init    string // X-Session-Init; "" for none
}

func idempotent(method string) bool {
	return method == http.MethodGet || method == http.MethodPut || method == http.MethodDelete || method == http.MethodHead
}

// do sends r, retrying idempotent calls, and decodes a 2xx JSON answer into
// out (unless out is nil). Any other answer becomes an *Error.
func (c *Client) do(ctx context.Context, r request, out any) error {
	retries := 0
	if idempotent(r.method) {
		retries = c.maxRetries
	}
	wait := c.backoff
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, r, out)
		if err == nil || attempt >= retries || !retryable(err) {
			return err
		}
		d := wait + rand.N(wait/2+1) // jitter, so many clients do not retry in step
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.RetryAfter > 0 {
			d = apiErr.RetryAfter
		}
		d = min(d, 2*time.Second)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(wait*2, 2*time.Second)
	}
}

// retryable reports whether an attempt that failed with err may succeed if
// sent again: network errors and the origin's "try again later" answers.
func retryable(err error) bool {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.Status == http.StatusServiceUnavailable || apiErr.Status == http.StatusBadGateway ||
			apiErr.Status == http.StatusGatewayTimeout
	}
	return errors.Is(err, ErrUnavailable)
}

var errDecode = errors.New("sessionedge: cannot decode the origin's answer")

func (c *Client) once(ctx context.Context, r request, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return fmt.Errorf("sessionedge: %s %s: %w", r.method, r.path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	if r.ifMatch != "" {
		req.Header.Set("If-Match", r.ifMatch)
	}
	if r.token != "" {
		req.Header.Set(HeaderToken, r.token) // the origin reads the same header name
	}
	if r.init != "" {
		req.Header.Set("X-Session-Init", r.init)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return fmt.Errorf("sessionedge: %s %s: %w", r.method, r.path, err)
		}
		// The origin could not be reached: to the caller that is the origin
		// being unavailable, whatever the network said.
		return fmt.Errorf("%w: %s %s: %w", ErrUnavailable, r.method, r.path, err)
	}
	// Reading the body to its end lets the Transport reuse the connection.
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("sessionedge: %s %s: reading answer: %w", r.method, r.path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil || len(data) == 0 {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%w: %s %s: %v", errDecode, r.method, r.path, err)
		}
		return nil
	}
	return apiError(r, resp, data)
}

// apiError builds the *Error of a non-2xx answer.
func apiError(r request, resp *http.Response, data []byte) error {
	e := &Error{Status: resp.StatusCode, Method: r.method, Path: r.path}
	var body struct {
		Error struct {
			Code              string `json:"code"`
			Message           string `json:"message"`
			Field             string `json:"field"`
			CurrentVersion    any    `json:"currentVersion"`
			CurrentGeneration any    `json:"currentGeneration"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &body) == nil {
		e.Code, e.Message, e.Field = body.Error.Code, body.Error.Message, body.Error.Field
		e.CurrentVersion = jsonUint(body.Error.CurrentVersion, 64)
		e.CurrentGeneration = uint32(jsonUint(body.Error.CurrentGeneration, 32))
	} else if len(data) > 0 && len(data) < 512 {
		e.Message = strings.TrimSpace(string(data))
	}
	if e.CurrentVersion == 0 {
		e.CurrentVersion, _ = parseETag(resp.Header.Get("ETag"))
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if secs, err := strconv.Atoi(ra); err == nil && secs >= 0 {
			e.RetryAfter = time.Duration(secs) * time.Second
		}
	}
	return e
}

// jsonUint reads an unsigned number the origin sent as a JSON number or as
// a string of digits; 0 when it is neither or beyond bits.
func jsonUint(v any, bits int) uint64 {
	switch v := v.(type) {
	case float64:
		if v >= 0 && v < math.Ldexp(1, bits) && v == math.Trunc(v) {
			return uint64(v)
		}
	case string:
		n, _ := strconv.ParseUint(v, 10, bits)
		return n
	}
	return 0
}

// parseETag reads a version from an ETag such as `"7"`, `W/"7"` or `7`.
func parseETag(s string) (uint64, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	s = strings.Trim(s, `"`)
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}
