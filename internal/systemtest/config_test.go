package systemtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// durationSpellings are the JSON spellings every sessionedge configuration
// reads the same way: a Go duration string, a bare number of seconds
// (fractions allowed), or "none" where a timeout may be absent.
var durationSpellings = []struct {
	json string
	want time.Duration // -1: none
}{
	{`"1.5s"`, 1500 * time.Millisecond},
	{`1.5`, 1500 * time.Millisecond},
	{`"1500ms"`, 1500 * time.Millisecond},
	{`"2s"`, 2 * time.Second},
	{`2`, 2 * time.Second},
	{`"none"`, -1},
}

// badDurations are refused everywhere, naming the field.
var badDurations = []string{`-1`, `"-2s"`, `"2 seconds"`, `true`}

// TestConfigVocabulary runs the three configurations for real: the origin
// binary with a configuration file, the edge binary with one, and the
// filter's plugin configuration in the edge host. Each reads every
// spelling of durationSpellings to the same value, seen in what the program
// then does; refuses every bad duration and an unknown key, naming the
// field.
//
//   - origin: timeouts.anonymous.idle, seen as the idle deadline of a
//     session it creates (none: no idle deadline);
//   - edge: upstreamTimeout, seen as the time until an upstream that never
//     answers gets a 504 (none: a slow upstream's answer still arrives);
//   - plugin: origin.timeout, seen as the timeout of the filter's call to
//     the origin; sessions.anonymous.idle "none" as a token without an
//     idle deadline (origin.timeout cannot be none).
func TestConfigVocabulary(t *testing.T) {
	t.Run("origin", testOriginConfig)
	t.Run("edge", testEdgeConfig)
	t.Run("plugin", testPluginConfig)
	if !t.Failed() {
		var sp []string
		for _, d := range durationSpellings {
			sp = append(sp, d.json)
		}
		report(t, "config vocabulary: %s read alike by the origin (timeouts.anonymous.idle), the edge (upstreamTimeout) and the plugin (origin.timeout; sessions.anonymous.idle for \"none\"); %s and an unknown key refused by each, naming the field",
			strings.Join(sp, ", "), strings.Join(badDurations, ", "))
	}
}

// runRefused runs bin with args, which must exit non-zero within a minute
// naming every one of want in its output.
func runRefused(t *testing.T, bin string, args []string, want ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Errorf("%s %v started with a bad configuration:\n%s", filepath.Base(bin), args, out)
		return
	}
	for _, w := range want {
		if !bytes.Contains(out, []byte(w)) {
			t.Errorf("%s refused a bad configuration without naming %q: %v\n%s", filepath.Base(bin), w, err, out)
		}
	}
}

func testOriginConfig(t *testing.T) {
	for _, sp := range durationSpellings {
		t.Run(sp.json, func(t *testing.T) {
			t.Parallel()
			key := testbin.RandomKey("app")
			o := testbin.StartOrigin(t, testbin.OriginConfig{
				APIKeys: []testbin.APIKey{{Name: "app", Key: key, Scopes: []string{"sessions:read", "sessions:write"}}},
				Extra:   map[string]any{"timeouts": json.RawMessage(`{"anonymous":{"idle":` + sp.json + `}}`)},
			})
			req, _ := http.NewRequest("POST", o.URL+"/v1/sessions", nil)
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out struct {
				Session struct {
					Created      string `json:"created"`
					IdleDeadline string `json:"idleDeadline"`
				} `json:"session"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 201 {
				t.Fatalf("create: %d %v", resp.StatusCode, err)
			}
			if sp.want < 0 {
				if out.Session.IdleDeadline != "" {
					t.Errorf("idle %s: the session has an idle deadline %s", sp.json, out.Session.IdleDeadline)
				}
				return
			}
			created, err1 := time.Parse(time.RFC3339Nano, out.Session.Created)
			idle, err2 := time.Parse(time.RFC3339Nano, out.Session.IdleDeadline)
			if err1 != nil || err2 != nil {
				t.Fatalf("times of the session: %v %v (%+v)", err1, err2, out.Session)
			}
			if got := idle.Sub(created); got != sp.want {
				t.Errorf("timeouts.anonymous.idle %s: idle deadline %v after the start, want %v", sp.json, got, sp.want)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		bin := testbin.Build(t, "./origin/cmd/origin")
		cfg := func(timeouts string) []string {
			dir := t.TempDir()
			path := testbin.WriteFile(t, "origin.json", `{"insecure":true,"listen":"127.0.0.1:0","admin":"-","dataDir":"`+filepath.Join(dir, "data")+`","timeouts":`+timeouts+`}`)
			return []string{"-config", path}
		}
		for _, bad := range badDurations {
			runRefused(t, bin, cfg(`{"anonymous":{"idle":`+bad+`}}`), "timeouts.anonymous.idle")
		}
		runRefused(t, bin, cfg(`{"anonymous":{"idel":"30m"}}`), "timeouts.anonymous.idel", "unknown field")
	})
}

// hangingUpstream accepts connections and reads what comes, answering
// after delay (never, when delay is 0).
func hangingUpstream(t *testing.T, delay time.Duration) string {
	t.Helper()
	ln := testbin.Listen(t)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 4096)
				c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				c.Read(buf)
				if delay == 0 {
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					io.Copy(io.Discard, c)
					return
				}
				time.Sleep(delay)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nslow")
			}()
		}
	})
	return ln.Addr().String()
}

func testEdgeConfig(t *testing.T) {
	bin := testbin.Build(t, "./edge/cmd/edge")
	start := func(t *testing.T, upstream, doc string) string {
		listen, admin := testbin.FreeAddr(t), testbin.FreeAddr(t)
		path := testbin.WriteFile(t, "edge.json", doc)
		testbin.Start(t, testbin.Cmd{Name: "edge", Path: bin, Args: []string{"-config", path, "-upstream", upstream,
			"-listen", listen, "-admin", admin, "-no-filter"}, Ready: "http://" + admin + "/readyz"})
		return listen
	}
	for _, sp := range durationSpellings {
		t.Run(sp.json, func(t *testing.T) {
			t.Parallel()
			delay := time.Duration(0)
			if sp.want < 0 {
				delay = 2500 * time.Millisecond // no timeout: a slow answer arrives
			}
			addr := start(t, hangingUpstream(t, delay), `{"upstreamTimeout":`+sp.json+`}`)
			t0 := time.Now()
			resp, err := (&http.Client{Timeout: time.Minute}).Get("http://" + addr + "/")
			took := time.Since(t0)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if sp.want < 0 {
				if resp.StatusCode != 200 {
					t.Errorf(`upstreamTimeout "none": an upstream answering after %v got %d after %v, want its 200`, delay, resp.StatusCode, took)
				}
				return
			}
			// The machine is shared: the answer may come late, never early.
			if resp.StatusCode != 504 || took < sp.want-20*time.Millisecond || took > sp.want+2*time.Second {
				t.Errorf("upstreamTimeout %s: %d after %v, want 504 after %v", sp.json, resp.StatusCode, took, sp.want)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		for _, bad := range badDurations {
			path := testbin.WriteFile(t, "edge.json", `{"upstreamTimeout":`+bad+`}`)
			runRefused(t, bin, []string{"-config", path, "-upstream", "127.0.0.1:1", "-no-filter", "-listen", "127.0.0.1:0", "-admin", "-"}, "upstreamTimeout")
		}
		path := testbin.WriteFile(t, "edge.json", `{"upstreamTimeOut":"2s"}`)
		runRefused(t, bin, []string{"-config", path, "-upstream", "127.0.0.1:1", "-no-filter", "-listen", "127.0.0.1:0", "-admin", "-"}, "upstreamTimeOut", "unknown field")
	})
}

func testPluginConfig(t *testing.T) {
	bin, wasm := testbin.Build(t, "./edge/cmd/edge"), testbin.BuildWasm(t, "./wasm")
	secret := testbin.RandomSecret()
	keyring, err := wire.NewKeyring(1, map[uint8][]byte{1: secret})
	if err != nil {
		t.Fatal(err)
	}
	// plugin is a plugin configuration with origin.* fields originExtra and
	// top-level fields topExtra.
	plugin := func(originExtra, topExtra string) string {
		return `{"keys":{"1":"` + base64.StdEncoding.EncodeToString(secret) + `"},"origin":{"cluster":"origin"` + originExtra + `}` + topExtra + `}`
	}
	app := startApp(t, &system{})
	start := func(t *testing.T, cfg string) *testbin.Edge {
		var pc map[string]any
		if err := json.Unmarshal([]byte(cfg), &pc); err != nil {
			t.Fatal(err)
		}
		return testbin.StartEdge(t, testbin.EdgeConfig{Upstream: app.addr, Plugin: pc, VMs: 1,
			Clusters: map[string]string{"origin": hangingUpstream(t, 0)}})
	}
	start(t, plugin("", "")) // compiles the filter once, for the edges below
	for _, sp := range durationSpellings {
		t.Run(sp.json, func(t *testing.T) {
			t.Parallel()
			if sp.want < 0 {
				// "none" where a timeout may be absent: a minted token
				// without an idle deadline.
				e := start(t, plugin("", `,"sessions":{"anonymous":{"idle":`+sp.json+`}}`))
				r, err := do(loopbackClient(strings.TrimPrefix(e.URL, "http://"), 1, 1), "GET", "/", nil)
				var cl wire.Claims
				if err != nil || keyring.VerifyToken([]byte(r.cookies["__Host-sid"]), time.Now().Unix(), &cl) != nil {
					t.Fatalf("no valid token minted: %v %+v", err, r)
				}
				if cl.IdleDeadline != 0 {
					t.Errorf(`sessions.anonymous.idle "none": the token has an idle deadline %d`, cl.IdleDeadline)
				}
				return
			}
			// An uncached token makes the filter fetch its session from an
			// origin that never answers: the request waits origin.timeout,
			// then goes on degraded.
			e := start(t, plugin(`,"timeout":`+sp.json, ""))
			id, _ := wire.NewID()
			now := time.Now().Unix()
			tok := keyring.AppendToken(nil, &wire.Claims{KeyID: 1, Kind: wire.KindAnonymous, ID: id, Generation: 1,
				IssuedAt: now, IdleDeadline: now + 60, HardDeadline: now + 3600})
			r, err := do(loopbackClient(strings.TrimPrefix(e.URL, "http://"), 1, 1), "GET", "/", nil, "cookie", "__Host-sid="+string(tok))
			if err != nil {
				t.Fatal(err)
			}
			if r.echo.Status != "degraded" || r.took < sp.want-20*time.Millisecond || r.took > sp.want+2*time.Second {
				t.Errorf("origin.timeout %s: %s after %v, want degraded after %v", sp.json, r.echo.Status, r.took, sp.want)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		refused := func(cfg string, want ...string) {
			path := testbin.WriteFile(t, "plugin.json", cfg)
			runRefused(t, bin, []string{"-plugin-config-file", path, "-wasm", wasm, "-upstream", "127.0.0.1:1",
				"-listen", "127.0.0.1:0", "-admin", "-", "-vms", "1", "-compilation-cache", testbin.CompilationCache(t)}, want...)
		}
		for _, bad := range append(badDurations, `"none"`) { // origin.timeout cannot be none
			refused(plugin(`,"timeout":`+bad, ""), "origin.timeout")
		}
		refused(plugin(`,"timout":"2s"`, ""), "origin.timout: unknown field")
	})
}
