package caddy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessionedge/sessionedge/internal/testbin"
)

// TestCaddyValidate runs the built Caddy's validate command on broken
// configurations: each fails, naming the field at fault.
func TestCaddyValidate(t *testing.T) {
	caddyBin := testbin.Build(t, "./edge/cmd/caddy")
	wasm := testbin.BuildWasm(t, "./wasm")
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodPlugin := `{"keys": {"1": "c2Vzc2lvbmVkZ2UtZXhhbXBsZS1rZXktMzItYnl0ZXMhIQ=="}, "origin": {"cluster": "origin"}}`
	caddyfile := func(handler string) string {
		return "{\n\tadmin off\n}\nhttp://:8080 {\n\tproxy_wasm {\n" + handler + "\n\t}\n\treverse_proxy 127.0.0.1:8082\n}\n"
	}
	for _, tc := range []struct {
		name, config, adapter string
		want                  string // in the output; "" means valid
	}{
		{"valid", caddyfile("wasm " + wasm + "\nplugin_config `" + goodPlugin + "`\ncluster origin 127.0.0.1:8081"), "caddyfile", ""},
		{"missing wasm file", caddyfile("wasm " + filepath.Join(dir, "none.wasm") + "\nplugin_config `" + goodPlugin + "`"), "caddyfile",
			"proxy_wasm: wasm: open " + filepath.Join(dir, "none.wasm") + ": no such file or directory"},
		{"no wasm", caddyfile("plugin_config `" + goodPlugin + "`"), "caddyfile", "wasm: required"},
		{"bad inline JSON", caddyfile("wasm " + wasm + "\nplugin_config `{\"keys\": {\"1\": \"x\"}`"), "caddyfile",
			"plugin_config: not valid JSON: unexpected end of JSON input"},
		{"bad JSON in plugin_config_file", caddyfile("wasm " + wasm + "\nplugin_config_file " + file("bad.json", `{"keys": [}`)), "caddyfile",
			"plugin_config_file: not valid JSON: invalid character '}'"},
		{"missing plugin_config_file", caddyfile("wasm " + wasm + "\nplugin_config_file " + filepath.Join(dir, "none.json")), "caddyfile",
			"plugin_config_file: open " + filepath.Join(dir, "none.json")},
		{"configuration the filter refuses", caddyfile("wasm " + wasm + "\nplugin_config `{\"keys\": {\"1\": \"c2Vzc2lvbmVkZ2UtZXhhbXBsZS1rZXktMzItYnl0ZXMhIQ==\"}, \"cookie\": {\"sameSite\": \"Sometimes\"}}`"), "caddyfile",
			`plugin_config: the filter rejected its configuration: sessionedge: invalid plugin configuration: config: cookie.sameSite`},
		{"unknown subdirective", caddyfile("wasm " + wasm + "\nvm_count 2"), "caddyfile", `unrecognized proxy_wasm subdirective \"vm_count\"`},
		{"bad JSON through a placeholder (JSON config)", `{"apps": {"http": {"servers": {"s": {"listen": [":8080"], "routes": [{"handle": [
			{"handler": "proxy_wasm", "wasm": "` + wasm + `", "plugin_config": "{file.` + file("broken.json", `{"keys": `) + `}"}]}]}}}}}`, "",
			"plugin_config: not valid JSON"},
		{"bad cluster (JSON config)", `{"apps": {"http": {"servers": {"s": {"listen": [":8080"], "routes": [{"handle": [
			{"handler": "proxy_wasm", "wasm": "` + wasm + `", "clusters": {"origin": "8081"}}]}]}}}}}`, "",
			`clusters: origin: address \"8081\": want host:port`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := file("config", tc.config)
			args := []string{"validate", "--config", path}
			if tc.adapter != "" {
				args = append(args, "--adapter", tc.adapter)
			}
			cmd := exec.Command(caddyBin, args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
			out, err := cmd.CombinedOutput()
			if tc.want == "" {
				if err != nil || !strings.Contains(string(out), "Valid configuration") {
					t.Fatalf("validate: %v\n%s", err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("validate accepted it:\n%s", out)
			}
			// Caddy logs the error as JSON: quotes come escaped.
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("validate says\n%s\nwant it to say %q", out, tc.want)
			}
		})
	}
}
