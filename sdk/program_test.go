package sdk_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/sdk"
)

func TestClusterProgram(t *testing.T) {
	path := t.TempDir()
	if err := os.WriteFile(filepath.Join(path, "initdb"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", path)

	if p, err := (sdk.Cluster{BinDir: "/usr/lib/postgresql/15/bin"}).Program("pg_basebackup"); err != nil || p != "/usr/lib/postgresql/15/bin/pg_basebackup" {
		t.Errorf("with bin_dir: %q, %v; want the program in bin_dir", p, err)
	}
	if p, err := (sdk.Cluster{}).Program("initdb"); err != nil || p != filepath.Join(path, "initdb") {
		t.Errorf("without bin_dir: %q, %v; want the program found in PATH", p, err)
	}
	p, err := (sdk.Cluster{}).Program("pg_basebackup")
	if !errors.Is(err, exec.ErrNotFound) || !strings.Contains(err.Error(), "looking for pg_basebackup (postgresql.bin_dir is not set)") {
		t.Errorf("a program missing from PATH: error %v, want exec.ErrNotFound saying what was looked for", err)
	}
	if p != "pg_basebackup" {
		t.Errorf("a program missing from PATH gives %q, want its name", p)
	}
}
