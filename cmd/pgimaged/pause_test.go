package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPauseLeavesPostgreSQLRunning: in maintenance mode an agent stopped leaves its PostgreSQL
// running and, started again, adopts it without touching it; status says paused; after resume
// the cluster is whole again, with the rows written meanwhile on both members.
func TestPauseLeavesPostgreSQLRunning(t *testing.T) {
	c := fileCluster(t)
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	agents := startInTurn(t, n1, n2)
	execOn(t, n1, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")

	if r := run(t, n1.env, "pause", "-config", n1.config); r.code != 0 {
		t.Fatalf("pause: %s", r)
	}
	r := run(t, n2.env, "status", "-json", "-config", n2.config)
	if !strings.Contains(r.stdout, `"paused": true`) {
		t.Errorf("status -json does not say paused:\n%s", r.stdout)
	}
	if r := run(t, n2.env, "status", "-config", n2.config); !strings.Contains(r.stdout, "Maintenance mode: paused by pgimaged pause") {
		t.Errorf("status does not say paused:\n%s", r.stdout)
	}
	for _, i := range []int{0, 1} {
		sigterm(t, agents[i])
	}
	for _, n := range []*node{n1, n2} {
		if len(pgProcessesIn(n.dataDir)) == 0 {
			t.Fatalf("%s's PostgreSQL stopped with its agent in maintenance mode", n.name)
		}
	}
	execOn(t, n1, "INSERT INTO t VALUES (2)") // the primary still serves
	again := []*agentProc{n1.start(t), n2.start(t)}
	stopAllAtCleanup(t, again...)
	if r := run(t, n1.env, "resume", "-config", n1.config); r.code != 0 {
		t.Fatalf("resume: %s", r)
	}
	waitLeader(t, n1, again, "node1", "node2")
	waitRows(t, n2, 2)
	for _, a := range again {
		if log := a.out.String(); strings.Contains(log, "stopping PostgreSQL") && !strings.Contains(log, "left running") {
			t.Errorf("an agent stopped PostgreSQL around maintenance mode:\n%s", log)
		}
	}
}

// TestPauseWhileACloneRuns: maintenance mode asked while a member's clone runs lets that clone
// finish (its chain goes on to the next method, once), and starts nothing new: a member whose
// agent starts during the pause clones nothing until resume; then it clones and streams.
func TestPauseWhileACloneRuns(t *testing.T) {
	c := fileCluster(t)
	n1 := c.member(t, "node1", "")
	agents := startInTurn(t, n1)
	execOn(t, n1, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")

	// node2's first method waits for the test's word, then fails: its chain goes on to
	// basebackup, which finishes the clone.
	goAhead := filepath.Join(c.work, "go-ahead")
	script := writeFile(t, c.work, "wait_then_fail.sh", fmt.Sprintf("#!/bin/sh\nwhile [ ! -e %q ]; do sleep 0.1; done\nexit 1\n", goAhead), 0o755)
	n2 := c.memberWith(t, "node2", fmt.Sprintf("method \"waiting\" {\n  command = %q\n}", script), `create_replica_methods = ["waiting", "basebackup"]`)
	a2 := n2.start(t)
	agents = append(agents, a2)
	stopAllAtCleanup(t, a2)
	waitFor(t, guard, "node2 mid-clone", agents, func() bool {
		st, err := status(t, n1)
		m, _ := st.member("node2")
		return err == nil && m.State == "creating replica"
	})
	if r := run(t, n1.env, "pause", "-config", n1.config); r.code != 0 {
		t.Fatalf("pause: %s", r)
	}
	n3 := c.member(t, "node3", "")
	a3 := n3.start(t)
	agents = append(agents, a3)
	stopAllAtCleanup(t, a3)
	waitFor(t, guard, "node3 to publish itself in maintenance mode", agents, func() bool {
		st, err := status(t, n1)
		_, ok := st.member("node3")
		return err == nil && ok
	})
	if err := os.WriteFile(goAhead, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var attempts []string
	waitFor(t, guard, "node2's clone to finish", agents, func() bool {
		st, err := status(t, n1)
		m, _ := st.member("node2")
		if err != nil || m.PGImaged == nil || m.State == "creating replica" {
			return false
		}
		attempts = attempts[:0]
		for _, a := range m.PGImaged.Attempts {
			attempts = append(attempts, fmt.Sprintf("%s:%v", a.Method, a.OK))
		}
		return len(attempts) > 0
	})
	if got := strings.Join(attempts, " "); got != "waiting:false basebackup:true" {
		t.Errorf("node2's attempts in maintenance mode: %s, want the chain once: waiting:false basebackup:true", got)
	}
	// node3 has been watching through every cycle of node2's clone: it cloned nothing.
	st, err := status(t, n1)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := st.member("node3"); m.State == "creating replica" || m.PGImaged != nil && len(m.PGImaged.Attempts) > 0 {
		t.Errorf("node3 began a clone in maintenance mode: %+v", m)
	}
	if entries, _ := os.ReadDir(n3.dataDir); len(entries) > 0 {
		t.Errorf("node3's data directory was written in maintenance mode: %d entries", len(entries))
	}

	if r := run(t, n1.env, "resume", "-config", n1.config); r.code != 0 {
		t.Fatalf("resume: %s", r)
	}
	execOn(t, n1, "INSERT INTO t VALUES (2)")
	waitLeader(t, n1, agents, "node1", "node2", "node3")
	waitRows(t, n2, 2)
	waitRows(t, n3, 2)
}
