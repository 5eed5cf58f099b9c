package sdktest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// OriginConfig configures an origin started by StartOrigin. The zero value
// of each field means its default.
type OriginConfig struct {
	// APIKeys maps API keys to their scopes. Default: none.
	APIKeys map[string][]string
	// Keys are the token signing secrets by key id, and ActiveKey the id
	// that signs. Default: one random key, id 1. The edge must hold the same.
	Keys      map[uint8][]byte
	ActiveKey uint8
	// SharedSecret derives shared session ids. Default: random.
	SharedSecret []byte
	// WebhookURL receives the start and end webhooks; WebhookSecret signs
	// them. Default: no webhooks.
	WebhookURL, WebhookSecret string
	// AnonymousIdle is the idle timeout of anonymous sessions, as a Go
	// duration ("2s"). Default: the origin's.
	AnonymousIdle string
}

// Origin is a running origin process.
type Origin struct {
	*Process
	URL string // e.g. "http://127.0.0.1:41234"
	Cfg OriginConfig
}

// RandomSecret returns 32 random bytes.
func RandomSecret() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// StartOrigin builds the origin of this repository (./origin/cmd/origin) and
// starts it with an embedded store in a temporary directory on a free
// loopback port. The test skips when the origin is not in this tree. It
// fills in cfg's defaults, so the caller can read the keys back from
// Origin.Cfg.
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
	var apiKeys []map[string]any
	for k, scopes := range cfg.APIKeys {
		apiKeys = append(apiKeys, map[string]any{"name": k, "key": k, "scopes": scopes})
	}
	// The origin's configuration file (origin/server.Config).
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
		doc["webhook"] = map[string]any{"url": cfg.WebhookURL, "secret": cfg.WebhookSecret, "maxBackoff": "1s"}
	}
	if cfg.AnonymousIdle != "" {
		doc["timeouts"] = map[string]any{"anonymous": map[string]any{"idle": cfg.AnonymousIdle}}
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	path := filepath.Join(dir, "origin.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p := Start(t, Cmd{Name: "origin", Path: bin, Args: []string{"-config", path}, Dir: dir, Ready: "http://" + admin + "/readyz"})
	return &Origin{Process: p, URL: "http://" + addr, Cfg: cfg}
}
