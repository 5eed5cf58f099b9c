package systemtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessionedge/sessionedge/internal/testbin"
)

// pathWithout returns a PATH that finds every program the current PATH
// finds except tool: a directory of symbolic links to the first program of
// each name.
func pathWithout(t *testing.T, tool string) string {
	t.Helper()
	dir := t.TempDir()
	seen := map[string]bool{tool: true}
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if seen[e.Name()] || e.IsDir() {
				continue
			}
			seen[e.Name()] = true
			if err := os.Symlink(filepath.Join(d, e.Name()), filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// TestMissingToolFailsWhereRequired runs `go test -json` on a package whose
// test needs a tool (edge/wasmhost's TestConformanceWasmMatchesWat needs
// wat2wasm) with a PATH that lacks it, through scripts/testsummary as
// `make test` does. With SESSIONEDGE_REQUIRE=all, as CI sets it, the run
// fails and says which tool is missing and how to install it; without the
// variable the test skips, and the summary lists the skip with the same
// reason.
func TestMissingToolFailsWhereRequired(t *testing.T) {
	const tool, pkg, test = "wat2wasm", "./edge/wasmhost", "^TestConformanceWasmMatchesWat$"
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	summary := testbin.Build(t, "./scripts/testsummary")
	path := pathWithout(t, tool)
	if _, err := os.Stat(filepath.Join(path, tool)); err == nil {
		t.Fatalf("%s still on the stripped PATH", tool)
	}
	run := func(require string) (goErr, summaryErr error, out string) {
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "SESSIONEDGE_REQUIRE=") {
				env = append(env, kv)
			}
		}
		env = append(env, "PATH="+path)
		if require != "" {
			env = append(env, "SESSIONEDGE_REQUIRE="+require)
		}
		gt := exec.Command(goBin, "test", "-count=1", "-json", "-run", test, pkg)
		gt.Dir, gt.Env = testbin.ModuleRoot(t), env
		var stderr bytes.Buffer
		gt.Stderr = &stderr
		js, goErr := gt.Output()
		sm := exec.Command(summary)
		sm.Stdin = bytes.NewReader(js)
		b, summaryErr := sm.CombinedOutput()
		return goErr, summaryErr, stderr.String() + string(b)
	}

	goErr, sumErr, out := run("all")
	want := tool + " is not on PATH (install: apt-get install wabt); SESSIONEDGE_REQUIRE=all requires it"
	if goErr == nil || sumErr == nil || !strings.Contains(out, want) || !strings.Contains(out, "FAIL\tgithub.com/sessionedge/sessionedge/edge/wasmhost") {
		t.Errorf("SESSIONEDGE_REQUIRE=all without %s: go test %v, testsummary %v; want a failure naming the tool (%q):\n%s", tool, goErr, sumErr, want, out)
	}
	report(t, "tool removed, SESSIONEDGE_REQUIRE=all: go test %v; the summary says: %s", goErr, lineWith(out, want))

	goErr, sumErr, out = run("")
	want = "1× " + tool + " is not on PATH (install: apt-get install wabt)"
	if goErr != nil || sumErr != nil || !strings.Contains(out, "skipped 1 tests:") || !strings.Contains(out, want) {
		t.Errorf("without SESSIONEDGE_REQUIRE and %s: go test %v, testsummary %v; want a skip naming the tool (%q):\n%s", tool, goErr, sumErr, want, out)
	}
	report(t, "tool removed, no SESSIONEDGE_REQUIRE: go test passes; the summary says: %s", lineWith(out, want))
}

// lineWith returns the line of out that contains s, trimmed.
func lineWith(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return strings.TrimSpace(l)
		}
	}
	return "(none)"
}
