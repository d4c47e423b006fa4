package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/pgimaged/pgimaged/internal/pgtest"
)

// A method that copies a data directory file by file (a snapshot, a restore) brings along what
// pg_basebackup leaves out: the source's replication slots and its postmaster.pid. pgimaged
// removes them before the replica starts, so the replica holds no slot of the primary's (which
// would retain WAL on it for ever).
func TestCloneDropsCopiedReplicationSlots(t *testing.T) {
	p := pgtest.StartPrimary(t, pgtest.Options{})
	p.Exec(t, "SELECT pg_create_physical_replication_slot('copied_slot', true)")
	work := workDir(t)
	// pg_basebackup leaves the slots and postmaster.pid out; the script then copies them in, as
	// a file-by-file copy of the primary's directory would.
	script := writeFile(t, work, "snapshot.sh", fmt.Sprintf(`#!/bin/sh
set -e
for a; do case "$a" in --datadir=*) D="${a#--datadir=}";; --connstring=*) C="${a#--connstring=}";; esac; done
%q --pgdata="$D" -X stream --dbname="$C" --checkpoint=fast
cp -r %q "$D/pg_replslot/"
cp %q %q "$D/"
`, filepath.Join(p.BinDir, "pg_basebackup"), filepath.Join(p.DataDir, "pg_replslot", "copied_slot"),
		filepath.Join(p.DataDir, "postmaster.pid"), filepath.Join(p.DataDir, "postmaster.opts")), 0o755)
	n := replicaOf(t, p, "replica1", fmt.Sprintf(`method "snapshot" { command = %q }
`, script))
	withMethods(t, n, "snapshot")
	r := run(t, n.env, "clone", "-config", n.config, "--connstring", p.ConnURL(), "-log-level", "info")
	if r.code != 0 {
		t.Fatalf("clone failed: %s\nserver log:\n%s", r, n.serverLog())
	}
	if _, err := os.Stat(filepath.Join(n.dataDir, "pg_replslot", "copied_slot")); err == nil {
		t.Errorf("the replica keeps the source's replication slot")
	}
	// (The replica started, so its postmaster.pid and .opts are its own now.)
	if !regexp.MustCompile(`removed from the copy .*postmaster\.pid.*pg_replslot/copied_slot`).MatchString(r.stderr) {
		t.Errorf("the log does not say what was removed from the copy:\n%s", r.stderr)
	}
	conn := connectTCP(t, n.port, p.Superuser, p.SuperPass, "postgres")
	if v := queryString(t, conn, "SELECT count(*)::text FROM pg_replication_slots WHERE slot_name = 'copied_slot'"); v != "0" {
		t.Errorf("the replica holds the primary's replication slot")
	}
}
