package caddy

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	caddy2 "github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	in := "proxy_wasm {\n" +
		"\twasm /etc/caddy/sessionedge.wasm\n" +
		"\tplugin_config `{\"keys\": {\"1\": \"{env.TOKEN_KEY}\"}}`\n" +
		"\tvm_config vm\n" +
		"\tplugin_name shop\n" +
		"\troot_id root\n" +
		"\tvm_id shop-vm\n" +
		"\tvms 4\n" +
		"\tcluster origin 127.0.0.1:8081\n" +
		"\tcluster search http://search.internal:9200\n" +
		"\tfail_open\n" +
		"\tstrip_prefixes x-session- x-shop-\n" +
		"\tfilter_timeout 2s\n" +
		"\tmax_call_timeout 1m\n" +
		"\tmax_calls_in_flight 64\n" +
		"\tmax_request_buffer 1MiB\n" +
		"\tmax_response_buffer 2MB\n" +
		"\tcompilation_cache /var/cache/caddy-wasm\n" +
		"}"
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
		t.Fatal(err)
	}
	want := Handler{
		Wasm: "/etc/caddy/sessionedge.wasm", PluginConfig: json.RawMessage(`{"keys": {"1": "{env.TOKEN_KEY}"}}`), VMConfig: "vm",
		PluginName: "shop", RootID: "root", VMID: "shop-vm", VMs: 4,
		Clusters: map[string]string{"origin": "127.0.0.1:8081", "search": "http://search.internal:9200"},
		FailOpen: true, StripPrefixes: []string{"x-session-", "x-shop-"},
		FilterTimeout: caddy2.Duration(2 * time.Second), MaxCallTimeout: caddy2.Duration(time.Minute),
		MaxCallsInFlight: 64, MaxRequestBuffer: 1 << 20, MaxResponseBuffer: 2_000_000,
		CompilationCache: "/var/cache/caddy-wasm",
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("got  %+v\nwant %+v", h, want)
	}

	for _, tc := range []struct {
		name, config string
		want         json.RawMessage
	}{
		{"placeholder", "{env.PLUGIN_CONFIG}", json.RawMessage(`"{env.PLUGIN_CONFIG}"`)},
		{"file placeholder", "{file./run/secrets/plugin.json}", json.RawMessage(`"{file./run/secrets/plugin.json}"`)},
		{"text", "mode=fast", json.RawMessage(`"mode=fast"`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("proxy_wasm {\nwasm f.wasm\nplugin_config " + tc.config + "\n}")); err != nil {
				t.Fatal(err)
			}
			if string(h.PluginConfig) != string(tc.want) {
				t.Fatalf("plugin_config %s, want %s", h.PluginConfig, tc.want)
			}
		})
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct{ name, block, want string }{
		{"positional module", "proxy_wasm f.wasm {\n}", "the module goes in the block"},
		{"no wasm", "proxy_wasm {\n}", "wasm: required"},
		{"bad JSON", "proxy_wasm {\nwasm f.wasm\nplugin_config `{\"keys\": }`\n}", "plugin_config: not valid JSON"},
		{"unknown", "proxy_wasm {\nwasm f.wasm\nvm_count 2\n}", "unrecognized proxy_wasm subdirective"},
		{"vms", "proxy_wasm {\nwasm f.wasm\nvms many\n}", `vms: "many" is not a count`},
		{"cluster arity", "proxy_wasm {\nwasm f.wasm\ncluster origin\n}", "cluster: want <name> <host:port>"},
		{"cluster twice", "proxy_wasm {\nwasm f.wasm\ncluster o a:1\ncluster o b:2\n}", "cluster: o given twice"},
		{"cluster address", "proxy_wasm {\nwasm f.wasm\ncluster o 8081\n}", `clusters: o: address "8081"`},
		{"duration", "proxy_wasm {\nwasm f.wasm\nfilter_timeout soon\n}", "filter_timeout:"},
		{"size", "proxy_wasm {\nwasm f.wasm\nmax_request_buffer lots\n}", "max_request_buffer:"},
		{"fail_open value", "proxy_wasm {\nwasm f.wasm\nfail_open yes\n}", "fail_open: takes no value"},
		{"two values", "proxy_wasm {\nwasm a.wasm b.wasm\n}", "wasm: want one value, got more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.block))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
