package wasmhost_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sessionedge/sessionedge/internal/testenv"
)

// TestConformanceWasmMatchesWat checks that the committed conformance.wasm is
// the assembly of conformance.wat.
func TestConformanceWasmMatchesWat(t *testing.T) {
	wat2wasm := testenv.Tool(t, "wat2wasm", "apt-get install wabt")
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
