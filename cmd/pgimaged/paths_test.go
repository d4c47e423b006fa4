package main_test

import (
	"strings"
	"testing"
)

// TestHostNamedMembersInDirectoriesWithASpace: the members are named as hosts often are
// (db-1.east: a hyphen and a dot, neither allowed in a slot name) and their data directories
// lie under a directory whose name holds a space, as a volume's mount point may. The replica
// is cloned and streams through its slot; after the primary's host is lost and `pgimaged
// failover` makes the replica the primary, the old primary is rewound and streams from it;
// a switchover brings the primary back, the other member restarts as its standby: every row
// kept, and the space quoted wherever a path is written into a setting or a connection string.
// On the file DCS (the names in file names) and on etcd (in keys).
func TestHostNamedMembersInDirectoriesWithASpace(t *testing.T) {
	onEachBackend(t, func(t *testing.T, b backend) { hostNamedMembersInDirectoriesWithASpace(t, b.cluster(t, "e2e")) })
}

func hostNamedMembersInDirectoriesWithASpace(t *testing.T, c *agentCluster) {
	spec := func(name string) *node {
		return writeNode(t, nodeSpec{
			scope: c.scope, name: name, nameInPath: true, under: "pg volume", top: c.dcs,
			extra: "method \"basebackup\" { checkpoint = \"fast\" }\n", superPass: c.superPass, replPass: c.replPass,
		})
	}
	n1, n2 := spec("db-1.east"), spec("db-2.east")
	if !strings.Contains(n1.dataDir, " ") {
		t.Fatalf("the data directory %s holds no space", n1.dataDir)
	}
	failOverFromLostPrimary(t, n1, n2)
	back := n1.start(t)
	stopAllAtCleanup(t, back)
	waitStreaming(t, n2, n1.name)
	waitRows(t, n1, 110)
	if got := queryString(t, connectTCP(t, n2.port, "postgres", n2.superPass, "postgres"),
		"SELECT string_agg(slot_name, ',') FROM pg_replication_slots WHERE active"); got != "db_1_east" {
		t.Errorf("db-1.east streams through the slots %q, want db_1_east", got)
	}
	if out := back.out.String(); !strings.Contains(out, "rewind") {
		t.Errorf("db-1.east came back without a rewind:\n%s", out)
	}

	r := run(t, n2.env, "switchover", "-config", n2.config, "--candidate", n1.name, "--yes")
	if r.code != 0 {
		t.Fatalf("switchover back to db-1.east: %s\nserver log of db-1.east:\n%s", r, n1.serverLog())
	}
	execOn(t, n1, "INSERT INTO t VALUES (111)")
	waitStreaming(t, n1, n2.name)
	waitRows(t, n2, 111)
	// What the standby's agent publishes follows within a cycle of its streaming.
	eventually(t, guard, "db-2.east to publish db-1.east as its upstream", func() bool {
		return upstreamOf(t, n1, n2.name) == n1.name
	})
}
