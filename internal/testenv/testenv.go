// Package testenv decides what a test does when a tool it needs is not
// installed: on a developer's machine it skips with the command that
// installs the tool; where SESSIONEDGE_REQUIRE asks for the tool (CI sets
// it to "all"), it fails, so a broken setup cannot pass as a green run
// with tests quietly skipped.
package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// RequireEnv names the variable that turns skips into failures: "all", or
// a comma-separated list of tool names ("redis-server,chromium").
const RequireEnv = "SESSIONEDGE_REQUIRE"

// Required reports whether SESSIONEDGE_REQUIRE asks for tool.
func Required(tool string) bool {
	for _, r := range strings.Split(os.Getenv(RequireEnv), ",") {
		if r = strings.TrimSpace(r); r == "all" || r == tool {
			return true
		}
	}
	return false
}

// Tool returns the path of the executable tool, found on PATH. When it is
// missing the test skips, saying how to install it, or fails when the tool
// is required.
func Tool(t testing.TB, tool, install string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err == nil {
		return path
	}
	Missing(t, tool, tool+" is not on PATH (install: "+install+")")
	return ""
}

// Missing skips the test, or fails it when tool is required, with why.
func Missing(t testing.TB, tool, why string) {
	t.Helper()
	if Required(tool) {
		t.Fatalf("%s; %s=%s requires it", why, RequireEnv, os.Getenv(RequireEnv))
	}
	t.Skip(why)
}
