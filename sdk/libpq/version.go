package libpq

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// BinVersion runs binDir/postgres --version (postgres in PATH when binDir is empty) and
// returns the version as server_version_num does: 15.18 is 150018, 9.6.24 is 90624, 16beta2
// is 160000.
func BinVersion(ctx context.Context, binDir string) (num int, err error) {
	bin := filepath.Join(binDir, "postgres")
	cmd := exec.CommandContext(ctx, bin, "--version")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("while running %s --version: %w: %s", bin, err, strings.TrimSpace(stderr.String()))
	}
	num, err = ParseServerVersion(string(out))
	if err != nil {
		return 0, fmt.Errorf("while reading the output of %s --version: %w", bin, err)
	}
	return num, nil
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(?:\.(\d+))?`)

// ParseServerVersion turns the output of postgres --version ("postgres (PostgreSQL) 15.18
// (Debian 15.18-0+deb12u1)") into a server_version_num (150018). Versions before 10 have three
// parts (9.6.24 is 90624); development versions count as .0 (16beta2 is 160000).
func ParseServerVersion(s string) (int, error) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("no PostgreSQL version in %q", strings.TrimSpace(s))
	}
	part := func(i int) int {
		n, _ := strconv.Atoi(m[i])
		return n
	}
	major, minor, patch := part(1), part(2), part(3)
	if major >= 10 {
		return major*10000 + minor, nil
	}
	return major*10000 + minor*100 + patch, nil
}
