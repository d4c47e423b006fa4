package main_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/internal/pgtest"
)

// withMethods puts create_replica_methods into a node's configuration.
func withMethods(t *testing.T, n *node, methods ...string) {
	t.Helper()
	cfg, err := os.ReadFile(n.config)
	if err != nil {
		t.Fatal(err)
	}
	list := `"` + strings.Join(methods, `", "`) + `"`
	cfg = []byte(strings.Replace(string(cfg), "postgresql {", "postgresql {\n  create_replica_methods = ["+list+"]", 1))
	if err := os.WriteFile(n.config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestPgBackRestMethods(t *testing.T) {
	repo := pgtest.NewBackRest(t)
	p := repo.Primary
	p.Exec(t, "CREATE TABLE t (id int)")
	p.Exec(t, "INSERT INTO t VALUES (1)")
	repo.SwitchAndArchive(t)

	t.Run("clone from the repository, then stream from the primary", func(t *testing.T) {
		n := replicaOf(t, p, "replica1", fmt.Sprintf(`
method "pgbackrest" {
  config      = %q
  stanza      = %q
  process-max = 2
  keep_data   = true
}`, repo.Config, repo.Stanza))
		withMethods(t, n, "pgbackrest", "basebackup")
		c := cloneFrom(t, n, p)
		if c.Method != "pgbackrest" || len(c.Attempts) != 1 || !c.Running {
			t.Fatalf("clone result: %+v", c)
		}
		conn := connectTCP(t, n.port, p.Superuser, p.SuperPass, "postgres")
		eventually(t, 2*time.Minute, "the replica streams from the primary", func() bool {
			return queryString(t, conn, "SELECT COALESCE((SELECT status FROM pg_stat_wal_receiver), 'none')") == "streaming"
		})
		p.Exec(t, "INSERT INTO t VALUES (2)")
		eventually(t, time.Minute, "the row written after the clone arrives", func() bool {
			return queryString(t, conn, "SELECT count(*)::text FROM t") == "2"
		})
	})

	t.Run("unknown stanza falls back to basebackup", func(t *testing.T) {
		n := replicaOf(t, p, "replica2", fmt.Sprintf(`
method "pgbackrest" {
  config = %q
  stanza = "nosuch"
}`, repo.Config))
		withMethods(t, n, "pgbackrest", "basebackup")
		c := cloneFrom(t, n, p)
		if len(c.Attempts) != 2 || c.Attempts[0].OK || c.Attempts[1].Method != "basebackup" || !c.Attempts[1].OK {
			t.Fatalf("attempts: %+v", c.Attempts)
		}
		if !strings.Contains(c.Attempts[0].Error, "nosuch") {
			t.Errorf("the pgBackRest failure does not name the stanza: %q", c.Attempts[0].Error)
		}
	})

	t.Run("point-in-time bootstrap of a new cluster", func(t *testing.T) {
		target := pitrTarget(t, p)
		repo.SwitchAndArchive(t)
		n := newNodeWith(t, "restored", fmt.Sprintf(`
bootstrap { method = "pitr" }
method "pitr" {
  plugin        = "pgbackrest"
  config        = %q
  stanza        = %q
  type          = "time"
  target        = %q
  target-action = "promote"
}`, repo.Config, repo.Stanza, target), "", "new-Superuser-pw", "new-Repl-pw")
		checkBootstrappedToTarget(t, n)
	})

	t.Run("no_master clone with the primary stopped", func(t *testing.T) {
		p.Stop(t)
		defer p.Start(t)
		n := replicaOf(t, p, "replica3", fmt.Sprintf(`
method "pgbackrest" {
  config    = %q
  stanza    = %q
  no_master = true
}`, repo.Config, repo.Stanza))
		withMethods(t, n, "basebackup", "pgbackrest")
		r := run(t, n.env, "clone", "-config", n.config, "-json")
		if r.code != 0 {
			t.Fatalf("clone without a running primary failed: %s\nserver log:\n%s", r, n.serverLog())
		}
		c := parseClone(t, r)
		if c.Method != "pgbackrest" || len(c.Skipped) != 1 || c.Skipped[0].Method != "basebackup" || !c.Running {
			t.Fatalf("clone result: %+v", c)
		}
		conn := connectTCP(t, n.port, p.Superuser, p.SuperPass, "postgres")
		if v := queryString(t, conn, "SELECT pg_is_in_recovery()::text"); v != "true" {
			t.Errorf("the restored replica is not in recovery")
		}
		// Both rows of t were archived before the primary stopped (the bootstrap subtest
		// switched WAL after the second one).
		eventually(t, time.Minute, "the archived rows are replayed", func() bool {
			return queryString(t, conn, "SELECT count(*)::text FROM t") == "2"
		})
	})
}

// pitrTarget writes a row into a new table pitr of p, returns the time (UTC) just after it, and
// writes another: a point-in-time bootstrap to that time has the first row only.
func pitrTarget(t *testing.T, p *pgtest.Primary) string {
	t.Helper()
	p.Exec(t, "CREATE TABLE pitr (id int, note text)")
	p.Exec(t, "INSERT INTO pitr VALUES (1, 'before the target')")
	target := p.QueryString(t, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
	p.Exec(t, "SELECT pg_sleep(0.01)")
	p.Exec(t, "INSERT INTO pitr VALUES (2, 'after the target')")
	return target
}

// checkBootstrappedToTarget bootstraps n (whose superuser password is new-Superuser-pw) and
// checks that it ends promoted, with the rows of pitr written before the target (see pitrTarget).
func checkBootstrappedToTarget(t *testing.T, n *node) {
	t.Helper()
	r := run(t, n.env, "bootstrap", "-config", n.config)
	if r.code != 0 {
		t.Fatalf("bootstrap failed: %s\nserver log:\n%s", r, n.serverLog())
	}
	conn := connectTCP(t, n.port, "postgres", "new-Superuser-pw", "postgres")
	if v := queryString(t, conn, "SELECT pg_is_in_recovery()::text"); v != "false" {
		t.Errorf("still in recovery")
	}
	if v := queryString(t, conn, "SELECT string_agg(note, ',' ORDER BY id) FROM pitr"); v != "before the target" {
		t.Errorf("rows: %q", v)
	}
}
