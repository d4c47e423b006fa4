package main_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// waitStandbyFailure waits until member name of the cluster n reads publishes the state failed
// with a last error containing want, while initialize stays absent (nothing was made); it
// returns the last error.
func waitStandbyFailure(t *testing.T, n *node, agents []*agentProc, name, want string) string {
	t.Helper()
	var last string
	waitFor(t, guard, fmt.Sprintf("%s failing with %q", name, want), agents, func() bool {
		st, err := status(t, n)
		if err != nil {
			return false
		}
		if st.Initialize != nil && *st.Initialize != "" {
			t.Fatalf("initialize holds %q while the standby leader cannot be made", *st.Initialize)
		}
		m, ok := st.member(name)
		if !ok || m.PGImaged == nil {
			return false
		}
		last = m.PGImaged.LastError
		return m.State == "failed" && strings.Contains(last, want)
	})
	return last
}

// TestStandbyClusterFaults: a standby cluster whose remote does not answer yet keeps trying
// with backoff, publishes why, and bootstraps nothing; once the remote runs, its standby leader
// is made. A member whose configuration has no standby_cluster block follows what the DCS
// records, says so, and clones from the standby leader. A wrong replication password for the
// remote is published with libpq's reason; nothing is bootstrapped or left behind. The remote
// changing primary while the standby leader is copied from it: the copy is made again from the
// new primary and the standby leader follows its timeline. A promotion while a member is being
// copied is refused with the reason (promote once it streams). A primary_slot_name the remote does not have fails before anything is copied, with an
// error naming the slot; once the slot exists, the standby leader streams through it.
func TestStandbyClusterFaults(t *testing.T) {
	a := fileCluster(t)
	a1 := a.member(t, "a1", "")

	// The remote does not run yet.
	b := backend{kind: "file"}.cluster(t, "site-b")
	b.superPass, b.replPass = a.superPass, a.replPass
	b1 := b.member(t, "b1", fmt.Sprintf("standby_cluster {\n  host = \"127.0.0.1\"\n  port = %d\n}\n", a1.port))
	siteB := []*agentProc{b1.start(t)}
	stopAllAtCleanup(t, siteB...)
	waitStandbyFailure(t, b1, siteB, "b1", fmt.Sprintf("port %d failed: Connection refused", a1.port))
	waitFor(t, guard, "b1 trying again", siteB, func() bool {
		return strings.Count(siteB[0].out.String(), "creating the standby leader from the remote") >= 2
	})
	if out := siteB[0].out.String(); strings.Contains(out, "initdb") && strings.Contains(out, "running /usr/lib/postgresql/15/bin/initdb") {
		t.Fatalf("a member of a standby cluster ran initdb:\n%s", out)
	}
	siteA := startInTurn(t, a1)
	waitStandbyCluster(t, b1, siteB, "b1")
	execOn(t, a1, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
	waitRows(t, b1, 1)

	// A member without the block: the DCS records the standby cluster and its remote, which the
	// member uses; it says so, clones from the standby leader and bootstraps nothing.
	b2 := b.member(t, "b2", "")
	siteB = append(siteB, b2.start(t))
	waitStandbyCluster(t, b1, siteB, "b1", "b2")
	waitRows(t, b2, 1)
	waitFor(t, guard, "b2 saying that it uses the DCS's standby_cluster block", siteB, func() bool {
		return strings.Contains(siteB[1].out.String(), "this configuration has no standby_cluster block, but the DCS records that the cluster is a standby cluster of host=127.0.0.1 port="+fmt.Sprint(a1.port))
	})
	if r := run(t, b2.env, "status", "-config", b2.config); !strings.Contains(r.stdout, "Standby cluster of host=127.0.0.1 port="+fmt.Sprint(a1.port)) ||
		!strings.Contains(r.stdout, "Note: this configuration has no standby_cluster block") {
		t.Errorf("status with b2's configuration:\n%s", r.stdout)
	}
	if out := siteB[1].out.String(); strings.Contains(out, "bootstrapped") || strings.Contains(out, "running /usr/lib/postgresql/15/bin/initdb") {
		t.Errorf("b2 bootstrapped a cluster of its own:\n%s", out)
	}

	// A wrong replication password for the remote: libpq's reason is published, nothing is
	// bootstrapped instead and nothing is left in the data directory.
	d := backend{kind: "file"}.cluster(t, "site-d")
	d.superPass = a.superPass
	d1 := d.member(t, "d1", fmt.Sprintf("standby_cluster {\n  host = \"127.0.0.1\"\n  port = %d\n}\n", a1.port))
	siteD := []*agentProc{d1.start(t)}
	stopAllAtCleanup(t, siteD...)
	waitStandbyFailure(t, d1, siteD, "d1", `password authentication failed for user "replicator"`)
	waitFor(t, guard, "d1 trying again", siteD, func() bool {
		return strings.Count(siteD[0].out.String(), "creating the standby leader from the remote") >= 2
	})
	if entries, _ := os.ReadDir(d1.dataDir); len(entries) > 0 {
		t.Errorf("the failed copy left %d entries in %s", len(entries), d1.dataDir)
	}
	if out := siteD[0].out.String(); strings.Contains(out, d.replPass) || strings.Contains(out, "running /usr/lib/postgresql/15/bin/initdb") {
		t.Errorf("d1's log shows its password or an initdb:\n%s", out)
	}

	// A slot the remote does not have.
	c := backend{kind: "file"}.cluster(t, "site-c")
	c.superPass, c.replPass = a.superPass, a.replPass
	c1 := c.member(t, "c1", fmt.Sprintf("standby_cluster {\n  host = \"127.0.0.1\"\n  port = %d\n  primary_slot_name = \"site_c\"\n}\n", a1.port))
	siteC := []*agentProc{c1.start(t)}
	stopAllAtCleanup(t, siteC...)
	if msg := waitStandbyFailure(t, c1, siteC, "c1", `"site_c"`); !strings.Contains(msg, "does not have") {
		t.Errorf("the error does not say that the remote lacks the slot: %s", msg)
	}
	if strings.Contains(siteC[0].out.String(), "running replica method") {
		t.Errorf("the remote was copied though the slot does not exist:\n%s", siteC[0].out.String())
	}
	execOn(t, a1, "SELECT pg_create_physical_replication_slot('site_c')")
	waitStandbyCluster(t, c1, siteC, "c1")
	conn := connectTCP(t, a1.port, "postgres", a1.superPass, "postgres")
	defer conn.Close(t.Context())
	eventually(t, guard, "the slot site_c active on the remote", func() bool {
		return queryString(t, conn, "SELECT coalesce(bool_or(active), false)::text FROM pg_replication_slots WHERE slot_name = 'site_c'") == "true"
	})
	execOn(t, a1, "INSERT INTO t VALUES (2)")
	waitRows(t, c1, 2)

	// The remote changes primary while the standby leader is being copied from it: the copy is
	// made again from the new primary (of the two hosts, the one that takes writes) and the
	// standby leader follows the new timeline.
	a2 := a.member(t, "a2", "")
	siteA = append(siteA, a2.start(t))
	stopAllAtCleanup(t, siteA[1])
	waitLeader(t, a1, siteA, "a1", "a2")
	waitFor(t, guard, "a2 published streaming from a1", siteA, func() bool { return upstreamOf(t, a1, "a2") == "a1" })
	e := backend{kind: "file"}.cluster(t, "site-e")
	e.superPass, e.replPass = a.superPass, a.replPass
	e1 := e.member(t, "e1", fmt.Sprintf(`method "slow" {
  plugin     = "basebackup"
  max-rate   = "2M"
  checkpoint = "fast"
}
standby_cluster {
  host                   = "127.0.0.1,127.0.0.1"
  port                   = "%d,%d"
  create_replica_methods = ["slow"]
}
`, a2.port, a1.port))
	siteE := []*agentProc{e1.start(t)}
	stopAllAtCleanup(t, siteE...)
	waitFor(t, guard, "e1 copying the remote", siteE, func() bool { return strings.Contains(siteE[0].out.String(), "kB (") })
	if r := run(t, a1.env, "switchover", "-config", a1.config, "--candidate", "a2", "--yes"); r.code != 0 {
		t.Fatalf("switchover on the remote mid-copy: %s", r)
	}
	waitLeader(t, a2, siteA, "a2", "a1")
	waitStandbyCluster(t, e1, siteE, "e1")
	execOn(t, a2, "INSERT INTO t VALUES (3)")
	waitRows(t, e1, 3)
	waitReceiver(t, e1, a2.port, 2)
	t.Logf("the standby leader was copied %d times", strings.Count(siteE[0].out.String(), "running replica method"))

	// A promotion while a member is being copied from the standby leader is refused with the
	// reason; nothing is recorded.
	e2 := e.memberWith(t, "e2", `method "slow" {
  plugin     = "basebackup"
  max-rate   = "1M"
  checkpoint = "fast"
}`, `  create_replica_methods = ["slow"]`)
	siteE = append(siteE, e2.start(t))
	stopAllAtCleanup(t, siteE[1])
	waitFor(t, guard, "e2 creating its replica", siteE, func() bool {
		st, err := status(t, e1)
		m, ok := st.member("e2")
		return err == nil && ok && m.State == "creating replica"
	})
	if r := run(t, e1.env, "standby", "promote", "-config", e1.config, "--yes"); r.code != 4 || !strings.Contains(r.stderr, "member e2 is creating a replica") {
		t.Errorf("standby promote while e2 is copied: %s", r)
	}
	waitStandbyCluster(t, e1, siteE, "e1", "e2")
}
