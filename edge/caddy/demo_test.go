package caddy

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/internal/testbin"
)

// TestDemoWithCaddy runs `EDGE=caddy make demo`'s script with free ports:
// the storefront answers through Caddy and the filter, the Caddyfile and
// Caddy's log hold no secret, and Ctrl-C stops everything with status 0.
func TestDemoWithCaddy(t *testing.T) {
	d := testbin.StartDemo(t, map[string]string{"EDGE": "caddy"})
	d.WaitFor(t, "sessionedge demo is running", 10*time.Minute)
	if !strings.Contains(d.Output(), "(Caddy with proxy_wasm)") {
		t.Fatalf("the demo does not say it runs Caddy:\n%s", d.Output())
	}

	b := newBrowser(d.URL("EDGE_PORT"))
	s := b.session(t)
	if s.Kind != "anonymous" || s.Source != "new" || b.HTTPCookie("__Host-sid") == nil {
		t.Fatalf("first visit through Caddy: %+v", s)
	}
	if p := b.Post(t, "/login", url.Values{"customer": {"alice"}}); p.Status != 200 {
		t.Fatalf("login: %d %s", p.Status, p.Body)
	}
	if after := b.session(t); after.ID != s.ID || after.Customer != "alice" || after.Generation != 2 {
		t.Fatalf("after login: %+v", after)
	}

	secrets := d.Secrets(t)
	caddyfile := filepath.Join(d.Dir, "Caddyfile")
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

	if err := d.Interrupt(t); err != nil {
		t.Fatalf("after Ctrl-C the demo exited with %v, want status 0", err)
	}
	log, err := os.ReadFile(filepath.Join(d.Dir, "edge.log"))
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range secrets {
		if strings.Contains(string(log), v) {
			t.Errorf("Caddy's log shows %s", name)
		}
	}
}
