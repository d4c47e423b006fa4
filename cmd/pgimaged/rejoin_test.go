package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRejoinStoppedWhileTheRewoundStandbyConnects: the agent of a lost primary that came back
// is stopped (SIGTERM) after pg_rewind rewound its directory toward the new primary but before
// the standby streams (the new primary refuses replication for now). The rewound directory is
// complete: it is not marked as needing a reinit, and the next start of the agent starts it as
// a standby that streams, holding every row, without a rejoin or a new copy.
func TestRejoinStoppedWhileTheRewoundStandbyConnects(t *testing.T) {
	c := fileCluster(t)
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	agents := startInTurn(t, n1, n2)
	execOn(t, n1, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
	waitRows(t, n2, 100)

	loseHost(t, agents[0], n1, n2)
	if r := run(t, n2.env, "failover", "-config", n2.config, "--candidate", "node2", "--yes"); r.code != 0 {
		t.Fatalf("failover: %s", r)
	}
	execOn(t, n2, "INSERT INTO t SELECT generate_series(101, 110)")
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
