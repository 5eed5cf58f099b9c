package caddy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	caddy2 "github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sessionedge/sessionedge/edge/wasmhost"
	"github.com/sessionedge/sessionedge/internal/testbin"
)

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// The .wat guest (edge/testdata/conformance.wat) has no body callbacks;
// by :path: /local answers 403 itself, /trap traps, /call makes an HTTP
// call to cluster "backend"; a response with x-trap-response traps; every
// other request gets x-wat: 1 and every response x-wat-response: 1; a
// plugin configuration starting with 'r' is refused.
const watWasm = "../testdata/conformance.wasm"

// provision provisions h in a fresh Caddy context, cleaned up when the test
// ends, and returns the context (for its metrics registry).
func provision(t *testing.T, h *Handler) caddy2.Context {
	t.Helper()
	ctx, cancel := caddy2.NewContext(caddy2.Context{Context: context.Background()})
	if err := h.Provision(ctx); err != nil {
		cancel()
		t.Fatalf("provision: %v", err)
	}
	if err := h.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Cleanup(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		cancel()
	})
	return ctx
}

// served is a handler behind a real HTTP server, with next as the rest of
// the chain; an error it returns is answered with its status, as Caddy's
// server does, and recorded.
type served struct {
	URL  string
	mu   sync.Mutex
	errs []error
}

func serve(t *testing.T, h *Handler, next caddyhttp.HandlerFunc) *served {
	t.Helper()
	s := &served{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h.ServeHTTP(w, r, next)
		if err == nil {
			return
		}
		s.mu.Lock()
		s.errs = append(s.errs, err)
		s.mu.Unlock()
		code := http.StatusInternalServerError
		var he caddyhttp.HandlerError
		if errors.As(err, &he) {
			code = he.StatusCode
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func (s *served) errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp, string(b)
}

func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header[header[i]] = append(req.Header[header[i]], header[i+1])
	}
	return do(t, req)
}

// forged are session headers in the spellings applications read alike.
var forged = []string{"X-Session-Id", "spoofed", "x_session_customer", "victim", "X_Session_Kind", "customer"}

func hasSessionHeader(h http.Header) string {
	for k := range h {
		if strings.HasPrefix(strings.ReplaceAll(strings.ToLower(k), "_", "-"), "x-session-") {
			return k
		}
	}
	return ""
}

func TestFilteredExchange(t *testing.T) {
	h := &Handler{Wasm: watWasm, VMs: 1}
	provision(t, h)
	var got http.Header
	var gotBody string
	s := serve(t, h, func(w http.ResponseWriter, r *http.Request) error {
		got = r.Header.Clone()
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.Header().Set("Content-Length", "5")
		w.WriteHeader(http.StatusCreated)
		_, err := io.WriteString(w, "hello")
		return err
	})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/p?q=1", strings.NewReader("payload"))
	req.Header.Set("X-Remove", "gone")
	req.Header.Set("X-Replace", "old")
	resp, body := do(t, req)
	if resp.StatusCode != http.StatusCreated || body != "hello" {
		t.Fatalf("response %d %q", resp.StatusCode, body)
	}
	if got.Get("X-Wat") != "1" || got.Get("X-Remove") != "" || got.Get("X-Replace") != "new" || gotBody != "payload" {
		t.Fatalf("next got headers %v and body %q: the request phase did not run", got, gotBody)
	}
	if resp.Header.Get("X-Wat-Response") != "1" || len(resp.Header.Values("Set-Cookie")) != 2 || resp.ContentLength != 5 {
		t.Fatalf("response headers %v (length %d): the response phase did not run or lost a header", resp.Header, resp.ContentLength)
	}
}

func TestLocalReply(t *testing.T) {
	h := &Handler{Wasm: watWasm, VMs: 1}
	provision(t, h)
	called := false
	s := serve(t, h, func(w http.ResponseWriter, r *http.Request) error {
		called = true
		return nil
	})
	resp, body := get(t, s.URL+"/local")
	if resp.StatusCode != http.StatusForbidden || body != "forbidden" || resp.Header.Get("X-Wat") != "local" || called {
		t.Fatalf("local reply %d %q %v, next called: %v", resp.StatusCode, body, resp.Header, called)
	}
}

// TestFailurePolicy traps the filter in the request and in the response
// phase, failing closed and open: closed answers 503; open forwards
// without the filter, and no x-session-* header passes either way, in any
// spelling.
func TestFailurePolicy(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		name := map[bool]string{false: "closed", true: "open"}[failOpen]
		h := &Handler{Wasm: watWasm, VMs: 2, FailOpen: failOpen}
		provision(t, h)
		var calls int
		var got http.Header
		s := serve(t, h, func(w http.ResponseWriter, r *http.Request) error {
			calls++
			got = r.Header.Clone()
			if r.Header.Get("X-Trap") != "" {
				w.Header().Set("X-Trap-Response", "1")
			}
			w.Header().Set("X-Session-Token", "from-app")
			w.Header().Set("X_Session_Debug", "1")
			w.Header().Set("X-App", "1")
			_, err := io.WriteString(w, "from next")
			return err
		})
		t.Run(name+"/request", func(t *testing.T) {
			calls = 0
			resp, body := get(t, s.URL+"/trap", append([]string{"X-Keep", "1"}, forged...)...)
			if !failOpen {
				if resp.StatusCode != http.StatusServiceUnavailable || calls != 0 {
					t.Fatalf("fail closed: %d, next called %d times", resp.StatusCode, calls)
				}
				return
			}
			if resp.StatusCode != http.StatusOK || body != "from next" || calls != 1 {
				t.Fatalf("fail open: %d %q, next called %d times", resp.StatusCode, body, calls)
			}
			if k := hasSessionHeader(got); k != "" || got.Get("X-Keep") != "1" {
				t.Fatalf("next got %v: %s passed, or X-Keep was lost", got, k)
			}
			if k := hasSessionHeader(resp.Header); k != "" || resp.Header.Get("X-App") != "1" {
				t.Fatalf("the client got %v: %s passed, or X-App was lost", resp.Header, k)
			}
		})
		t.Run(name+"/response", func(t *testing.T) {
			calls = 0
			resp, body := get(t, s.URL+"/", "X-Trap", "1")
			if calls != 1 {
				t.Fatalf("next called %d times", calls)
			}
			if !failOpen {
				if resp.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("fail closed: %d", resp.StatusCode)
				}
				return
			}
			if resp.StatusCode != http.StatusOK || body != "from next" {
				t.Fatalf("fail open: %d %q", resp.StatusCode, body)
			}
			if k := hasSessionHeader(resp.Header); k != "" {
				t.Fatalf("the client got %s", k)
			}
		})
	}
}

// TestNextError: an error of the chain before it answered goes to Caddy's
// error handling, with the filter's headers removed from the request its
// error routes get.
func TestNextError(t *testing.T) {
	h := &Handler{Wasm: watWasm, VMs: 1}
	provision(t, h)
	var seen http.Header
	errNotFound := caddyhttp.Error(http.StatusNotFound, errors.New("no such file"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return errNotFound }))
		seen = r.Header.Clone()
		var he caddyhttp.HandlerError
		if !errors.As(err, &he) || he.StatusCode != http.StatusNotFound {
			t.Errorf("ServeHTTP returned %v, want the chain's 404", err)
		}
		w.WriteHeader(599)
	}))
	defer srv.Close()
	resp, _ := get(t, srv.URL+"/missing", forged...)
	if resp.StatusCode != 599 {
		t.Fatalf("status %d: the handler wrote a response instead of returning the error", resp.StatusCode)
	}
	if k := hasSessionHeader(seen); k != "" {
		t.Fatalf("the error route would get %s", k)
	}
}

// TestStreamingResponse: the body next writes reaches the client while next
// is still writing, with and without the filter's body callback.
func TestStreamingResponse(t *testing.T) {
	for _, tc := range []struct {
		name, wasm, tail string
	}{
		{"no body callback", watWasm, ""},
		{"body callback", testbin.BuildWasm(t, "./edge/testdata/goguest"), "+go"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &Handler{Wasm: tc.wasm, VMs: 1}
			provision(t, h)
			gotFirst := make(chan struct{})
			s := serve(t, h, func(w http.ResponseWriter, r *http.Request) error {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "first\n")
				w.(http.Flusher).Flush()
				select {
				case <-gotFirst:
				case <-time.After(10 * time.Second):
					return errors.New("the client never got the first line: the body was held")
				}
				_, err := io.WriteString(w, "second\n")
				return err
			})
			resp, err := http.Get(s.URL + "/events")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			if line, err := br.ReadString('\n'); err != nil || line != "first\n" {
				t.Fatalf("first line %q, %v", line, err)
			}
			close(gotFirst)
			rest, err := io.ReadAll(br)
			if err != nil || string(rest) != "second\n"+tc.tail {
				t.Fatalf("rest %q, %v", rest, err)
			}
		})
	}
}

// TestStreamingRequestBody: next reads the request body while the client
// is still sending it, through the filter's body callback.
func TestStreamingRequestBody(t *testing.T) {
	h := &Handler{Wasm: testbin.BuildWasm(t, "./edge/testdata/goguest"), VMs: 1}
	provision(t, h)
	gotFirst := make(chan struct{})
	s := serve(t, h, func(w http.ResponseWriter, r *http.Request) error {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, buf); err != nil || string(buf) != "part1" {
			return errors.New("first part: " + string(buf))
		}
		close(gotFirst)
		rest, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, string(buf)+string(rest))
		return err
	})
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("part1"))
		select {
		case <-gotFirst:
			pw.Write([]byte("part2"))
			pw.Close()
		case <-time.After(10 * time.Second):
			pw.CloseWithError(errors.New("next never got the first part: the body was held"))
		}
	}()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/upload", pr)
	resp, body := do(t, req)
	if resp.StatusCode != http.StatusOK || body != "part1part2+go+go" {
		t.Fatalf("%d %q (want the request and the response body callbacks' +go)", resp.StatusCode, body)
	}
}

func TestHead(t *testing.T) {
	h := &Handler{Wasm: watWasm, VMs: 1}
	provision(t, h)
	s := serve(t, h, func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Length", "1234")
		w.WriteHeader(http.StatusOK)
		return nil
	})
	req, _ := http.NewRequest(http.MethodHead, s.URL+"/", nil)
	resp, _ := do(t, req)
	if resp.StatusCode != http.StatusOK || resp.ContentLength != 1234 {
		t.Fatalf("HEAD: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
}

// TestNextPanics: a panic in the chain is raised again on the request's
// goroutine, as it would be without the filter, not on the goroutine that
// ran the chain (which would end the process).
func TestNextPanics(t *testing.T) {
	h := &Handler{Wasm: watWasm, VMs: 1}
	provision(t, h)
	recovered := make(chan any, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { recovered <- recover() }()
		_ = h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { panic("boom") }))
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
	}
	if p := <-recovered; p != "boom" {
		t.Fatalf("recovered %v, want the chain's panic", p)
	}
}

// TestHTTPCallTicksSharedData: the filter's HTTP calls reach a named
// cluster, its ticks run, and its shared data is shared by the handlers of
// one VM id and outlives a reload that replaces the filter.
func TestHTTPCallTicksSharedData(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Answer", "42")
	}))
	defer backend.Close()
	goguest := testbin.BuildWasm(t, "./edge/testdata/goguest")
	h := &Handler{Wasm: goguest, VMs: 1, VMID: "ticks-test", Clusters: map[string]string{"backend": strings.TrimPrefix(backend.URL, "http://")}}
	provision(t, h)
	var answer string
	s := serve(t, h, func(w http.ResponseWriter, r *http.Request) error {
		answer = r.Header.Get("X-Answer")
		return nil
	})
	if resp, _ := get(t, s.URL+"/call"); resp.StatusCode != http.StatusOK || answer != "42" {
		t.Fatalf("/call: %d, x-answer %q", resp.StatusCode, answer)
	}
	// goguest ticks every second and writes the tick count to shared data.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if v, _, ok := h.host.host.SharedData("goguest.ticks"); ok && len(v) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no tick wrote shared data within 5s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Another configuration of the same VM id (a reload) sees the data.
	h2 := &Handler{Wasm: goguest, VMs: 1, VMID: "ticks-test", PluginConfig: []byte(`"other"`)}
	provision(t, h2)
	if h2.host == h.host {
		t.Fatal("a different plugin configuration shares the filter")
	}
	if _, _, ok := h2.host.host.SharedData("goguest.ticks"); !ok {
		t.Fatal("the shared data of the VM id is not shared")
	}
}

// TestHostSharing: handlers with the same filter and configuration share
// one running filter, stopped when the last of them is cleaned up.
func TestHostSharing(t *testing.T) {
	a, b := &Handler{Wasm: watWasm, VMs: 1}, &Handler{Wasm: watWasm, VMs: 1}
	ctx, cancel := caddy2.NewContext(caddy2.Context{Context: context.Background()})
	defer cancel()
	for _, h := range []*Handler{a, b} {
		if err := h.Provision(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if a.host != b.host {
		t.Fatal("equal configurations run two filters")
	}
	host := a.host.host
	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if host.HealthyVMs() != 1 {
		t.Fatal("cleaning up one handler stopped the filter the other uses")
	}
	if err := b.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, err := host.NewStream(wasmhost.StreamInfo{}); err == nil {
		t.Fatal("the filter still runs after its last handler was cleaned up")
	}
}

func TestMetrics(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer backend.Close()
	h := &Handler{Wasm: watWasm, VMs: 1, PluginName: "wat", Clusters: map[string]string{"backend": strings.TrimPrefix(backend.URL, "http://")}}
	ctx := provision(t, h)
	s := serve(t, h, func(w http.ResponseWriter, r *http.Request) error { return nil })
	get(t, s.URL+"/")
	get(t, s.URL+"/local")
	get(t, s.URL+"/trap")
	reg := ctx.GetMetricsRegistry()
	for _, name := range []string{"caddy_proxy_wasm_requests_total", "caddy_proxy_wasm_local_replies_total", "caddy_proxy_wasm_filter_failures_total",
		"caddy_proxy_wasm_vm_restarts_total", "caddy_proxy_wasm_http_calls_in_flight", "caddy_proxy_wasm_cluster_calls_in_flight", "wasm_wat_requests"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Errorf("%s: %d series, %v", name, n, err)
		}
	}
	want := `
# HELP caddy_proxy_wasm_requests_total Requests the filter handled.
# TYPE caddy_proxy_wasm_requests_total counter
caddy_proxy_wasm_requests_total{plugin="wat"} 3
# HELP caddy_proxy_wasm_local_replies_total Requests the filter answered itself.
# TYPE caddy_proxy_wasm_local_replies_total counter
caddy_proxy_wasm_local_replies_total{plugin="wat"} 1
# HELP caddy_proxy_wasm_filter_failures_total Requests whose filter failed (the failure policy applied).
# TYPE caddy_proxy_wasm_filter_failures_total counter
caddy_proxy_wasm_filter_failures_total{plugin="wat"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "caddy_proxy_wasm_requests_total",
		"caddy_proxy_wasm_local_replies_total", "caddy_proxy_wasm_filter_failures_total"); err != nil {
		t.Error(err)
	}
	// The trap replaces the VM, no sooner than a second later.
	deadline := time.Now().Add(5 * time.Second)
	for h.host.host.Restarts() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	want = `
# HELP caddy_proxy_wasm_vm_restarts_total Failed filter VMs replaced.
# TYPE caddy_proxy_wasm_vm_restarts_total counter
caddy_proxy_wasm_vm_restarts_total{plugin="wat"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "caddy_proxy_wasm_vm_restarts_total"); err != nil {
		t.Error(err)
	}
}

// TestConfigErrors: a bad configuration fails provisioning with an error
// that names the field.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	badJSON := filepath.Join(dir, "bad.json")
	os.WriteFile(badJSON, []byte(`{"keys": `), 0o600)
	for _, tc := range []struct {
		name string
		h    Handler
		want string
	}{
		{"no wasm", Handler{}, "wasm: required"},
		{"missing wasm", Handler{Wasm: filepath.Join(dir, "none.wasm")}, "wasm: open " + filepath.Join(dir, "none.wasm")},
		{"not wasm", Handler{Wasm: badJSON}, "wasm: "},
		{"rejected plugin_config", Handler{Wasm: watWasm, PluginConfig: []byte(`"refused"`)}, "plugin_config: the filter rejected its configuration"},
		{"rejected plugin_config_file", Handler{Wasm: watWasm, PluginConfigFile: writeFile(t, dir, "r.txt", "refused")}, "plugin_config_file: the filter rejected its configuration"},
		{"missing plugin_config_file", Handler{Wasm: watWasm, PluginConfigFile: filepath.Join(dir, "none.json")}, "plugin_config_file: open "},
		{"both configs", Handler{Wasm: watWasm, PluginConfig: []byte(`{}`), PluginConfigFile: badJSON}, "plugin_config and plugin_config_file"},
		{"empty placeholder", Handler{Wasm: watWasm, PluginConfig: []byte(`{"keys":{"1":"{env.SESSIONEDGE_CADDY_TEST_UNSET}"}}`)}, "plugin_config: keys: 1: evaluated placeholder {env.SESSIONEDGE_CADDY_TEST_UNSET} is empty"},
		{"bad cluster", Handler{Wasm: watWasm, Clusters: map[string]string{"origin": "nowhere"}}, `clusters: origin: address "nowhere"`},
		{"negative vms", Handler{Wasm: watWasm, VMs: -1}, "vms: -1 is negative"},
		{"empty strip prefix", Handler{Wasm: watWasm, StripPrefixes: []string{""}}, "strip_prefixes:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.h
			ctx, cancel := caddy2.NewContext(caddy2.Context{Context: context.Background()})
			defer cancel()
			err := h.Provision(ctx)
			if err == nil {
				h.Cleanup()
				t.Fatal("provisioned")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
			if err := h.Cleanup(); err != nil {
				t.Fatalf("cleanup after a failed provisioning: %v", err)
			}
		})
	}
}

// TestPluginConfigPlaceholders: placeholders in the plugin configuration
// are resolved at provisioning, inside JSON strings only.
func TestPluginConfigPlaceholders(t *testing.T) {
	t.Setenv("SESSIONEDGE_CADDY_TEST_KEY", `a"b`)
	secret := writeFile(t, t.TempDir(), "secret", "from-file\n")
	h := &Handler{PluginConfig: []byte(`{"keys": {"1": "{env.SESSIONEDGE_CADDY_TEST_KEY}"}, "file": "{file.` + secret + `}", "n": 1.50, "keep": "{unknown}"}`)}
	got, field, err := h.pluginConfig(caddy2.NewReplacer())
	if err != nil || field != "plugin_config" {
		t.Fatal(field, err)
	}
	if want := `{"file":"from-file","keep":"{unknown}","keys":{"1":"a\"b"},"n":1.50}`; string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	h = &Handler{PluginConfig: []byte(`"{file.` + secret + `}"`)}
	if got, _, err := h.pluginConfig(caddy2.NewReplacer()); err != nil || string(got) != "from-file" {
		t.Fatalf("a placeholder string: %q, %v", got, err)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
