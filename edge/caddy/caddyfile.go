package caddy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	caddy2 "github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("proxy_wasm", parseCaddyfile)
	// The filter sees a request before the handlers that answer it and
	// their response after them; the Caddyfile's order option moves it.
	httpcaddyfile.RegisterDirectiveOrder("proxy_wasm", httpcaddyfile.Before, "reverse_proxy")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var m Handler
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return &m, err
}

// placeholderOnly matches a token that is one placeholder, such as
// {env.PLUGIN_CONFIG} or {file./run/secrets/plugin.json}.
var placeholderOnly = regexp.MustCompile(`^\{[^{}"\s]+\}$`)

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	proxy_wasm [<matcher>] {
//		wasm                <module.wasm>
//		plugin_config       <json or placeholder>
//		plugin_config_file  <path>
//		vm_config           <text>
//		plugin_name         <name>
//		root_id             <id>
//		vm_id               <id>
//		vms                 <n>
//		cluster             <name> <host:port>
//		fail_open
//		strip_prefixes      <prefix...>
//		filter_timeout      <duration>
//		max_call_timeout    <duration>
//		max_calls_in_flight <n>
//		max_request_buffer  <size>
//		max_response_buffer <size>
//		compilation_cache   <dir>
//	}
//
// A JSON plugin configuration is one token: quote it with backticks or
// give it as a heredoc. Errors name the subdirective.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive's name
	if d.NextArg() {
		// A path would be read as a path matcher: the module goes in the
		// block.
		return d.Errf("proxy_wasm: the module goes in the block (wasm <path>), not %q", d.Val())
	}
	// The subdirectives that take one text value, and where it goes.
	text := map[string]*string{"wasm": &h.Wasm, "plugin_config_file": &h.PluginConfigFile, "vm_config": &h.VMConfig,
		"plugin_name": &h.PluginName, "root_id": &h.RootID, "vm_id": &h.VMID, "compilation_cache": &h.CompilationCache}
	counts := map[string]*int{"vms": &h.VMs, "max_calls_in_flight": &h.MaxCallsInFlight}
	durations := map[string]*caddy2.Duration{"filter_timeout": &h.FilterTimeout, "max_call_timeout": &h.MaxCallTimeout}
	sizes := map[string]*int{"max_request_buffer": &h.MaxRequestBuffer, "max_response_buffer": &h.MaxResponseBuffer}
	for d.NextBlock(0) {
		sub := d.Val()
		one := func(dst *string) error {
			if !d.NextArg() {
				return d.Errf("%s: want one value", sub)
			}
			*dst = d.Val()
			if d.NextArg() {
				return d.Errf("%s: want one value, got more", sub)
			}
			return nil
		}
		if dst := text[sub]; dst != nil {
			if err := one(dst); err != nil {
				return err
			}
			continue
		}
		var v string
		switch sub {
		case "plugin_config":
			if err := one(&v); err != nil {
				return err
			}
			raw, err := pluginConfigToken(v)
			if err != nil {
				return d.Errf("plugin_config: %v", err)
			}
			h.PluginConfig = raw
		case "vms", "max_calls_in_flight":
			if err := one(&v); err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return d.Errf("%s: %q is not a count", sub, v)
			}
			*counts[sub] = n
		case "cluster":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("cluster: want <name> <host:port>")
			}
			if h.Clusters == nil {
				h.Clusters = map[string]string{}
			}
			if _, dup := h.Clusters[args[0]]; dup {
				return d.Errf("cluster: %s given twice", args[0])
			}
			h.Clusters[args[0]] = args[1]
		case "fail_open":
			if d.NextArg() {
				return d.Errf("fail_open: takes no value")
			}
			h.FailOpen = true
		case "strip_prefixes":
			h.StripPrefixes = d.RemainingArgs()
			if len(h.StripPrefixes) == 0 {
				return d.Errf("strip_prefixes: want at least one prefix")
			}
		case "filter_timeout", "max_call_timeout":
			if err := one(&v); err != nil {
				return err
			}
			dur, err := caddy2.ParseDuration(v)
			if err != nil {
				return d.Errf("%s: %v", sub, err)
			}
			*durations[sub] = caddy2.Duration(dur)
		case "max_request_buffer", "max_response_buffer":
			if err := one(&v); err != nil {
				return err
			}
			n, err := humanize.ParseBytes(v)
			if err != nil || n > 1<<40 {
				return d.Errf("%s: %q is not a size (8MiB, 1048576)", sub, v)
			}
			*sizes[sub] = int(n)
		default:
			return d.Errf("unrecognized proxy_wasm subdirective %q", sub)
		}
	}
	if err := h.checkFields(); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

// pluginConfigToken turns the plugin_config token into the JSON field: a
// JSON value as it is, and anything else (a placeholder, a configuration
// that is not JSON) as a JSON string. A token that looks like JSON and is
// not is an error here, at adaptation, rather than a filter refusing it.
func pluginConfigToken(v string) (json.RawMessage, error) {
	t := strings.TrimSpace(v)
	if json.Valid([]byte(t)) && !strings.HasPrefix(t, `"`) {
		return json.RawMessage(t), nil
	}
	if (strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[")) && !placeholderOnly.MatchString(t) {
		return nil, fmt.Errorf("not valid JSON: %w", jsonError([]byte(t)))
	}
	b, _ := json.Marshal(v)
	return b, nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
