package testenv

import "testing"

func TestRequired(t *testing.T) {
	for _, tt := range []struct {
		env, tool string
		want      bool
	}{
		{"", "redis-server", false},
		{"all", "redis-server", true},
		{"chromium, redis-server", "redis-server", true},
		{"chromium", "redis-server", false},
	} {
		t.Setenv(RequireEnv, tt.env)
		if got := Required(tt.tool); got != tt.want {
			t.Errorf("%s=%q: Required(%q) = %v", RequireEnv, tt.env, tt.tool, got)
		}
	}
}

func TestToolFound(t *testing.T) {
	t.Setenv(RequireEnv, "all")
	if Tool(t, "sh", "apt-get install dash") == "" {
		t.Fatal("sh not found")
	}
}
