package main_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// receiverOf is the port and timeline n's WAL receiver streams from; 0, 0 while none streams.
func receiverOf(t *testing.T, n *node) (port, timeline int) {
	t.Helper()
	conn := connectTCP(t, n.port, "postgres", n.superPass, "postgres")
	defer conn.Close(context.Background())
	err := conn.QueryRow(t.Context(), "SELECT coalesce(max(sender_port), 0), coalesce(max(received_tli), 0) FROM pg_stat_wal_receiver WHERE status = 'streaming'").Scan(&port, &timeline)
	if err != nil {
		t.Fatalf("reading pg_stat_wal_receiver on %s: %v", n.name, err)
	}
	return port, timeline
}

// waitReceiver waits until n streams from the server on port, on timeline tl.
func waitReceiver(t *testing.T, n *node, port, tl int) {
	t.Helper()
	eventually(t, guard, fmt.Sprintf("%s streaming from port %d on timeline %d", n.name, port, tl), func() bool {
		p, got := receiverOf(t, n)
		return p == port && got == tl
	})
}

// TestStandbyClusterFollowsTheRemoteWhenItMoves is a second site whose standby_cluster block
// names both members of the first (libpq's multi-host form). Its standby leader streams from
// the remote's primary, not from the remote's standby; after a switchover on the first site it
// streams from the new primary on the new timeline, without a new copy, and a row written there
// arrives on both members of the second. Then the standby leader's agent dies: the other
// member, a standby already, takes the leader key as standby_leader (nothing is promoted) and
// streams from the remote itself; the old standby leader's agent comes back as its replica.
func TestStandbyClusterFollowsTheRemoteWhenItMoves(t *testing.T) {
	a := fileCluster(t)
	a1, a2 := a.member(t, "a1", ""), a.member(t, "a2", "")
	siteA := startInTurn(t, a1, a2)
	execOn(t, a1, "CREATE TABLE t (id int)")

	b := backend{kind: "file"}.cluster(t, "site-b")
	b.dcs += "\nttl = \"3s\""
	b.superPass, b.replPass = a.superPass, a.replPass // the remote's roles
	block := fmt.Sprintf("standby_cluster {\n  host = \"127.0.0.1,127.0.0.1\"\n  port = \"%d,%d\"\n}\n", a2.port, a1.port)
	b1, b2 := b.member(t, "b1", block), b.member(t, "b2", block)
	ag1 := b1.start(t)
	waitStandbyCluster(t, b1, []*agentProc{ag1}, "b1")
	siteB := []*agentProc{ag1, b2.start(t)}
	stopAllAtCleanup(t, siteB[1])
	waitStandbyCluster(t, b1, siteB, "b1", "b2")
	// a2, a standby, is first in the list: the standby leader still streams from a1, the primary.
	waitReceiver(t, b1, a1.port, 1)
	waitReceiver(t, b2, b1.port, 1)
	execOn(t, a1, "INSERT INTO t VALUES (1)")
	waitRows(t, b2, 1)

	// A switchover on the first site.
	waitFor(t, guard, "a2 published streaming from a1", siteA, func() bool {
		return upstreamOf(t, a1, "a2") == "a1"
	})
	if r := run(t, a1.env, "switchover", "-config", a1.config, "--candidate", "a2", "--yes"); r.code != 0 {
		t.Fatalf("switchover on the first site: %s", r)
	}
	waitLeader(t, a2, siteA, "a2", "a1")
	execOn(t, a2, "INSERT INTO t VALUES (2)")
	waitReceiver(t, b1, a2.port, 2)
	for _, n := range []*node{b1, b2} {
		waitRows(t, n, 2)
	}
	if got := strings.Count(siteB[0].out.String(), "creating the standby leader from the remote"); got != 1 {
		t.Errorf("the standby leader was copied from the remote %d times, want once:\n%s", got, siteB[0].out.String())
	}
	waitStandbyCluster(t, b1, siteB, "b1", "b2")

	// The standby leader's agent dies (its PostgreSQL runs on): b2 takes over.
	siteB[0].kill()
	waitStandbyCluster(t, b2, siteB[1:], "b2")
	waitReceiver(t, b2, a2.port, 2)
	execOn(t, a2, "INSERT INTO t VALUES (3)")
	waitRows(t, b2, 3)
	for _, n := range []*node{b1, b2} {
		conn := connectTCP(t, n.port, "postgres", n.superPass, "postgres")
		if got := queryString(t, conn, "SELECT pg_is_in_recovery()::text"); got != "true" {
			t.Errorf("%s is not in recovery: a standby cluster's member was promoted", n.name)
		}
		_ = conn.Close(t.Context())
	}
	if out := siteB[1].out.String(); strings.Contains(out, "promot") {
		t.Errorf("taking the standby leader's key promoted something:\n%s", out)
	}

	// b1's agent comes back: b2 keeps the key, b1 streams from it.
	siteB[0] = b1.start(t)
	waitStandbyCluster(t, b2, siteB, "b2", "b1")
	waitReceiver(t, b1, b2.port, 2)
	execOn(t, a2, "INSERT INTO t VALUES (4)")
	for _, n := range []*node{b1, b2} {
		waitRows(t, n, 4)
	}
}
