package wasmhost

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// pairs is a HeaderSource for tests.
type pairs [][2]string

func (p pairs) AddHeaders(m *HeaderMap) error {
	for _, kv := range p {
		if err := m.Add(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// recorder is an Upstream that records the request and answers with resp.
type recorder struct {
	got      pairs
	body     []byte
	trailers pairs
	calls    int
	status   int
	headers  pairs
	respBody []byte
}

func (r *recorder) RoundTrip(_ context.Context, req *UpstreamRequest, resp *UpstreamResponse) error {
	r.calls++
	r.got, r.body, r.trailers = nil, nil, nil
	for i := 0; i < req.Headers.Len(); i++ {
		k, v := req.Headers.Pair(i)
		r.got = append(r.got, [2]string{string(k), string(v)})
	}
	if req.Body != nil {
		r.body, _ = io.ReadAll(req.Body)
	}
	if req.Trailers != nil {
		for i := 0; i < req.Trailers.Len(); i++ {
			k, v := req.Trailers.Pair(i)
			r.trailers = append(r.trailers, [2]string{string(k), string(v)})
		}
	}
	resp.Status = r.status
	_ = r.headers.AddHeaders(&resp.Headers)
	if r.respBody != nil {
		resp.Body, resp.ContentLength = bytes.NewReader(r.respBody), int64(len(r.respBody))
	}
	return nil
}

func (p pairs) get(name string) (string, bool) {
	for _, kv := range p {
		if kv[0] == name {
			return kv[1], true
		}
	}
	return "", false
}

func watLifecycle(t *testing.T, failOpen bool, vms int) *Lifecycle {
	t.Helper()
	h, err := New(context.Background(), Config{
		WasmPath: "../testdata/conformance.wasm", VMs: vms, ManualTicks: true,
		MinRestartInterval: 10e6, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return &Lifecycle{Host: h, FailOpen: failOpen, StripPrefixes: []string{"x-session-"}}
}

func run(l *Lifecycle, req *Request, up Upstream) (*Exchange, string) {
	x := l.Run(context.Background(), req, up)
	b, _ := io.ReadAll(x)
	return x, string(b)
}

func headersOf(m *HeaderMap) pairs {
	var p pairs
	for i := 0; i < m.Len(); i++ {
		k, v := m.Pair(i)
		p = append(p, [2]string{string(k), string(v)})
	}
	return p
}

// forged are the session headers a client or an app might send, in the
// spellings applications read alike.
var forged = pairs{{"X-Session-Id", "spoofed"}, {"x_session_customer", "victim-42"}, {"X_Session_Kind", "customer"}, {"x-session-token", "t"}}

func TestLifecycleFiltered(t *testing.T) {
	l := watLifecycle(t, false, 1)
	up := &recorder{status: 201, headers: pairs{{"set-cookie", "a=1"}, {"set-cookie", "b=2"}, {"connection", "x-hop"}, {"x-hop", "1"}}, respBody: []byte("hello")}
	req := &Request{Method: "POST", Path: "/p?q=1", Authority: "shop.example", Scheme: "https",
		Header: pairs{{"x-a", "1"}, {"Connection", "x-a"}, {"Connection", "x-private"}, {"x-private", "1"}, {"Host", "ignored"},
			{"te", "trailers"}, {"proxy-authorization", "secret"}, {"x-remove", "gone"}},
		Body: strings.NewReader("payload"), ContentLength: 7}
	x, body := run(l, req, up)
	defer x.Close()
	if x.Status != 201 || body != "hello" || !x.Forwarded || !x.Filtered || x.Local || x.FilterErr != nil {
		t.Fatalf("exchange %d %q %+v", x.Status, body, x)
	}
	for _, k := range []string{"x-a", "x-private", "host", "connection", "proxy-authorization", "x-remove"} {
		if v, ok := up.got.get(k); ok {
			t.Errorf("upstream got %s: %s", k, v)
		}
	}
	if v, _ := up.got.get("te"); v != "trailers" {
		t.Errorf("te = %q, want trailers kept", v)
	}
	if v, _ := up.got.get("x-wat"); v != "1" || string(up.body) != "payload" {
		t.Errorf("filter did not run or body lost: %v %q", up.got, up.body)
	}
	if up.got[0] != [2]string{":authority", "shop.example"} || up.got[1] != [2]string{":path", "/p?q=1"} {
		t.Errorf("pseudo-headers first: %v", up.got[:4])
	}
	got := headersOf(&x.Headers)
	if _, ok := got.get("x-hop"); ok || len(got) != 3 {
		t.Errorf("client headers %v: want both cookies and x-wat-response, no hop-by-hop", got)
	}
}

func TestLifecycleFailurePolicy(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		l := watLifecycle(t, failOpen, 2) // each case traps one VM
		name := map[bool]string{false: "closed", true: "open"}[failOpen]
		t.Run(name+"/request", func(t *testing.T) {
			up := &recorder{status: 200, headers: pairs{{"x-session-token", "new"}, {"X_Session_Debug", "1"}, {"x-app", "1"}}}
			req := &Request{Method: "POST", Path: "/trap", Authority: "a", Scheme: "http",
				Header: append(pairs{{"x-keep", "1"}}, forged...), Body: strings.NewReader("b"), ContentLength: 1,
				Trailer: pairs{{"x-session-id", "late"}, {"x-trailer", "ok"}}}
			x, _ := run(l, req, up)
			defer x.Close()
			if x.FilterErr == nil {
				t.Fatal("the trap was not reported")
			}
			if !failOpen {
				if x.Status != 503 || up.calls != 0 {
					t.Fatalf("fail closed: status %d, upstream called %d times", x.Status, up.calls)
				}
				return
			}
			if x.Status != 200 || up.calls != 1 || x.Filtered {
				t.Fatalf("fail open: status %d, upstream called %d times, filtered %v", x.Status, up.calls, x.Filtered)
			}
			checkStripped(t, up.got, "upstream request")
			checkStripped(t, up.trailers, "upstream trailers")
			checkStripped(t, headersOf(&x.Headers), "client response")
			if _, ok := up.got.get("x-keep"); !ok || len(up.trailers) != 1 || string(up.body) != "b" {
				t.Fatalf("fail open lost more than the session headers: %v %v %q", up.got, up.trailers, up.body)
			}
			if _, ok := headersOf(&x.Headers).get("x-app"); !ok {
				t.Fatal("fail open lost the app's own header")
			}
		})
		t.Run(name+"/response", func(t *testing.T) {
			up := &recorder{status: 200, headers: pairs{{"x-trap-response", "1"}, {"x-session-token", "new"}, {"x-app", "1"}}, respBody: []byte("from upstream")}
			x, body := run(l, &Request{Method: "GET", Path: "/", Authority: "a", Scheme: "http"}, up)
			defer x.Close()
			if x.FilterErr == nil || up.calls != 1 {
				t.Fatalf("trap not reported (%v) or upstream called %d times", x.FilterErr, up.calls)
			}
			if !failOpen {
				if x.Status != 503 {
					t.Fatalf("fail closed: status %d", x.Status)
				}
				return
			}
			if x.Status != 200 || body != "from upstream" {
				t.Fatalf("fail open: %d %q", x.Status, body)
			}
			checkStripped(t, headersOf(&x.Headers), "client response")
		})
	}
}

func checkStripped(t *testing.T, p pairs, what string) {
	t.Helper()
	for _, kv := range p {
		if hasFoldedPrefix([]byte(kv[0]), "x-session-") {
			t.Errorf("%s kept %s: %s", what, kv[0], kv[1])
		}
	}
}

func TestLifecycleLocalReply(t *testing.T) {
	l := watLifecycle(t, false, 1)
	up := &recorder{status: 200}
	x, body := run(l, &Request{Method: "GET", Path: "/local", Authority: "a", Scheme: "http"}, up)
	defer x.Close()
	if !x.Local || x.Details != "denied" || x.Status != 403 || body != "forbidden" || up.calls != 0 || x.Forwarded {
		t.Fatalf("local reply: %+v %q, upstream %d", x, body, up.calls)
	}
	if v, _ := headersOf(&x.Headers).get("x-wat"); v != "local" {
		t.Fatalf("local headers %v", headersOf(&x.Headers))
	}
}

func TestLifecycleUnfiltered(t *testing.T) {
	l := &Lifecycle{StripPrefixes: []string{"x-session-"}}
	up := &recorder{status: 200, headers: pairs{{"x-session-id", "x"}}}
	x, _ := run(l, &Request{Method: "GET", Path: "/", Authority: "a", Scheme: "http", Header: forged}, up)
	defer x.Close()
	if x.Filtered || up.calls != 1 {
		t.Fatal("a Lifecycle without a Host must forward")
	}
	checkStripped(t, up.got, "upstream request")
	checkStripped(t, headersOf(&x.Headers), "client response")
}

// TestLifecycleAllocations proves a request through the driver and the host
// (8 headers, request and response callbacks of the .wat guest, upstream
// headers) allocates nothing once warm.
func TestLifecycleAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items)")
	}
	l := watLifecycle(t, false, 1)
	up := &recorder{status: 200, headers: pairs{{"content-type", "text/html"}, {"set-cookie", "a=1"}}}
	upNoRecord := UpstreamFunc(func(_ context.Context, req *UpstreamRequest, resp *UpstreamResponse) error {
		resp.Status = up.status
		return up.headers.AddHeaders(&resp.Headers)
	})
	req := &Request{Method: "GET", Path: "/products/42", Authority: "shop.example", Scheme: "https",
		Header: pairs{{"user-agent", "bench"}, {"accept", "*/*"}, {"cookie", "__Host-sid=abcdef"}, {"x-replace", "old"}}}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(200, func() {
		x := l.Run(ctx, req, upNoRecord)
		if x.Status != 200 {
			t.Fatalf("status %d", x.Status)
		}
		_ = x.Close()
	})
	if allocs != 0 {
		t.Errorf("a request through the lifecycle allocates %.1f times, want 0", allocs)
	}
}
