package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/internal/testenv"
)

// TestRejoinStoppedWhileTheRewoundStandbyConnects: the agent of a lost primary that came back
// is stopped (SIGTERM) after pg_rewind rewound its directory toward the new primary but before
// the standby streams (the new primary refuses replication for now). The rewound directory is
// complete: it is not marked as needing a reinit, and the next start of the agent starts it as
// a standby that streams, holding every row, without a rejoin or a new copy.
func TestRejoinStoppedWhileTheRewoundStandbyConnects(t *testing.T) {
	c := fileCluster(t)
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	failOverFromLostPrimary(t, n1, n2)
	execOn(t, n2, "ALTER ROLE replicator NOREPLICATION")

	rejoining := n1.start(t)
	eventually(t, guard, "node1's rewound standby to be refused replication by node2", func() bool {
		return strings.Contains(n1.serverLog(), "must be superuser or replication role to start walsender")
	})
	rejoining.terminate(t)
	mark := filepath.Join(filepath.Dir(n1.dataDir), "."+filepath.Base(n1.dataDir)+".pgimaged-needs-reinit")
	if b, err := os.ReadFile(mark); err == nil {
		t.Errorf("the rewound directory is marked as needing a reinit: %s\nagent output:\n%s", b, rejoining.out.String())
	}

	execOn(t, n2, "ALTER ROLE replicator REPLICATION")
	again := n1.start(t)
	stopAllAtCleanup(t, again)
	waitStreaming(t, n2, "node1")
	waitRows(t, n1, 110)
	if log := again.out.String(); strings.Contains(log, "rejoin") || strings.Contains(log, "needs reinit") {
		t.Errorf("node1 did not simply start its rewound directory as a standby:\n%s", log)
	}
}

// failOverFromLostPrimary starts primary and replica, writes rows 1–100 on primary, loses
// primary's host, fails over to replica with `pgimaged failover` and writes rows 101–110 there:
// primary's directory has diverged, its agent stopped, for a rejoin to bring back.
func failOverFromLostPrimary(t *testing.T, primary, replica *node) {
	t.Helper()
	agents := startInTurn(t, primary, replica)
	execOn(t, primary, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
	waitRows(t, replica, 100)
	loseHost(t, agents[0], primary, replica)
	if r := run(t, replica.env, "failover", "-config", replica.config, "--candidate", replica.name, "--yes"); r.code != 0 {
		t.Fatalf("failover: %s", r)
	}
	execOn(t, replica, "INSERT INTO t SELECT generate_series(101, 110)")
}

// TestRejoinRewindsWithoutSyncWhileMarked: a lost primary that came back is rewound by pg_rewind
// with --no-sync (PostgreSQL's start syncs the rewound directory) while its directory is marked
// as needing a reinit, so that a crash before that start never starts a directory half written;
// the mark is gone once the rejoined standby streams; its session on the new primary runs with
// jit = off. Its bin_dir holds a pg_rewind that records all three before it runs the real one.
func TestRejoinRewindsWithoutSyncWhileMarked(t *testing.T) {
	c := fileCluster(t)
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	real := testenv.PGBinDir(t)
	mark := filepath.Join(filepath.Dir(n1.dataDir), "."+filepath.Base(n1.dataDir)+".pgimaged-needs-reinit")
	record := filepath.Join(c.work, "rewind.record")
	bin := binDirWith(t, c.work, "pg_rewind", fmt.Sprintf(`#!/bin/sh
# pg_rewind, recording whether the data directory is marked and whether it may skip its sync
if [ -f %[1]q ]; then echo marked >>%[2]q; else echo unmarked >>%[2]q; fi
case " $* " in *" --no-sync "*) echo no-sync >>%[2]q ;; *) echo sync >>%[2]q ;; esac
echo "PGOPTIONS=$PGOPTIONS" >>%[2]q
exec %[3]q "$@"
`, mark, record, filepath.Join(real, "pg_rewind")))
	cfg, err := os.ReadFile(n1.config)
	if err != nil {
		t.Fatal(err)
	}
	was := fmt.Sprintf("bin_dir    = %q", real)
	if !strings.Contains(string(cfg), was) {
		t.Fatalf("node1's configuration names no bin_dir %s:\n%s", real, cfg)
	}
	writeFile(t, filepath.Dir(n1.config), filepath.Base(n1.config), strings.Replace(string(cfg), was, fmt.Sprintf("bin_dir    = %q", bin), 1), 0o600)

	failOverFromLostPrimary(t, n1, n2)

	again := n1.start(t)
	stopAllAtCleanup(t, again)
	waitStreaming(t, n2, "node1")
	waitRows(t, n1, 110)
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("pg_rewind did not run: %v\nagent output:\n%s", err, again.out.String())
	}
	if got := string(b); got != "marked\nno-sync\nPGOPTIONS=-c jit=off\n" {
		t.Errorf("pg_rewind ran with the directory, flags and session options %q, want it marked as needing a reinit, with --no-sync and with jit off", got)
	}
	if b, err := os.ReadFile(mark); err == nil {
		t.Errorf("the rejoined standby streams, but its directory is still marked as needing a reinit: %s", b)
	}
}

// TestAgentsWithAPasswordInTheirEnvironment: both agents run from a shell where PGPASSWORD holds
// some other password (an operator's, for psql). It is not the password pgimaged connects with:
// the replica clones and streams, the lost primary, back after a failover, is rewound and
// streams from the new primary, every row kept — libpq takes PGPASSWORD over a pgpass file, so
// neither the methods nor the PostgreSQL servers pgimaged starts may see it.
func TestAgentsWithAPasswordInTheirEnvironment(t *testing.T) {
	c := fileCluster(t)
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	for _, n := range []*node{n1, n2} {
		n.env = append(n.env, "PGPASSWORD=not-"+c.replPass)
	}
	failOverFromLostPrimary(t, n1, n2)
	again := n1.start(t)
	stopAllAtCleanup(t, again)
	waitStreaming(t, n2, "node1")
	waitRows(t, n1, 110)
}

// TestRejoinAsTheRewindRole: with a rewind role configured (Patroni's authentication.rewind),
// the bootstrap creates it — a login without superuser that may run the functions pg_rewind
// reads the source with — and the lost primary, back after a failover, is rewound as that role
// and streams from the new primary, every row kept.
func TestRejoinAsTheRewindRole(t *testing.T) {
	c := fileCluster(t)
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	for _, n := range []*node{n1, n2} {
		withRewindRole(t, n, "rewinder", "Rw-s3cret-9")
	}
	failOverFromLostPrimary(t, n1, n2)
	again := n1.start(t)
	stopAllAtCleanup(t, again)
	waitStreaming(t, n2, "node1")
	waitRows(t, n1, 110)
	conn := connectTCP(t, n2.port, "rewinder", "Rw-s3cret-9", "postgres")
	var super bool
	if err := conn.QueryRow(t.Context(), "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil || super {
		t.Errorf("the rewind role: superuser %v (%v), want a role without superuser", super, err)
	}
	if log := again.out.String(); !strings.Contains(log, "user=rewinder") {
		t.Errorf("node1 was not rewound as the rewind role:\n%s", log)
	}
}

// withRewindRole adds authentication.rewind (user, password) to n's configuration.
func withRewindRole(t *testing.T, n *node, user, password string) {
	t.Helper()
	editConfig(t, n, "    replication {", fmt.Sprintf("    rewind {\n      username = %q\n      password = %q\n    }\n    replication {", user, password))
}
