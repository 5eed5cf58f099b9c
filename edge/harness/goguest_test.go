package harness_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/edge/harness"
)

var (
	goGuestOnce sync.Once
	goGuestPath string
	goGuestErr  error
)

// buildGoGuest builds edge/testdata/goguest, a minimal Go guest, once per
// test binary.
func buildGoGuest(t *testing.T) string {
	t.Helper()
	goGuestOnce.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			goGuestErr = err
			return
		}
		dir, err := os.MkdirTemp("", "goguest")
		if err != nil {
			goGuestErr = err
			return
		}
		goGuestPath = filepath.Join(dir, "goguest.wasm")
		cmd := exec.Command(gobin, "build", "-buildmode=c-shared", "-o", goGuestPath, "../testdata/goguest")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if out, err := cmd.CombinedOutput(); err != nil {
			goGuestErr = err
			t.Logf("%s", out)
		}
	})
	if goGuestErr != nil {
		t.Skipf("cannot build the Go test guest: %v", goGuestErr)
	}
	return goGuestPath
}

func TestGoGuest(t *testing.T) {
	wasm := buildGoGuest(t)
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

// TestSessionedgeGuest runs the product's Go guest when it has been built
// (make wasm); it is written in parallel, so its absence is not a failure.
func TestSessionedgeGuest(t *testing.T) {
	const wasm = "../../build/sessionedge.wasm"
	if _, err := os.Stat(wasm); err != nil {
		t.Skip("build/sessionedge.wasm does not exist yet (run make wasm); skipping the Go guest half")
	}
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
	if h.Host().Restarts() != 0 || h.Host().HealthyVMs() != 2 {
		t.Errorf("the guest trapped: restarts %d healthy %d", h.Host().Restarts(), h.Host().HealthyVMs())
	}
}
