package main_test

import (
	"context"
	"testing"
)

// TestStandbyClusterOfPatroni is a second site of pgimaged, on its own DCS, that is a standby
// cluster of a Patroni 3 cluster (its own etcd, namespace and ports): its standby_cluster block
// names both Patroni members, with the roles Patroni made. The whole life of the standby cluster
// runs against it (see runStandbySite): a row written on Patroni's primary reaches both members,
// b1 is standby_leader in status and to the API, a `patronictl switchover` is followed onto
// Patroni's new timeline, and `pgimaged standby promote` makes the second site writable.
func TestStandbyClusterOfPatroni(t *testing.T) {
	e := startEtcd(t, 0)
	scope := "site-a-" + randomHex(t)[:8]
	nodes, ymls, _ := startPatroniPair(t, scope, e.endpoint)
	p1, p2 := nodes[0], nodes[1]
	execOn(t, p1, "CREATE TABLE t (id int)")

	site := newSecondSite(t, "127.0.0.1", []int{p2.port, p1.port}, p1.superPass, p1.replPass)
	runStandbySite(t, site, p1, p2, nil, func() {
		waitRows(t, p2, 1)
		if r := patronictl(t, ymls[0], "switchover", scope, "--leader", "node1", "--candidate", "node2", "--force"); r.code != 0 {
			t.Fatalf("patronictl switchover: %s", r)
		}
		eventually(t, guard, "Patroni's node2 out of recovery", func() bool {
			conn := connectTCP(t, p2.port, "postgres", p2.superPass, "postgres")
			defer conn.Close(context.Background())
			return queryString(t, conn, "SELECT pg_is_in_recovery()::text") == "false"
		})
	})
}
