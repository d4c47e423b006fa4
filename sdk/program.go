package sdk

import (
	"fmt"
	"os/exec"
	"path/filepath"
)

// Program is the path of the PostgreSQL program name (initdb, pg_basebackup, ...): in BinDir,
// or looked up in PATH when BinDir is not set. When the lookup fails it returns name as it is,
// for a plan to show, with an error that says so.
func (c Cluster) Program(name string) (string, error) {
	if c.BinDir != "" {
		return filepath.Join(c.BinDir, name), nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return name, fmt.Errorf("while looking for %s (postgresql.bin_dir is not set): %w", name, err)
	}
	return p, nil
}
