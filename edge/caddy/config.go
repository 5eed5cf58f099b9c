package caddy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	caddy2 "github.com/caddyserver/caddy/v2"
)

// Errors of a configuration that names a field.
var (
	errNoWasm             = errors.New("wasm: required (the path of the filter's .wasm module)")
	errTwoPluginConfigs   = errors.New("plugin_config and plugin_config_file: set one, not both")
	errPluginConfigString = errors.New("plugin_config: a JSON string must hold the configuration or a placeholder that gives it")
)

// checkFields checks the settings that need no I/O. Provision runs it
// first, so a bad value never costs a module compilation; Validate runs it
// again.
func (h *Handler) checkFields() error {
	if strings.TrimSpace(h.Wasm) == "" {
		return errNoWasm
	}
	if len(h.PluginConfig) > 0 && h.PluginConfigFile != "" {
		return errTwoPluginConfigs
	}
	if len(h.PluginConfig) > 0 && !json.Valid(h.PluginConfig) {
		return fmt.Errorf("plugin_config: not valid JSON: %w", jsonError(h.PluginConfig))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"vms", h.VMs}, {"max_calls_in_flight", h.MaxCallsInFlight}, {"max_request_buffer", h.MaxRequestBuffer}, {"max_response_buffer", h.MaxResponseBuffer}} {
		if f.v < 0 {
			return fmt.Errorf("%s: %d is negative", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    caddy2.Duration
	}{{"filter_timeout", h.FilterTimeout}, {"max_call_timeout", h.MaxCallTimeout}} {
		if f.v < 0 {
			return fmt.Errorf("%s: %s is negative", f.name, time.Duration(f.v))
		}
	}
	for name, addr := range h.Clusters {
		if name == "" {
			return errors.New("clusters: a cluster has an empty name")
		}
		if err := checkClusterAddr(addr); err != nil {
			return fmt.Errorf("clusters: %s: %w", name, err)
		}
	}
	for _, p := range h.StripPrefixes {
		if p == "" {
			return errors.New("strip_prefixes: an empty prefix would strip every header")
		}
	}
	return nil
}

// checkClusterAddr accepts "host:port", a URL with a scheme, or a
// placeholder resolved at provisioning.
func checkClusterAddr(addr string) error {
	switch {
	case addr == "":
		return errors.New("empty address (want host:port)")
	case strings.Contains(addr, "://"), strings.HasPrefix(addr, "{"):
		return nil
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return fmt.Errorf("address %q: want host:port", addr)
	}
	return nil
}

// pluginConfig returns the plugin configuration and the field it came
// from. Placeholders ({env.NAME}, {file.PATH}) are resolved here, at
// provisioning, so secrets stay out of the configuration Caddy keeps (and
// serves on its admin API):
//
//   - plugin_config_file: the file's bytes, as they are (its path may hold
//     placeholders);
//   - plugin_config as a JSON object (or any JSON value but a string): that
//     JSON, with the placeholders inside its string values resolved, each
//     encoded as a JSON string;
//   - plugin_config as a JSON string: its text with the placeholders
//     resolved, e.g. "{file./run/secrets/plugin.json}": the configuration
//     need not be JSON, for filters that read another format.
//
// A placeholder that resolves to nothing (an unset variable, a missing
// file) is an error.
func (h *Handler) pluginConfig(repl *caddy2.Replacer) ([]byte, string, error) {
	b, field, err := h.resolvePluginConfig(repl)
	if err != nil {
		return nil, field, err
	}
	// A configuration that starts like JSON must be JSON: say where it
	// breaks before a filter refuses it less precisely.
	if t := bytes.TrimSpace(b); len(t) > 0 && (t[0] == '{' || t[0] == '[') && !json.Valid(t) {
		return nil, field, fmt.Errorf("%s: not valid JSON: %w", field, jsonError(t))
	}
	return b, field, nil
}

func (h *Handler) resolvePluginConfig(repl *caddy2.Replacer) ([]byte, string, error) {
	if h.PluginConfigFile != "" {
		path := repl.ReplaceKnown(h.PluginConfigFile, "")
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, "plugin_config_file", fmt.Errorf("plugin_config_file: %w", err)
		}
		return b, "plugin_config_file", nil
	}
	raw := bytes.TrimSpace(h.PluginConfig)
	if len(raw) == 0 {
		return nil, "plugin_config (none given)", nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, "plugin_config", errPluginConfigString
		}
		out, err := repl.ReplaceOrErr(s, true, false)
		if err != nil {
			return nil, "plugin_config", fmt.Errorf("plugin_config: %w", err)
		}
		return []byte(out), "plugin_config", nil
	}
	out, err := replaceInJSON(raw, repl)
	if err != nil {
		return nil, "plugin_config", fmt.Errorf("plugin_config: %w", err)
	}
	return out, "plugin_config", nil
}

// replaceInJSON resolves the placeholders in the string values of a JSON
// document (never in its keys or structure), so a value that holds quotes
// cannot change the document's shape. Numbers keep their text.
func replaceInJSON(doc []byte, repl *caddy2.Replacer) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	var walk func(v any) (any, error)
	walk = func(v any) (any, error) {
		switch t := v.(type) {
		case string:
			return repl.ReplaceOrErr(t, true, false)
		case map[string]any:
			for k, e := range t {
				r, err := walk(e)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", k, err)
				}
				t[k] = r
			}
		case []any:
			for i, e := range t {
				r, err := walk(e)
				if err != nil {
					return nil, fmt.Errorf("[%d]: %w", i, err)
				}
				t[i] = r
			}
		}
		return v, nil
	}
	v, err := walk(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// jsonError returns the decoding error of an invalid JSON document, with
// the byte offset of the syntax error.
func jsonError(b []byte) error {
	var v any
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w (at byte %d)", err, se.Offset)
	}
	return err
}
