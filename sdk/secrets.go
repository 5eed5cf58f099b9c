package sdk

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// Secrets (API keys, webhook secrets, assertion keys) belong in files or
// the environment, never on a command line, where every user of the machine
// can read them (ps, /proc). The helpers below read them the way every
// program of this repository does: the variable NAME holds the secret, or
// NAME_FILE names a file that holds it (the convention of Docker and
// Kubernetes secrets).

// The environment variables the SDK's helpers and the example apps read.
const (
	EnvAPIKey        = "SESSIONEDGE_API_KEY"        // the app's origin API key
	EnvWebhookSecret = "SESSIONEDGE_WEBHOOK_SECRET" // the secret the origin signs webhooks with
	EnvAssertionKeys = "SESSIONEDGE_ASSERTION_KEYS" // the edge's assertion keys, as ParseAssertionKeys reads them
)

// SecretFromEnv returns the secret of the environment variable name, or the
// contents of the file that name+"_FILE" names, with one trailing newline
// (\n or \r\n) removed. It returns nil and no error when neither is set, and
// an error when both are, or when the file cannot be read. Errors name the
// variable and the file, never the secret.
func SecretFromEnv(name string) ([]byte, error) {
	v, hasVal := os.LookupEnv(name)
	path, hasFile := os.LookupEnv(name + "_FILE")
	switch {
	case hasVal && hasFile && v != "" && path != "":
		return nil, fmt.Errorf("sessionedge: both %s and %s_FILE are set; set one", name, name)
	case hasFile && path != "":
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("sessionedge: %s_FILE: %w", name, err)
		}
		b = bytes.TrimSuffix(b, []byte("\n"))
		b = bytes.TrimSuffix(b, []byte("\r"))
		if len(b) == 0 {
			return nil, fmt.Errorf("sessionedge: %s_FILE: %s is empty", name, path)
		}
		return b, nil
	case v != "":
		return []byte(v), nil
	}
	return nil, nil
}

// ParseAssertionKeys reads assertion keys written as the edge filter's
// "assertion" configuration, so edge and app share one file:
//
//	{"keys": {"1": "<base64 secret of at least 32 bytes>"}, "activeKey": 1}
//
// Every listed key verifies; activeKey is the one the edge signs with (an
// app does not sign, but the value must name a listed key). To rotate, add
// the new key to the apps first, then make it active on the edges, then
// remove the old one everywhere.
func ParseAssertionKeys(data []byte) (*wire.AssertionKeys, error) {
	var doc struct {
		Keys      map[string]string `json:"keys"`
		ActiveKey *int              `json:"activeKey"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("sessionedge: assertion keys: %v", err)
	}
	if dec.More() {
		return nil, errors.New("sessionedge: assertion keys: trailing data after the JSON object")
	}
	if len(doc.Keys) == 0 {
		return nil, errors.New("sessionedge: assertion keys: keys: none listed")
	}
	secrets := make(map[uint8][]byte, len(doc.Keys))
	for id, enc := range doc.Keys {
		n, err := strconv.ParseUint(id, 10, 8)
		if err != nil {
			return nil, fmt.Errorf("sessionedge: assertion keys: keys.%s: a key id is a number 0-255", id)
		}
		secret, err := decodeBase64(enc)
		if err != nil {
			return nil, fmt.Errorf("sessionedge: assertion keys: keys.%s: not base64", id)
		}
		secrets[uint8(n)] = secret
	}
	active := 0
	if doc.ActiveKey != nil {
		active = *doc.ActiveKey
	} else if len(secrets) == 1 {
		for id := range secrets {
			active = int(id)
		}
	} else {
		return nil, errors.New("sessionedge: assertion keys: activeKey: required when several keys are listed")
	}
	if active < 0 || active > 255 {
		return nil, fmt.Errorf("sessionedge: assertion keys: activeKey: %d is not a key id 0-255", active)
	}
	ak, err := wire.NewAssertionKeys(uint8(active), secrets)
	if err != nil {
		return nil, fmt.Errorf("sessionedge: assertion keys: %v", err)
	}
	return ak, nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// AssertionKeysFromEnv reads the assertion keys from SESSIONEDGE_ASSERTION_KEYS
// (the JSON of ParseAssertionKeys) or from the file SESSIONEDGE_ASSERTION_KEYS_FILE
// names. It returns nil and no error when neither is set.
func AssertionKeysFromEnv() (*wire.AssertionKeys, error) {
	b, err := SecretFromEnv(EnvAssertionKeys)
	if err != nil || b == nil {
		return nil, err
	}
	return ParseAssertionKeys(b)
}
