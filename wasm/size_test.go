//go:build !wasip1

package main_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// maxModuleBytes bounds the module that make wasm builds (Go,
// -trimpath -ldflags=-s); docs/benchmarks.md "Guest filter" says what it
// holds and what was taken out to stay under it.
const maxModuleBytes = 3_000_000

// TestModuleSize fails when the module grows past maxModuleBytes.
func TestModuleSize(t *testing.T) {
	info, err := os.Stat(buildModule(t))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.Size(); n > maxModuleBytes {
		t.Fatalf("the module is %d bytes, over the bound of %d by %d (docs/benchmarks.md, Guest filter, lists what was removed to fit)",
			n, maxModuleBytes, n-maxModuleBytes)
	} else {
		t.Logf("module: %d bytes (bound %d)", n, maxModuleBytes)
	}
}

// TestGuestImports keeps the standard library packages that cost the module
// most and that the guest does without out of its dependencies: time (whose
// initialisation links godebug, bisect and syscall), fmt, os, crypto and
// math/big.
func TestGuestImports(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "time" || pkg == "fmt" || pkg == "os" || pkg == "math/big" || pkg == "crypto" || strings.HasPrefix(pkg, "crypto/") {
			t.Errorf("the guest depends on %s", pkg)
		}
	}
}
