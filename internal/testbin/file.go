package testbin

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteFile writes content to a file called name in a new temporary
// directory of the test, readable by its owner only (0600, as configuration
// holding secrets must be), and returns its path.
func WriteFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
