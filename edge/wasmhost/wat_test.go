package wasmhost_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestConformanceWasmMatchesWat checks that the committed conformance.wasm is
// the assembly of conformance.wat.
func TestConformanceWasmMatchesWat(t *testing.T) {
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Skip("wat2wasm not installed (apt-get install wabt); cannot check conformance.wasm against its source")
	}
	out := filepath.Join(t.TempDir(), "conformance.wasm")
	if b, err := exec.Command(wat2wasm, "../testdata/conformance.wat", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../testdata/conformance.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("edge/testdata/conformance.wasm is stale: run wat2wasm edge/testdata/conformance.wat -o edge/testdata/conformance.wasm")
	}
}
