package proxy_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/edge/proxy"
	"github.com/valyala/fasthttp"
)

// startHashUpstream answers every request with a body of the size given in
// x-size and reports the SHA-256 and length of the request body it read.
func startHashUpstream(t *testing.T) string {
	t.Helper()
	srvAddr := serve(t, &fasthttp.Server{StreamRequestBody: true, MaxRequestBodySize: 64 << 20, Handler: func(ctx *fasthttp.RequestCtx) {
		h := sha256.New()
		var n int64
		if r := ctx.RequestBodyStream(); r != nil {
			n, _ = io.Copy(h, r)
		} else {
			b := ctx.Request.Body()
			h.Write(b)
			n = int64(len(b))
		}
		ctx.Response.Header.Set("x-got-len", strconv.FormatInt(n, 10))
		ctx.Response.Header.Set("x-got-sha", hex.EncodeToString(h.Sum(nil)))
		size, _ := strconv.Atoi(string(ctx.Request.Header.Peek("x-size")))
		ctx.SetBodyStream(io.LimitReader(zeros{}, int64(size)), -1)
	}})
	return srvAddr
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestStreamingBodies sends large chunked bodies both ways through a filter
// that has no body callbacks: they stream past it intact.
func TestStreamingBodies(t *testing.T) {
	for _, noFilter := range []bool{false, true} {
		t.Run(map[bool]string{false: "filter", true: "no filter"}[noFilter], func(t *testing.T) {
			e := startEdge(t, proxy.Config{Upstream: startHashUpstream(t), Wasm: watGuest, VMs: 1, NoFilter: noFilter})
			payload := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
			sum := sha256.Sum256(payload)
			req, _ := http.NewRequest("POST", e.url+"/upload", io.MultiReader(bytes.NewReader(payload))) // unknown length: chunked
			req.Header.Set("x-size", strconv.Itoa(5<<20))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			n, _ := io.Copy(io.Discard, res.Body)
			if res.StatusCode != 200 || n != 5<<20 {
				t.Fatalf("status %d, %d response bytes", res.StatusCode, n)
			}
			if res.Header.Get("x-got-len") != strconv.Itoa(len(payload)) || res.Header.Get("x-got-sha") != hex.EncodeToString(sum[:]) {
				t.Errorf("upstream got %s bytes, sha %s", res.Header.Get("x-got-len"), res.Header.Get("x-got-sha"))
			}
		})
	}
}

// TestBufferedBodies runs a guest with body callbacks (the Go test guest
// appends "+go" to both bodies): the proxy buffers and forwards what the
// guest left.
func TestBufferedBodies(t *testing.T) {
	wasm := buildGoGuest(t)
	e := startEdge(t, proxy.Config{Upstream: startUpstream(t), Wasm: wasm, VMs: 1})
	if _, b := post(t, e.url+"/p", "abc"); b != "echo:abc+go+go" {
		t.Errorf("body = %q, want the request and response bodies both changed by the guest", b)
	}
}

func buildGoGuest(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "goguest.wasm")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-buildmode=c-shared", "-o", out, "../testdata/goguest")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the Go test guest: %v\n%s", err, b)
	}
	return out
}

// TestGuestBodies runs large bodies through a guest with body callbacks:
// the request body is buffered for it, the response body streams through
// proxy_on_response_body chunk by chunk, and a guest that stops iteration on
// the headers gets the whole body before answering.
func TestGuestBodies(t *testing.T) {
	wasm := buildGoGuest(t)
	e := startEdge(t, proxy.Config{Upstream: startHashUpstream(t), Wasm: wasm, VMs: 1})

	t.Run("large", func(t *testing.T) {
		payload := bytes.Repeat([]byte("x"), 3<<20)
		sum := sha256.Sum256(append(append([]byte(nil), payload...), "+go"...))
		req, _ := http.NewRequest("POST", e.url+"/upload", io.MultiReader(bytes.NewReader(payload)))
		req.Header.Set("x-size", strconv.Itoa(5<<20))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if len(b) != 5<<20+3 || string(b[len(b)-3:]) != "+go" {
			t.Errorf("response: %d bytes ending %q", len(b), b[max(0, len(b)-3):])
		}
		if res.Header.Get("x-got-sha") != hex.EncodeToString(sum[:]) {
			t.Errorf("upstream got %s bytes, not the body the guest changed", res.Header.Get("x-got-len"))
		}
	})
	t.Run("stop iteration until the body", func(t *testing.T) {
		req, _ := http.NewRequest("PATCH", e.url+"/body-echo", io.MultiReader(bytes.NewReader([]byte(`{"a":1}`))))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || string(b) != `got:{"a":1}` {
			t.Errorf("status %d body %q", res.StatusCode, b)
		}
	})
}

// TestGetHasEndOfStream checks that a GET without a body reaches the filter
// with end_of_stream set: a guest that pauses its headers for an HTTP call
// must be waited for, not handed an empty body that would continue it.
func TestGetHasEndOfStream(t *testing.T) {
	wasm := buildGoGuest(t)
	backendAddr := serve(t, &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		time.Sleep(20 * time.Millisecond) // the stream must wait for this
		ctx.Response.Header.Set("x-answer", "late")
	}})
	e := startEdge(t, proxy.Config{Upstream: startUpstream(t), Wasm: wasm, VMs: 1, Clusters: map[string]string{"backend": backendAddr}})
	res, _ := get(t, e.url+"/call")
	if res.Header.Get("x-got-answer") != "late" {
		t.Errorf("upstream got x-answer %q: the request was forwarded before the guest continued it", res.Header.Get("x-got-answer"))
	}
}

// gatedReader yields size bytes, the ones after the first 64 KiB only once
// gate is closed.
type gatedReader struct {
	n, size int
	gate    chan struct{}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.n >= g.size {
		return 0, io.EOF
	}
	if g.n >= 64<<10 {
		<-g.gate
	}
	p = p[:min(len(p), g.size-g.n, 16<<10)]
	clear(p)
	g.n += len(p)
	return len(p), nil
}

// TestKnownLengthResponseStreams checks that a large response body of known
// length reaches the client while the upstream is still sending it, with
// the filter and without: the upstream sends the rest only once the client
// has the first bytes.
func TestKnownLengthResponseStreams(t *testing.T) {
	const size = 8 << 20
	gates := make(chan chan struct{}, 2)
	up := serve(t, &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		gate := make(chan struct{})
		gates <- gate
		ctx.SetBodyStream(&gatedReader{size: size, gate: gate}, size)
	}})
	for _, noFilter := range []bool{false, true} {
		t.Run(map[bool]string{false: "filter", true: "no filter"}[noFilter], func(t *testing.T) {
			e := startEdge(t, proxy.Config{Upstream: up, Wasm: watGuest, VMs: 1, NoFilter: noFilter})
			type result struct {
				res *http.Response
				err error
			}
			done := make(chan result, 1)
			go func() {
				res, err := http.Get(e.url + "/large")
				done <- result{res, err}
			}()
			var gate chan struct{}
			select {
			case gate = <-gates:
			case <-time.After(10 * time.Second):
				t.Fatal("the upstream got no request")
			}
			var r result
			select {
			case r = <-done:
			case <-time.After(5 * time.Second):
				close(gate)
				t.Fatal("no response headers while the upstream waits: the edge holds the body")
			}
			if r.err != nil {
				close(gate)
				t.Fatal(r.err)
			}
			defer r.res.Body.Close()
			first := make([]byte, 1024)
			if _, err := io.ReadFull(r.res.Body, first); err != nil {
				close(gate)
				t.Fatal(err)
			}
			close(gate)
			n, err := io.Copy(io.Discard, r.res.Body)
			if err != nil || n+1024 != size || r.res.ContentLength != size {
				t.Errorf("status %d, content length %d, %d bytes, err %v", r.res.StatusCode, r.res.ContentLength, n+1024, err)
			}
		})
	}
}
