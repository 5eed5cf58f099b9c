package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/edge/proxy"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "edge.json")
	if err := os.WriteFile(file, []byte(`{
		"listen": ":9000", "upstream": "127.0.0.1:1", "vms": 3,
		"clusters": {"origin": "127.0.0.1:2"},
		"plugin_config": {"keys": {"1": "x"}},
		"upstream_timeout": "3s"
	}`), 0o600); err != nil {
		t.Fatal(err)
	}
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
		check func(t *testing.T, c proxy.Config)
	}{
		{"file only", []string{"-config", file}, func(t *testing.T, c proxy.Config) {
			if c.Listen != ":9000" || c.Clusters["origin"] != "127.0.0.1:2" || string(c.PluginConfig) != `{"keys": {"1": "x"}}` ||
				time.Duration(c.UpstreamTimeout) != 3*time.Second {
				t.Errorf("%+v", c)
			}
		}},
		{"env over file, flags over env", []string{"-config", file, "-vms", "7", "-plugin-config", `{"a":1}`, "-admin", "-"}, func(t *testing.T, c proxy.Config) {
			if c.Upstream != "127.0.0.1:3" || c.VMs != 7 || !c.FailOpen || c.Admin != "-" || string(c.PluginConfig) != `{"a":1}` {
				t.Errorf("%+v", c)
			}
			if c.Clusters["origin"] != "127.0.0.1:2" || c.Clusters["extra"] != "127.0.0.1:4" {
				t.Errorf("clusters = %v", c.Clusters)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := func(string) string { return "" }
			if tt.name != "file only" {
				g = getenv
			}
			c, err := loadConfig(tt.args, g)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	none := func(string) string { return "" }
	for _, args := range [][]string{
		{"-plugin-config", "{not json"},
		{"-clusters", "noequals"},
		{"-config", "/does/not/exist.json"},
		{"-no-such-flag"},
	} {
		if _, err := loadConfig(args, none); err == nil {
			t.Errorf("loadConfig(%q) = nil error", args)
		}
	}
}
