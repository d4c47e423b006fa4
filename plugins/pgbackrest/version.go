package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
)

// versionLine matches `postgres --version`: "postgres (PostgreSQL) 15.8 (Debian 15.8-1.pgdg120+1)".
var versionLine = regexp.MustCompile(`\(PostgreSQL\) ([0-9]+)(?:\.([0-9]+))?`)

// serverVersion asks binDir's postgres for its version and returns it as server_version_num
// counts major versions (150000, 90600).
func serverVersion(ctx context.Context, binDir string) (int, error) {
	prog := "postgres"
	if binDir != "" {
		prog = filepath.Join(binDir, "postgres")
	}
	out, err := exec.CommandContext(ctx, prog, "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("while asking %s for its version: %w", prog, err)
	}
	return parseServerVersion(string(out))
}

func parseServerVersion(s string) (int, error) {
	m := versionLine.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("cannot read a PostgreSQL version from %q", s)
	}
	major, _ := strconv.Atoi(m[1])
	if major >= 10 {
		return major * 10000, nil
	}
	minor, _ := strconv.Atoi(m[2])
	return major*10000 + minor*100, nil
}
