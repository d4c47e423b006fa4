package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/internal/testenv"
)

// TestStandbyClusterRefusesAnotherMajorVersion: the second site's binaries are of another major
// version than the remote (here a bin_dir whose postgres says it is PostgreSQL 16; only 15 is
// installed). The standby leader is refused before anything is copied, with both versions
// named, in the member's published error and in `status`; nothing is bootstrapped, the data
// directory stays empty.
func TestStandbyClusterRefusesAnotherMajorVersion(t *testing.T) {
	a := fileCluster(t)
	a1 := a.member(t, "a1", "")
	startInTurn(t, a1)

	real := testenv.PGBinDir(t)
	bin := binDirWith(t, testenv.PostgresUser(t).TempDir(t), "postgres", fmt.Sprintf(`#!/bin/sh
case "$1" in -V|--version) echo "postgres (PostgreSQL) 16.4"; exit 0;; esac
exec %q "$@"
`, filepath.Join(real, "postgres")))

	b := backend{kind: "file"}.cluster(t, "site-b")
	b.superPass, b.replPass = a.superPass, a.replPass
	b1 := b.member(t, "b1", fmt.Sprintf("standby_cluster {\n  host = \"127.0.0.1\"\n  port = %d\n}\n", a1.port))
	editConfig(t, b1, fmt.Sprintf("bin_dir    = %q", real), fmt.Sprintf("bin_dir    = %q", bin))
	siteB := []*agentProc{b1.start(t)}
	stopAllAtCleanup(t, siteB...)
	msg := waitStandbyFailure(t, b1, siteB, "b1", "PostgreSQL 16")
	if !strings.Contains(msg, "the remote is PostgreSQL 15") {
		t.Errorf("the published error does not name the remote's version: %s", msg)
	}
	if r := run(t, b1.env, "status", "-config", b1.config); !strings.Contains(r.stdout, "PostgreSQL 16") {
		t.Errorf("status does not show the refusal:\n%s", r.stdout)
	}
	out := siteB[0].out.String()
	if strings.Contains(out, "running replica method") || strings.Contains(out, "pg_basebackup") {
		t.Errorf("the remote was copied though its major version differs:\n%s", out)
	}
	if strings.Contains(out, "bootstrapped") || strings.Contains(out, "/initdb") {
		t.Errorf("b1 bootstrapped a cluster of its own:\n%s", out)
	}
	if entries, _ := os.ReadDir(b1.dataDir); len(entries) > 0 {
		t.Errorf("the refused standby leader left %d entries in %s", len(entries), b1.dataDir)
	}
}
