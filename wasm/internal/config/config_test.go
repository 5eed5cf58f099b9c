package config

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

const key = `{"keys":{"1":"c2Vzc2lvbmVkZ2UtZXhhbXBsZS1rZXktMzItYnl0ZXMhIQ=="}`

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(key + `}`))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"cookie", c.Cookie == Cookie{Name: "__Host-sid", Path: "/", HTTPOnly: true, Secure: true, SameSite: "Lax"}},
		{"active key", c.Keyring.Active() == 1},
		{"anonymous", c.Kinds[wire.KindAnonymous] == KindPolicy{Idle: time.Hour, Hard: 24 * time.Hour, OnIdle: IdleEnd}},
		{"customer", c.Kinds[wire.KindCustomer] == KindPolicy{Idle: 30 * time.Minute, Hard: 6 * time.Hour, OnIdle: IdleSoftLogout}},
		{"shared", c.Kinds[wire.KindShared] == KindPolicy{}},
		{"origin", c.Origin == Origin{Cluster: "origin", Authority: "origin", TimeoutMs: 2000}},
		{"sync", c.SyncInterval == time.Second && c.SyncLimit == 1000},
		{"cache", c.CacheEntries == 10000 && c.CacheBytes == 32<<20 && c.TokenEntries == 10000},
		{"fail open", !c.FailClosed},
		{"prefix", c.SelfServicePrefix == "/.session/"},
		{"forward all", c.Forward == wire.AllNamespaces},
		{"no token header", c.TokenRequest == "" && c.TokenResponse == ""},
		{"limits", c.Limits == wire.DefaultLimits},
		{"single writes", c.SingleHeaderWrites},
	}
	for _, ch := range checks {
		t.Run(ch.name, func(t *testing.T) {
			if !ch.ok {
				t.Fatalf("default %s wrong: %+v", ch.name, c)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	c, err := Parse([]byte(key + `,"sessions":{"anonymous":{"idle":900,"hard":"none"}},"sites":{"Shop.Example.COM":{"currency":"EUR"}},` +
		`"tokenHeader":{"request":"SessionEdge-Token"},"forwardNamespaces":["public"],"failMode":"closed"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kinds[wire.KindAnonymous].Idle != 15*time.Minute || c.Kinds[wire.KindAnonymous].Hard != 0 {
		t.Fatalf("anonymous %+v", c.Kinds[wire.KindAnonymous])
	}
	if c.Site([]byte("shop.example.com:443")).Currency != "EUR" || c.Site([]byte("other")).Currency != "" {
		t.Fatal("site lookup ignores case or port")
	}
	if c.TokenRequest != "sessionedge-token" || c.TokenResponse != "sessionedge-token" {
		t.Fatalf("token headers %q %q", c.TokenRequest, c.TokenResponse)
	}
	if c.Forward != 1<<wire.NamespacePublic || !c.FailClosed {
		t.Fatalf("forward %b, fail closed %v", c.Forward, c.FailClosed)
	}
}

// TestDocExample parses the complete configuration of docs/filter.md, so the
// documentation cannot drift from the parser.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/filter.md")
	if err != nil {
		t.Skip("docs/filter.md not found:", err)
	}
	_, rest, ok := strings.Cut(string(doc), "```json\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no json block in docs/filter.md")
	}
	if _, err := Parse([]byte(block)); err != nil {
		t.Fatalf("the documented configuration does not parse: %v", err)
	}
}
