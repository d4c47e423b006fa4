package main_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/internal/pgtest"
)

// waitStandbyCluster waits until the status lists exactly leader, running as standby_leader
// with the leader key, and others, running replicas; it returns that status.
func waitStandbyCluster(t *testing.T, via *node, agents []*agentProc, leader string, others ...string) clusterStatus {
	t.Helper()
	var last clusterStatus
	waitFor(t, guard, fmt.Sprintf("%s standby_leader and %v replicas, all running", leader, others), agents, func() bool {
		st, err := status(t, via)
		if err != nil {
			return false
		}
		last = st
		if st.Leader != leader || len(st.Members) != len(others)+1 {
			return false
		}
		for _, m := range st.Members {
			want := "replica"
			if m.Name == leader {
				want = "standby_leader"
			}
			if m.State != "running" || m.Role != want {
				return false
			}
		}
		return true
	})
	return last
}

// TestStandbyClusterFollowsTheRemote is a second site: a standby cluster (its own scope and
// DCS) whose standby_cluster block names the first cluster's primary. Its first member clones
// the standby leader from the remote and leads as standby_leader, its second cascades from it,
// and a row written on the first cluster arrives on both; nothing in the second is writable,
// also after the standby leader's agent restarts.
func TestStandbyClusterFollowsTheRemote(t *testing.T) {
	a := fileCluster(t)
	a1, a2 := a.member(t, "a1", ""), a.member(t, "a2", "")
	startInTurn(t, a1, a2)
	execOn(t, a1, "CREATE TABLE t (id int)")

	b := backend{kind: "file"}.cluster(t, "site-b")
	b.superPass, b.replPass = a.superPass, a.replPass // the remote's roles
	api := pgtest.FreePort(t)
	block := fmt.Sprintf("standby_cluster {\n  host = \"127.0.0.1\"\n  port = %d\n}\n", a1.port)
	b1 := b.member(t, "b1", block+fmt.Sprintf("api {\n  listen = \"127.0.0.1:%d\"\n}", api))
	b2 := b.member(t, "b2", block)
	// plan shows the copy from the remote, not a bootstrap.
	remote := fmt.Sprintf("host=127.0.0.1 port=%d user=replicator", a1.port)
	if p, r := plan(t, b1); p.Path != "bootstrap" || !strings.HasPrefix(p.Source, remote) || len(p.Methods) != 1 ||
		len(p.Methods[0].Commands) == 0 || !slices.ContainsFunc(p.Methods[0].Commands[0].Argv, func(a string) bool { return strings.Contains(a, remote) }) {
		t.Fatalf("plan of the first member of the standby cluster: want a copy from the remote (%s):\n%s", remote, r)
	}
	ag1 := b1.start(t)
	waitStandbyCluster(t, b1, []*agentProc{ag1}, "b1")
	siteB := []*agentProc{ag1, b2.start(t)}
	stopAllAtCleanup(t, siteB[1])
	st := waitStandbyCluster(t, b1, siteB, "b1", "b2")

	if got, want := sysidOf(t, b1), sysidOf(t, a1); got != want {
		t.Fatalf("the standby leader has system identifier %s, the remote %s", got, want)
	}
	if st.Initialize == nil || *st.Initialize != sysidOf(t, a1) {
		t.Errorf("initialize of the standby cluster holds %v, want the remote's %s", st.Initialize, sysidOf(t, a1))
	}
	waitStreaming(t, a1, "a2", "b1")
	waitStreaming(t, b1, "b2")

	execOn(t, a1, "INSERT INTO t VALUES (1)")
	for _, n := range []*node{a2, b1, b2} {
		waitRows(t, n, 1)
	}
	for _, n := range []*node{b1, b2} {
		conn := connectTCP(t, n.port, "postgres", n.superPass, "postgres")
		if got := queryString(t, conn, "SELECT pg_is_in_recovery()::text"); got != "true" {
			t.Errorf("%s is not in recovery: it is a writable primary", n.name)
		}
		_ = conn.Close(t.Context())
	}

	// The standby leader restarts: it takes the key again as standby_leader and follows the
	// remote; it is not promoted.
	sigterm(t, ag1)
	siteB[0] = b1.start(t)
	waitStandbyCluster(t, b1, siteB, "b1", "b2")
	execOn(t, a1, "INSERT INTO t VALUES (2)")
	for _, n := range []*node{b1, b2} {
		waitRows(t, n, 2)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", api)
	for path, want := range map[string]int{"/standby-leader": 200, "/primary": 503} {
		if got := httpStatus(base + path); got != want {
			t.Errorf("GET %s on the standby leader: %d, want %d", path, got, want)
		}
	}
}
