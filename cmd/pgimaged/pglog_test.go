package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// PostgreSQL's log lives beside the data directory (<data_dir>.pglog/postgresql.log), not in it:
// a base backup does not carry the primary's log into the replica, and a reinit, which empties
// the data directory, keeps the log of the server it replaced.
func TestServerLogBesideDataDir(t *testing.T) {
	c := fileCluster(t)
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	agents := startInTurn(t, n1, n2)
	waitStreaming(t, n1, "node2")
	logOf := func(n *node) string {
		b, err := os.ReadFile(n.dataDir + ".pglog/postgresql.log")
		if err != nil {
			t.Fatalf("PostgreSQL's log beside %s: %v", n.dataDir, err)
		}
		return string(b)
	}
	for _, n := range []*node{n1, n2} {
		if !strings.Contains(logOf(n), "database system is ready") {
			t.Errorf("%s: PostgreSQL's log beside the data directory does not show the server's start:\n%s", n.name, logOf(n))
		}
		if _, err := os.Stat(filepath.Join(n.dataDir, "log", "pgimaged-postgres.log")); !os.IsNotExist(err) {
			t.Errorf("%s: pgimaged still has PostgreSQL log into its data directory (%v)", n.name, err)
		}
	}
	if strings.Contains(logOf(n2), "checkpoint starting: immediate force wait") {
		t.Errorf("node2's log holds the primary's lines (a base backup copied them):\n%s", logOf(n2))
	}
	starts := strings.Count(logOf(n2), "starting PostgreSQL")
	r := run(t, n2.env, "reinit", "--force", "-config", n2.config)
	if r.code != 0 {
		t.Fatalf("reinit failed:\n%s", r)
	}
	waitCluster(t, n1, agents, "node1", "node2")
	waitStreaming(t, n1, "node2")
	if got := strings.Count(logOf(n2), "starting PostgreSQL"); got <= starts {
		t.Errorf("node2's log after the reinit holds %d starts, %d before: the log of the replaced server is lost:\n%s", got, starts, logOf(n2))
	}
}
