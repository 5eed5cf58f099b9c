package harness_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/edge/harness"
)

var built sync.Map // package directory → *builtWasm

type builtWasm struct {
	once sync.Once
	path string
	err  error
}

// buildWasm builds the Go guest in dir (GOOS=wasip1, -buildmode=c-shared,
// as make wasm does) once per test binary and returns the .wasm path.
func buildWasm(t *testing.T, dir string) string {
	t.Helper()
	v, _ := built.LoadOrStore(dir, &builtWasm{})
	b := v.(*builtWasm)
	b.once.Do(func() {
		out, err := os.MkdirTemp("", "guest")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(out, "guest.wasm")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-buildmode=c-shared", "-trimpath", "-o", b.path, dir)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building %s: %v\n%s", dir, err, msg)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func TestGoGuest(t *testing.T) {
	wasm := buildWasm(t, "../testdata/goguest")
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h := harness.New(t, harness.Config{Wasm: wasm, PluginConfig: `{"k":"v"}`, VMs: 2, Start: start})
	h.SetCluster("backend", func(req *harness.CallRequest) (*harness.Response, error) {
		return &harness.Response{Status: 200, Headers: harness.Headers{{"x-answer", "go"}}}, nil
	})

	t.Run("headers, WASI clock and random", func(t *testing.T) {
		a := h.Get("/").ExpectStatus(t, 200).
			ExpectUpstreamHeader(t, "x-go-time", "2026-03-01T12:00:00Z").
			ExpectUpstreamHeader(t, "x-go-config", `{"k":"v"}`)
		h.Clock().Advance(90 * time.Minute)
		b := h.Get("/").ExpectUpstreamHeader(t, "x-go-time", "2026-03-01T13:30:00Z")
		if a.UpstreamHeader("x-go-random") == b.UpstreamHeader("x-go-random") || len(a.UpstreamHeader("x-go-random")) != 16 {
			t.Errorf("random values %q %q: want crypto/rand", a.UpstreamHeader("x-go-random"), b.UpstreamHeader("x-go-random"))
		}
	})
	t.Run("http call pauses and resumes", func(t *testing.T) {
		h.Get("/call").ExpectStatus(t, 200).ExpectUpstreamHeader(t, "x-answer", "go")
	})
	t.Run("stop iteration until the body", func(t *testing.T) {
		res := h.Do(&harness.Request{Method: "PATCH", Path: "/body-echo", Body: []byte("hello")})
		res.ExpectStatus(t, 200).ExpectLocal(t)
		if string(res.Response.Body) != "got:hello" {
			t.Errorf("body = %q", res.Response.Body)
		}
	})
	t.Run("body callbacks", func(t *testing.T) {
		h.SetUpstream(func(r *harness.UpstreamRequest) *harness.Response {
			return &harness.Response{Status: 200, Body: append([]byte("echo:"), r.Body...)}
		})
		defer h.SetUpstream(func(*harness.UpstreamRequest) *harness.Response { return &harness.Response{Status: 200} })
		res := h.Do(&harness.Request{Method: "POST", Path: "/p", Body: []byte("abc")})
		if string(res.Response.Body) != "echo:abc+go+go" {
			t.Errorf("body = %q", res.Response.Body)
		}
	})
	t.Run("tick and shared data", func(t *testing.T) {
		h.Tick()
		if v, cas, ok := h.SharedData("goguest.ticks"); !ok || cas == 0 || len(v) != 1 {
			t.Errorf("shared data after tick: %q %d %v", v, cas, ok)
		}
	})
	t.Run("logs", func(t *testing.T) {
		found := false
		for _, l := range h.Logs() {
			found = found || l == "go guest response"
		}
		if !found {
			t.Errorf("guest log not captured: %q", h.Logs())
		}
	})
	if h.Host().Restarts() != 0 || h.Host().HealthyVMs() != 2 {
		t.Errorf("VMs failed: restarts %d healthy %d", h.Host().Restarts(), h.Host().HealthyVMs())
	}
}

// TestSessionedgeGuest runs the product's filter (the ./wasm package) with
// inputs that must never trap a VM.
func TestSessionedgeGuest(t *testing.T) {
	wasm := buildWasm(t, "../../wasm")
	h := harness.New(t, harness.Config{Wasm: wasm, PluginConfig: `{"keys":{"1":"YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE="}}`, VMs: 2})
	h.SetCluster("origin", func(req *harness.CallRequest) (*harness.Response, error) {
		return &harness.Response{Status: 503}, nil
	})
	res := h.Get("/")
	if res.Err != nil {
		t.Fatalf("request failed in the host: %v", res.Err)
	}
	h.Tick()
	h.Clock().Advance(2 * time.Hour)
	h.Get("/")
	// Bad input never traps the VM.
	many := make(harness.Headers, 0, 900)
	for i := 0; i < 900; i++ {
		many = append(many, [2]string{"x-h", strings.Repeat("v", 100)})
	}
	bad := []*harness.Request{
		{Headers: harness.Headers{{"cookie", "__Host-sid=%%%not-base64%%%"}}},
		{Headers: harness.Headers{{"cookie", "__Host-sid=" + strings.Repeat("A", 8000)}}},
		{Headers: harness.Headers{{"cookie", "a"}, {"cookie", "=;;=="}, {"cookie", "__Host-sid="}}},
		{Headers: many},
		{Method: "PATCH", Path: "/.session/context", Body: []byte("{not json")},
		{Method: "DELETE", Path: "/.session/context/public/" + strings.Repeat("k", 300)},
		{Path: "/" + strings.Repeat("%", 4000)},
	}
	for i, req := range bad {
		if res := h.Do(req); res.Err != nil {
			t.Errorf("bad request %d failed in the host: %v", i, res.Err)
		}
	}
	if h.Host().Restarts() != 0 || h.Host().HealthyVMs() != 2 {
		t.Errorf("the guest trapped: restarts %d healthy %d", h.Host().Restarts(), h.Host().HealthyVMs())
	}
}

// TestBodyFailures: a filter that fails in a body callback, with and without
// failing open. Failing open, the request is not sent twice, the rest of the
// body goes on unfiltered, and the session headers are stripped.
func TestBodyFailures(t *testing.T) {
	wasm := buildWasm(t, "../testdata/goguest")
	for _, failOpen := range []bool{false, true} {
		name := map[bool]string{false: "closed", true: "open"}[failOpen]
		t.Run(name, func(t *testing.T) {
			h := harness.New(t, harness.Config{Wasm: wasm, VMs: 2, FailOpen: failOpen, StripPrefixes: []string{"x-session-"}})
			calls := 0
			h.SetUpstream(func(r *harness.UpstreamRequest) *harness.Response {
				calls++
				return &harness.Response{Status: 200, Headers: harness.Headers{{"x-session-token", "t"}, {"x-app", "1"}},
					Body: append([]byte("echo:"), r.Body...)}
			})
			// The request body callback traps on the first chunk, after the
			// headers left for the upstream.
			res := h.Do(&harness.Request{Method: "POST", Path: "/trap-request-body", Body: []byte("payload")})
			if res.Err == nil {
				t.Fatal("the trap was not reported")
			}
			if failOpen {
				res.ExpectStatus(t, 200).ExpectNoResponseHeader(t, "x-session-token").ExpectResponseHeader(t, "x-app", "1")
				if string(res.Response.Body) != "echo:payload" || calls != 1 {
					t.Errorf("body %q, upstream called %d times", res.Response.Body, calls)
				}
			} else {
				res.ExpectStatus(t, 503)
			}
			// The response body callback traps on a small body the filter
			// reads whole before the headers leave.
			calls = 0
			res = h.Do(&harness.Request{Method: "POST", Path: "/trap-response-body", Body: []byte("x")})
			if res.Err == nil || calls != 1 {
				t.Fatalf("trap reported %v, upstream called %d times", res.Err, calls)
			}
			if failOpen {
				res.ExpectStatus(t, 200).ExpectNoResponseHeader(t, "x-session-token")
				if string(res.Response.Body) != "echo:x+go" {
					t.Errorf("body %q, want the upstream's body as it came", res.Response.Body)
				}
			} else {
				res.ExpectStatus(t, 503)
			}
		})
	}
}
