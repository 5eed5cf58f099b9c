package testbin

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// APIKey is an API key of the origin.
type APIKey struct {
	Name   string   // for the origin's logs and metrics; never the key
	Key    string   // the Bearer token
	Scopes []string // "sessions:read", "sessions:write", "sessions:admin", "edge:sync", "edge:selfservice"
}

// OriginConfig configures an origin started by StartOrigin. The zero value
// of each field means its default.
type OriginConfig struct {
	// APIKeys are the origin's API keys. Without any, the origin runs with
	// "insecure": true, its API open to anyone who reaches it.
	APIKeys []APIKey
	// Keys are the token signing secrets by key id, and ActiveKey the id
	// that signs. Default: one random key, id 1. The edge must hold the same.
	Keys      map[uint8][]byte
	ActiveKey uint8
	// SharedSecret derives shared session ids. Default: random.
	SharedSecret []byte
	// WebhookURL receives the session webhooks; WebhookSecret signs them.
	// Default: no webhooks.
	WebhookURL    string
	WebhookSecret []byte
	// AnonymousIdle is the idle timeout of anonymous sessions, as a Go
	// duration ("2s"). Default: the origin's.
	AnonymousIdle string
	// Extra holds more top-level fields of the configuration file, set
	// last (json.RawMessage values go in as written).
	Extra map[string]any
}

// Origin is a running origin process.
type Origin struct {
	*Process
	URL      string // the API, e.g. "http://127.0.0.1:41234"
	AdminURL string // metrics and health checks
	Cfg      OriginConfig
}

// RandomSecret returns 32 random bytes.
func RandomSecret() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// RandomKey returns a random API key with prefix, e.g. "app-3f9a...".
func RandomKey(prefix string) string {
	return prefix + "-" + base64.RawURLEncoding.EncodeToString(RandomSecret()[:18])
}

// StartOrigin builds the origin of this repository (./origin/cmd/origin) and
// starts it with an embedded store in a temporary directory, its API and
// admin listeners on free loopback ports. Secrets go into its configuration
// file (mode 0600), never onto its command line. It fills in cfg's
// defaults, so the caller can read the keys back from Origin.Cfg.
func StartOrigin(t testing.TB, cfg OriginConfig) *Origin {
	t.Helper()
	bin := Build(t, "./origin/cmd/origin")
	if cfg.Keys == nil {
		cfg.Keys = map[uint8][]byte{1: RandomSecret()}
		cfg.ActiveKey = 1
	}
	if cfg.SharedSecret == nil {
		cfg.SharedSecret = RandomSecret()
	}
	dir := t.TempDir()
	addr, admin := FreeAddr(t), FreeAddr(t)
	keys := map[string]string{}
	for id, k := range cfg.Keys {
		keys[strconv.Itoa(int(id))] = base64.StdEncoding.EncodeToString(k)
	}
	apiKeys := []map[string]any{}
	for _, k := range cfg.APIKeys {
		apiKeys = append(apiKeys, map[string]any{"name": k.Name, "key": k.Key, "scopes": k.Scopes})
	}
	// The origin's configuration file (docs/operations.md).
	doc := map[string]any{
		"listen":        addr,
		"admin":         admin,
		"dataDir":       filepath.Join(dir, "data"),
		"tokenKeys":     keys,
		"activeKey":     cfg.ActiveKey,
		"sharedSecret":  base64.StdEncoding.EncodeToString(cfg.SharedSecret),
		"apiKeys":       apiKeys,
		"sweepInterval": "100ms",
	}
	if len(apiKeys) == 0 {
		doc["insecure"] = true // the origin refuses an open API otherwise
	}
	if cfg.WebhookURL != "" {
		doc["webhook"] = map[string]any{"url": cfg.WebhookURL, "secret": string(cfg.WebhookSecret), "maxBackoff": "1s"}
	}
	if cfg.AnonymousIdle != "" {
		doc["timeouts"] = map[string]any{"anonymous": map[string]any{"idle": cfg.AnonymousIdle}}
	}
	for k, v := range cfg.Extra {
		doc[k] = v
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	path := filepath.Join(dir, "origin.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// /openapi.json is public on the API listener, which opens once the
	// store is: the API answering it is the API being ready.
	p := Start(t, Cmd{Name: "origin", Path: bin, Args: []string{"-config", path}, Dir: dir, Ready: "http://" + addr + "/openapi.json"})
	return &Origin{Process: p, URL: "http://" + addr, AdminURL: "http://" + admin, Cfg: cfg}
}
