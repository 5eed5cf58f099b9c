package caddy

import (
	"bufio"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/internal/testbin"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDemoWithCaddy runs `EDGE=caddy make demo`'s script with free ports:
// the storefront answers through Caddy and the filter, the Caddyfile and
// Caddy's log hold no secret, and Ctrl-C stops everything with status 0.
func TestDemoWithCaddy(t *testing.T) {
	root := testbin.ModuleRoot(t)
	tmp := t.TempDir()
	demoDir := filepath.Join(tmp, "demo")
	cmd := exec.Command(filepath.Join(root, "scripts", "demo.sh"))
	cmd.Env = append(os.Environ(), "EDGE=caddy", "DEMO_DIR="+demoDir, "BUILD_DIR="+filepath.Join(tmp, "build"))
	ports := map[string]string{}
	for _, name := range []string{"EDGE_PORT", "ORIGIN_PORT", "APP_PORT", "EDGE_ADMIN_PORT", "ORIGIN_ADMIN_PORT"} {
		addr := testbin.FreeAddr(t)
		ports[name] = addr[strings.LastIndexByte(addr, ':')+1:]
		cmd.Env = append(cmd.Env, name+"="+ports[name])
	}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, as a shell runs a job; SIGINT handled by Go
	// while it starts, so the script does not inherit it ignored.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT)
	err := cmd.Start()
	signal.Stop(sigs)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	t.Cleanup(func() {
		if !exited {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("demo output:\n%s", out.String())
			if b, err := os.ReadFile(filepath.Join(demoDir, "edge.log")); err == nil {
				t.Logf("edge.log (Caddy):\n%s", b)
			}
		}
	})
	deadline := time.Now().Add(10 * time.Minute)
	for !strings.Contains(out.String(), "sessionedge demo is running") {
		select {
		case err := <-done:
			exited = true
			t.Fatalf("the demo exited (%v) before it ran", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the demo did not start within 10 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "(Caddy with proxy_wasm)") {
		t.Fatalf("the demo does not say it runs Caddy:\n%s", out.String())
	}

	b := newBrowser("http://127.0.0.1:" + ports["EDGE_PORT"])
	s := b.session(t)
	if s.Kind != "anonymous" || s.Source != "new" || b.cookie("__Host-sid") == nil {
		t.Fatalf("first visit through Caddy: %+v", s)
	}
	if p := b.post(t, "/login", url.Values{"customer": {"alice"}}); p.Status != 200 {
		t.Fatalf("login: %d %s", p.Status, p.Body)
	}
	if after := b.session(t); after.ID != s.ID || after.Customer != "alice" || after.Generation != 2 {
		t.Fatalf("after login: %+v", after)
	}

	secrets := map[string]string{}
	f, err := os.Open(filepath.Join(demoDir, "secrets.env"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && v != "" {
			secrets[k] = v
		}
	}
	f.Close()
	if len(secrets) == 0 {
		t.Fatal("no secrets in secrets.env")
	}
	caddyfile := filepath.Join(demoDir, "Caddyfile")
	st, err := os.Stat(caddyfile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("Caddyfile: %v, %v; want 0600", st, err)
	}
	cf, _ := os.ReadFile(caddyfile)
	for name, v := range secrets {
		if strings.Contains(string(cf), v) {
			t.Errorf("the Caddyfile holds %s", name)
		}
	}

	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	select {
	case err := <-done:
		exited = true
		if err != nil {
			t.Fatalf("after Ctrl-C the demo exited with %v, want status 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not stop within 30s of Ctrl-C")
	}
	log, err := os.ReadFile(filepath.Join(demoDir, "edge.log"))
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range secrets {
		if strings.Contains(string(log), v) {
			t.Errorf("Caddy's log shows %s", name)
		}
	}
}
