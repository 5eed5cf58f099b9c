package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/edge/proxy"
	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

func TestLoadConfig(t *testing.T) {
	file := testbin.WriteFile(t, "edge.json", `{
		"listen": ":9000", "upstream": "127.0.0.1:1", "vms": 3,
		"clusters": {"origin": "127.0.0.1:2"},
		"pluginConfig": {"keys": {"1": "x"}},
		"upstreamTimeout": "3s", "filterTimeout": 2, "headerTimeout": 0.5, "idleTimeout": "none",
		"failOpen": false, "maxConnsPerClient": 7
	}`)
	pluginFile := testbin.WriteFile(t, "plugin.json", `{"a":1}`)
	env := map[string]string{
		"EDGE_UPSTREAM":  "127.0.0.1:3",
		"EDGE_CLUSTERS":  "extra=127.0.0.1:4",
		"EDGE_VMS":       "5",
		"EDGE_FAIL_OPEN": "1",
	}
	getenv := func(k string) string { return env[k] }

	tests := []struct {
		name  string
		args  []string
		env   func(string) string
		check func(t *testing.T, c proxy.Config)
	}{
		{"file only", []string{"-config", file}, nil, func(t *testing.T, c proxy.Config) {
			if c.Listen != ":9000" || c.Clusters["origin"] != "127.0.0.1:2" || string(c.PluginConfig) != `{"keys": {"1": "x"}}` ||
				c.UpstreamTimeout.Std() != 3*time.Second || c.MaxConnsPerClient != 7 {
				t.Errorf("%+v", c)
			}
			// A bare number is seconds, as everywhere else.
			if c.FilterTimeout.Std() != 2*time.Second || c.HeaderTimeout.Std() != 500*time.Millisecond || !c.IdleTimeout.IsNone() {
				t.Errorf("durations: filter %v header %v idle %v", c.FilterTimeout, c.HeaderTimeout, c.IdleTimeout)
			}
		}},
		{"env over file, flags over env", []string{"-config", file, "-vms", "7", "-plugin-config-file", pluginFile, "-admin", "-"}, getenv, func(t *testing.T, c proxy.Config) {
			if c.Upstream != "127.0.0.1:3" || c.VMs != 7 || !c.FailOpen || c.Admin != "-" || c.PluginConfigFile != pluginFile {
				t.Errorf("%+v", c)
			}
			if c.Clusters["origin"] != "127.0.0.1:2" || c.Clusters["extra"] != "127.0.0.1:4" {
				t.Errorf("clusters = %v", c.Clusters)
			}
		}},
		{"plugin configuration from the environment", []string{"-upstream", "u:1"}, func(k string) string {
			return map[string]string{"EDGE_PLUGIN_CONFIG": `{"keys":{}}`}[k]
		}, func(t *testing.T, c proxy.Config) {
			if string(c.PluginConfig) != `{"keys":{}}` {
				t.Errorf("plugin config %q", c.PluginConfig)
			}
		}},
		{"no filter needs no plugin configuration", []string{"-upstream", "u:1", "-no-filter"}, nil, func(t *testing.T, c proxy.Config) {
			if !c.NoFilter {
				t.Error("no-filter lost")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := tt.env
			if g == nil {
				g = func(string) string { return "" }
			}
			c, err := loadConfig(tt.args, g, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	none := func(string) string { return "" }
	file := func(content string) string { return testbin.WriteFile(t, "edge.json", content) }
	for _, tt := range []struct {
		args []string
		env  func(string) string
		want string // in the error
	}{
		{[]string{"-plugin-config", `{"keys":{}}`, "-upstream", "u:1"}, none, "flag provided but not defined: -plugin-config"},
		{[]string{"-clusters", "noequals"}, none, `cluster "noequals"`},
		{[]string{"-config", "/does/not/exist.json"}, none, "no such file"},
		{[]string{"-no-such-flag"}, none, "-no-such-flag"},
		{[]string{"-config", file(`{"upstream":"u:1","fail_open":true}`)}, none, "fail_open: unknown field"},
		{[]string{"-config", file(`{"upstream":"u:1","readTimeout":"soon"}`)}, none, "readTimeout: "},
		{[]string{"-config", file(`{"upstream":"u:1","readTimeout":-1}`)}, none, "readTimeout: "},
		{[]string{"-config", file(`{"upstream":"u:1","vms":"two"}`)}, none, "vms: want int"},
		{[]string{"-config", file(`[1]`)}, none, "not a JSON object"},
		{nil, none, `no upstream: set -upstream, env EDGE_UPSTREAM or config key "upstream"`},
		{[]string{"-upstream", "u:1"}, none, `set -plugin-config-file, env EDGE_PLUGIN_CONFIG_FILE or config key "pluginConfigFile"`},
		{[]string{"-upstream", "u:1"}, func(k string) string { return map[string]string{"EDGE_PLUGIN_CONFIG": "{no"}[k] }, "EDGE_PLUGIN_CONFIG is not valid JSON"},
	} {
		_, err := loadConfig(tt.args, tt.env, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("loadConfig(%q) = %v, want an error containing %q", tt.args, err, tt.want)
		}
	}
}

// TestHelp: -h exits 0 (flag.ErrHelp, which main turns into status 0) and
// points at the configuration reference.
func TestHelp(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"-h"}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run(-h) = %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(out.String(), "docs/edge.md") || !strings.Contains(out.String(), "-plugin-config-file") {
		t.Fatalf("usage does not name the reference: %s", out.String())
	}
}

// TestDurationsMatchWire: the edge config reads durations exactly as
// wire.Duration does (a bare number is seconds).
func TestDurationsMatchWire(t *testing.T) {
	for _, v := range []string{`"500ms"`, `"30m"`, `"none"`, `2`, `1.5`, `0`} {
		var w wire.Duration
		if err := w.UnmarshalJSON([]byte(v)); err != nil {
			t.Fatal(err)
		}
		c, err := proxy.LoadConfigFile(testbin.WriteFile(t, "c.json", `{"filterTimeout":`+v+`}`))
		if err != nil {
			t.Fatal(err)
		}
		if c.FilterTimeout != w {
			t.Errorf("%s: edge %v, wire %v", v, c.FilterTimeout, w)
		}
	}
}
