package main_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// copyPrimary makes dir a base backup of n's running PostgreSQL without standby settings: a
// directory that looks like a primary of the same cluster.
func copyPrimary(t *testing.T, n *node, dir string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(testenv.PGBinDir(t), "pg_basebackup"), "--pgdata="+dir, "-X", "stream", "--checkpoint=fast",
		"--dbname="+fmt.Sprintf("host=127.0.0.1 port=%d user=replicator", n.port))
	cmd.Env = append(os.Environ(), "PGPASSWORD="+n.replPass)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_basebackup of port %d into %s: %v\n%s", n.port, dir, err, out)
	}
	for _, f := range []string{"standby.signal", "recovery.signal"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Fatalf("the copy has %s; it must look like a primary", f)
		}
	}
}

// primariesAmong counts the running servers of nodes that answer pg_is_in_recovery() = false.
func primariesAmong(t *testing.T, nodes ...*node) []int {
	t.Helper()
	var ports []int
	for _, n := range nodes {
		if len(pgProcessesIn(n.dataDir)) == 0 {
			continue
		}
		conn := connectTCP(t, n.port, "postgres", n.superPass, "postgres")
		if queryString(t, conn, "SELECT pg_is_in_recovery()::text") == "false" {
			ports = append(ports, n.port)
		}
		_ = conn.Close(context.Background())
	}
	return ports
}

// A second member whose data directory looks like a primary of the cluster while another member
// leads is never run as a primary: a copy placed there before its agent starts is not started
// as one, and a copy started by hand is stopped (fenced). Both are kept, published as needing a
// reinit, and exactly one server in the cluster answers pg_is_in_recovery() = false.
func TestAgentSecondPrimaryIsNeverRun(t *testing.T) {
	c := fileCluster(t)
	n1 := c.member(t, "node1", "")
	// Without rejoin methods, so that what needs a reinit stays as it is (rejoin: TestFailover…).
	copied := c.memberWith(t, "node2", "", "rejoin_methods = []")  // a base backup, its agent started afterwards
	started := c.memberWith(t, "node3", "", "rejoin_methods = []") // a base backup started by hand as a primary first
	a1 := startInTurn(t, n1)[0]
	sysid := sysidOf(t, n1)

	copyPrimary(t, n1, copied.dataDir)
	copyPrimary(t, n1, started.dataDir)
	stopServerAtCleanup(t, started.dataDir)
	logFile := filepath.Join(t.TempDir(), "by-hand.log")
	ctl := exec.Command(filepath.Join(testenv.PGBinDir(t), "pg_ctl"), "start", "-w", "-D", started.dataDir, "-l", logFile,
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", started.port, started.dataDir))
	if out, err := ctl.CombinedOutput(); err != nil {
		b, _ := os.ReadFile(logFile)
		t.Fatalf("starting the copy by hand: %v\n%s\n%s", err, out, b)
	}
	if got := primariesAmong(t, n1, started); len(got) != 2 {
		t.Fatalf("the setup did not make two primaries: primaries on ports %v", got)
	}

	a2, a3 := copied.start(t), started.start(t)
	stopAllAtCleanup(t, a2, a3)
	agents := []*agentProc{a1, a2, a3}
	var st clusterStatus
	waitFor(t, guard, "node2 and node3 published as needing reinit", agents, func() bool {
		s, err := status(t, n1)
		if err != nil {
			return false
		}
		st = s
		for _, name := range []string{"node2", "node3"} {
			if m, ok := s.member(name); !ok || m.State != "needs reinit" {
				return false
			}
		}
		return true
	})
	if got := primariesAmong(t, n1, copied, started); len(got) != 1 || got[0] != n1.port {
		t.Errorf("servers answering pg_is_in_recovery() = false: ports %v, want only node1's %d", got, n1.port)
	}
	for _, n := range []*node{copied, started} {
		if procs := pgProcessesIn(n.dataDir); len(procs) > 0 {
			t.Errorf("PostgreSQL runs in %s, which needs a reinit: %q", n.dataDir, procs)
		}
		if got := sysidOf(t, n); got != sysid {
			t.Errorf("%s: system identifier %s, want the cluster's %s", n.dataDir, got, sysid)
		}
		if !pg.HasCluster(n.dataDir) {
			t.Errorf("%s was emptied; a directory needing reinit is kept", n.dataDir)
		}
	}
	if st.Leader != "node1" {
		t.Errorf("leader %q, want node1:\n%s", st.Leader, st)
	}
	m3, _ := st.member("node3")
	if m3.PGImaged == nil || !strings.Contains(m3.PGImaged.LastError, "fenced") {
		t.Errorf("node3 does not report that it was fenced:\n%s", st)
	}
	if log := a3.out.String(); !strings.Contains(log, "fencing") {
		t.Errorf("node3's log does not report the fence:\n%s", log)
	}
	for _, a := range agents {
		if strings.Contains(a.out.String(), "runs as a primary but another member holds the leader key") {
			t.Errorf("an agent kept a primary running while another member leads:\n%s", a.out.String())
		}
	}
	// Restarting the member does not start the directory either: the mark stays.
	sigterm(t, a3)
	again := started.start(t)
	stopAllAtCleanup(t, again)
	waitFor(t, guard, "node3 published again as needing reinit", []*agentProc{a1, again}, func() bool {
		s, err := status(t, n1)
		if err != nil {
			return false
		}
		m, ok := s.member("node3")
		return ok && m.State == "needs reinit"
	})
	if procs := pgProcessesIn(started.dataDir); len(procs) > 0 {
		t.Errorf("the restarted node3 started its directory: %q", procs)
	}
}
