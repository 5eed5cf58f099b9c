package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/origin/server"
)

// TestConfigReferenceDecodes keeps the configuration example of
// docs/operations.md true to the code: it decodes strictly (every key is
// one the origin knows) and spells the defaults the code applies to the
// fields added last.
func TestConfigReferenceDecodes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "## Configuration file (JSON)")
	if i < 0 {
		t.Fatal("docs/operations.md has no configuration section")
	}
	doc = doc[i:]
	start := strings.Index(doc, "```json\n")
	end := strings.Index(doc[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("no JSON example in the configuration section")
	}
	example := doc[start+8 : start+8+end]
	var fc fileConfig
	if err := server.DecodeConfig([]byte(example), &fc); err != nil {
		t.Fatalf("the documented example does not decode: %v", err)
	}
	tm := fc.Timeouts
	if tm.Anonymous.MaxIdle != server.Duration(4*time.Hour) || tm.Anonymous.MaxHard != server.Duration(96*time.Hour) ||
		tm.Customer.MaxIdle != server.Duration(2*time.Hour) || tm.Customer.MaxHard != server.Duration(24*time.Hour) ||
		!tm.Shared.MaxIdle.IsNone() || fc.Webhook.ChangedWindow != server.Duration(5*time.Second) ||
		fc.CustomerSessions.OnLimit != server.OnLimitEvictOldest || len(fc.APIKeys[1].SelfServiceFields) != 4 {
		t.Fatalf("the example does not show the defaults: %+v %+v %+v", tm, fc.Webhook, fc.CustomerSessions)
	}
	if got := fc.TombstoneTTL(); got != 96*time.Hour {
		t.Fatalf("TombstoneTTL of the example: %v", got)
	}
}
