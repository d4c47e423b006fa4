package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// DataDir returns an empty directory to hold a data directory: mode 0700, owned by u, removed
// when the test ends.
func (u PGUser) DataDir(t testing.TB) string {
	t.Helper()
	d := filepath.Join(u.TempDir(t), "data")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	u.Chown(t, d)
	return d
}
