package wasmhost_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/edge/wasmhost"
)

// TestHammer runs many parallel streams across VMs: plain requests, local
// answers, HTTP calls that pause and resume streams (some answered after the
// stream gave up), ticks on the side, and a VM that traps now and then. Run it
// with -race. Every stream must get exactly the answer its path asks for, and
// no goroutine may survive Close.
func TestHammer(t *testing.T) {
	before := runtime.NumGoroutine()
	var late atomic.Int64
	cluster := wasmhost.ClusterFunc(func(ctx context.Context, req *wasmhost.CallRequest, resp *wasmhost.CallResponse) error {
		d := time.Duration(rand.IntN(3)) * time.Millisecond
		if rand.IntN(50) == 0 {
			d = 80 * time.Millisecond // longer than the stream waits: a late reply
			late.Add(1)
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
		resp.SetStatus(200)
		_ = resp.Headers.Add("x-answer", "yes")
		return nil
	})
	h, err := wasmhost.New(context.Background(), wasmhost.Config{
		WasmPath:           "../testdata/conformance.wasm",
		VMs:                4,
		Clusters:           wasmhost.Clusters{"backend": cluster},
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
		ManualTicks:        true,
		MinRestartInterval: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var tickers sync.WaitGroup
	tickers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				h.Tick()
				time.Sleep(100 * time.Microsecond)
			}
		}
	})

	const workers, perWorker = 32, 150
	var (
		wg                         sync.WaitGroup
		ok, local, called, timeout atomic.Int64
		failed, trapped            atomic.Int64
	)
	paths := []string{"/", "/local", "/call", "/call", "/"}
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for i := 0; i < perWorker; i++ {
				path := paths[(w+i)%len(paths)]
				if w == 0 && i%50 == 49 {
					path = "/trap"
				}
				if err := oneStream(h, path, &ok, &local, &called, &timeout, &trapped); err != nil {
					failed.Add(1)
					t.Errorf("%s: %v", path, err)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	tickers.Wait()
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	total := ok.Load() + local.Load() + called.Load() + timeout.Load() + trapped.Load() + failed.Load()
	if total != workers*perWorker {
		t.Errorf("%d outcomes for %d streams", total, workers*perWorker)
	}
	t.Logf("ok=%d local=%d http-call=%d timed-out=%d trapped=%d late-replies=%d restarts=%d ticks=%v",
		ok.Load(), local.Load(), called.Load(), timeout.Load(), trapped.Load(), late.Load(), h.Restarts(), "on")
	if called.Load() == 0 || local.Load() == 0 || trapped.Load() == 0 {
		t.Error("the hammer did not exercise every path")
	}

	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines left behind (before %d):\n%s", n-before, before, buf[:runtime.Stack(buf, true)])
	}
}

func oneStream(h *wasmhost.Host, path string, ok, local, called, timeout, trapped *atomic.Int64) error {
	s, err := h.NewStream(wasmhost.StreamInfo{SourceAddress: "127.0.0.1:1"})
	if errors.Is(err, wasmhost.ErrNoHealthyVM) {
		trapped.Add(1)
		return nil
	}
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.RequestHeaders().Add(":path", path)
	_ = s.RequestHeaders().Add(":method", "GET")
	_ = s.RequestHeaders().Add(":authority", "h")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Millisecond)
	defer cancel()
	vd, err := s.OnRequestHeaders(ctx, true)
	switch {
	case errors.Is(err, wasmhost.ErrVMFailed):
		trapped.Add(1)
		return nil
	case errors.Is(err, context.DeadlineExceeded) && path == "/call":
		timeout.Add(1)
		return nil
	case err != nil:
		return err
	}
	switch path {
	case "/local":
		if vd != wasmhost.LocalReply || s.LocalResponse().Status != 403 {
			return fmt.Errorf("verdict %v status %d", vd, s.LocalResponse().Status)
		}
		local.Add(1)
	case "/call":
		if vd != wasmhost.Continue {
			return fmt.Errorf("verdict %v (local %d)", vd, s.LocalResponse().Status)
		}
		if v, _ := s.RequestHeaders().Get("x-answer"); v != "yes" {
			return fmt.Errorf("x-answer = %q", v)
		}
		called.Add(1)
	case "/":
		if v, _ := s.RequestHeaders().Get("x-wat"); vd != wasmhost.Continue || v != "1" {
			return fmt.Errorf("verdict %v x-wat %q", vd, v)
		}
		_ = s.ResponseHeaders().Add(":status", "200")
		if vd, err := s.OnResponseHeaders(context.Background(), true); err != nil || vd != wasmhost.Continue {
			return fmt.Errorf("response: %v %v", vd, err)
		}
		ok.Add(1)
	case "/trap":
		return fmt.Errorf("trap path did not fail: %v", vd)
	}
	return nil
}

// TestPauseTimeout checks that a stream paused on an HTTP call that never
// answers is released after Config.PauseTimeout, and that the late reply
// finds no stream.
func TestPauseTimeout(t *testing.T) {
	release := make(chan struct{})
	h, err := wasmhost.New(context.Background(), wasmhost.Config{
		WasmPath: "../testdata/conformance.wasm",
		VMs:      1,
		Clusters: wasmhost.Clusters{"backend": wasmhost.ClusterFunc(func(ctx context.Context, req *wasmhost.CallRequest, resp *wasmhost.CallResponse) error {
			<-release
			resp.SetStatus(200)
			return nil
		})},
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		ManualTicks:  true,
		PauseTimeout: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	s, err := h.NewStream(wasmhost.StreamInfo{})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.RequestHeaders().Add(":path", "/call")
	start := time.Now()
	if _, err := s.OnRequestHeaders(context.Background(), true); !errors.Is(err, wasmhost.ErrPauseTimeout) {
		t.Fatalf("OnRequestHeaders = %v, want ErrPauseTimeout", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
	s.Close()
	close(release)
	if err := h.WaitCalls(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.HealthyVMs() != 1 {
		t.Error("a late reply for a closed stream broke the VM")
	}
}

// TestCompilationCache loads the module twice with the same cache
// directory: the second load reuses the compiled code on disk.
func TestCompilationCache(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 2; i++ {
		h, err := wasmhost.New(context.Background(), wasmhost.Config{
			WasmPath:            "../testdata/conformance.wasm",
			VMs:                 2,
			CompilationCacheDir: dir,
			ManualTicks:         true,
			Logger:              slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		if h.HealthyVMs() != 2 {
			t.Errorf("healthy VMs = %d", h.HealthyVMs())
		}
		_ = h.Close(context.Background())
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("cache directory is empty (%v)", err)
	}
}
