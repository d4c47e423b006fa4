package testenv

import (
	"fmt"
	"os"
	"os/exec"
)

// NewBinDir makes a fresh directory for the binaries a TestMain builds before the tests, mode
// 0755 so that the PostgreSQL account the tests may run as can run them. The caller removes it.
func NewBinDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", fmt.Errorf("while making a directory for test binaries: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("while opening %s to the PostgreSQL account: %w", dir, err)
	}
	return dir, nil
}

// GoBuild runs `go build -o out pkg` in the module root root; the error holds go's output.
func GoBuild(root, out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}
