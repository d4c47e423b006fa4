package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/sdk/syncfs"
)

// runBounded runs pgimaged like run, but gives up (killing it) after limit: a wait that never
// ends fails the test instead of hanging the suite.
func runBounded(t testing.TB, limit time.Duration, env []string, args ...string) result {
	t.Helper()
	return runPgimaged(t, "", limit, env, args...)
}

// TestBootstrapAndCloneWithUnixSocketDirectories bootstraps a primary with
// unix_socket_directories as users set it (Debian's absolute /var/run/postgresql, Patroni's
// relative '..', a list, none at all) and checks that every connection pgimaged makes to its
// own server reaches it: roles are created, post_bootstrap gets a working connection string, a
// replica cloned from it with its own socket directory streams. Only the bootstrapped primary
// keeps WAL for clones (wal_keep_size).
func TestBootstrapAndCloneWithUnixSocketDirectories(t *testing.T) {
	cases := []struct {
		name string
		// setting returns unix_socket_directories for a member whose files are in dir.
		setting func(t *testing.T, dir string) string
		overTCP bool
	}{
		{"relative to the data directory", func(t *testing.T, dir string) string { return ".." }, false},
		{"absolute directory", func(t *testing.T, dir string) string { return socketDir(t, dir, "run") }, false},
		{"list", func(t *testing.T, dir string) string {
			return socketDir(t, dir, "a") + ", " + socketDir(t, dir, "b")
		}, false},
		{"none: TCP", func(t *testing.T, dir string) string { return "" }, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			work := workDir(t)
			marker := filepath.Join(work, "post_bootstrap.out")
			post := writeFile(t, work, "post.sh", fmt.Sprintf(`#!/bin/sh
set -e
psql "$1" -Atc "SELECT current_user || ' ' || COALESCE(host(inet_server_addr()), 'unix')" > %q
`, marker), 0o755)
			extra := fmt.Sprintf("bootstrap {\n  initdb = [{ locale = \"C\" }]\n  post_bootstrap = %q\n}", post)
			primary := newNode(t, "primary", extra, "")
			setting := tc.setting(t, primary.dir)
			rewriteParams(t, primary, fmt.Sprintf(", unix_socket_directories = %q", setting))

			r := runBounded(t, 90*time.Second, primary.env, "bootstrap", "-config", primary.config)
			if r.code != 0 {
				t.Fatalf("bootstrap failed: %s\nserver log:\n%s", r, primary.serverLog())
			}
			conn := connectTCP(t, primary.port, "postgres", primary.superPass, "postgres")
			if v := queryString(t, conn, "SHOW unix_socket_directories"); v != setting {
				t.Errorf("the server runs with unix_socket_directories = %q, want %q", v, setting)
			}
			if v := queryString(t, conn, "SELECT (rolreplication AND rolcanlogin)::text FROM pg_roles WHERE rolname = 'replicator'"); v != "true" {
				t.Errorf("the replication role was not created (rolreplication and rolcanlogin: %s)", v)
			}
			out, err := os.ReadFile(marker)
			if err != nil {
				t.Fatalf("post_bootstrap did not run: %v", err)
			}
			want := "postgres unix"
			if tc.overTCP {
				want = "postgres 127.0.0.1"
			}
			if got := strings.TrimSpace(string(out)); got != want {
				t.Errorf("post_bootstrap's connection: %q, want %q", got, want)
			}
			if v := queryString(t, conn, "SHOW wal_keep_size"); v != "128MB" {
				t.Errorf("the bootstrapped primary has wal_keep_size = %s, want pgimaged's 128MB", v)
			}
			if i != 0 {
				return // one replica is enough
			}

			replica := newNodeWith(t, "replica", `method "basebackup" { checkpoint = "fast" }`, "", primary.superPass, primary.replPass)
			rewriteParams(t, replica, fmt.Sprintf(", unix_socket_directories = %q", socketDir(t, replica.dir, "sock")))
			r = runBounded(t, 2*time.Minute, replica.env, "clone", "-config", replica.config,
				"--connstring", fmt.Sprintf("postgres://127.0.0.1:%d/postgres", primary.port))
			if r.code != 0 {
				t.Fatalf("clone failed: %s\nserver log:\n%s", r, replica.serverLog())
			}
			rconn := connectTCP(t, replica.port, "postgres", primary.superPass, "postgres")
			if v := queryString(t, rconn, "SELECT status FROM pg_stat_wal_receiver"); v != "streaming" {
				t.Errorf("the replica's WAL receiver is %q, want streaming", v)
			}
			if v := queryString(t, rconn, "SHOW wal_keep_size"); v != "0" {
				t.Errorf("the replica has wal_keep_size = %s, want PostgreSQL's default 0: only a bootstrapped primary keeps WAL for clones", v)
			}
			// Its first start, from a base backup, syncs the copy with one syncfs per file
			// system where that reports writeback errors.
			wantSync := "fsync"
			if syncfs.Supported() {
				wantSync = "syncfs"
			}
			if v := queryString(t, rconn, "SHOW recovery_init_sync_method"); v != wantSync {
				t.Errorf("the replica has recovery_init_sync_method = %s, want %s", v, wantSync)
			}
		})
	}
}

// TestBootstrapFailsAtOnceWhenRecoveryPauses: a point-in-time bootstrap without
// recovery_target_action stops at its target and pauses (PostgreSQL's default); pgimaged says so
// and fails instead of holding on until bootstrap.recovery_timeout (an hour by default).
func TestBootstrapFailsAtOnceWhenRecoveryPauses(t *testing.T) {
	p, backup, archive := backupOf(t)
	p.Exec(t, "CREATE TABLE events (id int)")
	p.Exec(t, "SELECT pg_create_restore_point('target')")
	p.Exec(t, "INSERT INTO events VALUES (1)")
	p.SwitchAndArchive(t)

	script, _ := filepath.Abs("../../examples/pitr/restore_from_basebackup.sh")
	n := newNode(t, "restored", fmt.Sprintf(`
bootstrap { method = "from_backup" }
method "from_backup" {
  command = "%s --backup=%s"
  recovery_conf = {
    restore_command      = "cp %s/%%f %%p"
    recovery_target_name = "target"
  }
}`, script, backup, archive), "")
	r := runBounded(t, 2*time.Minute, n.env, "bootstrap", "-config", n.config)
	if r.code == 0 {
		t.Fatalf("bootstrap succeeded although recovery paused at its target: %s", r)
	}
	for _, want := range []string{"wait for recovery to end:", "recovery is paused", "recovery_target_action = 'promote'"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the reason does not say %q:\n%s", want, r.stderr)
		}
	}
	if procs := pgProcessesIn(n.dataDir); len(procs) > 0 {
		t.Errorf("processes left running in the data directory: %v", procs)
	}
}

// socketDir makes the directory name below dir for PostgreSQL's unix sockets.
func socketDir(t *testing.T, dir, name string) string {
	t.Helper()
	d := filepath.Join(dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// rewriteParams adds params (", name = value" each) to the member's postgresql parameters.
func rewriteParams(t *testing.T, n *node, params string) {
	t.Helper()
	b, err := os.ReadFile(n.config)
	if err != nil {
		t.Fatal(err)
	}
	const anchor = "max_connections = 30 "
	cfg := strings.Replace(string(b), anchor, anchor+params+" ", 1)
	if cfg == string(b) {
		t.Fatalf("no postgresql parameters in %s", n.config)
	}
	writeFile(t, filepath.Dir(n.config), filepath.Base(n.config), cfg, 0o600)
}

// TestAgentWithUnixSocketDirectories runs two members whose sockets are outside their data
// directories (Patroni's '..' on one, an absolute directory on the other): the first
// bootstraps, the second clones and streams, both publish their WAL positions (read over
// pgimaged's own connection), and a restarted member adopts its cluster.
func TestAgentWithUnixSocketDirectories(t *testing.T) {
	c := fileCluster(t)
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	rewriteParams(t, n1, `, unix_socket_directories = ".."`)
	rewriteParams(t, n2, fmt.Sprintf(", unix_socket_directories = %q", socketDir(t, filepath.Dir(n2.dataDir), "run")))
	agents := startInTurn(t, n1, n2)
	a1, a2 := agents[0], agents[1]
	waitStreaming(t, n1, "node2")
	waitFor(t, guard, "both members publish their WAL position", agents, func() bool {
		pos := walPositions(t, n1)
		return pos["node1"] > 0 && pos["node2"] > 0
	})

	sigterm(t, a2)
	again := n2.start(t)
	stopAllAtCleanup(t, again)
	waitCluster(t, n1, []*agentProc{a1, again}, "node1", "node2")
	if log := again.out.String(); !strings.Contains(log, logStartExisting) {
		t.Errorf("the restarted node2 does not say it starts the existing cluster:\n%s", log)
	}
	waitStreaming(t, n1, "node2")
}

// walPositions is each member's published xlog_location.
func walPositions(t *testing.T, via *node) map[string]int64 {
	t.Helper()
	s, err := status(t, via)
	if err != nil {
		return nil
	}
	out := map[string]int64{}
	for _, m := range s.Members {
		out[m.Name] = m.XLogLocation
	}
	return out
}
