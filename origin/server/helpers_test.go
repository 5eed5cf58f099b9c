package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/sessionedge/sessionedge/origin/internal/eventually"
	"github.com/sessionedge/sessionedge/origin/store"
	pebblestore "github.com/sessionedge/sessionedge/origin/store/pebble"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Test API keys, one per scope set.
const (
	keyAll   = "test-key-all"
	keyRead  = "test-key-read"
	keyEdge  = "test-key-edge"
	keyAdmin = "test-key-admin"
	keyWrite = "test-key-write"
	// keyEdgePrivate is an edge key configured to see every namespace.
	keyEdgePrivate = "test-key-edge-private"
)

var testTokenSecret = bytes.Repeat([]byte{7}, 32)

// clock is a settable test clock.
type clock struct{ ms atomic.Int64 }

func (c *clock) now() time.Time      { return time.UnixMilli(c.ms.Load()) }
func (c *clock) add(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// newClock returns a clock that reads start until moved.
func newClock(start time.Time) *clock {
	c := &clock{}
	c.ms.Store(start.UnixMilli())
	return c
}

// clockConfig returns baseConfig with a clock of its own, at start.
func clockConfig(tb testing.TB, start time.Time) (*clock, Config) {
	clk := newClock(start)
	cfg := baseConfig(tb)
	cfg.Now = clk.now
	return clk, cfg
}

type testOrigin struct {
	t     *testing.T
	srv   *Server
	url   string
	admin string // the admin listener's URL
	http  *http.Client
}

// openPebble opens an embedded store in dir, closed at cleanup (after the
// server's shutdown, since cleanups run last-in first-out).
func openPebble(tb testing.TB, dir string) store.Store {
	tb.Helper()
	st, err := pebblestore.Open(pebblestore.Config{Dir: dir, CacheBytes: 16 << 20, Logger: testLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// baseConfig is a configuration with a fresh embedded store and one key
// per scope set.
func baseConfig(tb testing.TB) Config {
	return Config{
		Store: openPebble(tb, tb.TempDir()),
		APIKeys: []APIKey{
			{Name: "all", Key: keyAll, Scopes: []string{"sessions:read", "sessions:write", "sessions:admin", "edge:sync"}},
			{Name: "read", Key: keyRead, Scopes: []string{"sessions:read"}},
			{Name: "edge", Key: keyEdge, Scopes: []string{"edge:sync", "edge:selfservice"}},
			{Name: "admin", Key: keyAdmin, Scopes: []string{"sessions:admin"}},
			{Name: "write", Key: keyWrite, Scopes: []string{"sessions:write"}},
			{Name: "edge-private", Key: keyEdgePrivate, Scopes: []string{"edge:sync", "edge:selfservice"}, Namespaces: []string{"custom", "public", "privacy"}},
		},
		TokenKeys:     map[string]string{"1": base64.StdEncoding.EncodeToString(testTokenSecret)},
		SharedSecret:  base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)),
		MaxBodyBytes:  16 << 10,
		SweepInterval: Duration(time.Hour), // tests call Sweep
		Logger:        testLogger(),
	}
}

// testLogger logs to stderr with -v and nowhere otherwise.
func testLogger() *slog.Logger {
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// startOrigin starts a server on a free loopback port; it stops at cleanup.
func startOrigin(t *testing.T, cfg Config) *testOrigin {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return startOriginWith(t, s)
}

// listen listens on a free loopback port.
func listen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return ln
}

// startOriginWith serves s (API and admin) on free loopback ports.
func startOriginWith(t *testing.T, s *Server) *testOrigin {
	t.Helper()
	ln, aln := listen(t), listen(t)
	done := make(chan struct{}, 2)
	go func() { s.Serve(ln); done <- struct{}{} }()
	go func() { s.ServeAdmin(aln); done <- struct{}{} }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
		<-done
	})
	return &testOrigin{t: t, srv: s, url: "http://" + ln.Addr().String(), admin: "http://" + aln.Addr().String(),
		http: &http.Client{Timeout: 40 * time.Second}}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, r.body)
	}
	return m
}

// do sends a request; body may be nil, a []byte, or a value to JSON-encode.
func (o *testOrigin) do(method, path, key string, body any, hdr ...string) resp {
	o.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			o.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, o.url+path, rd)
	if err != nil {
		o.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := o.http.Do(req)
	if err != nil {
		o.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		o.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// create makes an anonymous session and returns its id.
func (o *testOrigin) create(ctx map[string]any) string {
	o.t.Helper()
	r := o.do("POST", "/v1/sessions", keyAll, map[string]any{"context": ctx})
	if r.status != 201 {
		o.t.Fatalf("create: %d %s", r.status, r.body)
	}
	return r.json(o.t)["id"].(string)
}

func (o *testOrigin) getCBOR(id string) (*wire.Session, int) {
	o.t.Helper()
	r := o.do("GET", "/v1/sessions/"+id, keyAll, nil, "Accept", "application/cbor")
	if r.status != 200 {
		return nil, r.status
	}
	var s wire.Session
	if err := wire.DecodeSession(r.body, &s); err != nil {
		o.t.Fatalf("decode CBOR session: %v", err)
	}
	return &s, r.status
}

func (o *testOrigin) sync(after string, wait int) wire.Batch {
	o.t.Helper()
	path := "/v1/sync?limit=10000"
	if after != "" {
		path += "&after=" + after
	}
	if wait > 0 {
		path += "&wait=" + itoa(wait)
	}
	r := o.do("GET", path, keyEdge, nil, "Accept", "application/cbor")
	if r.status != 200 {
		o.t.Fatalf("sync: %d %s", r.status, r.body)
	}
	var bt wire.Batch
	if err := wire.DecodeBatch(r.body, &bt); err != nil {
		o.t.Fatalf("decode batch: %v", err)
	}
	return bt
}

func itoa(i int) string { return strconv.Itoa(i) }

// hookReceiver records webhook deliveries; fail makes it answer 500.
type hookReceiver struct {
	mu     sync.Mutex
	events []map[string]any
	sigs   []string
	bodies [][]byte
	fail   atomic.Int32 // answer 500 to this many more requests
	url    string
}

func startHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if h.fail.Load() > 0 {
			h.fail.Add(-1)
			w.WriteHeader(500)
			return
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		h.mu.Lock()
		h.events = append(h.events, m)
		h.sigs = append(h.sigs, r.Header.Get(wire.WebhookSignatureHeader))
		h.bodies = append(h.bodies, b)
		h.mu.Unlock()
		w.WriteHeader(204)
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/hook"
	return h
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	eventually.True(t, timeout, what, cond)
}

// waitParked waits until n sync long-polls have found no deltas and wait in
// the store for a commit.
func (o *testOrigin) waitParked(n int) {
	o.t.Helper()
	waitFor(o.t, 10*time.Second, itoa(n)+" parked long-polls", func() bool {
		var m dto.Metric
		o.srv.metrics.syncParked.Write(&m)
		return m.GetGauge().GetValue() == float64(n)
	})
}

// get fetches a full URL without a key.
func (o *testOrigin) get(url string) resp {
	o.t.Helper()
	res, err := o.http.Get(url)
	if err != nil {
		o.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// touchRejections returns how many touch reports were ignored for reason.
func (o *testOrigin) touchRejections(reason string) float64 {
	var m dto.Metric
	o.srv.metrics.touchesRejected.WithLabelValues(reason).Write(&m)
	return m.GetCounter().GetValue()
}
