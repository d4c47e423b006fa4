package main_test

import (
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
