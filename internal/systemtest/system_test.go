package systemtest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/valyala/fasthttp"
)

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// system is a running origin (Pebble), an app behind an edge proxy with the
// filter, and the keys they share.
type system struct {
	t      testing.TB
	origin *testbin.Origin
	edge   *testbin.Edge
	app    *app

	// API keys of the origin: the app's (sessions:read, sessions:write),
	// the edge's (edge:sync, edge:selfservice) and an operator's
	// (sessions:admin).
	appKey, edgeKey, adminKey string
	keyring                   *wire.Keyring
	assertion                 *wire.AssertionKeys
	// plugin is the plugin configuration's fields on top of
	// testbin.PluginConfig's, for more edges of the same system.
	plugin map[string]any
}

// systemOptions says what startSystem runs.
type systemOptions struct {
	VMs    int            // filter VMs, default 2
	Plugin map[string]any // more plugin configuration fields
	// OriginCalls are more fields of the plugin configuration's "origin"
	// object ("timeout", "breaker"), besides its cluster and API key.
	OriginCalls map[string]any
	// Upstream, when set, is the address of the app behind the edge
	// instead of the built-in app.
	Upstream string
	// OriginProxy, when set, is given the origin's URL and returns the
	// address the edge calls the origin at (a proxy in front of it).
	OriginProxy func(originURL string) string
}

func startSystem(t testing.TB, opt systemOptions) *system {
	t.Helper()
	s := &system{
		t:        t,
		appKey:   testbin.RandomKey("app"),
		edgeKey:  testbin.RandomKey("edge"),
		adminKey: testbin.RandomKey("ops"),
	}
	s.origin = testbin.StartOrigin(t, testbin.OriginConfig{APIKeys: []testbin.APIKey{
		{Name: "app", Key: s.appKey, Scopes: []string{"sessions:read", "sessions:write"}},
		{Name: "edge", Key: s.edgeKey, Scopes: []string{"edge:sync", "edge:selfservice"}},
		{Name: "ops", Key: s.adminKey, Scopes: []string{"sessions:admin"}},
	}})
	var err error
	if s.keyring, err = wire.NewKeyring(s.origin.Cfg.ActiveKey, s.origin.Cfg.Keys); err != nil {
		t.Fatal(err)
	}
	secret := testbin.RandomSecret()
	if s.assertion, err = wire.NewAssertionKeys(1, map[uint8][]byte{1: secret}); err != nil {
		t.Fatal(err)
	}
	plugin := map[string]any{
		"assertion": map[string]any{"keys": map[string]string{"1": base64.StdEncoding.EncodeToString(secret)}, "activeKey": 1},
	}
	for k, v := range opt.Plugin {
		plugin[k] = v
	}
	if opt.OriginCalls != nil {
		oc := map[string]any{"cluster": "origin", "apiKey": s.edgeKey}
		for k, v := range opt.OriginCalls {
			oc[k] = v
		}
		plugin["origin"] = oc
	}
	s.plugin = plugin
	upstream := opt.Upstream
	if upstream == "" {
		s.app = startApp(t, s)
		upstream = s.app.addr
	}
	if opt.OriginProxy != nil {
		s.edge = testbin.StartEdge(t, testbin.EdgeConfig{Upstream: upstream, Plugin: testbin.PluginConfig(s.origin.Cfg, s.edgeKey, plugin),
			VMs: opt.VMs, Clusters: map[string]string{"origin": opt.OriginProxy(s.origin.URL)}})
		return s
	}
	s.edge = testbin.StartEdge(t, testbin.EdgeConfig{Upstream: upstream, Origin: s.origin, EdgeKey: s.edgeKey, Plugin: plugin, VMs: opt.VMs})
	return s
}

// moreEdge starts another edge proxy of the system, in front of the same
// app, with the system's plugin configuration and override's fields on top.
func (s *system) moreEdge(vms int, override map[string]any) *testbin.Edge {
	s.t.Helper()
	plugin := map[string]any{}
	for k, v := range s.plugin {
		plugin[k] = v
	}
	for k, v := range override {
		plugin[k] = v
	}
	return testbin.StartEdge(s.t, testbin.EdgeConfig{Upstream: s.app.addr, Origin: s.origin, EdgeKey: s.edgeKey, Plugin: plugin, VMs: vms})
}

// client returns an HTTP client of the edge whose connections come from
// the loopback address 127.0.0.<n> (the edge caps connections per client
// address), with at most conns connections.
func (s *system) client(n byte, conns int) *fasthttp.HostClient {
	return loopbackClient(strings.TrimPrefix(s.edge.URL, "http://"), n, conns)
}

func loopbackClient(addr string, n byte, conns int) *fasthttp.HostClient {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, n)}, Timeout: 5 * time.Second}
	return &fasthttp.HostClient{
		Addr:                      addr,
		MaxConns:                  conns,
		ReadTimeout:               30 * time.Second,
		WriteTimeout:              30 * time.Second,
		MaxIdemponentCallAttempts: 1,
		Dial:                      func(a string) (net.Conn, error) { return d.Dial("tcp", a) },
	}
}

// api calls the origin API with key and returns the status and the body.
func (s *system) api(key, method, path, body string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.origin.URL+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// createCustomer creates a session logged in as customer through the API
// and returns its token.
func (s *system) createCustomer(customer string) (wire.ID, string) {
	s.t.Helper()
	code, b := s.api(s.appKey, "POST", "/v1/sessions", `{"kind":"customer","customerId":"`+customer+`"}`)
	var out struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	if code != 201 || json.Unmarshal(b, &out) != nil {
		s.t.Fatalf("create a session of %s: %d %s", customer, code, b)
	}
	id, err := wire.ParseID(out.ID)
	if err != nil {
		s.t.Fatal(err)
	}
	return id, out.Token
}

// revokeCustomer ends every session of customer (DELETE
// /v1/customers/{cid}/sessions) and returns how many the origin revoked.
func (s *system) revokeCustomer(customer string) int {
	s.t.Helper()
	code, b := s.api(s.adminKey, "DELETE", "/v1/customers/"+customer+"/sessions", "")
	var out struct {
		Revoked *int `json:"revoked"`
	}
	if code != 200 || json.Unmarshal(b, &out) != nil || out.Revoked == nil {
		s.t.Fatalf("revoke %s: %d %s", customer, code, b)
	}
	return *out.Revoked
}

// warm makes every VM of the edge c reaches serve the session id (token
// tok) from its cache while following the feed. A VM drops what it cached
// before it joined the feed (one poll interval or so after the edge
// started), so requests alone prove nothing. warm sends rounds of 4
// requests per VM (round robin) until a round makes the origin answer no
// fetch; then it writes to the session through the API and waits for a
// round that sees the write, again without a fetch: a VM that cached the
// session before it joined the feed could see it only by fetching. check
// vets every answer.
func (s *system) warm(c *fasthttp.HostClient, vms int, id wire.ID, tok string, check func(*result) bool) {
	s.t.Helper()
	fetches := func() float64 {
		return mustMetric(s.t, s.origin.AdminURL, "sessionedge_http_requests_total", `route="get"`)
	}
	var last string // what the last round saw, for the failure message
	round := func(version uint64) bool {
		before := fetches()
		seen := true
		var versions []uint64
		for i := 0; i < 4*vms; i++ {
			r, err := do(c, "GET", "/warm", nil, "cookie", "__Host-sid="+tok)
			if err != nil || !check(r) {
				s.t.Fatalf("warming a session: %v %+v", err, r)
			}
			seen = seen && r.echo.Version >= version
			versions = append(versions, r.echo.Version)
		}
		f := fetches() - before
		if seen && f == 0 {
			return true
		}
		last = fmt.Sprintf("versions %v (want at least %d), %v fetches", versions, version, f)
		time.Sleep(50 * time.Millisecond)
		return false
	}
	defer func() {
		if s.t.Failed() {
			s.t.Logf("warming session %s: the last round saw %s", id, last)
		}
	}()
	waitUntil(s.t, 30*time.Second, "every VM has the session cached", func() bool { return round(0) })
	code, b := s.api(s.appKey, "PATCH", "/v1/sessions/"+id.String()+"/context", `{"custom":{"warm":`+strconv.FormatInt(time.Now().UnixNano(), 10)+`}}`)
	var written struct {
		Version uint64 `json:"version"`
	}
	if code != 200 || json.Unmarshal(b, &written) != nil {
		s.t.Fatalf("warming a session: write %d %s", code, b)
	}
	waitUntil(s.t, 30*time.Second, "every VM follows the feed with the session cached", func() bool { return round(written.Version) })
}

// claims verifies a token with the origin's keyring.
func (s *system) claims(tok string) (wire.Claims, error) {
	var c wire.Claims
	err := s.keyring.VerifyToken([]byte(tok), time.Now().Unix(), &c)
	return c, err
}

// mintToken signs a token for a session the edge has never seen.
func (s *system) mintToken(kind wire.Kind, id wire.ID, gen uint32) string {
	now := time.Now().Unix()
	return string(s.keyring.AppendToken(nil, &wire.Claims{KeyID: s.keyring.Active(), Kind: kind, ID: id,
		Generation: gen, IssuedAt: now, IdleDeadline: now + 3600, HardDeadline: now + 6*3600}))
}

// newID returns a random session id.
func newID(t testing.TB) wire.ID {
	id, err := wire.NewID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// echo is what the app answers: the session the edge forwarded.
type echo struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Gen      uint32 `json:"gen"`
	Version  uint64 `json:"version"`
	Status   string `json:"status"`
	Customer string `json:"customer"`
}

// result is one request through the edge.
type result struct {
	status  int
	echo    echo
	cookies map[string]string // Set-Cookie name → value
	header  http.Header       // every other response header
	body    []byte
	took    time.Duration
}

// do sends one request through the edge with c. headers are name, value
// pairs.
func do(c *fasthttp.HostClient, method, path string, body []byte, headers ...string) (*result, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + c.Addr + path)
	req.Header.SetMethod(method)
	req.Header.DisableNormalizing()
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	if body != nil {
		req.SetBody(body)
	}
	t0 := time.Now()
	if err := c.Do(req, resp); err != nil {
		return nil, err
	}
	r := &result{status: resp.StatusCode(), cookies: map[string]string{}, header: http.Header{}, body: append([]byte(nil), resp.Body()...), took: time.Since(t0)}
	for k, v := range resp.Header.All() {
		if strings.EqualFold(string(k), "set-cookie") {
			nv, _, _ := strings.Cut(string(v), ";")
			if name, val, ok := strings.Cut(strings.TrimSpace(nv), "="); ok {
				r.cookies[name] = val
			}
			continue
		}
		r.header.Add(string(k), string(v))
	}
	if resp.StatusCode() == 200 && bytes.HasPrefix(r.body, []byte(`{"id"`)) {
		_ = json.Unmarshal(r.body, &r.echo)
	}
	return r, nil
}

// metric reads a metric from a Prometheus text endpoint: the sum of every
// series of that name whose labels contain each of labels (`route="get"`).
// ok is false when there is none.
func metric(url, name string, labels ...string) (v float64, ok bool, err error) {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if !strings.HasPrefix(rest, " ") && !strings.HasPrefix(rest, "{") {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(rest[:strings.LastIndex(rest, "}")+1], l)
		}
		if !match {
			continue
		}
		f := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(f) == 0 {
			continue
		}
		x, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, false, fmt.Errorf("%s: %q", name, line)
		}
		v += x
		ok = true
	}
	return v, ok, sc.Err()
}

// mustMetric is metric that fails the test when the metric is absent.
func mustMetric(t testing.TB, url, name string, labels ...string) float64 {
	t.Helper()
	v, ok, err := metric(url, name, labels...)
	if err != nil || !ok {
		t.Fatalf("metric %s at %s: %v (found %v)", name, url, err, ok)
	}
	return v
}

// waitUntil polls cond every 10 ms until it holds, and fails the test
// naming what when timeout passes first. It returns how long it took.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// percentile returns the p-th percentile (0–100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s))*p/100+0.9999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// ms formats a duration in milliseconds with one decimal.
func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + " ms" }

// report appends one line to the file named by SYSTEMTEST_REPORT (the
// bench script collects them) and logs it.
func report(t testing.TB, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	if path := os.Getenv("SYSTEMTEST_REPORT"); path != "" {
		reportMu.Lock()
		defer reportMu.Unlock()
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fmt.Fprintln(f, line)
	}
}

var reportMu sync.Mutex

// counter is a concurrency-safe tally by name.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[k]++
}

func (c *counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.n))
	for k := range c.n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, c.n[k])
	}
	return strings.TrimSpace(b.String())
}
