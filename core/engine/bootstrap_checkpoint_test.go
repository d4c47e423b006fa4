package engine_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// txField is pg_waldump's transaction id of a record: "tx:        731,".
var txField = regexp.MustCompile(`tx:\s*(\d+),`)

// A bootstrap checkpoints the primary it made after creating the roles, so that what the roles
// (and post_bootstrap) wrote is on disk before the member is published: the first replica's base
// backup, with its default spread checkpoint, then finds nothing left to write. After the
// bootstrap no transaction's WAL lies past the redo point of the last checkpoint.
func TestBootstrapCheckpointsTheNewPrimary(t *testing.T) {
	n := agentNode(t, "ckpt")
	dir := n.Config.DataDir
	srv := &pg.Server{BinDir: n.Config.PostgreSQL.BinDir, DataDir: dir}
	t.Cleanup(func() { _ = srv.Stop(context.Background(), "immediate") })
	res, err := n.Bootstrap(context.Background(), engine.BootstrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Running {
		t.Fatal("the bootstrap left no running server")
	}
	conn, err := srv.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var redo, walFile string
	var roles int
	err = conn.QueryRow(context.Background(), `SELECT redo_lsn::text, redo_wal_file,
		(SELECT count(*) FROM pg_roles WHERE rolname = 'replicator' AND rolreplication)
		FROM pg_control_checkpoint()`).Scan(&redo, &walFile, &roles)
	_ = conn.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if roles != 1 {
		t.Fatalf("the replication role was not created (%d rows)", roles)
	}
	// pg_waldump reads from the redo point to the end of WAL, and complains at the end.
	out, _ := exec.Command(filepath.Join(testenv.PGBinDir(t), "pg_waldump"), "-p", filepath.Join(dir, "pg_wal"), "-s", redo, walFile).Output()
	records := 0
	for _, line := range strings.Split(string(out), "\n") {
		m := txField.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		records++
		if m[1] != "0" {
			t.Errorf("a transaction's WAL lies past the last checkpoint's redo point %s: %s", redo, line)
		}
	}
	if records == 0 {
		t.Fatalf("pg_waldump showed no record from %s on:\n%s", redo, out)
	}
}
