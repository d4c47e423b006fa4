package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/pgtest"
)

// replicaOf makes a member configuration whose credentials are the primary's.
func replicaOf(t *testing.T, p *pgtest.Primary, name, extra string) *node {
	t.Helper()
	return newNodeWith(t, name, extra, "", p.SuperPass, p.ReplPass)
}

type cloneJSON struct {
	Method   string `json:"method"`
	Attempts []struct {
		Method string   `json:"method"`
		OK     bool     `json:"ok"`
		Error  string   `json:"error"`
		Tail   []string `json:"tail"`
	} `json:"attempts"`
	Skipped []struct {
		Method string `json:"method"`
		Reason string `json:"reason"`
	} `json:"skipped"`
	SystemIdentifier string `json:"system_identifier"`
	Running          bool   `json:"running"`
	Error            string `json:"error"`
}

func parseClone(t *testing.T, r result) cloneJSON {
	t.Helper()
	var c cloneJSON
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		t.Fatalf("clone -json printed no JSON: %v\n%s", err, r)
	}
	return c
}

// cloneFrom runs `pgimaged clone -json` for member n from primary p and returns what it
// printed; a clone that fails ends the test, with the new server's log.
func cloneFrom(t *testing.T, n *node, p *pgtest.Primary) cloneJSON {
	t.Helper()
	r := run(t, n.env, "clone", "-config", n.config, "-json", "--connstring", p.ConnURL())
	if r.code != 0 {
		t.Fatalf("clone failed: %s\nserver log:\n%s", r, n.serverLog())
	}
	return parseClone(t, r)
}

func TestCloneBasebackupStreams(t *testing.T) {
	p := pgtest.StartPrimary(t, pgtest.Options{})
	p.Exec(t, "CREATE TABLE t (id int)")
	p.Exec(t, "INSERT INTO t VALUES (1)")
	n := replicaOf(t, p, "replica1", `method "basebackup" { checkpoint = "fast" }`)
	w := watchArgv(n.secrets()...)
	r := run(t, n.env, "clone", "-config", n.config, "-json", "--connstring", p.ConnURL(), "-log-level", "debug")
	// Once the one-shot clone has exited, only the server it started runs: not the pg_ctl
	// that started it, which sees the server up on its own beat.
	var pgCtl []string
	for _, cmdline := range processesOf(n.dataDir) {
		if strings.Contains(cmdline, "pg_ctl") {
			pgCtl = append(pgCtl, cmdline)
		}
	}
	leaked, _ := w.Stop()
	if r.code != 0 {
		t.Fatalf("clone failed: %s\nserver log:\n%s", r, n.serverLog())
	}
	if len(pgCtl) > 0 {
		t.Errorf("processes still running after pgimaged clone exited: %q", pgCtl)
	}
	checkLoggedPath(t, r.stderr, "clone", "plugin_launch[basebackup]", "clone_method[basebackup]", "standby_start", "streaming")
	c := parseClone(t, r)
	if c.Method != "basebackup" || !c.Running {
		t.Errorf("clone result: %+v", c)
	}
	if want := fmt.Sprint(p.SystemIdentifier(t)); c.SystemIdentifier != want {
		t.Errorf("system identifier %s, primary has %s", c.SystemIdentifier, want)
	}
	conn := connectTCP(t, n.port, p.Superuser, p.SuperPass, "postgres")
	if v := queryString(t, conn, "SELECT status FROM pg_stat_wal_receiver"); v != "streaming" {
		t.Errorf("WAL receiver status %q", v)
	}
	p.Exec(t, "INSERT INTO t VALUES (2)")
	eventually(t, time.Minute, "the row written after the clone arrives", func() bool {
		return queryString(t, conn, "SELECT count(*)::text FROM t") == "2"
	})
	if len(leaked) > 0 {
		t.Errorf("a password appeared on a command line: %q", leaked)
	}
	if !w.sawArgvContaining("pg_basebackup --pgdata=" + n.dataDir + " -X stream") {
		t.Errorf("never saw pg_basebackup run with the expected arguments")
	}
	for _, s := range n.secrets() {
		if strings.Contains(r.stderr, s) || strings.Contains(r.stdout, s) || strings.Contains(n.serverLog(), s) {
			t.Errorf("a password appears in pgimaged's or PostgreSQL's output")
		}
		if b, err := os.ReadFile(filepath.Join(n.dataDir, "postgresql.auto.conf")); err == nil && strings.Contains(string(b), s) {
			t.Errorf("a password was written into postgresql.auto.conf")
		}
		if b, err := os.ReadFile(filepath.Join(n.dataDir, pg.RecoveryFile)); err == nil && strings.Contains(string(b), s) {
			t.Errorf("a password was written into the recovery settings")
		}
	}
}

func TestCloneChainFallsBackAndKeepsHistory(t *testing.T) {
	p := pgtest.StartPrimary(t, pgtest.Options{})
	work := workDir(t)
	broken := writeFile(t, work, "broken.sh", "#!/bin/sh\necho 'broken: no backup in the bucket' >&2\nexit 1\n", 0o755)
	n := replicaOf(t, p, "replica1", fmt.Sprintf(`
method "broken" { command = %q }
`, broken))
	cfg, _ := os.ReadFile(n.config)
	cfg = []byte(strings.Replace(string(cfg), "postgresql {", "postgresql {\n  create_replica_methods = [\"broken\", \"basebackup\"]", 1))
	writeFile(t, n.dir, "replica1.hcl", string(cfg), 0o600)
	c := cloneFrom(t, n, p)
	if len(c.Attempts) != 2 || c.Attempts[0].Method != "broken" || c.Attempts[0].OK || c.Attempts[1].Method != "basebackup" || !c.Attempts[1].OK {
		t.Fatalf("attempt history: %+v", c.Attempts)
	}
	if !strings.Contains(strings.Join(c.Attempts[0].Tail, "\n")+c.Attempts[0].Error, "no backup in the bucket") {
		t.Errorf("the failed attempt does not keep its output: %+v", c.Attempts[0])
	}
	if !c.Running || c.Method != "basebackup" {
		t.Errorf("replica not running from basebackup: %+v", c)
	}
}

// TestCloneKeepData: a directory holding an operator's file is refused (exit 4) with or without
// keep_data, and nothing in it changes. In an empty directory a failing method's leftovers stay,
// marked as pgimaged's own, only with keep_data.
func TestCloneKeepData(t *testing.T) {
	work := workDir(t)
	failing := writeFile(t, work, "fails.sh", "#!/bin/sh\necho partial > \"$(echo \"$@\" | sed -n 's/.*--datadir=\\([^ ]*\\).*/\\1/p')/partial\"\nexit 1\n", 0o755)
	for _, keep := range []bool{true, false} {
		t.Run(fmt.Sprintf("keep_data=%v", keep), func(t *testing.T) {
			n := newNode(t, "replica", fmt.Sprintf(`
method "restore" {
  command   = %q
  keep_data = %v
}`, failing, keep), "")
			cfg, _ := os.ReadFile(n.config)
			writeFile(t, n.dir, "replica.hcl", strings.Replace(string(cfg), "postgresql {", "postgresql {\n  create_replica_methods = [\"restore\"]", 1), 0o600)
			if err := os.Mkdir(n.dataDir, 0o700); err != nil {
				t.Fatal(err)
			}
			operator := writeFile(t, n.dataDir, "operator.txt", "left by the operator", 0o600)
			r := run(t, n.env, "clone", "-config", n.config, "--image-only", "--connstring", "host=127.0.0.1 port=1")
			if r.code != 4 {
				t.Fatalf("clone into a directory with an operator's file: exit %d, want 4 (refused)\n%s", r.code, r)
			}
			if b, err := os.ReadFile(operator); err != nil || string(b) != "left by the operator" {
				t.Errorf("the operator's file was touched: %q, %v", b, err)
			}
			if _, err := os.Stat(filepath.Join(n.dataDir, "partial")); err == nil {
				t.Errorf("the method ran in a refused directory")
			}
			if err := os.Remove(operator); err != nil {
				t.Fatal(err)
			}

			r = run(t, n.env, "clone", "-config", n.config, "--image-only", "--connstring", "host=127.0.0.1 port=1")
			if r.code == 0 || r.code == 4 {
				t.Fatalf("a failing method: exit %d, want 1\n%s", r.code, r)
			}
			_, partialErr := os.Stat(filepath.Join(n.dataDir, "partial"))
			_, markErr := os.Stat(filepath.Join(n.dir, ".data.pgimaged-incomplete"))
			if keep && (partialErr != nil || markErr != nil) {
				t.Errorf("keep_data: the method's leftovers (%v) or their mark (%v) are gone", partialErr, markErr)
			}
			if !keep && (partialErr == nil || markErr == nil) {
				t.Errorf("without keep_data the leftovers (%v) or the mark (%v) stay", partialErr, markErr)
			}
			if _, err := os.Stat(n.dataDir); err != nil {
				t.Errorf("the data directory that existed before is gone: %v", err)
			}
		})
	}
}

func TestCloneWithoutSource(t *testing.T) {
	p := pgtest.StartPrimary(t, pgtest.Options{})
	backup := filepath.Join(workDir(t), "base")
	p.Basebackup(t, backup)
	work := workDir(t)
	argvFile := filepath.Join(work, "argv")
	restore := writeFile(t, work, "restore.sh", fmt.Sprintf(`#!/bin/sh
for a in "$@"; do echo "$a"; done > %q
for a in "$@"; do case "$a" in --datadir=*) D="${a#--datadir=}";; esac; done
cp -a %q/. "$D/"
`, argvFile, backup), 0o755)
	n := newNode(t, "replica", fmt.Sprintf(`
method "restore" {
  command   = %q
  no_master = true
  bucket    = "s3://backups/e2e"
}`, restore), "")
	cfg, _ := os.ReadFile(n.config)
	writeFile(t, n.dir, "replica.hcl", strings.Replace(string(cfg), "postgresql {", "postgresql {\n  create_replica_methods = [\"basebackup\", \"restore\"]", 1), 0o600)
	r := run(t, n.env, "clone", "-config", n.config, "-json", "--image-only")
	if r.code != 0 {
		t.Fatalf("clone without source failed: %s", r)
	}
	c := parseClone(t, r)
	if len(c.Skipped) != 1 || c.Skipped[0].Method != "basebackup" || !strings.Contains(c.Skipped[0].Reason, "no running source") {
		t.Errorf("basebackup not skipped with a reason: %+v", c.Skipped)
	}
	if !strings.Contains(r.stderr, "skipped method basebackup") {
		t.Errorf("the skip is not shown to the operator:\n%s", r.stderr)
	}
	b, err := os.ReadFile(argvFile)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--bucket=s3://backups/e2e", "--scope=e2e", "--role=replica", "--datadir=" + n.dataDir, "--connstring="}
	if got := strings.Split(strings.TrimSpace(string(b)), "\n"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("no_master method argv:\n got %q\nwant %q", got, want)
	}
	if !pg.HasCluster(n.dataDir) {
		t.Error("the no_master method's copy is not a cluster")
	}
}

func TestCloneBadInput(t *testing.T) {
	t.Run("refused basebackup option", func(t *testing.T) {
		n := newNode(t, "replica", "method \"basebackup\" {\n  checkpoint = \"fast\"\n  format     = \"tar\"\n}", "")
		r := run(t, n.env, "clone", "-config", n.config, "--connstring", "host=127.0.0.1 port=5432")
		if r.code == 0 {
			t.Fatalf("a refused option was accepted: %s", r)
		}
		if !strings.Contains(r.stderr, "format") || !strings.Contains(r.stderr, "replica.hcl:") {
			t.Errorf("the diagnostic does not name the option and its place:\n%s", r.stderr)
		}
		if _, err := os.Stat(n.dataDir); !os.IsNotExist(err) {
			t.Errorf("a refused configuration created the data directory")
		}
	})
	t.Run("unreachable source", func(t *testing.T) {
		n := newNode(t, "replica", `method "basebackup" { attempts = 1 }`, "")
		before, _ := os.ReadDir(n.dir)
		r := run(t, n.env, "clone", "-config", n.config, "--connstring", fmt.Sprintf("postgres://127.0.0.1:%d/postgres", pgtest.FreePort(t)))
		if r.code == 0 {
			t.Fatalf("clone from a closed port succeeded: %s", r)
		}
		if !strings.Contains(r.stderr, "clone failed") || !strings.Contains(r.stderr, "basebackup") {
			t.Errorf("unclear error:\n%s", r.stderr)
		}
		after, _ := os.ReadDir(n.dir)
		if len(after) != len(before) {
			t.Errorf("the clone left files beside the data directory: before %d entries, after %d", len(before), len(after))
		}
		if _, err := os.Stat(n.dataDir); !os.IsNotExist(err) {
			t.Errorf("the data directory this clone created is still there")
		}
	})
}

// TestClonePatroniStyleInvocation runs pgimaged the way Patroni runs a create_replica_method
// command: no configuration file, Patroni's four parameters plus the method's own, and the
// credentials in the pgpass file Patroni names with PGPASSFILE.
func TestClonePatroniStyleInvocation(t *testing.T) {
	p := pgtest.StartPrimary(t, pgtest.Options{})
	dataDir := filepath.Join(workDir(t), "data")
	stopServerAtCleanup(t, dataDir)
	r := run(t, []string{"PGPASSFILE=" + p.WritePgpass(t)}, "clone", "--image-only",
		"--scope=batman", "--role=replica", "--datadir="+dataDir,
		"--connstring=dbname=postgres user="+p.ReplUser+" host=127.0.0.1 port="+fmt.Sprint(p.Port),
		"--envdir=/etc/wal-e.d/env", "--use_iam=1")
	if r.code != 0 {
		t.Fatalf("clone as Patroni calls it failed: %s", r)
	}
	if !pg.HasCluster(dataDir) {
		t.Fatal("no cluster in the data directory")
	}
	if id, err := pg.SystemIdentifier(dataDir); err != nil || id != p.SystemIdentifier(t) {
		t.Errorf("system identifier %d (%v), the primary's is %d", id, err, p.SystemIdentifier(t))
	}
	if !strings.Contains(r.stderr, "ignoring unknown option --envdir") {
		t.Errorf("the method's own parameters are not reported as ignored:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); !os.IsNotExist(err) {
		t.Error("--image-only started PostgreSQL")
	}
}
