package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/dcs"
)

// TestDivergedStandbyRejoins: a standby that received WAL past the point where the new
// primary's timeline forked off (node3, stopped while node2 received more, was made the
// primary by a forced failover after node1's host went down) cannot stream from it: its WAL
// receiver stops, PostgreSQL logs why, and its agent sends it to the rejoin chain by itself,
// though the DCS's history does not tell of the switch: pg_rewind toward node3, then it
// streams, holding what node3 holds, without a reinit by hand.
func TestDivergedStandbyRejoins(t *testing.T) {
	c := fileCluster(t)
	n1, n2, n3 := c.member(t, "node1", ""), c.member(t, "node2", ""), c.member(t, "node3", "")
	agents := startInTurn(t, n1, n2, n3)
	execOn(t, n1, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
	waitRows(t, n3, 100)
	sigterm(t, agents[2])
	execOn(t, n1, "INSERT INTO t SELECT generate_series(101, 5000)")
	waitRows(t, n2, 5000) // node2 is ahead of node3 now
	sigterm(t, agents[1])
	loseHost(t, agents[0], n1, n3)

	agents[2] = n3.start(t)
	stopAllAtCleanup(t, agents[2])
	eventually(t, guard, "pgimaged failover --force to node3 accepted", func() bool {
		return run(t, n3.env, "failover", "-config", n3.config, "--candidate", "node3", "--force", "--yes").code == 0
	})
	waitFor(t, guard, "node3 leading", agents[2:], func() bool {
		st, err := status(t, n3)
		m, ok := st.member("node3")
		return err == nil && st.Leader == "node3" && ok && m.Role == "primary" && m.State == "running"
	})
	// The DCS no longer tells of the switch (restored from before it, say): only PostgreSQL
	// knows that node2 went past the fork.
	root := filepath.Join(c.work, "dcs", dcs.DefaultNamespace, c.scope)
	for _, key := range []string{"history", dcs.SwitchesKey} {
		if err := os.Remove(filepath.Join(root, filepath.FromSlash(key))); err != nil {
			t.Fatalf("removing the history: %v", err)
		}
	}
	agents[1] = n2.start(t)
	stopAllAtCleanup(t, agents[1])
	execOn(t, n3, "INSERT INTO t SELECT generate_series(-10, -1)")
	waitStreaming(t, n3, "node2")
	waitRows(t, n2, 110)
	log := agents[1].out.String()
	if !strings.Contains(log, "WAL receiver stopped") || !strings.Contains(log, "rewind") {
		t.Errorf("node2's agent does not say it rejoined because its WAL receiver could not follow node3's timeline:\n%s", log)
	}
	if strings.Contains(log, "needs reinit") {
		t.Errorf("node2 was marked as needing a reinit:\n%s", log)
	}
}
