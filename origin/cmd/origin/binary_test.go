package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/origin/internal/eventually"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// buildOrigin builds this command, once per test run.
func buildOrigin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the origin binary")
	}
	return testbin.Build(t, "./origin/cmd/origin")
}

func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }

// writeConfig writes doc as the configuration file in dir.
func writeConfig(t *testing.T, dir string, doc map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(doc)
	path := filepath.Join(dir, "origin.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runToExit runs the binary, which must exit within 20 s, and returns its
// exit code and output.
func runToExit(t *testing.T, bin string, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("origin %v did not exit:\n%s", args, out.String())
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

func TestHelp(t *testing.T) {
	bin := buildOrigin(t)
	for _, arg := range []string{"-h", "-help"} {
		code, out := runToExit(t, bin, nil, arg)
		if code != 0 || !strings.Contains(out, "docs/operations.md") || !strings.Contains(out, "-config") {
			t.Fatalf("origin %s: exit %d\n%s", arg, code, out)
		}
	}
	if code, out := runToExit(t, bin, nil, "-webhook-secret", "x"); code != 2 || !strings.Contains(out, "flag provided but not defined") {
		t.Fatalf("a secret flag is accepted: exit %d\n%s", code, out)
	}
}

// TestRefusedConfigurations: the origin exits at once, naming the problem,
// without API keys (unless insecure) and with an unknown key.
func TestRefusedConfigurations(t *testing.T) {
	bin := buildOrigin(t)
	dir := t.TempDir()
	tests := []struct {
		name string
		doc  map[string]any
		want string
	}{
		{"no API keys", map[string]any{"dataDir": filepath.Join(dir, "a")}, `apiKeys: none configured`},
		{"typo", map[string]any{"dataDir": filepath.Join(dir, "b"), "tokenKeyz": map[string]string{}}, "tokenKeyz: unknown field"},
		{"typo in a store field", map[string]any{"redis": map[string]any{"url": "redis://x"}}, "redis.url: unknown field"},
		{"bad duration", map[string]any{"sweepInterval": "-1s"}, "sweepInterval:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, t.TempDir(), tc.doc)
			code, out := runToExit(t, bin, nil, "-config", path, "-listen", testbin.FreeAddr(t), "-admin", "-")
			if code == 0 || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want a failure naming %q:\n%s", code, tc.want, out)
			}
		})
	}
}

// TestInsecureStarts: with insecure set and no keys the origin serves and
// says so at start.
func TestInsecureStarts(t *testing.T) {
	bin := buildOrigin(t)
	dir := t.TempDir()
	path := writeConfig(t, dir, map[string]any{"dataDir": filepath.Join(dir, "data"), "insecure": true})
	o := startBinary(t, bin, path, testbin.FreeAddr(t), nil)
	res, err := http.Post("http://"+o.addr+"/v1/sessions", "application/json", nil)
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("open API: %v %v", err, res)
	}
	res.Body.Close()
	if !strings.Contains(o.Output(), "level=WARN msg=\"insecure") {
		t.Fatalf("no warning:\n%s", o.Output())
	}
}

// TestFileModes: the data directory and every file the origin creates in
// it are private to its user.
func TestFileModes(t *testing.T) {
	bin := buildOrigin(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "state", "data")
	path := writeConfig(t, dir, map[string]any{"dataDir": data,
		"apiKeys": []map[string]any{{"name": "t", "key": crashKey, "scopes": []string{"sessions:write"}}}})
	o := startBinary(t, bin, path, testbin.FreeAddr(t), nil)
	if status, _, err := call(http.DefaultClient, "POST", "http://"+o.addr+"/v1/sessions", nil, ""); err != nil || status != 201 {
		t.Fatalf("create: %d %v", status, err)
	}
	o.Stop()
	files := 0
	err := filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", p, info.Mode().Perm())
		}
		if !d.IsDir() {
			files++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("no store files were created")
	}
	if info, err := os.Stat(data); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("data directory: %v %v", info.Mode(), err)
	}
}

// TestNoSecretsInLogs runs the origin at debug level with every secret
// configured, drives it through its failure paths (unknown keys, bad and
// stale session tokens, a failing webhook receiver), and finds none of the
// secrets, nor any token it issued, in its log.
func TestNoSecretsInLogs(t *testing.T) {
	bin := buildOrigin(t)
	dir := t.TempDir()
	tokenSecret := bytes.Repeat([]byte{0x5a}, 32)
	tokenKey := base64.StdEncoding.EncodeToString(tokenSecret)
	const webhookSecret = "webhook-secret-never-logged"
	const edgeKey = "edge-key-never-logged"
	var hooks sync.WaitGroup
	hooks.Add(1)
	var once sync.Once
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(hooks.Done)
		w.WriteHeader(500)
	}))
	t.Cleanup(hook.Close)
	path := writeConfig(t, dir, map[string]any{
		"dataDir": filepath.Join(dir, "data"),
		"apiKeys": []map[string]any{
			{"name": "app", "key": crashKey, "scopes": []string{"sessions:read", "sessions:write"}},
			{"name": "edge", "key": edgeKey, "scopes": []string{"edge:sync", "edge:selfservice"}},
		},
		"tokenKeys":    map[string]string{"1": tokenKey},
		"sharedSecret": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32)),
		"webhook":      map[string]any{"url": "http://user:pw-in-url@" + hook.Listener.Addr().String() + "/hook", "maxBackoff": "100ms"},
	})
	o := startBinary(t, bin, path, testbin.FreeAddr(t), []string{"ORIGIN_WEBHOOK_SECRET=" + webhookSecret}, "-debug")
	base := "http://" + o.addr
	send := func(method, path, key, token string, body string) (int, []byte) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		if token != "" {
			req.Header.Set("X-Session-Token", token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	status, body := send("POST", "/v1/sessions", crashKey, "", `{"context":{"currency":"EUR"}}`)
	var created struct{ ID, Token string }
	if status != 201 || json.Unmarshal(body, &created) != nil {
		t.Fatalf("create: %d %s", status, body)
	}
	_, body = send("POST", "/v1/sessions/"+created.ID+"/login", crashKey, "", `{"customerId":"c"}`)
	var login struct{ Token string }
	json.Unmarshal(body, &login)
	for _, c := range []struct {
		method, path, key, token, body string
		want                           int
	}{
		{"GET", "/v1/sessions/" + created.ID, "wrong-" + crashKey, "", "", 401},
		{"GET", "/v1/sessions/" + created.ID, edgeKey, created.Token, "", 409},
		{"GET", "/v1/sessions/" + created.ID, edgeKey, created.Token[:40] + "AAAA" + created.Token[44:], "", 401},
		{"PATCH", "/v1/sessions/" + created.ID + "/context", edgeKey, created.Token, `{"public":{"a":1}}`, 409},
		{"POST", "/v1/sessions/" + created.ID + "/logout", edgeKey, login.Token, "", 200},
	} {
		if status, b := send(c.method, c.path, c.key, c.token, c.body); status != c.want {
			t.Fatalf("%s %s: %d, want %d: %s", c.method, c.path, status, c.want, b)
		}
	}
	hooks.Wait()
	eventually.True(t, 10*time.Second, "a logged webhook failure", func() bool {
		return strings.Contains(o.Output(), "webhook delivery")
	})
	o.Stop()
	out := o.Output()
	for name, secret := range map[string]string{
		"app key": crashKey, "edge key": edgeKey, "webhook secret": webhookSecret, "token key": tokenKey,
		"token key (url)": base64.RawURLEncoding.EncodeToString(tokenSecret), "URL password": "pw-in-url",
		"token": created.Token, "login token": login.Token,
	} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds the %s:\n%s", name, out)
		}
	}
	if len(created.Token) != wire.TokenLen || !strings.Contains(out, "origin serving") {
		t.Fatalf("the test did not run as meant: token %q, log:\n%s", created.Token, out)
	}
}
